//! Liveness and readiness.

use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;

/// Liveness: a tiny answer that touches no database (the HTTP no-op the
/// benchmarks compare against).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, &'static str) {
    match state.regulars.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
