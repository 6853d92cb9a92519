//! Operator subcommands of the `tasks` binary that need no running service.

use async_nats::jetstream;
use taskmesh_events::dead_letters;

/// `dead-letters list` (default) or `dead-letters replay SEQ`; returns the exit code.
pub async fn dead_letters(nats_url: &str, command: &[String]) -> i32 {
    let client = match async_nats::connect(nats_url).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("tasks: cannot connect to NATS at {nats_url}: {err}");
            return 1;
        }
    };
    let js = jetstream::new(client);
    match command
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["list"] => match dead_letters::list(&js, 1000).await {
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
                0
            }
            Err(err) => {
                eprintln!("tasks: cannot list dead letters: {err}");
                1
            }
        },
        ["replay", sequence] => {
            let Ok(sequence) = sequence.parse::<u64>() else {
                eprintln!("tasks: `{sequence}` is not a dead-letter sequence number");
                return 64;
            };
            match dead_letters::replay(&js, sequence).await {
                Ok(subject) => {
                    println!("dead letter {sequence} replayed on {subject}");
                    0
                }
                Err(err) => {
                    eprintln!("tasks: cannot replay dead letter {sequence}: {err}");
                    1
                }
            }
        }
        other => {
            eprintln!("tasks: unknown dead-letters command {other:?}; use `list` or `replay SEQ`");
            64
        }
    }
}
