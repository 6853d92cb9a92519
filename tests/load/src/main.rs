//! `taskmesh-load`: drives the platform `make up` runs (best `make up RELEASE=1 BENCH=1`) and
//! reports each call's throughput and latency next to floors measured in the same run.
//!
//! ```sh
//! cargo run --release -p taskmesh-load -- --concurrency 32 --duration 10
//! cargo run --release -p taskmesh-load -- --scenario create-task --transport direct --concurrency 16
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use taskmesh_testing::Stack;

use taskmesh_load::engine::{self, Load, Measured};
use taskmesh_load::floors;
use taskmesh_load::lag::{self, Watched};
use taskmesh_load::platform::{Call, Endpoints, Platform, Scenario, Transport};
use taskmesh_load::rss;

#[derive(Debug, Parser)]
#[command(
    name = "taskmesh-load",
    about = "Load for the platform `make up` runs, against floors measured in the same run"
)]
struct Args {
    /// Scenarios to run (all when none is given, none when only --lag is).
    #[arg(long, value_enum)]
    scenario: Vec<Scenario>,
    /// Ways in (all when none is given).
    #[arg(long, value_enum)]
    transport: Vec<Transport>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each scenario is measured (unless --requests).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Measured calls per scenario instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of unmeasured calls before each measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Tasks seeded on the board before the run.
    #[arg(long, default_value_t = 200)]
    seed: usize,
    /// Skip the floors.
    #[arg(long)]
    no_floors: bool,
    /// Also measure event lag: creates at --lag-rate per second for --duration seconds, and the
    /// age of their events when the tasks read model and the execution intake handled them.
    #[arg(long)]
    lag: bool,
    /// Creates per second of the event-lag run.
    #[arg(long, default_value_t = 1000.0)]
    lag_rate: f64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The projects service's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    projects: String,
    /// The tasks service's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    tasks: String,
    /// The gateway's native gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    gateway_grpc: String,
    /// The gateway's REST and grpc-web base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway_http: String,
    /// Also measure the scheduler's fire lag: --schedules active schedules, --fires-per-minute of
    /// them firing, observed for --fire-lag-secs, next to an outbox floor at the same rate.
    #[arg(long)]
    fire_lag: bool,
    /// Active schedules of the fire-lag run.
    #[arg(long, default_value_t = 10_000)]
    schedules: usize,
    /// Firings per minute of the fire-lag run.
    #[arg(long, default_value_t = 1000)]
    fires_per_minute: usize,
    /// Seconds the fire-lag run observes firings.
    #[arg(long, default_value_t = 120.0)]
    fire_lag_secs: f64,
    /// Also measure the notifications service's delivery lag: tasks assigned at --notify-rate per
    /// second for --notify-secs seconds, each timed to its notification on the assignee's stream,
    /// next to a JetStream publish-to-delivery floor at the same rate.
    #[arg(long)]
    notify_lag: bool,
    /// Assignments per second of the notify-lag run.
    #[arg(long, default_value_t = 200.0)]
    notify_rate: f64,
    /// Seconds the notify-lag run makes assignments.
    #[arg(long, default_value_t = 20.0)]
    notify_secs: f64,
    /// In the notify-lag run, also email each notification (to the local mail server, on the same
    /// cores); by default the listener turns assignment emails off.
    #[arg(long)]
    notify_email: bool,
    /// The notifications service's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50056")]
    notifications: String,
    /// The scheduler's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50055")]
    scheduler: String,
    /// The tasks service's admin (metrics) base URL.
    #[arg(long, default_value = "http://127.0.0.1:51053")]
    tasks_admin: String,
    /// The execution service's admin (metrics) base URL.
    #[arg(long, default_value = "http://127.0.0.1:51054")]
    execution_admin: String,
    /// Before each measurement, wait until the consumers behind task writes handled nothing new
    /// for this many seconds (0: do not wait).
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
}

/// One row of the report.
#[derive(Debug, Serialize)]
struct Row {
    scenario: String,
    transport: String,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    throughput: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Throughput over the floor's (SELECT for reads, INSERT for writes).
    floor_ratio: Option<f64>,
    /// Throughput over the bare tonic call's.
    echo_ratio: Option<f64>,
}

impl Row {
    fn new(scenario: &str, transport: &str, measured: &Measured) -> Self {
        Self {
            scenario: scenario.to_owned(),
            transport: transport.to_owned(),
            ok: measured.ok,
            errors: measured.errors,
            first_error: measured.first_error.clone(),
            seconds: measured.elapsed.as_secs_f64(),
            throughput: measured.throughput(),
            p50_ms: measured.quantile_ms(0.5),
            p90_ms: measured.quantile_ms(0.9),
            p99_ms: measured.quantile_ms(0.99),
            max_ms: measured.max_ms(),
            floor_ratio: None,
            echo_ratio: None,
        }
    }
}

fn name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn print_table(rows: &[Row]) {
    println!(
        "| {:<12} | {:<9} | {:>7} | {:>6} | {:>9} | {:>7} | {:>7} | {:>7} | {:>8} | {:>8} | {:>7} |",
        "scenario",
        "transport",
        "calls",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "vs floor",
        "vs echo"
    );
    println!("|{}|", ["---"; 11].join("|"));
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    for row in rows {
        println!(
            "| {:<12} | {:<9} | {:>7} | {:>6} | {:>9.0} | {:>7.3} | {:>7.3} | {:>7.3} | {:>8.3} | {:>8} | {:>7} |",
            row.scenario,
            row.transport,
            row.ok,
            row.errors,
            row.throughput,
            row.p50_ms,
            row.p90_ms,
            row.p99_ms,
            row.max_ms,
            ratio(row.floor_ratio),
            ratio(row.echo_ratio),
        );
    }
    for row in rows.iter().filter(|r| r.errors > 0) {
        eprintln!(
            "{} over {}: {} errors, the first: {}",
            row.scenario,
            row.transport,
            row.errors,
            row.first_error.as_deref().unwrap_or("?")
        );
    }
}

/// The event lag of one consumer in a run.
#[derive(Debug, Serialize)]
struct Lag {
    consumer: String,
    events: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// The consumers behind every task write: the tasks read model and the execution intake.
fn watched(args: &Args) -> [Watched; 2] {
    [
        Watched {
            metrics: format!("{}/metrics", args.tasks_admin),
            consumer: "tasks-read-model".to_owned(),
        },
        Watched {
            metrics: format!("{}/metrics", args.execution_admin),
            consumer: "execution-jobs".to_owned(),
        },
    ]
}

/// Waits until the events of earlier writes are handled, so that a measurement does not pay for
/// the work of the one before it (seeding a board of 100 000 tasks leaves minutes of it).
async fn settle(args: &Args) {
    if args.settle <= 0.0 {
        return;
    }
    let quiet = Duration::from_secs_f64(args.settle);
    match lag::settle(&reqwest::Client::new(), &watched(args), quiet, SETTLE_LIMIT).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("the consumers did not settle within {SETTLE_LIMIT:?}; measuring anyway")
        }
        Err(err) => eprintln!("cannot tell whether the consumers settled: {err:#}"),
    }
}

/// Longest wait for the consumers to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(600);

async fn event_lag(platform: &Platform, args: &Args, load: Load) -> anyhow::Result<Vec<Lag>> {
    let watched = watched(args);
    let http = reqwest::Client::new();
    let mut before = Vec::new();
    for w in &watched {
        before.push(lag::read(&http, w).await?);
    }
    eprintln!(
        "event lag: creates at {}/s for {:?}",
        args.lag_rate, load.duration
    );
    let writer = platform.clone();
    let measured = engine::run_at_rate(args.lag_rate, load.duration, 256, move |n| {
        let platform = writer.clone();
        async move { platform.call(Transport::Direct, &Call::CreateTask, n).await }
    })
    .await;
    // The last events are handled within moments.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "\nevent lag: {} creates in {:.1} s ({:.0}/s achieved of {}/s asked, {} errors; create p50 {:.3} ms, p99 {:.3} ms)",
        measured.ok,
        measured.elapsed.as_secs_f64(),
        measured.throughput(),
        args.lag_rate,
        measured.errors,
        measured.quantile_ms(0.5),
        measured.quantile_ms(0.99),
    );
    println!("| consumer | events | p50 ms (at most) | p99 ms (at most) |\n|---|---|---|---|");
    let mut lags = Vec::new();
    for (w, before) in watched.iter().zip(&before) {
        let after = lag::read(&http, w).await?;
        let row = Lag {
            consumer: w.consumer.clone(),
            events: lag::handled(before, &after),
            p50_ms: lag::quantile_ms(before, &after, 0.5),
            p99_ms: lag::quantile_ms(before, &after, 0.99),
        };
        let shown = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}"));
        println!(
            "| {} | {} | {} | {} |",
            row.consumer,
            row.events,
            shown(row.p50_ms),
            shown(row.p99_ms)
        );
        lags.push(row);
    }
    Ok(lags)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load = Load {
        concurrency: args.concurrency.max(1),
        requests: args.requests,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
    };
    // `--lag`, `--fire-lag` or `--notify-lag` alone measures only that.
    let scenarios = if args.scenario.is_empty() && (args.lag || args.fire_lag || args.notify_lag) {
        Vec::new()
    } else if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let transports = if args.transport.is_empty() {
        Transport::ALL.to_vec()
    } else {
        args.transport.clone()
    };

    let mut rows = Vec::new();
    let (mut echo, mut select, mut insert) = (None, None, None);
    if !args.no_floors {
        let stack = Stack::load();
        eprintln!("floors at {} calls in flight", load.concurrency);
        let measured = floors::echo(load).await?;
        echo = Some(measured.throughput());
        rows.push(Row::new("floor", "tonic-echo", &measured));
        let measured = floors::select(&stack, load).await?;
        select = Some(measured.throughput());
        rows.push(Row::new("floor", "pg-select", &measured));
        let measured = floors::insert(&stack, load).await?;
        insert = Some(measured.throughput());
        rows.push(Row::new("floor", "pg-insert", &measured));
        let measured = floors::publish(&stack, load).await?;
        rows.push(Row::new("floor", "js-publish", &measured));
    }

    let pids = rss::pids(&taskmesh_testing::stack_home().join("run"));
    let idle = rss::now(&pids);
    let sampler = rss::Sampler::start(pids);
    eprintln!("preparing a user, a project and {} tasks", args.seed.max(1));
    let endpoints = Endpoints {
        projects: args.projects.clone(),
        tasks: args.tasks.clone(),
        gateway_grpc: args.gateway_grpc.clone(),
        gateway_http: args.gateway_http.clone(),
    };
    let platform = Platform::prepare(&endpoints, args.seed.max(1)).await?;
    for scenario in &scenarios {
        for transport in &transports {
            let (scenario, transport) = (*scenario, *transport);
            settle(&args).await;
            eprintln!("{} over {}", name(scenario), name(transport));
            let platform = platform.clone();
            let measured = engine::run(load, move |n| {
                let platform = platform.clone();
                async move { platform.call(transport, &scenario.call(n), n).await }
            })
            .await;
            let mut row = Row::new(&name(scenario), &name(transport), &measured);
            let floor = if scenario.writes() { insert } else { select };
            row.floor_ratio = floor.map(|f| row.throughput / f);
            row.echo_ratio = echo.map(|e| row.throughput / e);
            rows.push(row);
        }
    }
    if !rows.is_empty() {
        print_table(&rows);
    }
    let lags = if args.lag {
        settle(&args).await;
        event_lag(&platform, &args, load).await?
    } else {
        Vec::new()
    };
    let fire_lag = if args.fire_lag {
        let options = taskmesh_load::fire_lag::Options {
            schedules: args.schedules.max(1),
            per_minute: args.fires_per_minute.max(1),
            duration: Duration::from_secs_f64(args.fire_lag_secs),
        };
        let measured =
            taskmesh_load::fire_lag::measure(&platform, &args.scheduler, &Stack::load(), options)
                .await?;
        println!(
            "\nfire lag: {} active schedules, {} firing per minute\n\
             | what | samples | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|",
            measured.schedules, measured.per_minute
        );
        for (what, q) in [
            ("occurrence -> ScheduleTriggered delivered", &measured.lag),
            (
                "floor: INSERT+COMMIT, publish+ack, delivered",
                &measured.floor,
            ),
        ] {
            println!(
                "| {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                q.count, q.p50_ms, q.p90_ms, q.p99_ms, q.max_ms
            );
        }
        if measured.floor.p50_ms > 0.0 {
            println!(
                "fire lag vs floor: p50 {:.1}x, p99 {:.1}x",
                measured.lag.p50_ms / measured.floor.p50_ms,
                measured.lag.p99_ms / measured.floor.p99_ms.max(f64::MIN_POSITIVE)
            );
        }
        Some(measured)
    } else {
        None
    };
    let notify_lag = if args.notify_lag {
        let options = taskmesh_load::notify_lag::Options {
            rate: args.notify_rate.max(1.0),
            duration: Duration::from_secs_f64(args.notify_secs),
            email: args.notify_email,
        };
        let measured = taskmesh_load::notify_lag::measure(
            &platform,
            &args.notifications,
            &args.gateway_http,
            &Stack::load(),
            options,
        )
        .await?;
        println!(
            "\nnotify lag: {:.0} assignments per second, {} made, {} notifications streamed ({})\n\
             | what | samples | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|",
            measured.rate,
            measured.sent,
            measured.received,
            if measured.email {
                "each also emailed"
            } else {
                "email off"
            }
        );
        for (what, q) in [
            (
                "CreateTask sent -> notification on the stream",
                &measured.lag,
            ),
            ("floor: JetStream publish+ack -> delivered", &measured.floor),
        ] {
            println!(
                "| {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                q.count, q.p50_ms, q.p90_ms, q.p99_ms, q.max_ms
            );
        }
        if measured.floor.p50_ms > 0.0 {
            println!(
                "notify lag vs floor: p50 {:.1}x, p99 {:.1}x",
                measured.lag.p50_ms / measured.floor.p50_ms,
                measured.lag.p99_ms / measured.floor.p99_ms.max(f64::MIN_POSITIVE)
            );
        }
        Some(measured)
    } else {
        None
    };
    let peaks = sampler.peaks();
    let memory: Vec<serde_json::Value> = rss::PROCESSES
        .iter()
        .filter_map(|name| {
            let (idle, peak) = (idle.get(*name)?, peaks.get(*name)?);
            Some(serde_json::json!({"process": name, "idle_mib": *idle as f64 / 1024.0, "peak_mib": *peak as f64 / 1024.0}))
        })
        .collect();
    if !memory.is_empty() {
        println!("\n| process | idle RSS MiB | peak RSS under load MiB |\n|---|---|---|");
        for row in &memory {
            println!(
                "| {} | {:.1} | {:.1} |",
                row["process"].as_str().unwrap_or_default(),
                row["idle_mib"].as_f64().unwrap_or_default(),
                row["peak_mib"].as_f64().unwrap_or_default()
            );
        }
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({"calls": rows, "event_lag": lags, "fire_lag": fire_lag, "notify_lag": notify_lag, "memory": memory});
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("taskmesh-load: {err:#}");
            ExitCode::FAILURE
        }
    }
}
