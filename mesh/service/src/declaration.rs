//! What a service declares ([`Service`]), the configuration it gets ([`Config`]) and what it is
//! given to wire itself ([`Wiring`]) or to run one of its commands ([`CommandContext`]).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use taskmesh_clients::{EndpointError, ProjectCache, ProjectsClient, ProjectsEndpoint};
use taskmesh_events::consumer::{self, ConsumerSpec, Handler};
use taskmesh_events::{Outbox, StreamSpec};
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::{ConfigLayers, MeshConfig, Metrics, VaultSession};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::background::{Background, Stop};
use crate::config::Settings;
use crate::error::BoxError;

/// A taskmesh service, as the kit sees it.
pub trait Service: Sized + Send + Sync + 'static {
    /// Service name: Vault path `secret/taskmesh/<name>`, database `<name>`, stream `<NAME>` on
    /// `taskmesh.<name>.v1.>`, NATS client name, log and metric label.
    const NAME: &'static str;
    /// Default gRPC port (ARCHITECTURE.md §7); the admin port is this plus 1000.
    const GRPC_PORT: u16;
    /// The service's own configuration tables.
    type Settings: Settings;
    /// Extra subcommands of the binary (`NoCommand` for none).
    type Command: clap::Subcommand + Send + 'static;
    /// Why [`build`](Self::build) can fail (the service's own error type).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The service's migrations, `&sqlx::migrate!("./migrations")`; the kit adds its own.
    const MIGRATIONS: &'static Migrator;

    /// The encoded descriptor set of the service's contracts, for reflection and for telling
    /// reading RPCs from writing ones (taskmesh's own contracts unless the service brings its own).
    fn descriptor_set() -> &'static [u8] {
        taskmesh_contracts::FILE_DESCRIPTOR_SET
    }

    /// Adds the service's gRPC services, consumers and background tasks to `wiring`. Runs after
    /// Vault, the database and NATS are open and before anything binds.
    fn build(wiring: &mut Wiring<Self>) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Runs one of the service's own subcommands; what it prints is its own business.
    fn command(
        command: Self::Command,
        context: CommandContext<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (command, context);
        async { Err("this service has no commands".into()) }
    }
}

/// What [`Service::build`] is given: the opened backing systems, and the places to add the
/// service's parts to.
pub struct Wiring<S: Service> {
    pub(crate) config: Config<S>,
    pub(crate) vault: Arc<VaultSession>,
    pub(crate) pool: PgPool,
    pub(crate) nats: async_nats::Client,
    pub(crate) metrics: Metrics,
    pub(crate) outbox: Outbox,
    pub(crate) routes: Option<Routes>,
    pub(crate) service_names: Vec<&'static str>,
    pub(crate) background: Vec<Background>,
    pub(crate) consumer_lag: Option<prometheus::IntGaugeVec>,
    pub(crate) consumer_age: Option<prometheus::HistogramVec>,
    pub(crate) consumer_handling: Option<prometheus::HistogramVec>,
    pub(crate) verify_against_self: bool,
}

impl<S: Service> Wiring<S> {
    /// The validated configuration.
    pub fn config(&self) -> &Config<S> {
        &self.config
    }

    /// The service's own settings.
    pub fn settings(&self) -> &S::Settings {
        &self.config.settings
    }

    /// The Vault session (logged in, renewed).
    pub fn vault(&self) -> &Arc<VaultSession> {
        &self.vault
    }

    /// The migrated database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The NATS client, named after the service.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The service's metrics registry (served on the admin port).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The outbox whose rows the kit's relay publishes to the service's stream.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The stream of bounded context `context` with this deployment's replicas and window
    /// (`TASKS` on `taskmesh.tasks.v1.>` for `"tasks"`).
    pub fn stream_of(&self, context: &str) -> StreamSpec {
        stream_of(&self.config.mesh.nats, context)
    }

    /// Serves the gRPC service `service` (health reports it by name).
    pub fn serve<T>(&mut self, service: T) -> &mut Self
    where
        T: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        T::Response: axum::response::IntoResponse,
        T::Future: Send + 'static,
    {
        self.service_names.push(T::NAME);
        self.routes = Some(match self.routes.take() {
            Some(routes) => routes.add_service(service),
            None => Routes::new(service),
        });
        self
    }

    /// Consumes every event of context `context` with the durable consumer `durable`.
    pub fn consume<H: Handler>(&mut self, context: &str, durable: &str, handler: H) -> &mut Self {
        let stream = self.stream_of(context);
        let filter = stream.subjects.first().cloned().unwrap_or_default();
        self.consume_with(ConsumerSpec::new(stream, durable, &filter), handler)
    }

    /// Consumes with a fully specified consumer (own filter, attempts or backoff). The kit adds
    /// the lag gauge and runs it until the drain.
    pub fn consume_with<H: Handler>(&mut self, mut spec: ConsumerSpec, handler: H) -> &mut Self {
        let gauges = self
            .consumer_lag
            .get_or_insert_with(|| consumer::lag_gauges(&self.metrics));
        spec.lag = Some(gauges.with_label_values(&[spec.durable.as_str()]));
        let ages = self
            .consumer_age
            .get_or_insert_with(|| consumer::age_histograms(&self.metrics));
        spec.age = Some(ages.with_label_values(&[spec.durable.as_str()]));
        let handling = self
            .consumer_handling
            .get_or_insert_with(|| consumer::handling_histograms(&self.metrics));
        spec.handling = Some(handling.with_label_values(&[spec.durable.as_str()]));
        let client = self.nats.clone();
        let handler = Arc::new(handler);
        let name = format!("consumer {}", spec.durable);
        self.background
            .push(Background::new(name, move |stop: Stop| {
                Box::pin(async move {
                    consumer::run(client, spec, handler, stop.receiver()).await;
                    Ok(())
                }) as BoxFuture<'static, Result<(), BoxError>>
            }));
        self
    }

    /// Runs `task` from start until the drain, which it must notice through `stop`. If it ends
    /// early (an error, a panic, or returning while not asked to), the service stops with exit 1
    /// and its supervisor restarts it.
    pub fn spawn<F, Fut>(&mut self, name: &str, task: F) -> &mut Self
    where
        F: FnOnce(Stop) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.background
            .push(Background::new(name.to_owned(), move |stop| {
                Box::pin(task(stop)) as BoxFuture<'static, Result<(), BoxError>>
            }));
        self
    }

    /// A client of the projects service at `endpoint` whose role and column answers are
    /// remembered ([`ProjectCache`], when its time to live is not 0) and forgotten as the projects service's
    /// events arrive; the listening runs as a background task of the service.
    pub fn projects_client(
        &mut self,
        endpoint: &ProjectsEndpoint,
    ) -> Result<ProjectsClient, EndpointError> {
        let client = ProjectsClient::from_config(endpoint)?;
        let Some(ttl) = endpoint.cache_ttl() else {
            return Ok(client);
        };
        let cache = ProjectCache::new(self.nats().clone(), ttl);
        let watching = cache.clone();
        self.spawn("membership events", move |stop| async move {
            watching.watch(stop.receiver()).await.map_err(Into::into)
        });
        Ok(client.with_cache(cache))
    }

    /// Verifies callers against this very process at the address it binds (the identity service
    /// holds the keys everyone else fetches from it).
    pub fn verify_callers_against_self(&mut self) -> &mut Self {
        self.verify_against_self = true;
        self
    }
}

pub(crate) fn stream_of(nats: &taskmesh_mesh::config::NatsConfig, context: &str) -> StreamSpec {
    StreamSpec::for_context(
        context,
        nats.stream_replicas,
        Duration::from_secs(nats.duplicate_window_secs),
    )
}

/// What a service's own subcommand is given: its configuration, and the database on request.
pub struct CommandContext<S: Service> {
    pub(crate) config: Config<S>,
}

impl<S: Service> CommandContext<S> {
    /// The validated configuration.
    pub fn config(&self) -> &Config<S> {
        &self.config
    }

    /// Logs in to Vault and opens the migrated database, as the service does at startup.
    pub async fn database(&self) -> Result<PgPool, BoxError> {
        let (_vault, pool) =
            taskmesh_events::startup::open_database(&self.config.mesh, S::MIGRATIONS).await?;
        Ok(pool)
    }

    /// Connects to NATS as the service does (its own login from Vault), or with the login the
    /// configured URL carries (an operator's); fails at once when NATS cannot be reached.
    pub async fn nats(&self) -> Result<async_nats::Client, BoxError> {
        let mesh = &self.config.mesh;
        let login = if taskmesh_events::nats::url_has_login(&mesh.nats.url) {
            None
        } else {
            let vault = taskmesh_mesh::VaultSession::login(&mesh.vault).await?;
            taskmesh_events::startup::nats_login(mesh, &vault).await?
        };
        let client = taskmesh_events::nats::connect_once(&mesh.nats.url, S::NAME, login.as_ref())
            .await
            .map_err(|e| format!("cannot connect to NATS at {}: {e}", mesh.nats.url))?;
        Ok(client)
    }
}

/// Everything a service reads at startup, validated.
pub struct Config<S: Service> {
    /// The runtime's settings (listeners, Vault, database, NATS, telemetry, shutdown, auth).
    pub mesh: MeshConfig,
    /// The service's own settings.
    pub settings: S::Settings,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Clone for Config<S> {
    fn clone(&self) -> Self {
        Self {
            mesh: self.mesh.clone(),
            settings: self.settings.clone(),
            service: PhantomData,
        }
    }
}

impl<S: Service> std::fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mesh", &self.mesh)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S: Service> Config<S> {
    /// Defaults, then `file` if given, then the process environment.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        ConfigLayers::load(S::NAME, S::GRPC_PORT, file).with_root_defaults(&S::Settings::default())
    }

    /// Defaults only; tests add their overrides with `set` (never `set_var`).
    pub fn default_layers() -> ConfigLayers {
        ConfigLayers::defaults(S::NAME, S::GRPC_PORT).with_root_defaults(&S::Settings::default())
    }

    /// Extracts and validates both parts.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let settings: S::Settings = layers.extract()?;
        settings.validate()?;
        Ok(Self {
            mesh,
            settings,
            service: PhantomData,
        })
    }
}
