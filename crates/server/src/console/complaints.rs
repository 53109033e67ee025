//! The complaint queue in the console: the store's complaints, soonest due
//! and overdue first, and one complaint with its reasons, timeline and the
//! form that moves it along. Same application calls as the REST API.

use super::frame::{redirect, render, Chrome, FieldErrors, Lang, Staff};
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
const FILTERS: [&str; 7] = [
    "active",
    "open",
    "acknowledged",
    "in_progress",
    "resolved",
    "followed_up",
    "closed",
];

/// A complaint's status in words (`active` is the list's "not closed").
pub(super) fn status_label(lang: Lang, status: &str) -> String {
    match status {
        "active" => lang.t("待处理", "Active"),
        "open" => lang.t("未响应", "Open"),
        "acknowledged" => lang.t("已响应", "Acknowledged"),
        "in_progress" => lang.t("处理中", "In progress"),
        "resolved" => lang.t("已解决（待回访）", "Resolved"),
        "followed_up" => lang.t("已回访", "Followed up"),
        "closed" => lang.t("已关闭", "Closed"),
        other => other,
    }
    .to_string()
}

fn severity_label(lang: Lang, severity: &str) -> String {
    match severity {
        "critical" => lang.t("严重", "Critical"),
        "high" => lang.t("高", "High"),
        "medium" => lang.t("中", "Medium"),
        "low" => lang.t("低", "Low"),
        "none" => lang.t("无", "None"),
        other => other,
    }
    .to_string()
}

fn category_label(lang: Lang, category: &str) -> String {
    match category {
        "food_safety" => lang.t("食品安全", "Food safety"),
        "dish_quality" => lang.t("菜品质量", "Dish quality"),
        "service_attitude" => lang.t("服务态度", "Service attitude"),
        "waiting_time" => lang.t("等待时间", "Waiting time"),
        "hygiene" => lang.t("卫生", "Hygiene"),
        "environment" => lang.t("环境", "Environment"),
        "price" => lang.t("价格", "Price"),
        "delivery" => lang.t("外卖配送", "Delivery"),
        "praise" => lang.t("表扬", "Praise"),
        "other" => lang.t("其他", "Other"),
        other => other,
    }
    .to_string()
}

fn channel_label(lang: Lang, channel: &str) -> String {
    match channel {
        "staff" => lang.t("门店员工", "Staff"),
        "call_center" => lang.t("客服热线", "Call centre"),
        "h5" => lang.t("会员 H5", "Member H5"),
        "table_qr" => lang.t("桌台二维码", "Table QR code"),
        "review_import" => lang.t("点评导入", "Imported review"),
        other => other,
    }
    .to_string()
}

fn root_cause_label(lang: Lang, cause: &str) -> String {
    match cause {
        "kitchen_process" => lang.t("后厨流程", "Kitchen process"),
        "ingredient_supplier" => lang.t("食材供应商", "Ingredient supplier"),
        "staff_training" => lang.t("员工培训", "Staff training"),
        "staffing_shortage" => lang.t("人手不足", "Staffing shortage"),
        "equipment" => lang.t("设备", "Equipment"),
        "cleaning" => lang.t("清洁", "Cleaning"),
        "delivery_partner" => lang.t("配送伙伴", "Delivery partner"),
        "guest_expectation" => lang.t("顾客预期", "Guest expectation"),
        "other" => lang.t("其他", "Other"),
        other => other,
    }
    .to_string()
}

/// A timeline entry's kind in words (the code stays in the page for tests
/// and integrators).
fn event_label(lang: Lang, kind: &str) -> String {
    match kind {
        "received" => lang.t("收到", "Received").to_string(),
        "reclassified" => lang.t("重新分类", "Reclassified").to_string(),
        "compensated" => lang.t("已补偿", "Compensated").to_string(),
        "compensation_requested" => lang.t("申请补偿", "Compensation requested").to_string(),
        "compensation_approved" => lang.t("补偿已批准", "Compensation approved").to_string(),
        "compensation_rejected" => lang.t("补偿被拒绝", "Compensation rejected").to_string(),
        "escalated" => lang.t("已升级", "Escalated").to_string(),
        "imported" => lang.t("导入", "Imported").to_string(),
        "photos" => lang.t("照片", "Photos").to_string(),
        other => status_label(lang, other),
    }
}

/// The first-response clock, computed here from the deadline: time left, or
/// how long it is overdue. `None` once the first response came (or there is
/// no deadline).
pub(super) fn sla_timer(
    lang: Lang,
    due_at: Option<&str>,
    answered: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(String, bool)> {
    if answered {
        return None;
    }
    let due = chrono::DateTime::parse_from_rfc3339(due_at?).ok()?;
    let minutes = (due.with_timezone(&chrono::Utc) - now).num_minutes();
    let span = duration_text(lang, minutes.abs());
    Some(if minutes >= 0 {
        (
            match lang {
                Lang::Zh => format!("剩余 {span}"),
                Lang::En => format!("{span} left"),
            },
            false,
        )
    } else {
        (
            match lang {
                Lang::Zh => format!("已超时 {span}"),
                Lang::En => format!("overdue by {span}"),
            },
            true,
        )
    })
}

/// "1 小时 5 分钟" / "1 h 5 min"; days past a day.
pub(super) fn duration_text(lang: Lang, minutes: i64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (lang, d, h) {
        (Lang::Zh, 0, 0) => format!("{m} 分钟"),
        (Lang::Zh, 0, _) => format!("{h} 小时 {m} 分钟"),
        (Lang::Zh, _, _) => format!("{d} 天 {h} 小时"),
        (Lang::En, 0, 0) => format!("{m} min"),
        (Lang::En, 0, _) => format!("{h} h {m} min"),
        (Lang::En, _, _) => format!("{d} d {h} h"),
    }
}

pub(super) struct Row {
    id: String,
    due: String,
    overdue: bool,
    /// Time left or overdue by, while no first response came.
    timer: Option<String>,
    escalation: i64,
    store: String,
    category: String,
    category_code: String,
    severity: String,
    severity_code: String,
    status: String,
    status_code: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "complaints/list.html")]
struct ListPage {
    c: Chrome,
    filters: Vec<(&'static str, String)>,
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
    let lang = staff.lang;
    let now = chrono::Utc::now();
    let rows = views
        .into_iter()
        .map(|f| {
            let timer = sla_timer(lang, f.due_at.as_deref(), f.acknowledged_at.is_some(), now);
            Row {
                due: short_time(f.due_at.as_deref()),
                overdue: timer.as_ref().is_some_and(|t| t.1)
                    || (f.sla_breached && f.acknowledged_at.is_none()),
                timer: timer.map(|t| t.0),
                escalation: f.escalation_level,
                excerpt: f.text.chars().take(40).collect(),
                id: f.id,
                store: f.store_code,
                category: category_label(lang, &f.category),
                category_code: f.category,
                severity: severity_label(lang, &f.severity),
                severity_code: f.severity,
                status: status_label(lang, &f.status),
                status_code: f.status,
            }
        })
        .collect();
    render(
        StatusCode::OK,
        ListPage {
            c: staff.chrome(),
            filters: FILTERS
                .iter()
                .map(|f| (*f, status_label(lang, f)))
                .collect(),
            status,
            rows,
        },
    )
}

pub(super) struct Step {
    at: String,
    kind: String,
    kind_code: String,
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
    severity_code: String,
    status: String,
    status_code: String,
    text: String,
    table: Option<String>,
    channel: String,
    due: String,
    breached: bool,
    timer: Option<(String, bool)>,
    reasons: Vec<String>,
    next: Vec<(&'static str, &'static str)>,
    root_causes: Vec<(&'static str, String)>,
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
fn next_steps(lang: Lang, status: &str) -> Vec<(&'static str, &'static str)> {
    let all = [
        ("acknowledged", lang.t("已响应（首次响应）", "Acknowledge")),
        ("in_progress", lang.t("开始处理", "Start work")),
        ("resolved", lang.t("已解决", "Resolve")),
        ("followed_up", lang.t("已回访", "Followed up")),
        ("closed", lang.t("关闭", "Close")),
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
    let lang = staff.lang;
    render(
        status,
        DetailPage {
            c: staff.chrome(),
            store_code: f.store_code.clone(),
            next: next_steps(lang, &f.status),
            root_causes: ROOT_CAUSES
                .iter()
                .map(|r| (*r, root_cause_label(lang, r)))
                .collect(),
            due: short_time(f.due_at.as_deref()),
            breached: f.sla_breached,
            timer: sla_timer(
                lang,
                f.due_at.as_deref(),
                f.acknowledged_at.is_some(),
                chrono::Utc::now(),
            ),
            timeline: f
                .timeline
                .into_iter()
                .map(|e| Step {
                    at: short_time(Some(&e.at)),
                    kind: event_label(lang, &e.kind),
                    kind_code: e.kind,
                    detail: e.detail,
                    actor: e.actor,
                })
                .collect(),
            id: f.id,
            category: category_label(lang, &f.category),
            severity: severity_label(lang, &f.severity),
            severity_code: f.severity,
            status: status_label(lang, &f.status),
            status_code: f.status,
            text: f.text,
            table: f.table,
            channel: channel_label(lang, &f.channel),
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
