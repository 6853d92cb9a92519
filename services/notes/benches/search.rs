//! Search benchmark (not a test): `SearchNotes` over 100 000 notes, next to the SQL under it.
//!
//! Needs the local stack (`make infra`) and a release identity binary beside the bench
//! (`cargo build --release --bin identity`); then
//! `cargo bench -p taskmesh-notes --bench search`.
//!
//! One process fills a fresh database with `BENCH_NOTES` notes (default 100 000: 900 users with
//! personal notes, 10 projects with the rest; bodies of 60 words drawn from 2 197 made-up words,
//! frequent ones far more often, as in text), then asks the same mix of searches (a frequent word,
//! a rare one, a phrase, `or`, an exclusion, a word with a filter) three ways, in interleaved
//! rounds, as a user who owns 100 notes, has 50 shared with them and belongs to two projects:
//!
//! - **SearchNotes**: the service's RPC over gRPC (the app in this process, token checked);
//! - **service SQL**: the store's query alone (visibility, rank, snippets), over sqlx;
//! - **bare SQL**: the full-text match and rank alone over every note, no visibility, no snippet.
//!
//! Each row is the mode's median round (p50/p99 over `BENCH_SEARCHES` searches, default 600).

use std::time::{Duration, Instant};

use taskmesh_contracts::notes_v1::SearchNotesRequest;
use taskmesh_contracts::notes_v1::note_service_client::NoteServiceClient;
use taskmesh_notes::store::Store;
use taskmesh_testing::{DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel};

const QUERIES: &[(&str, &str)] = &[
    ("kalo", ""),
    ("tosvudar", ""),
    ("\"kalo mire\"", ""),
    ("kalo or rentos", ""),
    ("mire -kalo", ""),
    ("rentos", "pinned = true"),
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills the database: notes, shares with `u0`, and `u0`'s project memberships.
async fn fill(pool: &sqlx::PgPool, notes: usize) {
    let project_notes = notes / 10;
    let personal = notes - project_notes;
    // Words of one to three syllables; `power(random(), 3)` makes low indexes (short, frequent
    // words) far more common, roughly as in text.
    let words = "ARRAY(SELECT a || b || c FROM unnest(ARRAY['','ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren']) a, \
                 unnest(ARRAY['ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren','']) b, \
                 unnest(ARRAY['','ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren']) c ORDER BY length(a || b || c), 1)";
    // `g * 0` ties the subquery to its row, so it is drawn again for each note rather than once
    // for all; `i * 0` keeps the aggregate in the subquery (its other inputs are outer columns).
    let text = |count: usize| {
        format!(
            "(SELECT string_agg(w[1 + i * 0 + floor(power(random(), 3) * (array_length(w, 1) - 1))::int], ' ') \
             FROM generate_series(1, {count} + g * 0) i)"
        )
    };
    sqlx::query(&format!(
        "WITH words AS (SELECT {words} AS w) \
         INSERT INTO notes (note_id, parent, project_id, title, body, pinned, creator) \
         SELECT 'n' || g, 'users/u' || (g % 900), '', {title}, {body}, g % 7 = 0, 'users/u' || (g % 900) \
         FROM words, generate_series(0, {last}) g",
        title = text(5),
        body = text(60),
        last = personal - 1,
    ))
    .execute(pool)
    .await
    .expect("personal notes");
    sqlx::query(&format!(
        "WITH words AS (SELECT {words} AS w) \
         INSERT INTO notes (note_id, parent, project_id, title, body, pinned, creator) \
         SELECT 'p' || g, 'projects/p' || (g % 10), 'p' || (g % 10), {title}, {body}, g % 7 = 0, 'users/u' || (g % 900) \
         FROM words, generate_series(0, {last}) g",
        title = text(5),
        body = text(60),
        last = project_notes - 1,
    ))
    .execute(pool)
    .await
    .expect("project notes");
    sqlx::query(
        "INSERT INTO note_shares (note_id, user_id, role) \
         SELECT 'n' || (g * 17 + 1), 'u0', 1 FROM generate_series(0, 49) g",
    )
    .execute(pool)
    .await
    .expect("shares");
    sqlx::query(
        "INSERT INTO members (project_id, user_id, role) VALUES ('p0', 'u0', 2), ('p1', 'u0', 1)",
    )
    .execute(pool)
    .await
    .expect("members");
    sqlx::query("ANALYZE notes")
        .execute(pool)
        .await
        .expect("analyze");
}

struct Round {
    p50: Duration,
    p99: Duration,
    found: usize,
    /// The median of each query of [`QUERIES`].
    per_query: Vec<Duration>,
}

async fn round<F, Fut>(searches: usize, mut search: F) -> Round
where
    F: FnMut(&'static str, &'static str) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::with_capacity(searches);
    let mut by_query: Vec<Vec<Duration>> = QUERIES.iter().map(|_| Vec::new()).collect();
    let mut found = 0;
    for i in 0..searches {
        let (query, filter) = QUERIES[i % QUERIES.len()];
        let started = Instant::now();
        found += search(query, filter).await;
        let took = started.elapsed();
        times.push(took);
        by_query[i % QUERIES.len()].push(took);
    }
    times.sort();
    let per_query = by_query
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    Round {
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        found,
        per_query,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let notes = env("BENCH_NOTES", 100_000);
    let searches = env("BENCH_SEARCHES", 600);
    let rounds = env("BENCH_ROUNDS", 3);
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let db = TestDatabase::create(&stack, "notes_bench").await;
    let layers = taskmesh_testing::with_identity(db.app_layers(
        taskmesh_notes::Config::default_layers(),
        &stack,
        &nats.url(),
    ));
    let app = taskmesh_notes::App::build(
        taskmesh_notes::Config::from_layers(&layers).expect("notes config"),
    )
    .await
    .expect("notes app");
    let app = RunningApp::start(app);
    let pool = db.pool(&stack).await;
    let started = Instant::now();
    fill(&pool, notes).await;
    println!(
        "filled {notes} notes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::new(pool.clone());
    let mut client =
        NoteServiceClient::with_interceptor(channel(app.addr).await, DefaultCaller("u0"));

    let modes = [
        "SearchNotes (gRPC)",
        "service SQL (store)",
        "bare SQL (match + rank)",
    ];
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        let client = &mut client;
        results[0].push(
            round(searches, |query, filter| {
                let mut client = client.clone();
                async move {
                    client
                        .search_notes(SearchNotesRequest {
                            query: query.into(),
                            filter: filter.into(),
                            page_size: 20,
                            page_token: String::new(),
                        })
                        .await
                        .expect("search")
                        .into_inner()
                        .results
                        .len()
                }
            })
            .await,
        );
        results[1].push(
            round(searches, |query, filter| {
                let store = store.clone();
                async move {
                    let filter = (!filter.is_empty()).then(|| {
                        taskmesh_mesh::aip::Filter::parse(
                            filter,
                            taskmesh_notes::store::FILTER_FIELDS,
                        )
                        .expect("filter")
                    });
                    store
                        .search("users/u0", query, filter.as_ref(), 20, 0)
                        .await
                        .expect("search")
                        .len()
                }
            })
            .await,
        );
        results[2].push(
            round(searches, |query, _| {
                let pool = pool.clone();
                async move {
                    sqlx::query_scalar::<_, String>(
                        "SELECT n.note_id FROM notes n, websearch_to_tsquery('english', $1) q \
                         WHERE n.search @@ q AND n.delete_time IS NULL \
                         ORDER BY ts_rank(n.search, q) DESC LIMIT 20",
                    )
                    .bind(query)
                    .fetch_all(&pool)
                    .await
                    .expect("bare search")
                    .len()
                }
            })
            .await,
        );
    }
    let median = |rounds: &mut Vec<Round>| {
        rounds.sort_by_key(|r| r.p50);
        rounds.swap_remove(rounds.len() / 2)
    };
    let rows: Vec<Round> = results.iter_mut().map(median).collect();
    let floor = &rows[2];
    println!("\n{searches} searches per round, {rounds} rounds, {notes} notes\n");
    println!("| mode | p50 | p99 | results per search | p50 vs bare SQL | p99 vs bare SQL |");
    println!("|---|---|---|---|---|---|");
    for (mode, row) in modes.iter().zip(&rows) {
        println!(
            "| {mode} | {:.2} ms | {:.2} ms | {:.1} | {:.2}x | {:.2}x |",
            ms(row.p50),
            ms(row.p99),
            row.found as f64 / searches as f64,
            ms(row.p50) / ms(floor.p50),
            ms(row.p99) / ms(floor.p99),
        );
    }
    println!("\nmedian per query, ms (the same rounds)\n");
    println!("| query | filter | {} |", modes.join(" | "));
    println!("|---|---|{}", "---|".repeat(modes.len()));
    for (i, (query, filter)) in QUERIES.iter().enumerate() {
        let cells: Vec<String> = rows
            .iter()
            .map(|row| format!("{:.2}", ms(row.per_query[i])))
            .collect();
        println!("| `{query}` | `{filter}` | {} |", cells.join(" | "));
    }
    drop(app);
}
