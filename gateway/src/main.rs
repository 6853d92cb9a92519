//! `gateway`: REST/JSON, grpc-web and native gRPC in front of every taskmesh service.
//!
//! Usage: `gateway [--config FILE]`; settings also come from `TASKMESH_*` variables.

use std::path::PathBuf;
use std::process::exit;

use taskmesh_gateway::{Gateway, GatewayConfig};
use taskmesh_mesh::{EXIT_CONFIG, shutdown, telemetry};

#[tokio::main]
async fn main() {
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => file = args.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!("usage: gateway [--config FILE]");
                return;
            }
            other => {
                eprintln!("gateway: unknown argument `{other}`; usage: gateway [--config FILE]");
                exit(EXIT_CONFIG);
            }
        }
    }
    let config = match GatewayConfig::from_figment(&GatewayConfig::figment(file.as_deref())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("gateway: {err}");
            exit(EXIT_CONFIG);
        }
    };
    let _telemetry = match telemetry::init("gateway", &config.telemetry) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("gateway: {err}");
            exit(EXIT_CONFIG);
        }
    };
    let gateway = match Gateway::build(config, &[]).await {
        Ok(gateway) => gateway,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            eprintln!("gateway: startup failed: {err}");
            exit(1);
        }
    };
    if let Err(err) = gateway.run(shutdown::signal()).await {
        eprintln!("gateway: {err}");
        exit(1);
    }
}
