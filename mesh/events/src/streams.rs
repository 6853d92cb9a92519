//! JetStream streams, created or brought up to date idempotently by the services that own them.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// The stream a context publishes to.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Stream name, `PROJECTS`.
    pub name: String,
    /// Subjects, `taskmesh.projects.v1.>`.
    pub subjects: Vec<String>,
    /// Replicas (1 locally, 3 in a cluster).
    pub replicas: usize,
    /// How long a `Nats-Msg-Id` is remembered for de-duplication.
    pub duplicate_window: Duration,
}

impl StreamSpec {
    /// The stream of one bounded context: `<CONTEXT>` on `taskmesh.<context>.v1.>`.
    pub fn for_context(context: &str, replicas: usize, duplicate_window: Duration) -> Self {
        Self {
            name: context.to_ascii_uppercase(),
            subjects: vec![format!("taskmesh.{context}.v1.>")],
            replicas,
            duplicate_window,
        }
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            ..Default::default()
        }
    }

    /// Creates the stream, or updates its subjects and window when it exists with other ones.
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<(), async_nats::Error> {
        let config = self.config();
        let mut stream = js.get_or_create_stream(config.clone()).await?;
        let info = stream.info().await?;
        let current = &info.config;
        if current.subjects != config.subjects
            || current.duplicate_window != config.duplicate_window
        {
            js.update_stream(config).await?;
        }
        Ok(())
    }
}
