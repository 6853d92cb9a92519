//! `identity`: loads its configuration, reads its secrets from Vault, serves until SIGTERM/SIGINT.
//!
//! Usage: `identity [--config FILE]`. Every setting can also come from `TASKMESH_*` variables.

use std::path::PathBuf;
use std::process::exit;

use taskmesh_identity::{App, Config};
use taskmesh_mesh::{EXIT_CONFIG, shutdown, telemetry};

#[tokio::main]
async fn main() {
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => file = args.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!("usage: identity [--config FILE]");
                return;
            }
            other => {
                eprintln!("identity: unknown argument `{other}`; usage: identity [--config FILE]");
                exit(EXIT_CONFIG);
            }
        }
    }
    let config = match Config::from_layers(&Config::layers(file.as_deref())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("identity: {err}");
            exit(EXIT_CONFIG);
        }
    };
    let _telemetry = match telemetry::init("identity", &config.mesh.telemetry) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("identity: {err}");
            exit(EXIT_CONFIG);
        }
    };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            eprintln!("identity: startup failed: {err}");
            exit(1);
        }
    };
    if let Err(err) = app.run(shutdown::signal()).await {
        tracing::error!(error = %err, "server failed");
        eprintln!("identity: {err}");
        exit(1);
    }
}
