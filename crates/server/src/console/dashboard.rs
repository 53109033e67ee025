//! The dashboard: the chain (or the manager's store) at a glance.

use super::frame::{render, Chrome, Staff};
use crate::app::chain;
use crate::http::ApiState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/", get(dashboard))
}

struct StoreLine {
    code: String,
    name: String,
    region: String,
    city: String,
}

#[derive(Template)]
#[template(path = "dashboard/dashboard.html")]
struct DashboardPage {
    c: Chrome,
    store_count: usize,
    member_count: i64,
    stores: Vec<StoreLine>,
}

async fn dashboard(State(state): State<ApiState>, staff: Staff) -> Response {
    let stores = match chain::list_stores(&state.regulars, staff.principal()).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let member_count = match state.regulars.db.reader().await {
        Ok(mut conn) => {
            regulars_store::members::count_members(&mut conn, staff.principal().store_scope())
                .await
                .unwrap_or(0)
        }
        Err(_) => 0,
    };
    render(
        StatusCode::OK,
        DashboardPage {
            c: staff.chrome(),
            store_count: stores.len(),
            member_count,
            stores: stores
                .into_iter()
                .map(|s| StoreLine {
                    code: s.code,
                    name: s.name,
                    region: s.region,
                    city: s.city,
                })
                .collect(),
        },
    )
}
