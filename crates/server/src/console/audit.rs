//! The audit log viewer (hq_admin): who did what to whom, newest first,
//! filtered by actor, action (or its family: `member`) and subject, paged
//! back by id, exportable as CSV.

use super::frame::{csv_download, render, when, Chrome, Staff};
use crate::app::staff_accounts::{self, AuditEntry, AuditFilter};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// Entries on one page of the viewer.
const PAGE: i64 = 100;
/// Entries in one CSV export.
const EXPORT: i64 = 500;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/audit", get(page))
        .route("/console/audit.csv", get(export))
}

#[derive(Default, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    before: String,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            // A page link that does not parse just starts from the newest.
            before: self.before.trim().parse().ok(),
        }
    }

    /// The query string for the next page back.
    fn older_than(&self, id: i64) -> String {
        let mut url = String::from("/console/audit?");
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("subject", &self.subject),
        ] {
            if !v.is_empty() {
                url.push_str(&format!("{k}={}&", urlencode(v)));
            }
        }
        url.push_str(&format!("before={id}"));
        url
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "audit/audit.html")]
struct AuditPage {
    c: Chrome,
    query: AuditQuery,
    entries: Vec<AuditEntry>,
    older: Option<String>,
    export: String,
}

async fn page(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> Response {
    let entries =
        match staff_accounts::audit_log(&state.regulars, staff.principal(), &query.filter(), PAGE)
            .await
        {
            Ok(mut e) => {
                e.iter_mut().for_each(|e| e.at = when(&e.at));
                e
            }
            Err(e) => return staff.fail(e),
        };
    let older = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| query.older_than(e.id)))
        .flatten();
    let export = query
        .older_than(i64::MAX)
        .replacen("/console/audit?", "/console/audit.csv?", 1);
    render(
        StatusCode::OK,
        AuditPage {
            c: staff.chrome(),
            query,
            entries,
            older,
            export,
        },
    )
}

async fn export(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> Response {
    let entries = match staff_accounts::audit_log(
        &state.regulars,
        staff.principal(),
        &query.filter(),
        EXPORT,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => return staff.fail(e),
    };
    let rows = entries
        .into_iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.at,
                e.actor,
                e.action,
                e.subject,
                e.detail,
            ]
        })
        .collect();
    csv_download(
        "audit-log.csv",
        &["id", "at", "actor", "action", "subject", "detail"],
        rows,
    )
}
