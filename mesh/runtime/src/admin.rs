//! The admin HTTP port: `/healthz` (the process is alive), `/readyz` (every dependency answers and
//! the service is not draining) and `/metrics` (Prometheus text).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;

use crate::metrics::Metrics;

type Check = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// The dependency checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("draining", &self.draining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Readiness {
    /// Adds a named check, run on every `/readyz`.
    pub fn add<F>(&self, name: &str, check: F)
    where
        F: Fn() -> BoxFuture<'static, bool> + Send + Sync + 'static,
    {
        if let Ok(mut checks) = self.checks.lock() {
            checks.push((name.to_owned(), Arc::new(check)));
        }
    }

    /// Ready only while `SELECT 1` answers on the pool.
    pub fn add_database(&self, pool: &sqlx::PgPool) {
        let pool = pool.clone();
        self.add("database", move || {
            let pool = pool.clone();
            Box::pin(async move { sqlx::query("SELECT 1").execute(&pool).await.is_ok() })
        });
    }

    /// Ready only while Vault answers and is unsealed.
    pub fn add_vault(&self, vault: &Arc<crate::vault::VaultSession>) {
        let vault = Arc::clone(vault);
        self.add("vault", move || {
            let vault = Arc::clone(&vault);
            Box::pin(async move { vault.is_available().await })
        });
    }

    /// From now on the service reports not ready (shutdown has begun).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Runs every check; the service is ready when all pass and it is not draining.
    pub async fn report(&self) -> (bool, Vec<(String, bool)>) {
        let checks: Vec<(String, Check)> = match self.checks.lock() {
            Ok(checks) => checks.clone(),
            Err(_) => Vec::new(),
        };
        let mut results = Vec::with_capacity(checks.len());
        for (name, check) in checks {
            let ok = tokio::time::timeout(CHECK_TIMEOUT, check())
                .await
                .unwrap_or(false);
            results.push((name, ok));
        }
        let draining = self.draining.load(Ordering::SeqCst);
        results.push(("serving".to_owned(), !draining));
        let ready = results.iter().all(|(_, ok)| *ok);
        (ready, results)
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: Metrics,
}

/// The admin router.
pub fn router(readiness: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let (ready, results) = state.readiness.report().await;
    let body: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, ok)| (name, serde_json::Value::Bool(ok)))
        .collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(serde_json::json!({ "ready": ready, "checks": body })),
    )
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
