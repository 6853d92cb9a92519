//! The command line every service binary shares: `<service> [--config FILE] [COMMAND]`, where
//! COMMAND is `serve` (the default), `dead-letters [list | replay SEQ]`,
//! `outbox [set-aside | retry (SEQ | --all)]`, `show-config`, or one of the service's own. Bad
//! arguments and bad
//! configuration exit with 64 (EX_CONFIG) and a message naming what is wrong, before anything is
//! opened; a command that fails exits 1 with its cause.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use async_nats::jetstream;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use taskmesh_events::dead_letters;
use taskmesh_mesh::config::{ConfigError, TelemetryConfig};
use taskmesh_mesh::{EXIT_CONFIG, shutdown, telemetry};

use crate::app::App;
use crate::declaration::{CommandContext, Config, Service};
use crate::error::{BoxError, chain};

#[derive(Debug, Parser)]
struct Cli<C: Subcommand> {
    /// A TOML configuration file; every setting can also come from `TASKMESH_*` variables
    /// (`TASKMESH_DATABASE__PORT=55432`).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<KitCommand<C>>,
}

#[derive(Debug, Subcommand)]
enum KitCommand<C: Subcommand> {
    /// Serve until SIGTERM or SIGINT (the default).
    Serve,
    /// Messages the consumers gave up on (the `DEAD_LETTERS` stream).
    DeadLetters {
        #[command(subcommand)]
        action: Option<DeadLetterAction>,
    },
    /// Outbox rows the relay set aside after repeated publish failures.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Prints the effective configuration (defaults, then the file, then `TASKMESH_*` variables)
    /// as JSON and exits; secrets given inline are never printed. Deployment checks read the
    /// upstream endpoints a service will call from it.
    ShowConfig,
    /// Asks the process's own gRPC listener for its health (`grpc.health.v1`, the whole server)
    /// and exits 0 when it is SERVING, 1 otherwise: the health check of images without a shell.
    Probe,
    #[command(flatten)]
    Service(C),
}

#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// Lists them (the default).
    SetAside,
    /// Puts rows back in line for the relay once the cause is fixed.
    Retry {
        /// The row's `seq`, as listed.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        seq: Option<i64>,
        /// Every row set aside.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// Lists them (the default).
    List,
    /// Publishes one again on its original subject.
    Replay {
        /// Its sequence number in `DEAD_LETTERS`.
        sequence: u64,
    },
}

/// The subcommands of a service that has none of its own.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum NoCommand {}

/// The whole life of a service binary; a service's `main` returns this.
pub fn main<S: Service>() -> ExitCode {
    let Some(cli) = parse::<S::Command>(S::NAME, &format!("taskmesh {} service", S::NAME)) else {
        return config_error();
    };
    let config = match Config::<S>::from_layers(&Config::<S>::layers(cli.config.as_deref())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: {err}", S::NAME);
            return config_error();
        }
    };
    if matches!(cli.command, Some(KitCommand::ShowConfig)) {
        return show_config(
            S::NAME,
            &serde_json::json!({ "mesh": config.mesh, "settings": config.settings }),
        );
    }
    let telemetry = config.mesh.telemetry.clone();
    in_runtime(S::NAME, &telemetry, async move {
        match cli.command {
            None | Some(KitCommand::Serve) => serve::<S>(config).await,
            // Answered above, before the runtime and its log output start.
            Some(KitCommand::ShowConfig) => ExitCode::SUCCESS,
            Some(KitCommand::Probe) => probe(S::NAME, config.mesh.grpc.listen).await,
            Some(KitCommand::DeadLetters { action }) => {
                let done = dead_letter_command(CommandContext { config }, action).await;
                report(S::NAME, done)
            }
            Some(KitCommand::Outbox { action }) => {
                let done = outbox_command(CommandContext { config }, action).await;
                report(S::NAME, done)
            }
            Some(KitCommand::Service(command)) => report(
                S::NAME,
                S::command(command, CommandContext { config }).await,
            ),
        }
    })
}

/// A process of the mesh that is not a service (the gateway): no database or stream of its own,
/// but the same command line, exit codes, runtime, telemetry and shutdown signal.
pub trait Process: Sized + 'static {
    /// Binary name, log and metric label.
    const NAME: &'static str;
    /// Its validated configuration.
    type Config: serde::Serialize + Send + 'static;
    /// Defaults, then `file`, then `TASKMESH_*` variables; the error names the key.
    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError>;
    /// Where its logs and traces go.
    fn telemetry(config: &Self::Config) -> &TelemetryConfig;
    /// Its native gRPC listener (which serves `grpc.health.v1`).
    fn grpc_listen(config: &Self::Config) -> SocketAddr;
    /// Builds, binds and serves until `shutdown` completes.
    fn run(
        config: Self::Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The whole life of a [`Process`] binary; its `main` returns this.
pub fn process_main<P: Process>() -> ExitCode {
    let Some(cli) = parse::<NoCommand>(P::NAME, &format!("taskmesh {}", P::NAME)) else {
        return config_error();
    };
    let command = cli.command;
    if !matches!(
        command,
        None | Some(KitCommand::Serve | KitCommand::ShowConfig | KitCommand::Probe)
    ) {
        eprintln!(
            "{}: the commands are `serve` (the default), `show-config` and `probe`",
            P::NAME
        );
        return config_error();
    }
    let config = match P::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: {err}", P::NAME);
            return config_error();
        }
    };
    match command {
        Some(KitCommand::ShowConfig) => return show_config(P::NAME, &config),
        Some(KitCommand::Probe) => {
            let listen = P::grpc_listen(&config);
            return in_runtime(P::NAME, P::telemetry(&config), probe(P::NAME, listen));
        }
        _ => {}
    }
    let telemetry = P::telemetry(&config).clone();
    in_runtime(P::NAME, &telemetry, async move {
        match P::run(config, shutdown::signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                let cause = chain(err.as_ref());
                tracing::error!(error = %cause, "stopped with an error");
                eprintln!("{}: {cause}", P::NAME);
                ExitCode::FAILURE
            }
        }
    })
}

/// The parsed command line; `None` after printing why it is unusable. `--help` exits here.
fn parse<C: Subcommand>(name: &'static str, about: &str) -> Option<Cli<C>> {
    let matches = Cli::<C>::command()
        .name(name)
        .bin_name(name)
        .about(about.to_owned())
        .try_get_matches();
    match matches.and_then(|m| Cli::<C>::from_arg_matches(&m)) {
        Ok(cli) => Some(cli),
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            std::process::exit(0);
        }
        Err(err) => {
            let _ = err.print();
            None
        }
    }
}

/// Runs `work` on a multi-threaded runtime with telemetry up.
fn in_runtime(
    name: &str,
    telemetry: &TelemetryConfig,
    work: impl Future<Output = ExitCode>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{name}: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _telemetry = match telemetry::init(name, telemetry) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("{name}: {err}");
                return config_error();
            }
        };
        work.await
    })
}

fn config_error() -> ExitCode {
    ExitCode::from(u8::try_from(EXIT_CONFIG).unwrap_or(1))
}

async fn serve<S: Service>(config: Config<S>) -> ExitCode {
    let app = match App::<S>::build(config).await {
        Ok(app) => app,
        Err(err) => {
            let cause = chain(&err);
            tracing::error!(error = %cause, "startup failed");
            eprintln!("{}: startup failed: {cause}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    match app.run(shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let cause = chain(&err);
            tracing::error!(error = %cause, "stopped with an error");
            eprintln!("{}: {cause}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

/// Exits 0 when the gRPC server on `listen` (its own port, asked on loopback when it listens on
/// every address) reports SERVING within three seconds.
async fn probe(name: &str, listen: SocketAddr) -> ExitCode {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let url = format!("http://{host}:{}", listen.port());
    let asked = async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?
            .connect()
            .await?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await?;
        Ok::<_, BoxError>(reply.into_inner().status())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), asked).await {
        Ok(Ok(ServingStatus::Serving)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("{name}: {url} is {}", status.as_str_name());
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("{name}: {url}: {}", chain(err.as_ref()));
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{name}: {url} did not answer within 3 s");
            ExitCode::FAILURE
        }
    }
}

/// Prints `config` as pretty JSON on stdout.
fn show_config(name: &str, config: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(config) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{name}: cannot print the configuration: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A command's exit: 0, or 1 with its cause on stderr.
fn report(service: &str, done: Result<(), BoxError>) -> ExitCode {
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{service}: {}", chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn dead_letter_command<S: Service>(
    context: CommandContext<S>,
    action: Option<DeadLetterAction>,
) -> Result<(), BoxError> {
    let js = jetstream::new(context.nats().await?);
    match action.unwrap_or(DeadLetterAction::List) {
        DeadLetterAction::List => {
            let letters = dead_letters::list(&js, 1000)
                .await
                .map_err(|e| format!("cannot list dead letters: {e}"))?;
            println!(
                "{:>8}  {:<24} {:<40} {:>10}  reason",
                "sequence", "consumer", "subject", "deliveries"
            );
            for letter in letters {
                println!(
                    "{:>8}  {:<24} {:<40} {:>10}  {}",
                    letter.sequence,
                    letter.consumer,
                    letter.subject,
                    letter.deliveries,
                    letter.reason
                );
            }
        }
        DeadLetterAction::Replay { sequence } => {
            let subject = dead_letters::replay(&js, sequence).await.map_err(|e| {
                format!(
                    "cannot replay dead letter {sequence}: {e} (a service may publish only its \
                     own events: replay as the operator, with the operator's login in \
                     TASKMESH_NATS__URL, see docs/events.md)"
                )
            })?;
            println!("dead letter {sequence} replayed on {subject}");
        }
    }
    Ok(())
}

async fn outbox_command<S: Service>(
    context: CommandContext<S>,
    action: Option<OutboxAction>,
) -> Result<(), BoxError> {
    use taskmesh_events::outbox;
    let pool = context.database().await?;
    match action.unwrap_or(OutboxAction::SetAside) {
        OutboxAction::SetAside => {
            let rows = outbox::set_aside(&pool, 1000).await?;
            println!(
                "{:>8}  {:<25} {:<40} {:>8}  last error",
                "seq", "set aside at", "subject", "attempts"
            );
            for row in rows {
                println!(
                    "{:>8}  {:<25} {:<40} {:>8}  {}",
                    row.seq,
                    row.set_aside_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    row.subject,
                    row.attempts,
                    row.last_error.unwrap_or_default()
                );
            }
        }
        OutboxAction::Retry { seq, .. } => match outbox::retry_set_aside(&pool, seq).await? {
            0 => return Err("no set-aside row to retry".into()),
            count => println!("{count} outbox row(s) back in line for the relay"),
        },
    }
    Ok(())
}
