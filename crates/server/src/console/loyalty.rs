//! Loyalty setup (to be built).

use crate::http::ApiState;
use axum::Router;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
}
