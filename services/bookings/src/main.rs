//! `bookings [--config FILE] [COMMAND]`: the service kit runs it (see `taskmesh_service::cli`).

fn main() -> std::process::ExitCode {
    taskmesh_service::main::<taskmesh_bookings::Bookings>()
}
