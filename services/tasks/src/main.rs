//! `tasks [--config FILE] [serve | rebuild-read-model | dead-letters [list | replay SEQ]]`: the
//! service kit runs it (see `taskmesh_service::cli`).

fn main() -> std::process::ExitCode {
    taskmesh_service::main::<taskmesh_tasks::Tasks>()
}
