//! The staff console (placeholder until the console module lands).
use crate::http::ApiState;
use axum::Router;

pub fn router() -> Router<ApiState> {
    Router::new()
}
