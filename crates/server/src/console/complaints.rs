//! The complaint queue in the console: the store's complaints, soonest due
//! and overdue first, and one complaint with its reasons, timeline and the
//! form that moves it along. Same application calls as the REST API.

use super::frame::{redirect, render, Chrome, FieldErrors, Staff};
use crate::app::feedback::{self, FeedbackQuery, Transition, ROOT_CAUSES};
use crate::app::AppError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/complaints", get(list))
        .route("/console/complaints/{id}", get(detail).post(move_along))
}

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
#[template(path = "complaints/list.html")]
struct ListPage {
    c: Chrome,
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

async fn list(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Response {
    let status = query.status.unwrap_or_else(|| "active".into());
    let wanted = (status != "active").then(|| status.clone());
    let found = feedback::list(
        &state.regulars,
        staff.principal(),
        FeedbackQuery {
            store: None,
            status: wanted,
            limit: Some(500),
        },
    )
    .await;
    let mut views = match found {
        Ok(v) => v,
        Err(e) => return staff.fail(e),
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
            c: staff.chrome(),
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
#[template(path = "complaints/detail.html")]
struct DetailPage {
    c: Chrome,
    store_code: String,
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
    errors: FieldErrors,
}

/// What the transition form says when a field is missing or wrong.
const WORDING: [(&str, &str, &str); 2] = [
    (
        "root_cause",
        "解决投诉时请选择根因",
        "Choose a root cause to resolve the complaint",
    ),
    (
        "note",
        "请写明处理结果（会告知顾客）；回访时写明顾客反馈并选择是否满意",
        "Say how it was resolved (the guest is told); on a follow-up, what the guest said and whether they were won back",
    ),
];

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
    staff: &Staff,
    id: &str,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let f = match feedback::get(&state.regulars, staff.principal(), id).await {
        Ok(f) => f,
        Err(e) => return staff.fail(e),
    };
    render(
        status,
        DetailPage {
            c: staff.chrome(),
            store_code: f.store_code.clone(),
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
            errors,
        },
    )
}

async fn detail(State(state): State<ApiState>, staff: Staff, Path(id): Path<String>) -> Response {
    detail_page(&state, &staff, &id, FieldErrors::default(), StatusCode::OK).await
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

async fn move_along(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<TransitionForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let filled = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let result = feedback::transition(
        &state.regulars,
        staff.principal(),
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
            let errors = FieldErrors::from_app(staff.lang, &e, "to", &WORDING);
            detail_page(
                &state,
                &staff,
                &id,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => staff.fail(e),
    }
}
