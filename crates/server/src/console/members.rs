//! Members in the console: search (phone through the blind index, name, tag,
//! saved segment) and the member page — profile with masked personal data
//! and an audited reveal, tags, taste, consents, tier progress, points
//! history with reasons, coupons, orders, feedback, tasks, insights, the
//! member's access log and manual points adjustments (with approval above
//! the caller's limit). Same application calls as the REST API.

use super::frame::{redirect, render, when, yuan, Chrome, FieldErrors, Lang, Staff};
use crate::app::members::{self, AccessEntry, MemberOrderView, MemberQuery, MemberView};
use crate::app::points::{self, Adjust, PointsQuery};
use crate::app::{coupons, feedback, insights, segments, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::access::Action;
use regulars_core::ledger::EntryKind;
use regulars_core::secret;
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/members", get(search))
        .route("/console/members/adjustments", get(adjustments))
        .route("/console/members/adjustments/{id}", post(decide))
        .route("/console/members/{id}", get(detail))
        .route("/console/members/{id}/reveal", post(reveal))
        .route("/console/members/{id}/tags", post(add_tag))
        .route("/console/members/{id}/tags/remove", post(remove_tag))
        .route("/console/members/{id}/adjust", post(adjust))
}

/// `2026-03-04` from RFC 3339.
fn day(rfc3339: &str) -> String {
    rfc3339.get(..10).unwrap_or("—").to_string()
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("—").to_string()
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

pub(super) struct Row {
    id: String,
    code: String,
    name: String,
    phone: String,
    tier: String,
    points: i64,
    store: String,
}

impl Row {
    fn of(m: &MemberView) -> Row {
        Row {
            id: m.id.clone(),
            code: m.member_code.clone(),
            name: or_dash(m.name_masked.as_deref()),
            phone: m.phone_masked.clone(),
            tier: m.tier.as_str().to_string(),
            points: m.points_balance,
            store: or_dash(m.home_store.as_deref()),
        }
    }
}

#[derive(Template)]
#[template(path = "members/search.html")]
struct SearchPage {
    c: Chrome,
    phone: String,
    name: String,
    tag: String,
    segment: String,
    segments: Vec<(String, String)>,
    rows: Vec<Row>,
    /// What the results are: "all members", "phone 138…", ….
    caption: String,
    errors: FieldErrors,
    may_adjust_approve: bool,
}

#[derive(Deserialize, Default)]
pub(super) struct SearchQuery {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    segment: String,
}

const PHONE_WORDING: [(&str, &str, &str); 2] = [
    (
        "phone",
        "请输入有效的手机号（11 位）",
        "Enter a valid mobile number (11 digits)",
    ),
    (
        "tag",
        "标签只能包含文字、数字、-、_，最长 32 个字",
        "A tag is letters, digits, - or _, at most 32 characters",
    ),
];

/// Find members; a search the app refuses as bad input becomes a message
/// next to its field (the other results are empty).
async fn search(
    State(state): State<ApiState>,
    staff: Staff,
    Query(q): Query<SearchQuery>,
) -> Response {
    let app = &state.regulars;
    let caller = staff.principal();
    let lang = staff.lang;
    let (phone, name, tag, segment) = (
        q.phone.trim().to_string(),
        q.name.trim().to_string(),
        q.tag.trim().to_string(),
        q.segment.trim().to_string(),
    );
    let mut errors = FieldErrors::default();
    let mut caption = lang
        .t("全部会员（前 50 位）", "All members (first 50)")
        .to_string();
    let found: Result<Vec<MemberView>, AppError> = if !phone.is_empty() {
        caption = format!("{} {phone}", lang.t("手机号", "Phone"));
        members::list_members(
            app,
            caller,
            MemberQuery {
                phone: Some(phone.clone()),
                ..MemberQuery::default()
            },
        )
        .await
        .map(|p| p.members)
    } else if !name.is_empty() {
        caption = format!("{} “{name}”", lang.t("姓名包含", "Name contains"));
        members::search_by_name(app, caller, &name, 50).await
    } else if !tag.is_empty() {
        caption = format!("{} {tag}", lang.t("标签", "Tag"));
        members::list_members(
            app,
            caller,
            MemberQuery {
                tag: Some(tag.clone()),
                ..MemberQuery::default()
            },
        )
        .await
        .map(|p| p.members)
    } else if !segment.is_empty() {
        segment_members(&state, &staff, &segment, &mut caption).await
    } else {
        members::list_members(app, caller, MemberQuery::default())
            .await
            .map(|p| p.members)
    };
    let (rows, status) = match found {
        Ok(found) => (found.iter().map(Row::of).collect(), StatusCode::OK),
        Err(e @ AppError::Invalid(_)) => {
            errors = FieldErrors::from_app(lang, &e, "form", &PHONE_WORDING);
            (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return staff.fail(e),
    };
    // The saved segments, when the role may read them (store managers do).
    let segments = if staff.may(Action::SegmentRead) {
        segments::list(app, caller)
            .await
            .map(|l| l.into_iter().map(|s| (s.id, s.name)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    render(
        status,
        SearchPage {
            c: staff.chrome(),
            phone,
            name,
            tag,
            segment,
            segments,
            rows,
            caption,
            errors,
            may_adjust_approve: points::adjust_limit(caller.role).is_none()
                && staff.may(Action::PointsAdjust),
        },
    )
}

/// The first members of a saved segment, as member views (masked).
async fn segment_members(
    state: &ApiState,
    staff: &Staff,
    id: &str,
    caption: &mut String,
) -> Result<Vec<MemberView>, AppError> {
    let app = &state.regulars;
    let caller = staff.principal();
    let saved = segments::get(app, caller, id).await?;
    *caption = format!("{} {}", staff.lang.t("分群", "Segment"), saved.name);
    let page = segments::members(app, caller, &saved.expression, None, Some(50)).await?;
    let mut found = Vec::with_capacity(page.members.len());
    for m in page.members {
        found.push(members::open_member(app, caller, &m.id, false).await?);
    }
    Ok(found)
}

// ---------------------------------------------------------------------------
// The member page
// ---------------------------------------------------------------------------

pub(super) struct EntryRow {
    kind: String,
    points: i64,
    lines: Vec<String>,
    order: String,
    at: String,
    expires: String,
}

pub(super) struct CouponRow {
    code: String,
    name: String,
    summary: String,
    status: String,
    expires: String,
}

pub(super) struct OrderRow {
    store: String,
    pos: String,
    channel: String,
    at: String,
    paid: String,
    refunded: String,
    points: i64,
}

pub(super) struct FeedbackRow {
    id: String,
    at: String,
    store: String,
    category: String,
    severity: String,
    status: String,
    excerpt: String,
}

pub(super) struct TaskRow {
    kind: String,
    title: String,
    due: String,
    status: String,
    overdue: bool,
}

pub(super) struct LogRow {
    /// The action as a CSS class: `member-reveal`.
    class: String,
    at: String,
    actor: String,
    action: String,
    detail: String,
}

pub(super) struct TierBox {
    tier: String,
    spend: String,
    next: Option<String>,
    to_next: String,
    percent: i64,
    floor: Option<String>,
    downgrade_pending: bool,
}

pub(super) struct Insight {
    lifecycle: String,
    grade: String,
    p_alive: String,
    clv: String,
    churn: String,
    visits: i64,
    spend: String,
    recommendations: Vec<String>,
}

pub(super) struct Revealed {
    phone: String,
    name: String,
    email: String,
    birthday: String,
    notes: String,
}

/// The adjustment form's values, kept when it is shown again.
#[derive(Default)]
pub(super) struct AdjustValues {
    points: String,
    kind: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "members/detail.html")]
struct DetailPage {
    c: Chrome,
    m: MemberView,
    joined: String,
    taste: Vec<(String, String)>,
    consents: Vec<(String, bool, String, String)>,
    personal: Option<Revealed>,
    may_reveal: bool,
    may_tag: bool,
    tier: Option<TierBox>,
    balance: Option<i64>,
    owed: i64,
    expiring: Vec<(String, i64)>,
    entries: Option<Vec<EntryRow>>,
    coupons: Option<Vec<CouponRow>>,
    orders: Option<Vec<OrderRow>>,
    feedback: Option<Vec<FeedbackRow>>,
    tasks: Option<Vec<TaskRow>>,
    insight: Option<Insight>,
    /// Why insights are missing when the role may read them.
    insight_note: Option<String>,
    log: Option<Vec<LogRow>>,
    may_adjust: bool,
    adjust_limit: Option<i64>,
    adjust_key: String,
    adjust: AdjustValues,
    tag_value: String,
    errors: FieldErrors,
    notice: Option<String>,
}

/// What the page shows besides the member itself, and how it was reached.
#[derive(Default)]
struct Extras {
    reveal: bool,
    errors: FieldErrors,
    adjust: AdjustValues,
    tag_value: String,
    notice: Option<String>,
}

fn taste_lines(lang: Lang, m: &MemberView) -> Vec<(String, String)> {
    let json = serde_json::to_value(&m.taste).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(map) = json.as_object() {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Array(items) if items.is_empty() => continue,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join("、"),
                serde_json::Value::String(s) if s.is_empty() => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => lang
                    .t(if *b { "是" } else { "否" }, if *b { "yes" } else { "no" })
                    .to_string(),
                other => other.to_string(),
            };
            out.push((key.clone(), text));
        }
    }
    out
}

async fn member_page(
    state: &ApiState,
    staff: &Staff,
    id: &str,
    extras: Extras,
    status: StatusCode,
) -> Response {
    let app = &state.regulars;
    let caller = staff.principal();
    let lang = staff.lang;
    // The member itself decides the page: not found / other store → the error page.
    let m = match members::open_member(app, caller, id, extras.reveal).await {
        Ok(m) => m,
        Err(e) => return staff.fail(e),
    };
    // Sections the role cannot read are left out; a failure to read one
    // the role may read is a real error.
    let may_points = staff.may(Action::PointsRead);
    let (tier, balance, owed, expiring, entries) = if may_points {
        let t = match points::tier_of(app, caller, id).await {
            Ok(t) => t,
            Err(e) => return staff.fail(e),
        };
        let p = match points::points_of(
            app,
            caller,
            id,
            PointsQuery {
                limit: Some(200),
                before: None,
            },
        )
        .await
        {
            Ok(p) => p,
            Err(e) => return staff.fail(e),
        };
        let to_next = t.spend_to_next_fen.unwrap_or(0);
        let percent = if t.next_tier.is_some() && t.qualifying_spend_fen + to_next > 0 {
            t.qualifying_spend_fen * 100 / (t.qualifying_spend_fen + to_next)
        } else {
            100
        };
        (
            Some(TierBox {
                tier: t.tier.as_str().to_string(),
                spend: yuan(t.qualifying_spend_fen),
                next: t.next_tier.map(|n| n.as_str().to_string()),
                to_next: yuan(to_next),
                percent,
                floor: t.floor.map(|f| f.as_str().to_string()),
                downgrade_pending: t.downgrade_pending,
            }),
            Some(p.balance),
            p.owed,
            p.expiring.into_iter().map(|e| (e.on, e.points)).collect(),
            Some(
                p.entries
                    .into_iter()
                    .map(|e| EntryRow {
                        kind: e.kind.as_str().to_string(),
                        points: e.points,
                        lines: e
                            .reason
                            .split('；')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_string)
                            .collect(),
                        order: or_dash(e.order_ref.as_deref()),
                        at: when(&e.at),
                        expires: e
                            .expires_at
                            .as_deref()
                            .map(day)
                            .unwrap_or_else(|| "—".into()),
                    })
                    .collect(),
            ),
        )
    } else {
        (None, None, 0, Vec::new(), None)
    };
    let coupons = if may_points {
        match coupons::member_coupons(
            app,
            caller,
            id,
            coupons::CouponFilter {
                status: Some("all".into()),
            },
        )
        .await
        {
            Ok(list) => Some(
                list.into_iter()
                    .map(|c| CouponRow {
                        status: serde_json::to_value(c.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        expires: day(&c.expires_at),
                        code: c.code,
                        name: c.name,
                        summary: c.summary,
                    })
                    .collect(),
            ),
            Err(e) => return staff.fail(e),
        }
    } else {
        None
    };
    let orders = match members::member_orders(app, caller, id, 50).await {
        Ok(list) => Some(list.into_iter().map(order_row).collect()),
        Err(AppError::Forbidden(_)) => None,
        Err(e) => return staff.fail(e),
    };
    let (feedback, tasks) = if staff.may(Action::FeedbackRead) {
        let fb = match feedback::list(
            app,
            caller,
            feedback::FeedbackQuery {
                store: None,
                status: None,
                limit: Some(500),
            },
        )
        .await
        {
            Ok(list) => list,
            Err(e) => return staff.fail(e),
        };
        let tasks = match feedback::tasks(
            app,
            caller,
            feedback::TaskQuery {
                store: None,
                all: true,
            },
        )
        .await
        {
            Ok(list) => list,
            Err(e) => return staff.fail(e),
        };
        (
            Some(
                fb.into_iter()
                    .filter(|f| f.member_id.as_deref() == Some(id))
                    .map(|f| FeedbackRow {
                        at: when(&f.created_at),
                        excerpt: f.text.chars().take(60).collect(),
                        id: f.id,
                        store: f.store_code,
                        category: f.category,
                        severity: f.severity,
                        status: f.status,
                    })
                    .collect(),
            ),
            Some(
                tasks
                    .into_iter()
                    .filter(|t| t.member_id.as_deref() == Some(id))
                    .map(|t| TaskRow {
                        due: when(&t.due_at),
                        kind: t.kind,
                        title: t.title,
                        status: t.status,
                        overdue: t.overdue,
                    })
                    .collect(),
            ),
        )
    } else {
        (None, None)
    };
    let (insight, insight_note) = match insights::member_insights(app, caller, id).await {
        Ok(i) => (
            Some(Insight {
                lifecycle: i.lifecycle,
                grade: i.grade,
                p_alive: i
                    .p_alive
                    .map(|p| format!("{:.0}%", p * 100.0))
                    .unwrap_or_else(|| "—".into()),
                clv: i.clv_fen.map(yuan).unwrap_or_else(|| "—".into()),
                churn: or_dash(i.churn_risk.as_deref()),
                visits: i.visits_12m,
                spend: yuan(i.spend_12m_fen),
                recommendations: recommendation_lines(&i.recommendations),
            }),
            None,
        ),
        Err(AppError::Unprocessable { .. }) => (
            None,
            Some(
                lang.t(
                    "尚未评分：评分每晚计算一次",
                    "Not scored yet: scores are computed nightly",
                )
                .to_string(),
            ),
        ),
        Err(AppError::Forbidden(_)) => (None, None),
        Err(e) => return staff.fail(e),
    };
    let log = match members::access_log(app, caller, id).await {
        Ok(list) => Some(list.into_iter().map(log_row).collect()),
        Err(AppError::Forbidden(_)) => None,
        Err(e) => return staff.fail(e),
    };
    let personal = m.personal.as_ref().map(|p| Revealed {
        phone: p.phone.clone(),
        name: or_dash(p.name.as_deref()),
        email: or_dash(p.email.as_deref()),
        birthday: or_dash(p.birthday.as_deref()),
        notes: or_dash(p.notes.as_deref()),
    });
    let consents = m
        .consents
        .iter()
        .map(|(channel, c)| {
            (
                channel.clone(),
                c.granted,
                c.source.clone(),
                when(&c.changed_at),
            )
        })
        .collect();
    render(
        status,
        DetailPage {
            c: staff.chrome(),
            taste: taste_lines(lang, &m),
            joined: day(&m.created_at),
            consents,
            personal,
            may_reveal: staff.may(Action::MemberRevealPii),
            may_tag: staff.may(Action::MemberTag),
            tier,
            balance,
            owed,
            expiring,
            entries,
            coupons,
            orders,
            feedback,
            tasks,
            insight,
            insight_note,
            log,
            may_adjust: staff.may(Action::PointsAdjust),
            adjust_limit: points::adjust_limit(caller.role),
            // A fresh key per rendering: a double submit is applied once.
            adjust_key: secret::random_token(16),
            adjust: extras.adjust,
            tag_value: extras.tag_value,
            errors: extras.errors,
            notice: extras.notice,
            m,
        },
    )
}

fn order_row(o: MemberOrderView) -> OrderRow {
    OrderRow {
        at: when(&o.occurred_at),
        paid: yuan(o.paid_fen),
        refunded: if o.refunded_fen > 0 {
            yuan(o.refunded_fen)
        } else {
            "—".into()
        },
        points: o.points_earned - o.points_reversed,
        store: o.store_code,
        pos: o.pos_order_id,
        channel: o.channel,
    }
}

fn log_row(a: AccessEntry) -> LogRow {
    LogRow {
        class: a.action.replace('.', "-"),
        at: when(&a.at),
        actor: a.actor,
        action: a.action,
        detail: a.detail,
    }
}

/// Recommendations as one line each: the dish and why, whatever the shape.
fn recommendation_lines(value: &serde_json::Value) -> Vec<String> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let pick = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| item.get(*k).and_then(|v| v.as_str()))
                    .map(str::to_string)
            };
            let what = pick(&["name", "dish", "sku", "title"]).unwrap_or_else(|| item.to_string());
            match pick(&["reason", "why", "because"]) {
                Some(why) => format!("{what} · {why}"),
                None => what,
            }
        })
        .collect()
}

async fn detail(State(state): State<ApiState>, staff: Staff, Path(id): Path<String>) -> Response {
    member_page(&state, &staff, &id, Extras::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

/// Show the personal data in full: written to the audit log by the app.
async fn reveal(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    member_page(
        &state,
        &staff,
        &id,
        Extras {
            reveal: true,
            ..Extras::default()
        },
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct TagForm {
    csrf: String,
    #[serde(default)]
    tag: String,
}

const TAG_WORDING: [(&str, &str, &str); 1] = [(
    "tag",
    "标签只能包含文字、数字、-、_，最长 32 个字",
    "A tag is letters, digits, - or _, at most 32 characters",
)];

async fn add_tag(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<TagForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    // The member must be in the caller's scope before it is changed.
    if let Err(e) = members::open_member(&state.regulars, staff.principal(), &id, false).await {
        return staff.fail(e);
    }
    let tag = form.tag.trim().to_string();
    let mut errors = FieldErrors::default();
    if tag.is_empty() {
        errors.add("tag", staff.lang.t("请输入标签", "Enter a tag"));
    } else {
        match members::add_tag(&state.regulars, staff.principal(), &id, &tag).await {
            Ok(_) => return redirect(&format!("/console/members/{id}#tags")),
            Err(e @ AppError::Invalid(_)) => {
                errors = FieldErrors::from_app(staff.lang, &e, "tag", &TAG_WORDING)
            }
            Err(e) => return staff.fail(e),
        }
    }
    member_page(
        &state,
        &staff,
        &id,
        Extras {
            errors,
            tag_value: tag,
            ..Extras::default()
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn remove_tag(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<TagForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    if let Err(e) = members::open_member(&state.regulars, staff.principal(), &id, false).await {
        return staff.fail(e);
    }
    match members::remove_tag(&state.regulars, staff.principal(), &id, form.tag.trim()).await {
        // Already gone (another tab): the page shows the tags as they are.
        Ok(_) | Err(AppError::NotFound { what: "tag" }) => {
            redirect(&format!("/console/members/{id}#tags"))
        }
        Err(e) => staff.fail(e),
    }
}

// ---------------------------------------------------------------------------
// Manual adjustments
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct AdjustForm {
    csrf: String,
    #[serde(default)]
    points: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    key: String,
}

const ADJUST_WORDING: [(&str, &str, &str); 3] = [
    (
        "points",
        "请输入非零整数；补偿只能增加积分",
        "Enter a non-zero whole number; compensation only adds points",
    ),
    (
        "reason",
        "请写明调整原因（最多 500 字）",
        "Say why (at most 500 characters)",
    ),
    (
        "kind",
        "请选择调整或补偿",
        "Choose adjustment or compensation",
    ),
];

async fn adjust(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<AdjustForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let app = &state.regulars;
    let caller = staff.principal();
    let lang = staff.lang;
    // Store staff adjust only the members they may open.
    if let Err(e) = members::open_member(app, caller, &id, false).await {
        return staff.fail(e);
    }
    let values = AdjustValues {
        points: form.points.trim().to_string(),
        kind: form.kind.clone(),
        reason: form.reason.trim().to_string(),
    };
    let mut errors = FieldErrors::default();
    let amount = match values.points.parse::<i64>() {
        Ok(0) | Err(_) => {
            errors.add(
                "points",
                lang.t("请输入非零整数", "Enter a non-zero whole number"),
            );
            0
        }
        Ok(n) => n,
    };
    let kind = match form.kind.as_str() {
        "" | "adjust" => EntryKind::Adjust,
        "compensation" => EntryKind::Compensation,
        _ => {
            errors.add(
                "kind",
                lang.t("请选择调整或补偿", "Choose adjustment or compensation"),
            );
            EntryKind::Adjust
        }
    };
    if kind == EntryKind::Compensation && amount < 0 {
        errors.add(
            "points",
            lang.t("补偿只能增加积分", "Compensation only adds points"),
        );
    }
    if values.reason.is_empty() {
        errors.add("reason", lang.t("请写明调整原因", "Say why"));
    }
    let over_limit = points::adjust_limit(caller.role).is_some_and(|limit| amount.abs() > limit);
    if errors.is_empty() {
        let input = Adjust {
            points: amount,
            reason: values.reason.clone(),
            approver: None,
            kind: Some(kind),
        };
        let result = if over_limit {
            // Above the caller's own limit: an HQ admin decides.
            points::request_adjustment(app, caller, &id, input)
                .await
                .map(|_| {
                    Some(
                        lang.t(
                            "超出你的调整额度，已提交总部审批",
                            "Above your limit: sent to HQ for approval",
                        )
                        .to_string(),
                    )
                })
        } else {
            points::adjust(app, caller, &id, Some(&form.key), input)
                .await
                .map(|_| None)
        };
        match result {
            Ok(None) => return redirect(&format!("/console/members/{id}#points-history")),
            Ok(Some(notice)) => {
                return member_page(
                    &state,
                    &staff,
                    &id,
                    Extras {
                        notice: Some(notice),
                        ..Extras::default()
                    },
                    StatusCode::OK,
                )
                .await
            }
            Err(
                e @ (AppError::Invalid(_)
                | AppError::Unprocessable { .. }
                | AppError::Conflict { .. }),
            ) => {
                errors = match &e {
                    AppError::Unprocessable {
                        code: "insufficient_points",
                        ..
                    } => {
                        let mut f = FieldErrors::default();
                        f.add("points", lang.t("可用积分不足", "Not enough usable points"));
                        f
                    }
                    _ => FieldErrors::from_app(lang, &e, "points", &ADJUST_WORDING),
                }
            }
            Err(e) => return staff.fail(e),
        }
    }
    member_page(
        &state,
        &staff,
        &id,
        Extras {
            errors,
            adjust: values,
            ..Extras::default()
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

pub(super) struct PendingRow {
    id: String,
    member_id: String,
    member_code: String,
    kind: String,
    points: i64,
    reason: String,
    requested_by: String,
    at: String,
    status: String,
    decided_by: String,
    own: bool,
}

#[derive(Template)]
#[template(path = "members/adjustments.html")]
struct AdjustmentsPage {
    c: Chrome,
    rows: Vec<PendingRow>,
    may_decide: bool,
    errors: FieldErrors,
}

async fn adjustments_page(
    state: &ApiState,
    staff: &Staff,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let caller = staff.principal();
    let list = match points::adjustment_requests(&state.regulars, caller).await {
        Ok(list) => list,
        Err(e) => return staff.fail(e),
    };
    let rows = list
        .into_iter()
        .map(|r| PendingRow {
            own: r.requested_by == caller.actor,
            at: when(&r.requested_at),
            decided_by: or_dash(r.decided_by.as_deref()),
            id: r.id,
            member_id: r.member_id,
            member_code: r.member_code,
            kind: r.kind,
            points: r.points,
            reason: r.reason,
            requested_by: r.requested_by,
            status: r.status,
        })
        .collect();
    render(
        status,
        AdjustmentsPage {
            c: staff.chrome(),
            rows,
            may_decide: points::adjust_limit(caller.role).is_none()
                && staff.may(Action::PointsAdjust),
            errors,
        },
    )
}

async fn adjustments(State(state): State<ApiState>, staff: Staff) -> Response {
    adjustments_page(&state, &staff, FieldErrors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct DecideForm {
    csrf: String,
    #[serde(default)]
    decision: String,
}

async fn decide(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            let mut errors = FieldErrors::default();
            errors.add(
                "decision",
                staff.lang.t("请选择批准或驳回", "Choose approve or reject"),
            );
            return adjustments_page(&state, &staff, errors, StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        }
    };
    match points::decide_adjustment(&state.regulars, staff.principal(), &id, approve).await {
        Ok(_) => redirect("/console/members/adjustments"),
        Err(e @ (AppError::Unprocessable { .. } | AppError::Conflict { .. })) => {
            let mut errors = FieldErrors::default();
            let message = match &e {
                AppError::Unprocessable {
                    code: "own_request",
                    ..
                } => staff.lang.t(
                    "不能审批自己提交的调整",
                    "You cannot approve your own request",
                ),
                AppError::Unprocessable {
                    code: "insufficient_points",
                    ..
                } => staff.lang.t(
                    "会员可用积分不足，无法扣减",
                    "The member has too few usable points",
                ),
                _ => staff
                    .lang
                    .t("该申请已处理", "This request has already been decided"),
            };
            errors.add("decision", message);
            adjustments_page(&state, &staff, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => staff.fail(e),
    }
}
