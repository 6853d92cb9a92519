//! `tasks`: loads its configuration, reads its secrets from Vault, serves until SIGTERM/SIGINT.
//!
//! Usage: `tasks [--config FILE] [rebuild-read-model | dead-letters [list | replay SEQ]]`.
//! `rebuild-read-model` empties the read model, replays every stored event into it and exits.
//! `dead-letters` lists the messages consumers gave up on, or replays one onto its subject.

use std::path::PathBuf;
use std::process::exit;

use taskmesh_mesh::{EXIT_CONFIG, shutdown, telemetry};
use taskmesh_tasks::{App, Config};

const USAGE: &str =
    "usage: tasks [--config FILE] [rebuild-read-model | dead-letters [list | replay SEQ]]";

#[tokio::main]
async fn main() {
    let mut file = None;
    let mut rebuild = false;
    let mut dead_letters: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => file = args.next().map(PathBuf::from),
            "rebuild-read-model" => rebuild = true,
            "dead-letters" => {
                dead_letters = Some(args.by_ref().collect());
                break;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("tasks: unknown argument `{other}`; {USAGE}");
                exit(EXIT_CONFIG);
            }
        }
    }
    let config = match Config::from_layers(&Config::layers(file.as_deref())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tasks: {err}");
            exit(EXIT_CONFIG);
        }
    };
    let _telemetry = match telemetry::init("tasks", &config.mesh.telemetry) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("tasks: {err}");
            exit(EXIT_CONFIG);
        }
    };
    if let Some(command) = dead_letters {
        let code = taskmesh_tasks::admin::dead_letters(&config.mesh.nats.url, &command).await;
        exit(code);
    }
    if rebuild {
        match taskmesh_tasks::app::rebuild(&config).await {
            Ok((events, tasks)) => {
                println!("read model rebuilt: {events} events replayed, {tasks} tasks");
                return;
            }
            Err(err) => {
                eprintln!("tasks: {err}");
                exit(1);
            }
        }
    }
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            eprintln!("tasks: startup failed: {err}");
            exit(1);
        }
    };
    if let Err(err) = app.run(shutdown::signal()).await {
        tracing::error!(error = %err, "server failed");
        eprintln!("tasks: {err}");
        exit(1);
    }
}
