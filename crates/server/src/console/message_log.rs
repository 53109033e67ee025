//! The message log (hq_admin): messages sent to members outside campaigns,
//! newest first. With no SMS gateway configured (the demo) the sign-in codes
//! are only here; with one, the log says a code was sent but not which.
//! Reading the log is audited.

use super::frame::{render, when, Chrome, Staff};
use crate::app::member_login::{self, LoggedMessage};
use crate::http::ApiState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/console/messages", get(list))
}

#[derive(Template)]
#[template(path = "message_log/list.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<LoggedMessage>,
}

async fn list(State(state): State<ApiState>, staff: Staff) -> Response {
    match member_login::message_log(&state.regulars, staff.principal(), 200).await {
        Ok(rows) => render(
            StatusCode::OK,
            ListPage {
                c: staff.chrome(),
                rows: rows
                    .into_iter()
                    .map(|r| LoggedMessage {
                        at: when(&r.at),
                        ..r
                    })
                    .collect(),
            },
        ),
        Err(e) => staff.fail(e),
    }
}
