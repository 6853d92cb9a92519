//! The command line every service binary shares: `<service> [--config FILE] [COMMAND]`, where
//! COMMAND is `serve` (the default), `dead-letters [list | replay SEQ]`, or one of the service's
//! own. Bad arguments and bad configuration exit with 64 (EX_CONFIG) and a message naming what is
//! wrong, before anything is opened.

use std::path::PathBuf;
use std::process::ExitCode;

use async_nats::jetstream;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use taskmesh_events::dead_letters;
use taskmesh_mesh::{EXIT_CONFIG, shutdown, telemetry};

use crate::app::App;
use crate::declaration::{CommandContext, Config, Service};
use crate::error::chain;

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
    #[command(flatten)]
    Service(C),
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
    let about = format!("taskmesh {} service", S::NAME);
    let matches = Cli::<S::Command>::command()
        .name(S::NAME)
        .bin_name(S::NAME)
        .about(about)
        .try_get_matches();
    let cli = match matches.and_then(|m| Cli::<S::Command>::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let _ = err.print();
            return config_error();
        }
    };
    let config = match Config::<S>::from_layers(&Config::<S>::layers(cli.config.as_deref())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: {err}", S::NAME);
            return config_error();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{}: cannot start the async runtime: {err}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _telemetry = match telemetry::init(S::NAME, &config.mesh.telemetry) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("{}: {err}", S::NAME);
                return config_error();
            }
        };
        match cli.command {
            None | Some(KitCommand::Serve) => serve::<S>(config).await,
            Some(KitCommand::DeadLetters { action }) => {
                dead_letter_command(S::NAME, &config.mesh.nats.url, action).await
            }
            Some(KitCommand::Service(command)) => {
                match S::command(command, CommandContext { config }).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("{}: {}", S::NAME, chain(err.as_ref()));
                        ExitCode::FAILURE
                    }
                }
            }
        }
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

async fn dead_letter_command(
    service: &str,
    nats_url: &str,
    action: Option<DeadLetterAction>,
) -> ExitCode {
    let client = match async_nats::connect(nats_url).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("{service}: cannot connect to NATS at {nats_url}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let js = jetstream::new(client);
    match action.unwrap_or(DeadLetterAction::List) {
        DeadLetterAction::List => match dead_letters::list(&js, 1000).await {
            Ok(letters) => {
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
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{service}: cannot list dead letters: {err}");
                ExitCode::FAILURE
            }
        },
        DeadLetterAction::Replay { sequence } => match dead_letters::replay(&js, sequence).await {
            Ok(subject) => {
                println!("dead letter {sequence} replayed on {subject}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{service}: cannot replay dead letter {sequence}: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
