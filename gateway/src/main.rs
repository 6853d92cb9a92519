//! `gateway [--config FILE]`: REST/JSON, grpc-web and native gRPC in front of every service.

fn main() -> std::process::ExitCode {
    taskmesh_service::process_main::<taskmesh_gateway::Gateway>()
}
