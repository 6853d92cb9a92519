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

use std::time::Instant;

use taskmesh_contracts::notes_v1::SearchNotesRequest;
use taskmesh_contracts::notes_v1::note_service_client::NoteServiceClient;
use taskmesh_notes::store::Store;
use taskmesh_testing::bench::{Round, medians, print_kinds, print_modes, round, setting};
use taskmesh_testing::{DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel};

const QUERIES: &[(&str, &str)] = &[
    ("kalo", ""),
    ("tosvudar", ""),
    ("\"kalo mire\"", ""),
    ("kalo or rentos", ""),
    ("mire -kalo", ""),
    ("rentos", "pinned = true"),
];

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

#[tokio::main]
async fn main() {
    let notes = setting("BENCH_NOTES", 100_000);
    let searches = setting("BENCH_SEARCHES", 600);
    let rounds = setting("BENCH_ROUNDS", 3);
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
            round(searches, QUERIES.len(), |i| {
                let (query, filter) = QUERIES[i];
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
            round(searches, QUERIES.len(), |i| {
                let (query, filter) = QUERIES[i];
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
            round(searches, QUERIES.len(), |i| {
                let query = QUERIES[i].0;
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
    let rows = medians(&mut results);
    println!("\n{searches} searches per round, {rounds} rounds, {notes} notes\n");
    print_modes(&modes, &rows, 2, searches, "results per search", 1);
    println!("\nmedian per query, ms (the same rounds)\n");
    let labels: Vec<String> = QUERIES
        .iter()
        .map(|(query, filter)| format!("`{query}` | `{filter}`"))
        .collect();
    print_kinds("query | filter", &labels, &modes, &rows);
    drop(app);
}
