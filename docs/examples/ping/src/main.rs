fn main() -> std::process::ExitCode {
    taskmesh_service::main::<taskmesh_example_ping::Ping>()
}
