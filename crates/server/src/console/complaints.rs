//! The complaint queue in the console: the store's complaints, soonest due
//! and overdue first, and one complaint with its reasons, timeline and the
//! form that moves it along. Same application calls as the REST API.

use super::{current_session, error_page, redirect, render};
use crate::app::feedback::{self, FeedbackQuery, Transition, ROOT_CAUSES};
use crate::app::AppError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

/// The statuses a list can show, as the filter links read.
const FILTERS: [(&str, &str); 7] = [
    ("active", "待处理 Active"),
    ("open", "未响应 Open"),
    ("acknowledged", "已响应 Acknowledged"),
    ("in_progress", "处理中 In progress"),
    ("resolved", "待回访 Resolved"),
    ("followed_up", "已回访 Followed up"),
    ("closed", "已关闭 Closed"),
];

pub(super) struct Row {
    id: String,
    due: String,
    overdue: bool,
    escalation: i64,
    store: String,
    category: String,
    severity: String,
    status: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "complaints.html")]
struct ListPage {
    username: String,
    role: String,
    store: Option<String>,
    csrf: String,
    filters: Vec<(&'static str, &'static str)>,
    status: String,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
}

/// Minutes and hours, as a tablet has room for: "11-24 19:58".
fn short_time(rfc3339: Option<&str>) -> String {
    rfc3339
        .and_then(|t| t.get(5..16))
        .map(|t| t.replace('T', " "))
        .unwrap_or_else(|| "—".into())
}

pub(super) async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect("/console/login"),
        Err(e) => return error_page(e),
    };
    let status = query.status.unwrap_or_else(|| "active".into());
    let wanted = (status != "active").then(|| status.clone());
    let found = feedback::list(
        &state.regulars,
        &session.principal,
        FeedbackQuery {
            store: None,
            status: wanted,
            limit: Some(500),
        },
    )
    .await;
    let mut views = match found {
        Ok(v) => v,
        Err(e) => return error_page(e),
    };
    views.retain(|f| f.severity != "none");
    if status == "active" {
        views.retain(|f| f.status != "closed");
    }
    // Overdue first, then soonest due; critical before the rest at a tie.
    views.sort_by(|a, b| {
        (!a.sla_breached, a.due_at.clone(), b.severity == "critical").cmp(&(
            !b.sla_breached,
            b.due_at.clone(),
            a.severity == "critical",
        ))
    });
    let rows = views
        .into_iter()
        .map(|f| Row {
            due: short_time(f.due_at.as_deref()),
            overdue: f.sla_breached && f.acknowledged_at.is_none(),
            escalation: f.escalation_level,
            excerpt: f.text.chars().take(40).collect(),
            id: f.id,
            store: f.store_code,
            category: f.category,
            severity: f.severity,
            status: f.status,
        })
        .collect();
    render(
        StatusCode::OK,
        ListPage {
            username: session.username,
            role: session.principal.role.to_string(),
            store: session.principal.store.clone(),
            csrf: session.csrf_token,
            filters: FILTERS.to_vec(),
            status,
            rows,
        },
    )
}

pub(super) struct Step {
    at: String,
    kind: String,
    detail: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "complaint.html")]
struct DetailPage {
    username: String,
    role: String,
    store: Option<String>,
    store_code: String,
    csrf: String,
    id: String,
    category: String,
    severity: String,
    status: String,
    text: String,
    table: Option<String>,
    channel: String,
    due: String,
    breached: bool,
    reasons: Vec<String>,
    next: Vec<(&'static str, &'static str)>,
    root_causes: Vec<&'static str>,
    timeline: Vec<Step>,
    error: Option<String>,
}

/// Where a complaint may go next, as the form offers it.
fn next_steps(status: &str) -> Vec<(&'static str, &'static str)> {
    let all = [
        ("acknowledged", "已响应 Acknowledge"),
        ("in_progress", "处理中 Start work"),
        ("resolved", "已解决 Resolve"),
        ("followed_up", "已回访 Followed up"),
        ("closed", "关闭 Close"),
    ];
    let allowed: &[&str] = match status {
        "open" => &["acknowledged", "in_progress", "resolved"],
        "acknowledged" => &["in_progress", "resolved"],
        "in_progress" => &["resolved"],
        "resolved" => &["followed_up", "in_progress"],
        "followed_up" => &["closed"],
        _ => &[],
    };
    all.into_iter()
        .filter(|(s, _)| allowed.contains(s))
        .collect()
}

async fn detail_page(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let session = match current_session(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect("/console/login"),
        Err(e) => return error_page(e),
    };
    let f = match feedback::get(&state.regulars, &session.principal, id).await {
        Ok(f) => f,
        Err(e) => return error_page(e),
    };
    render(
        status,
        DetailPage {
            username: session.username,
            role: session.principal.role.to_string(),
            store: session.principal.store.clone(),
            store_code: f.store_code.clone(),
            csrf: session.csrf_token,
            next: next_steps(&f.status),
            root_causes: ROOT_CAUSES.to_vec(),
            due: short_time(f.due_at.as_deref()),
            breached: f.sla_breached,
            timeline: f
                .timeline
                .into_iter()
                .map(|e| Step {
                    at: short_time(Some(&e.at)),
                    kind: e.kind,
                    detail: e.detail,
                    actor: e.actor,
                })
                .collect(),
            id: f.id,
            category: f.category,
            severity: f.severity,
            status: f.status,
            text: f.text,
            table: f.table,
            channel: f.channel,
            reasons: f.reasons,
            error,
        },
    )
}

pub(super) async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    detail_page(&state, &headers, &id, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct TransitionForm {
    csrf: String,
    to: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    root_cause: String,
    #[serde(default)]
    satisfied: String,
}

pub(super) async fn move_along(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TransitionForm>,
) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect("/console/login"),
        Err(e) => return error_page(e),
    };
    if session.csrf_token != form.csrf {
        return (StatusCode::FORBIDDEN, "CSRF token mismatch").into_response();
    }
    let filled = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let result = feedback::transition(
        &state.regulars,
        &session.principal,
        &id,
        Transition {
            to: form.to,
            note: filled(form.note),
            root_cause: filled(form.root_cause),
            satisfied: match form.satisfied.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
        },
    )
    .await;
    match result {
        Ok(_) => redirect(&format!("/console/complaints/{id}")),
        // Say what was wrong on the same page, keeping the complaint in view.
        Err(
            e @ (AppError::Invalid(_) | AppError::Conflict { .. } | AppError::Unprocessable { .. }),
        ) => {
            detail_page(
                &state,
                &headers,
                &id,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => error_page(e),
    }
}
