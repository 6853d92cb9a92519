//! Floors measured in the same run, at the same concurrency, on the same machine: what the
//! platform's calls cannot beat. A bare tonic unary call (the health check of an in-process
//! server), a primary-key `SELECT` and a single-row `INSERT ... COMMIT` through sqlx on the stack's
//! PostgreSQL, and a JetStream publish with its acknowledgement on the stack's NATS.

use std::sync::Arc;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use taskmesh_testing::Stack;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::engine::{self, Load, Measured};

/// Rows of the table the `SELECT` floor reads.
const ROWS: i64 = 10_000;
/// The floors' own database on the stack's PostgreSQL.
const DATABASE: &str = "taskmesh_load_floors";

/// A bare tonic unary call: an in-process health server on a free port.
pub async fn echo(load: Load) -> anyhow::Result<Measured> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream_of(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let client = HealthClient::new(channel);
    Ok(engine::run(load, move |_| {
        let mut client = client.clone();
        async move {
            client
                .check(HealthCheckRequest::default())
                .await
                .map(drop)
                .map_err(|s| s.to_string())
        }
    })
    .await)
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(socket, _)| {
            let _ = socket.set_nodelay(true);
            socket
        });
        Some((accepted, listener))
    })
}

/// A pool on the floors' database (created with its tables on first use), one connection per
/// call in flight.
async fn pool(stack: &Stack, connections: usize) -> anyhow::Result<sqlx::PgPool> {
    let mut admin = stack.admin().await;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::raw_sql(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await?;
    }
    let url = format!(
        "postgres://taskmesh_admin:{}@127.0.0.1:{}/{DATABASE}",
        stack.pg_admin_password, stack.pg_port
    );
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(connections).unwrap_or(64))
        .min_connections(u32::try_from(connections).unwrap_or(64))
        .connect(&url)
        .await
        .context("connecting to the floors' database")?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS reads (id BIGINT PRIMARY KEY, payload TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS writes (id UUID PRIMARY KEY, payload TEXT NOT NULL);
         INSERT INTO reads SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g
         ON CONFLICT DO NOTHING;
         TRUNCATE writes;"
    ))
    .execute(&pool)
    .await?;
    Ok(pool)
}

/// A pool of one connection on the floors' database, with the `outbox` table of the scheduler's
/// fire-lag floor.
pub async fn outbox_pool(stack: &Stack) -> anyhow::Result<sqlx::PgPool> {
    let pool = pool(stack, 1).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS outbox (id UUID PRIMARY KEY, payload TEXT NOT NULL);
         TRUNCATE outbox;",
    )
    .execute(&pool)
    .await?;
    Ok(pool)
}

/// A primary-key `SELECT` of one row.
pub async fn select(stack: &Stack, load: Load) -> anyhow::Result<Measured> {
    let pool = Arc::new(pool(stack, load.concurrency).await?);
    Ok(engine::run(load, move |n| {
        let pool = Arc::clone(&pool);
        async move {
            let id = i64::try_from(n).unwrap_or(0) % ROWS + 1;
            sqlx::query_scalar::<_, String>("SELECT payload FROM reads WHERE id = $1")
                .bind(id)
                .fetch_one(&*pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await)
}

/// A single-row `INSERT` committed on its own.
pub async fn insert(stack: &Stack, load: Load) -> anyhow::Result<Measured> {
    let pool = Arc::new(pool(stack, load.concurrency).await?);
    Ok(engine::run(load, move |n| {
        let pool = Arc::clone(&pool);
        async move {
            sqlx::query("INSERT INTO writes (id, payload) VALUES ($1, $2)")
                .bind(uuid::Uuid::now_v7())
                .bind(format!("row {n}"))
                .execute(&*pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await)
}

/// A JetStream publish and its acknowledgement, on a stream of its own.
pub async fn publish(stack: &Stack, load: Load) -> anyhow::Result<Measured> {
    let client = taskmesh_events::nats::connect_once(&stack.nats_url, "load", None)
        .await
        .context("connecting to NATS as the operator")?;
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream("LOAD_FLOOR").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "LOAD_FLOOR".to_owned(),
        subjects: vec!["taskmesh.loadfloor.>".to_owned()],
        storage: async_nats::jetstream::stream::StorageType::File,
        max_messages: 100_000,
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 300]);
    let measured = engine::run(load, {
        let js = js.clone();
        move |_| {
            let (js, payload) = (js.clone(), payload.clone());
            async move {
                js.publish("taskmesh.loadfloor.event", payload)
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    })
    .await;
    let _ = js.delete_stream("LOAD_FLOOR").await;
    Ok(measured)
}
