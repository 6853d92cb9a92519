//! The execution service's own settings: the `workers` table and where the `projects` service is
//! (the runtime's settings come from the kit).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_clients::projects::ProjectsEndpoint;
use taskmesh_mesh::config::ConfigError;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Execution>;

/// How this process runs jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workers {
    /// Executions run at once by this process.
    pub concurrency: usize,
    /// How long a lease lasts without renewal, in milliseconds.
    pub lease_ms: u64,
    /// How often an idle worker looks for work, in milliseconds.
    pub poll_ms: u64,
    /// Executions of one project running at once, across every execution process, so that one
    /// project's slow jobs cannot take every worker; 0 means half of `concurrency` (at least 1).
    pub max_per_project: usize,
}

impl Default for Workers {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease_ms: 10_000,
            poll_ms: 200,
            max_per_project: 0,
        }
    }
}

impl Workers {
    /// The per-project limit in force.
    pub fn per_project(&self) -> usize {
        if self.max_per_project == 0 {
            (self.concurrency / 2).max(1)
        } else {
            self.max_per_project
        }
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// Limits of WatchExecution streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Watch {
    /// Streams one caller may hold open at once (more: RESOURCE_EXHAUSTED).
    pub max_streams_per_user: usize,
    /// How long a stream lasts at most, in seconds; it then ends and the client watches again.
    pub max_stream_secs: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            max_streams_per_user: 16,
            max_stream_secs: 1800,
        }
    }
}

/// The tables only the execution service reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Workers.
    pub workers: Workers,
    /// Watch stream limits.
    pub watch: Watch,
    /// The projects service, which says who may see and change executions.
    pub projects: ProjectsEndpoint,
    /// Where jobs may send requests (see `taskmesh_mesh::egress`): public addresses on 80/443 by
    /// default.
    pub egress: taskmesh_mesh::egress::EgressConfig,
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let workers = &self.workers;
        if workers.concurrency == 0 || workers.concurrency > 256 {
            return Err(ConfigError::Invalid {
                key: "workers.concurrency".to_owned(),
                message: "must be 1 to 256".to_owned(),
            });
        }
        if workers.lease_ms < 300 || workers.poll_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "workers.lease_ms".to_owned(),
                message: "lease_ms must be at least 300 and poll_ms positive".to_owned(),
            });
        }
        if self.watch.max_streams_per_user == 0 || self.watch.max_stream_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "watch.max_streams_per_user".to_owned(),
                message: "max_streams_per_user and max_stream_secs must be positive".to_owned(),
            });
        }
        self.egress.validate()?;
        self.projects.validate()
    }
}
