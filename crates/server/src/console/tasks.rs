//! The service task queue: calls and visits staff owe guests (complaint
//! handling and follow-ups, birthday and VIP-decline calls, campaign staff
//! tasks), soonest due first, each with a Done form and a note. Store-scoped
//! roles see their own store's tasks only (the application call scopes it).

use super::complaints::duration_text;
use super::frame::{redirect, render, when, Chrome, Lang, Staff};
use crate::app::feedback::{self, TaskDone, TaskQuery, TaskView};
use crate::app::{members, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::access::Action;
use serde::Deserialize;
use std::collections::BTreeMap;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/tasks", get(list))
        .route("/console/tasks/{id}/done", post(done))
}

fn kind_label(lang: Lang, kind: &str) -> String {
    match kind {
        "complaint" => lang.t("投诉处理", "Complaint"),
        "follow_up" => lang.t("投诉回访", "Complaint follow-up"),
        "birthday_call" => lang.t("生日致电", "Birthday call"),
        "care_call" => lang.t("VIP 关怀致电", "VIP care call"),
        "campaign" | "campaign_call" => lang.t("活动任务", "Campaign task"),
        other => other,
    }
    .to_string()
}

struct TaskLine {
    id: String,
    kind: String,
    kind_code: String,
    title: String,
    due: String,
    /// Time left, or overdue by, for open tasks.
    timer: String,
    overdue: bool,
    member: String,
    store: String,
    feedback_id: Option<String>,
    open: bool,
    outcome: String,
    done_by: String,
    /// The note typed in a refused Done form, kept.
    note: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "tasks/list.html")]
struct ListPage {
    c: Chrome,
    all: bool,
    tasks: Vec<TaskLine>,
    may_handle: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: String,
}

/// A refused Done form: which task, what was typed, and why.
struct Refusal {
    task: String,
    note: String,
    message: String,
}

async fn page(
    state: &ApiState,
    staff: &Staff,
    all: bool,
    refusal: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let lang = staff.lang;
    let found = feedback::tasks(
        &state.regulars,
        staff.principal(),
        TaskQuery { store: None, all },
    )
    .await;
    let views: Vec<TaskView> = match found {
        Ok(v) => v,
        Err(e) => return staff.fail(e),
    };
    // Members by masked phone, each looked up once; a member the caller may
    // not read (or erased) shows as a dash.
    let mut phones: BTreeMap<String, String> = BTreeMap::new();
    for id in views.iter().filter_map(|t| t.member_id.clone()) {
        if phones.contains_key(&id) {
            continue;
        }
        let masked = members::get_member(&state.regulars, staff.principal(), &id, false)
            .await
            .map(|m| m.phone_masked)
            .unwrap_or_else(|_| "—".into());
        phones.insert(id, masked);
    }
    let now = chrono::Utc::now();
    let tasks = views
        .into_iter()
        .map(|t| {
            let open = t.status == "open";
            let minutes = chrono::DateTime::parse_from_rfc3339(&t.due_at)
                .map(|d| (d.with_timezone(&chrono::Utc) - now).num_minutes())
                .unwrap_or(0);
            let timer = if !open {
                String::new()
            } else if minutes >= 0 {
                match lang {
                    Lang::Zh => format!("剩余 {}", duration_text(lang, minutes)),
                    Lang::En => format!("{} left", duration_text(lang, minutes)),
                }
            } else {
                match lang {
                    Lang::Zh => format!("已超时 {}", duration_text(lang, -minutes)),
                    Lang::En => format!("overdue by {}", duration_text(lang, -minutes)),
                }
            };
            let refused = refusal.as_ref().filter(|r| r.task == t.id);
            TaskLine {
                kind: kind_label(lang, &t.kind),
                kind_code: t.kind,
                title: t.title,
                due: when(&t.due_at),
                timer,
                overdue: t.overdue,
                member: t
                    .member_id
                    .as_ref()
                    .and_then(|m| phones.get(m).cloned())
                    .unwrap_or_else(|| "—".into()),
                store: t.store_code.unwrap_or_else(|| "—".into()),
                feedback_id: t.feedback_id,
                open,
                outcome: t.outcome.unwrap_or_default(),
                done_by: t.done_at.as_deref().map(when).unwrap_or_default(),
                note: refused.map(|r| r.note.clone()).unwrap_or_default(),
                error: refused.map(|r| r.message.clone()),
                id: t.id,
            }
        })
        .collect();
    render(
        status,
        ListPage {
            c: staff.chrome(),
            all,
            tasks,
            may_handle: staff.may(Action::FeedbackHandle),
        },
    )
}

async fn list(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Response {
    let all = matches!(query.all.as_str(), "1" | "true" | "yes");
    page(&state, &staff, all, None, StatusCode::OK).await
}

#[derive(Deserialize)]
struct DoneForm {
    csrf: String,
    #[serde(default)]
    outcome: String,
}

async fn done(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<DoneForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = staff.lang;
    let refuse = |message: &str| Refusal {
        task: id.clone(),
        note: form.outcome.clone(),
        message: message.to_string(),
    };
    if form.outcome.trim().is_empty() {
        let r = refuse(lang.t(
            "请写明结果（例如：已致电，顾客满意）",
            "Say what happened (e.g. called, the guest is happy)",
        ));
        return page(
            &state,
            &staff,
            false,
            Some(r),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let result = feedback::complete_task(
        &state.regulars,
        staff.principal(),
        &id,
        TaskDone {
            outcome: form.outcome.clone(),
        },
    )
    .await;
    match result {
        Ok(_) => redirect("/console/tasks"),
        Err(AppError::Invalid(_)) => {
            let r = refuse(lang.t(
                "结果最多 2000 字",
                "The note may be at most 2,000 characters",
            ));
            page(
                &state,
                &staff,
                false,
                Some(r),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Conflict { .. }) => {
            let r = refuse(lang.t("这项任务已经完成了", "This task is already done"));
            page(&state, &staff, true, Some(r), StatusCode::CONFLICT).await
        }
        Err(e) => staff.fail(e),
    }
}
