//! Feedback and service recovery: a guest's words arrive from any channel,
//! are classified on arrival (with the reasons), and a complaint runs its
//! workflow — open → acknowledged → in progress → resolved → followed up →
//! closed — against a first-response deadline that the job escalates to the
//! region and then HQ when missed. Compensation goes through the points
//! ledger and coupons, within the role's limit or with approval above it.
//! Resolution tells the guest (an outbox event) and schedules the follow-up
//! visit (回访) in the service task queue.

use super::coupons::{self, CouponSource};
use super::ledger::{self, rfc3339, Posting, Recorded};
use super::points::{adjust_limit, idempotency_key, once};
use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal, Role};
use regulars_core::feedback::{
    check_photo, classify, valid_table, Category, ClassifierRules, FeedbackChannel, Severity,
    MAX_PHOTOS,
};
use regulars_core::ledger::{add_months_ms, EntryKind};
use regulars_core::tier::Tier;
use regulars_core::DomainError;
use regulars_store::feedback::{self as repo, CompensationRow, FeedbackRow, TaskRow};
use regulars_store::ledger as ledger_repo;
use regulars_store::{chain, commit, now_ms, orders, staff, Conn};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Setting: the classifier's phrase rules (JSON); absent = the defaults.
pub const RULES_SETTING: &str = "feedback.classifier";
/// Setting: first-response minutes per severity (JSON object).
pub const SLA_SETTING: &str = "feedback.sla_minutes";
/// Setting: days after resolution the follow-up visit is due.
pub const FOLLOW_UP_SETTING: &str = "feedback.follow_up_days";
const DEFAULT_SLA_MINUTES: i64 = 30;
const DEFAULT_FOLLOW_UP_DAYS: i64 = 3;
/// A refund note above this (fen) needs HQ unless the caller is HQ.
const REFUND_NOTE_LIMIT_FEN: i64 = 20_000;

/// Root causes a resolved complaint is filed under.
pub const ROOT_CAUSES: [&str; 9] = [
    "kitchen_process",
    "ingredient_supplier",
    "staff_training",
    "staffing_shortage",
    "equipment",
    "cleaning",
    "delivery_partner",
    "guest_expectation",
    "other",
];

// ---------------------------------------------------------------------------
// Arrival
// ---------------------------------------------------------------------------

/// `POST /api/v1/feedback` (API.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitFeedback {
    pub store_code: String,
    pub channel: FeedbackChannel,
    pub text: String,
    /// 1–5 stars.
    pub rating: Option<i64>,
    /// 0–10: how likely to recommend us.
    pub nps: Option<i64>,
    pub member_id: Option<String>,
    /// The order it is about, at this store.
    pub pos_order_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackReceipt {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    pub reasons: Vec<String>,
    /// When the first response is due; absent for praise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

/// Mainland mobile numbers in free text are masked before the text is
/// stored: guests write them into complaints, and no plaintext phone number
/// may reach the database.
pub fn mask_phones(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run == 0 {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let digits: String = chars[i..i + run].iter().collect();
        if run == 11 && digits.starts_with('1') {
            out.push_str(&format!("{}****{}", &digits[..3], &digits[7..]));
        } else {
            out.push_str(&digits);
        }
        i += run;
    }
    out
}

async fn classifier_rules(conn: &mut Conn) -> AppResult<ClassifierRules> {
    Ok(staff::get_setting(conn, RULES_SETTING)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

async fn sla_minutes(conn: &mut Conn, severity: Severity) -> AppResult<i64> {
    let table: BTreeMap<String, i64> = staff::get_setting(conn, SLA_SETTING)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    Ok(table
        .get(severity.as_str())
        .copied()
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_SLA_MINUTES))
}

async fn due_at(conn: &mut Conn, severity: Severity, from: i64) -> AppResult<Option<i64>> {
    if severity == Severity::None {
        return Ok(None);
    }
    Ok(Some(from + sla_minutes(conn, severity).await? * 60_000))
}

fn dedupe_key(app: &Regulars, input: &SubmitFeedback, text: &str, now: i64) -> String {
    // The same words about the same visit, the same day, are one submission.
    let day = rfc3339(app, now).get(..10).unwrap_or("").to_string();
    let canonical = serde_json::json!([
        input.store_code,
        input.channel,
        input.member_id,
        input.pos_order_id,
        text.split_whitespace().collect::<String>(),
        input.rating,
        input.nps,
        day
    ])
    .to_string();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `POST /api/v1/feedback`: staff, POS, call centre and H5 submissions.
pub async fn submit(
    app: &Regulars,
    caller: &Principal,
    input: SubmitFeedback,
) -> AppResult<FeedbackReceipt> {
    caller.check(Action::FeedbackSubmit, Some(&input.store_code))?;
    receive(app, &caller.actor, input, None, Vec::new()).await
}

/// Store one piece of feedback with its photos, classified, in one
/// transaction: a bad photo or a duplicate leaves nothing behind.
pub(crate) async fn receive(
    app: &Regulars,
    actor: &str,
    input: SubmitFeedback,
    table: Option<String>,
    photos: Vec<Vec<u8>>,
) -> AppResult<FeedbackReceipt> {
    let trimmed = input.text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 2000 {
        return Err(DomainError::invalid("text", "1 to 2000 characters").into());
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::invalid("text", "no control characters").into());
    }
    if input.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(DomainError::invalid("rating", "1 to 5 stars").into());
    }
    if input.nps.is_some_and(|n| !(0..=10).contains(&n)) {
        return Err(DomainError::invalid("nps", "0 to 10").into());
    }
    if photos.len() > MAX_PHOTOS {
        return Err(DomainError::invalid("photo", format!("at most {MAX_PHOTOS} photos")).into());
    }
    let photo_types = photos
        .iter()
        .enumerate()
        .map(|(i, p)| check_photo(i + 1, p))
        .collect::<Result<Vec<_>, _>>()?;
    let text = mask_phones(trimmed);
    let now = now_ms();
    let key = dedupe_key(app, &input, &text, now);
    let mut tx = app.db.begin().await?;
    let rules = classifier_rules(&mut tx).await?;
    let receipt = receive_in(
        app,
        &mut tx,
        actor,
        Arrival {
            input,
            text,
            table,
            photos: photos.into_iter().zip(photo_types).collect(),
            dedupe_key: key,
        },
        &rules,
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(receipt)
}

/// One checked arrival: the input with its text masked, photos typed, and
/// the key that recognises it again.
pub(crate) struct Arrival {
    pub input: SubmitFeedback,
    pub text: String,
    pub table: Option<String>,
    pub photos: Vec<(Vec<u8>, &'static str)>,
    pub dedupe_key: String,
}

/// Classify and store one arrival inside the caller's transaction.
pub(crate) async fn receive_in(
    app: &Regulars,
    tx: &mut Conn,
    actor: &str,
    arrival: Arrival,
    rules: &ClassifierRules,
    now: i64,
) -> AppResult<FeedbackReceipt> {
    let Arrival {
        input,
        text,
        table,
        photos,
        dedupe_key: key,
    } = arrival;
    if chain::get_store(tx, &input.store_code).await?.is_none() {
        return Err(AppError::unprocessable(
            "unknown_store",
            format!("no store {}", input.store_code),
        ));
    }
    if let Some(member) = &input.member_id {
        ledger_repo::read_member(tx, member)
            .await?
            .filter(|m| m.erased_at.is_none())
            .ok_or_else(|| {
                AppError::unprocessable("unknown_member", "no member has this member_id")
            })?;
    }
    let order_id = match &input.pos_order_id {
        Some(pos) => Some(
            orders::order_by_pos_id(tx, &input.store_code, pos)
                .await?
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "unknown_order",
                        format!("no order {pos} at store {}", input.store_code),
                    )
                })?
                .id,
        ),
        None => None,
    };
    if let Some(existing) = repo::feedback_by_dedupe(tx, &key).await? {
        return Err(AppError::Conflict {
            code: "duplicate_feedback",
            message: format!("this feedback was already received as {}", existing.id),
        });
    }
    let verdict = classify(
        rules,
        &text,
        input.rating.map(|r| r as u8),
        input.nps.map(|n| n as u8),
    );
    let due = due_at(tx, verdict.severity, now).await?;
    let complaint = verdict.severity != Severity::None;
    let row = FeedbackRow {
        id: uuid::Uuid::now_v7().to_string(),
        store_code: input.store_code.clone(),
        member_id: input.member_id.clone(),
        order_id,
        pos_order_id: input.pos_order_id.clone(),
        table_no: table.clone(),
        channel: input.channel.as_str().into(),
        text,
        rating: input.rating,
        nps: input.nps,
        category: verdict.category.as_str().into(),
        severity: verdict.severity.as_str().into(),
        reasons_json: serde_json::to_string(&verdict.reasons).unwrap_or_default(),
        auto_category: verdict.category.as_str().into(),
        auto_severity: verdict.severity.as_str().into(),
        status: if complaint { "open" } else { "closed" }.into(),
        escalation_level: 0,
        due_at: due,
        acknowledged_at: None,
        started_at: None,
        resolved_at: None,
        followed_up_at: None,
        closed_at: (!complaint).then_some(now),
        escalated_at: None,
        root_cause: None,
        recovered: None,
        resolution: None,
        dedupe_key: key,
        submitted_by: actor.to_string(),
        created_at: now,
        updated_at: now,
    };
    match repo::insert_feedback(tx, &row).await {
        Ok(()) => {}
        // Two identical submissions at once: the other one won.
        Err(e) if e.is_conflict_on("dedupe_key") => {
            return Err(AppError::Conflict {
                code: "duplicate_feedback",
                message: "this feedback was already received".into(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    for (bytes, content_type) in &photos {
        store_photo(tx, &row.id, bytes, content_type, now).await?;
    }
    repo::insert_event(
        tx,
        &row.id,
        "received",
        &verdict.reasons.join("；"),
        actor,
        now,
    )
    .await?;
    if let Some(due) = due {
        repo::insert_task(
            tx,
            &format!("complaint:{}", row.id),
            "complaint",
            Some(&row.store_code),
            row.member_id.as_deref(),
            Some(&row.id),
            &format!(
                "处理{}投诉（{}）",
                verdict.category.chinese_name(),
                verdict.severity.as_str()
            ),
            due,
            now,
        )
        .await?;
    }
    ledger_repo::emit(
        tx,
        if complaint {
            "complaint.opened"
        } else {
            "feedback.received"
        },
        row.member_id.as_deref(),
        &row.id,
        &serde_json::json!({"feedback_id": row.id, "store_code": row.store_code,
            "category": verdict.category, "severity": verdict.severity, "channel": input.channel,
            "due_at": due})
        .to_string(),
        now,
    )
    .await?;
    Ok(FeedbackReceipt {
        id: row.id,
        category: verdict.category,
        severity: verdict.severity,
        reasons: verdict.reasons,
        due_at: due.map(|d| rfc3339(app, d)),
    })
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    pub id: String,
    pub store_code: String,
    pub member_id: Option<String>,
    pub pos_order_id: Option<String>,
    pub channel: String,
    pub text: String,
    pub rating: Option<i64>,
    pub nps: Option<i64>,
    pub category: String,
    pub severity: String,
    pub reasons: Vec<String>,
    /// What the classifier said before any correction.
    pub auto_category: String,
    pub auto_severity: String,
    pub status: String,
    /// 0 store, 1 region, 2 HQ.
    pub escalation_level: i64,
    pub due_at: Option<String>,
    /// Whether the first response came (or is still due) after `due_at`.
    pub sla_breached: bool,
    pub created_at: String,
    pub acknowledged_at: Option<String>,
    pub started_at: Option<String>,
    pub resolved_at: Option<String>,
    pub followed_up_at: Option<String>,
    pub closed_at: Option<String>,
    pub escalated_at: Option<String>,
    pub root_cause: Option<String>,
    pub resolution: Option<String>,
    /// The follow-up's answer: was the guest won back?
    pub recovered: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensations: Vec<CompensationView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PhotoRef>,
    /// The table, for feedback through a table's QR code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoRef {
    pub id: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// `GET` it with the same key.
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub kind: String,
    pub detail: String,
    pub actor: String,
    pub at: String,
}

fn view(app: &Regulars, f: FeedbackRow) -> FeedbackView {
    let t = |v: Option<i64>| v.map(|ms| rfc3339(app, ms));
    // Breached: answered after the deadline, or not answered and either past
    // it now or already escalated for it.
    let sla_breached = f.due_at.is_some_and(|d| match f.acknowledged_at {
        Some(a) => a > d,
        None => now_ms() > d || f.escalation_level > 0,
    });
    FeedbackView {
        sla_breached,
        reasons: serde_json::from_str(&f.reasons_json).unwrap_or_default(),
        due_at: t(f.due_at),
        created_at: rfc3339(app, f.created_at),
        acknowledged_at: t(f.acknowledged_at),
        started_at: t(f.started_at),
        resolved_at: t(f.resolved_at),
        followed_up_at: t(f.followed_up_at),
        closed_at: t(f.closed_at),
        escalated_at: t(f.escalated_at),
        id: f.id,
        store_code: f.store_code,
        member_id: f.member_id,
        pos_order_id: f.pos_order_id,
        channel: f.channel,
        text: f.text,
        rating: f.rating,
        nps: f.nps,
        category: f.category,
        severity: f.severity,
        auto_category: f.auto_category,
        auto_severity: f.auto_severity,
        status: f.status,
        escalation_level: f.escalation_level,
        root_cause: f.root_cause,
        resolution: f.resolution,
        recovered: f.recovered.map(|r| r != 0),
        timeline: Vec::new(),
        compensations: Vec::new(),
        photos: Vec::new(),
        table: f.table_no,
    }
}

async fn load(
    conn: &mut Conn,
    caller: &Principal,
    id: &str,
    action: Action,
) -> AppResult<FeedbackRow> {
    let row = repo::get_feedback(conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "feedback" })?;
    caller.check(action, Some(&row.store_code))?;
    Ok(row)
}

/// `GET /api/v1/feedback/{id}`: the feedback, its timeline and compensations.
pub async fn get(app: &Regulars, caller: &Principal, id: &str) -> AppResult<FeedbackView> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    let row = load(&mut conn, caller, id, Action::FeedbackRead).await?;
    let events = repo::events_of(&mut conn, id).await?;
    let compensations = repo::compensations_of(&mut conn, id).await?;
    let photos = repo::photos_of(&mut conn, id).await?;
    let mut v = view(app, row);
    v.photos = photos.into_iter().map(photo_ref).collect();
    v.timeline = events
        .into_iter()
        .map(|e| TimelineEntry {
            kind: e.kind,
            detail: e.detail,
            actor: e.actor,
            at: rfc3339(app, e.at),
        })
        .collect();
    v.compensations = compensations
        .into_iter()
        .map(|c| compensation_view(app, c))
        .collect();
    Ok(v)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedbackQuery {
    pub store: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /api/v1/feedback`: newest first; store-scoped roles see their store.
pub async fn list(
    app: &Regulars,
    caller: &Principal,
    query: FeedbackQuery,
) -> AppResult<Vec<FeedbackView>> {
    caller.check(Action::FeedbackRead, query.store.as_deref())?;
    let store = caller.store_scope().or(query.store.as_deref());
    let mut conn = app.db.reader().await?;
    Ok(repo::list_feedback(
        &mut conn,
        store,
        query.status.as_deref(),
        query.limit.unwrap_or(100).clamp(1, 500),
    )
    .await?
    .into_iter()
    .map(|f| view(app, f))
    .collect())
}

// ---------------------------------------------------------------------------
// The workflow
// ---------------------------------------------------------------------------

/// `POST /api/v1/feedback/{id}/transitions`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// `acknowledged`, `in_progress`, `resolved`, `followed_up` or `closed`.
    pub to: String,
    /// What was said or done; required for `resolved` (the outcome the
    /// guest is told) and `followed_up` (what the guest said on the visit).
    pub note: Option<String>,
    /// Required for `resolved`: one of the root causes.
    pub root_cause: Option<String>,
    /// Required for `followed_up`: was the guest won back?
    pub satisfied: Option<bool>,
}

/// Where a complaint may go from each status. `resolved → in_progress`
/// reopens a complaint the guest was not satisfied with.
fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("open", "acknowledged" | "in_progress" | "resolved")
            | ("acknowledged", "in_progress" | "resolved")
            | ("in_progress", "resolved")
            | ("resolved", "followed_up" | "in_progress")
            | ("followed_up", "closed")
    )
}

pub async fn transition(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: Transition,
) -> AppResult<FeedbackView> {
    caller.check(Action::FeedbackHandle, None)?;
    let note = match &input.note {
        Some(n) => Some(regulars_core::member::parse_note("note", n)?),
        None => None,
    };
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let row = load(&mut tx, caller, id, Action::FeedbackHandle).await?;
    if !allowed(&row.status, &input.to) {
        return Err(AppError::Conflict {
            code: "invalid_transition",
            message: format!(
                "a complaint that is {} cannot become {}",
                row.status, input.to
            ),
        });
    }
    let (mut root_cause, mut resolution) = (None, None);
    match input.to.as_str() {
        "resolved" => {
            let cause = input.root_cause.as_deref().unwrap_or("");
            if !ROOT_CAUSES.contains(&cause) {
                return Err(DomainError::invalid(
                    "root_cause",
                    format!("one of {}", ROOT_CAUSES.join(", ")),
                )
                .into());
            }
            if note.is_none() {
                return Err(DomainError::invalid(
                    "note",
                    "say how it was resolved: the guest is told this",
                )
                .into());
            }
            root_cause = Some(cause.to_string());
            resolution = note.clone();
        }
        "followed_up" if note.is_none() || input.satisfied.is_none() => {
            return Err(DomainError::invalid(
                "note",
                "record what the guest said on the follow-up, and `satisfied`",
            )
            .into())
        }
        _ => {}
    }
    if !repo::move_status(
        &mut tx,
        id,
        &row.status,
        &input.to,
        now,
        root_cause.as_deref(),
        resolution.as_deref(),
    )
    .await?
    {
        return Err(AppError::Conflict {
            code: "invalid_transition",
            message: "the complaint changed meanwhile; reload it".into(),
        });
    }
    repo::insert_event(
        &mut tx,
        id,
        &input.to,
        note.as_deref().unwrap_or(""),
        &caller.actor,
        now,
    )
    .await?;
    match input.to.as_str() {
        "resolved" => {
            on_resolved(
                &mut tx,
                &row,
                resolution.as_deref().unwrap_or(""),
                &caller.actor,
                now,
            )
            .await?
        }
        "followed_up" => {
            repo::set_recovered(&mut tx, id, input.satisfied.unwrap_or(false)).await?;
            if let Some(task) = repo::open_task_of(&mut tx, id, "follow_up").await? {
                repo::complete_task(
                    &mut tx,
                    &task.id,
                    note.as_deref().unwrap_or(""),
                    &caller.actor,
                    now,
                )
                .await?;
            }
        }
        _ => {}
    }
    commit(tx).await?;
    get(app, caller, id).await
}

/// Resolution: the complaint task is done, the guest is told (an outbox
/// event their channel's sender delivers), and the follow-up visit is due
/// in a few days.
async fn on_resolved(
    tx: &mut Conn,
    row: &FeedbackRow,
    resolution: &str,
    actor: &str,
    now: i64,
) -> AppResult<()> {
    if let Some(task) = repo::open_task_of(tx, &row.id, "complaint").await? {
        repo::complete_task(tx, &task.id, resolution, actor, now).await?;
    }
    let days = staff::get_setting(tx, FOLLOW_UP_SETTING)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|d| (0..=60).contains(d))
        .unwrap_or(DEFAULT_FOLLOW_UP_DAYS);
    repo::insert_task(
        tx,
        &format!("follow_up:{}", row.id),
        "follow_up",
        Some(&row.store_code),
        row.member_id.as_deref(),
        Some(&row.id),
        "投诉处理后回访",
        now + days * 86_400_000,
        now,
    )
    .await?;
    ledger_repo::emit(
        tx,
        "complaint.resolved",
        row.member_id.as_deref(),
        &format!("{}:{now}", row.id),
        &serde_json::json!({"feedback_id": row.id, "member_id": row.member_id,
            "channel": row.channel, "store_code": row.store_code, "resolution": resolution})
        .to_string(),
        now,
    )
    .await?;
    Ok(())
}

/// `POST /api/v1/feedback/{id}/classification`: a person's correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub category: Category,
    pub severity: Severity,
    pub note: Option<String>,
}

pub async fn correct(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: Correction,
) -> AppResult<FeedbackView> {
    caller.check(Action::FeedbackHandle, None)?;
    if input.category == Category::FoodSafety && input.severity != Severity::Critical {
        return Err(DomainError::invalid("severity", "food safety is always critical").into());
    }
    if (input.category == Category::Praise) != (input.severity == Severity::None) {
        return Err(DomainError::invalid(
            "severity",
            "praise has severity none, and only praise does",
        )
        .into());
    }
    let note = match &input.note {
        Some(n) => Some(regulars_core::member::parse_note("note", n)?),
        None => None,
    };
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let row = load(&mut tx, caller, id, Action::FeedbackHandle).await?;
    // The new severity's deadline, counted from when the feedback arrived.
    let due = due_at(&mut tx, input.severity, row.created_at).await?;
    repo::set_classification(
        &mut tx,
        id,
        input.category.as_str(),
        input.severity.as_str(),
        due,
        now,
    )
    .await?;
    repo::insert_correction(
        &mut tx,
        id,
        &row.category,
        input.category.as_str(),
        &row.severity,
        input.severity.as_str(),
        note.as_deref(),
        &caller.actor,
        now,
    )
    .await?;
    repo::insert_event(
        &mut tx,
        id,
        "reclassified",
        &format!(
            "{}/{} → {}/{} {}",
            row.category,
            row.severity,
            input.category.as_str(),
            input.severity.as_str(),
            note.as_deref().unwrap_or("")
        ),
        &caller.actor,
        now,
    )
    .await?;
    commit(tx).await?;
    get(app, caller, id).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accuracy {
    pub feedback: i64,
    pub corrected: i64,
    /// Share of feedback whose category the classifier got right (as staff
    /// left it), 0–1.
    pub category_accuracy: f64,
    pub severity_accuracy: f64,
    pub by_category: Vec<CategoryAccuracy>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryAccuracy {
    pub category: String,
    pub feedback: i64,
    pub classifier_agreed: i64,
}

/// `GET /api/v1/feedback/accuracy`: the classifier measured by the
/// corrections staff made.
pub async fn accuracy(app: &Regulars, caller: &Principal) -> AppResult<Accuracy> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    let rows = repo::classifier_agreement(&mut conn).await?;
    let total: i64 = rows.iter().map(|r| r.1).sum();
    let share = |n: i64| {
        if total == 0 {
            1.0
        } else {
            n as f64 / total as f64
        }
    };
    Ok(Accuracy {
        feedback: total,
        corrected: rows.iter().map(|r| r.4).sum(),
        category_accuracy: share(rows.iter().map(|r| r.2).sum()),
        severity_accuracy: share(rows.iter().map(|r| r.3).sum()),
        by_category: rows
            .into_iter()
            .map(|r| CategoryAccuracy {
                category: r.0,
                feedback: r.1,
                classifier_agreed: r.2,
            })
            .collect(),
    })
}

/// `GET /api/v1/feedback/rules`
pub async fn rules(app: &Regulars, caller: &Principal) -> AppResult<ClassifierRules> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    classifier_rules(&mut conn).await
}

/// `PUT /api/v1/feedback/rules`: staff edit the phrase lists.
pub async fn put_rules(
    app: &Regulars,
    caller: &Principal,
    rules: ClassifierRules,
) -> AppResult<ClassifierRules> {
    caller.check(Action::RulesManage, None)?;
    rules.validate()?;
    let json = serde_json::to_string(&rules)
        .map_err(|e| AppError::unprocessable("invalid_rules", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    staff::put_setting(&mut tx, RULES_SETTING, &json).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "feedback_rules.put",
        "feedback_rules",
        "",
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    Ok(rules)
}

// ---------------------------------------------------------------------------
// Compensation
// ---------------------------------------------------------------------------

/// `POST /api/v1/feedback/{id}/compensations`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Compensate {
    /// `points`, `coupon` or `refund_note` (a refund made at the till,
    /// recorded here).
    pub kind: String,
    pub points: Option<i64>,
    pub template_id: Option<String>,
    pub amount_fen: Option<i64>,
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompensationView {
    pub id: String,
    pub feedback_id: String,
    pub kind: String,
    pub points: Option<i64>,
    pub template_id: Option<String>,
    pub amount_fen: Option<i64>,
    pub note: String,
    /// `granted`, `pending` (above the requester's limit) or `rejected`.
    pub status: String,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub coupon_code: Option<String>,
    pub created_at: String,
}

fn compensation_view(app: &Regulars, c: CompensationRow) -> CompensationView {
    CompensationView {
        id: c.id,
        feedback_id: c.feedback_id,
        kind: c.kind,
        points: c.points,
        template_id: c.template_id,
        amount_fen: c.amount_fen,
        note: c.note,
        status: c.status,
        requested_by: c.requested_by,
        approved_by: c.approved_by,
        coupon_code: c.coupon_code,
        created_at: rfc3339(app, c.created_at),
    }
}

/// May `role` give this compensation alone?
fn within_limit(role: Role, c: &CompensationRow) -> bool {
    match c.kind.as_str() {
        "points" => adjust_limit(role).is_none_or(|limit| c.points.unwrap_or(0) <= limit),
        "coupon" => regulars_core::access::allows(role, Action::CouponIssue),
        _ => role == Role::HqAdmin || c.amount_fen.unwrap_or(0) <= REFUND_NOTE_LIMIT_FEN,
    }
}

/// Give what a compensation promises: points through the ledger (kind
/// `compensation`, the complaint in the reason), a coupon through the
/// coupon engine (once per compensation). Answers the entry id and code.
async fn grant(
    app: &Regulars,
    tx: &mut Conn,
    c: &CompensationRow,
    actor: &str,
    approver: Option<&str>,
    now: i64,
) -> AppResult<(Option<i64>, Option<String>)> {
    let Some(member_id) = c.member_id.as_deref() else {
        return Ok((None, None));
    };
    match c.kind.as_str() {
        "points" => {
            let points = c.points.unwrap_or(0);
            let member = ledger_repo::lock_member(tx, member_id, now)
                .await?
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?;
            let config = app.loyalty.get(app).await?;
            let months = config
                .tiers
                .benefits(Tier::parse(&member.tier).unwrap_or(Tier::Regular))
                .expiry_months;
            let reason = format!("投诉补偿：{}", c.note);
            let entry = ledger::credit(
                tx,
                &Posting {
                    member_id,
                    kind: EntryKind::Compensation,
                    reason: &reason,
                    order_id: None,
                    reference: Some(&format!("feedback:{}", c.feedback_id)),
                    actor,
                    approver,
                    at: now,
                },
                points,
                now,
                add_months_ms(now, months),
            )
            .await?;
            ledger_repo::save_member(
                tx,
                member_id,
                member.points_balance + points,
                member.points_debt,
                &member.tier,
            )
            .await?;
            Ok((Some(entry), None))
        }
        "coupon" => {
            let coupon = coupons::issue_in(
                app,
                tx,
                member_id,
                c.template_id.as_deref().unwrap_or(""),
                CouponSource::Compensation,
                &c.id,
                now,
            )
            .await?;
            Ok((None, Some(coupon.code)))
        }
        _ => Ok((None, None)),
    }
}

pub async fn compensate(
    app: &Regulars,
    caller: &Principal,
    feedback_id: &str,
    key: Option<&str>,
    input: Compensate,
) -> AppResult<Recorded> {
    caller.check(Action::FeedbackHandle, None)?;
    let key = idempotency_key(key)?;
    let note = regulars_core::member::parse_note("note", &input.note)?;
    match input.kind.as_str() {
        "points" if input.points.is_some_and(|p| (1..=100_000).contains(&p)) => {}
        "points" => return Err(DomainError::invalid("points", "1 to 100000 points").into()),
        "coupon" if input.template_id.is_some() => {}
        "coupon" => {
            return Err(DomainError::invalid("template_id", "name the coupon template").into())
        }
        "refund_note"
            if input
                .amount_fen
                .is_some_and(|a| (1..=100_000_000).contains(&a)) => {}
        "refund_note" => {
            return Err(DomainError::invalid("amount_fen", "the amount refunded, in fen").into())
        }
        _ => return Err(DomainError::invalid("kind", "points, coupon or refund_note").into()),
    }
    let hash = ledger::request_hash(&input);
    let scope = format!("compensation:{feedback_id}");
    let caller2 = caller.clone();
    let app2 = app.clone();
    let feedback_id = feedback_id.to_string();
    once(app, &scope, &key, &hash, move |tx| {
        Box::pin(async move {
            let now = now_ms();
            let row = load(tx, &caller2, &feedback_id, Action::FeedbackHandle).await?;
            if input.kind != "refund_note" && row.member_id.is_none() {
                return Err(AppError::unprocessable(
                    "no_member",
                    "points and coupons go to a member; this feedback names none",
                ));
            }
            if input.kind == "coupon" {
                coupons::active_template(tx, input.template_id.as_deref().unwrap_or("")).await?;
            }
            let mut c = CompensationRow {
                id: uuid::Uuid::now_v7().to_string(),
                feedback_id: feedback_id.clone(),
                member_id: row.member_id.clone(),
                kind: input.kind.clone(),
                points: input.points,
                template_id: input.template_id.clone(),
                amount_fen: input.amount_fen,
                note: note.clone(),
                status: "pending".into(),
                requested_by: caller2.actor.clone(),
                requested_role: caller2.role.as_str().into(),
                approved_by: None,
                entry_id: None,
                coupon_code: None,
                created_at: now,
                decided_at: None,
            };
            if within_limit(caller2.role, &c) {
                let (entry, code) = grant(&app2, tx, &c, &caller2.actor, None, now).await?;
                c.status = "granted".into();
                c.entry_id = entry;
                c.coupon_code = code;
                c.decided_at = Some(now);
            }
            repo::insert_compensation(tx, &c).await?;
            repo::insert_event(
                tx,
                &feedback_id,
                if c.status == "granted" {
                    "compensated"
                } else {
                    "compensation_requested"
                },
                &format!("{} {}", c.kind, note),
                &caller2.actor,
                now,
            )
            .await?;
            ledger_repo::emit(
                tx,
                "complaint.compensation",
                row.member_id.as_deref(),
                &c.id,
                &serde_json::json!({"feedback_id": feedback_id, "compensation_id": c.id,
                    "kind": c.kind, "points": c.points, "status": c.status})
                .to_string(),
                now,
            )
            .await?;
            Ok(Recorded::first(&compensation_view(&app2, c))?.json)
        })
    })
    .await
}

/// `POST /api/v1/compensations/{id}/decision`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub approve: bool,
    pub note: Option<String>,
}

/// Approve or reject a compensation above its requester's limit. The
/// approver's own limit must cover it.
pub async fn decide(
    app: &Regulars,
    caller: &Principal,
    compensation_id: &str,
    input: Decision,
) -> AppResult<CompensationView> {
    caller.check(Action::FeedbackHandle, None)?;
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let c = repo::get_compensation(&mut tx, compensation_id)
        .await?
        .ok_or(AppError::NotFound {
            what: "compensation",
        })?;
    load(&mut tx, caller, &c.feedback_id, Action::FeedbackHandle).await?;
    if c.status != "pending" {
        return Err(AppError::Conflict {
            code: "already_decided",
            message: format!("this compensation is {}", c.status),
        });
    }
    if c.requested_by == caller.actor {
        return Err(AppError::unprocessable(
            "approver_is_requester",
            "someone other than the requester must approve",
        ));
    }
    if input.approve && !within_limit(caller.role, &c) {
        return Err(AppError::unprocessable(
            "over_approval_limit",
            format!("a {} may not approve this much; ask HQ", caller.role),
        ));
    }
    let (entry, code) = if input.approve {
        grant(app, &mut tx, &c, &c.requested_by, Some(&caller.actor), now).await?
    } else {
        (None, None)
    };
    let status = if input.approve { "granted" } else { "rejected" };
    if !repo::decide_compensation(
        &mut tx,
        &c.id,
        status,
        &caller.actor,
        entry,
        code.as_deref(),
        now,
    )
    .await?
    {
        return Err(AppError::Conflict {
            code: "already_decided",
            message: "this compensation was decided meanwhile".into(),
        });
    }
    repo::insert_event(
        &mut tx,
        &c.feedback_id,
        if input.approve {
            "compensation_approved"
        } else {
            "compensation_rejected"
        },
        input.note.as_deref().unwrap_or(""),
        &caller.actor,
        now,
    )
    .await?;
    let stored = repo::get_compensation(&mut tx, &c.id)
        .await?
        .ok_or(AppError::NotFound {
            what: "compensation",
        })?;
    commit(tx).await?;
    Ok(compensation_view(app, stored))
}

// ---------------------------------------------------------------------------
// Service tasks
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    /// `complaint`, `follow_up`, `care_call`, `birthday_call`.
    pub kind: String,
    pub store_code: Option<String>,
    pub member_id: Option<String>,
    pub feedback_id: Option<String>,
    pub title: String,
    pub due_at: String,
    pub overdue: bool,
    pub assignee: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub done_at: Option<String>,
}

fn task_view(app: &Regulars, t: TaskRow) -> TaskView {
    TaskView {
        overdue: t.status == "open" && t.due_at < now_ms(),
        due_at: rfc3339(app, t.due_at),
        done_at: t.done_at.map(|d| rfc3339(app, d)),
        id: t.id,
        kind: t.kind,
        store_code: t.store_code,
        member_id: t.member_id,
        feedback_id: t.feedback_id,
        title: t.title,
        assignee: t.assignee,
        status: t.status,
        outcome: t.outcome,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TaskQuery {
    pub store: Option<String>,
    /// Include done tasks.
    #[serde(default)]
    pub all: bool,
}

/// `GET /api/v1/tasks`: the queue, soonest due first.
pub async fn tasks(app: &Regulars, caller: &Principal, q: TaskQuery) -> AppResult<Vec<TaskView>> {
    caller.check(Action::FeedbackRead, q.store.as_deref())?;
    let store = caller.store_scope().or(q.store.as_deref());
    let mut conn = app.db.reader().await?;
    Ok(repo::list_tasks(&mut conn, store, !q.all, 500)
        .await?
        .into_iter()
        .map(|t| task_view(app, t))
        .collect())
}

/// `POST /api/v1/tasks/{id}/done`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDone {
    pub outcome: String,
}

pub async fn complete_task(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: TaskDone,
) -> AppResult<TaskView> {
    caller.check(Action::FeedbackHandle, None)?;
    let outcome = regulars_core::member::parse_note("outcome", &input.outcome)?;
    let mut tx = app.db.begin().await?;
    let task = repo::get_task(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "task" })?;
    caller.check(Action::FeedbackHandle, task.store_code.as_deref())?;
    if !repo::complete_task(&mut tx, id, &outcome, &caller.actor, now_ms()).await? {
        return Err(AppError::Conflict {
            code: "task_done",
            message: "this task is already done".into(),
        });
    }
    let done = repo::get_task(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "task" })?;
    commit(tx).await?;
    Ok(task_view(app, done))
}

// ---------------------------------------------------------------------------
// Escalation (run by the jobs)
// ---------------------------------------------------------------------------

/// Complaints with no first response by their deadline go to the region;
/// still none one more SLA period later, to HQ. Each step happens once and
/// leaves an event in the timeline and the outbox.
pub async fn escalate_overdue(app: &Regulars, now: i64) -> AppResult<u64> {
    let due = {
        let mut conn = app.db.reader().await?;
        repo::overdue(&mut conn, now, 1000).await?
    };
    let mut raised = 0;
    for (id, level, due_at) in due {
        let mut tx = app.db.begin().await?;
        let Some(row) = repo::get_feedback(&mut tx, &id).await? else {
            continue;
        };
        let severity = Severity::parse(&row.severity).unwrap_or(Severity::Medium);
        let period = sla_minutes(&mut tx, severity).await? * 60_000;
        // Level n+1 is reached n SLA periods after the deadline.
        let target = if now >= due_at + period { 2 } else { 1 };
        if target <= level {
            continue;
        }
        if !repo::escalate(&mut tx, &id, level, target, now).await? {
            continue;
        }
        let to = if target == 1 { "region" } else { "hq" };
        repo::insert_event(
            &mut tx,
            &id,
            "escalated",
            &format!(
                "首次响应超时，升级至{}",
                if target == 1 { "区域" } else { "总部" }
            ),
            "job",
            now,
        )
        .await?;
        ledger_repo::emit(
            &mut tx,
            "complaint.escalated",
            row.member_id.as_deref(),
            &format!("{id}:{target}"),
            &serde_json::json!({"feedback_id": id, "store_code": row.store_code, "to": to,
                "level": target, "severity": row.severity, "due_at": rfc3339(app, due_at)})
            .to_string(),
            now,
        )
        .await?;
        commit(tx).await?;
        raised += 1;
    }
    Ok(raised)
}

// ---------------------------------------------------------------------------
// Table QR codes: signed links, no login
// ---------------------------------------------------------------------------

/// `POST /api/v1/stores/{code}/table-links`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TableLinkRequest {
    /// As printed on the table: 1–16 letters, digits or `-`.
    pub table: String,
    /// Days the printed code stays valid (default 365, at most 1,096).
    pub valid_days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableLink {
    pub store_code: String,
    pub table: String,
    /// Put `path` (on this server's address) into the QR code.
    pub token: String,
    pub path: String,
    pub expires_at: String,
}

/// The link's signature: under its own `table_link` domain, over store,
/// table and expiry; 128 bits (a printed code lives for months).
fn sign_table(app: &Regulars, store: &str, table: &str, expires: i64) -> String {
    app.signature("table_link", &format!("{store}|{table}|{expires}"), 16)
}

/// The token of a table's link valid until `expires` (ms).
pub fn table_token(app: &Regulars, store_code: &str, table: &str, expires: i64) -> String {
    format!(
        "{store_code}~{table}~{expires}~{}",
        sign_table(app, store_code, table, expires)
    )
}

/// Make the signed link a table's QR code carries.
pub async fn table_link(
    app: &Regulars,
    caller: &Principal,
    store_code: &str,
    input: TableLinkRequest,
) -> AppResult<TableLink> {
    caller.check(Action::FeedbackHandle, Some(store_code))?;
    if !valid_table(&input.table) {
        return Err(DomainError::invalid("table", "1 to 16 letters, digits or -").into());
    }
    let days = input.valid_days.unwrap_or(365);
    if !(1..=1096).contains(&days) {
        return Err(DomainError::invalid("valid_days", "1 to 1096 days").into());
    }
    {
        let mut conn = app.db.reader().await?;
        if chain::get_store(&mut conn, store_code).await?.is_none() {
            return Err(AppError::NotFound { what: "store" });
        }
    }
    let expires = now_ms() + days * 86_400_000;
    let token = table_token(app, store_code, &input.table, expires);
    Ok(TableLink {
        store_code: store_code.to_string(),
        path: format!("/q/{token}"),
        table: input.table,
        token,
        expires_at: rfc3339(app, expires),
    })
}

/// The store and table a link names, if it is genuine and current.
pub fn open_table_link(app: &Regulars, token: &str) -> AppResult<(String, String)> {
    let forged = || AppError::BadLink {
        expired: false,
        message: "this table code is not valid; ask the staff for help".into(),
    };
    let parts: Vec<&str> = token.split('~').collect();
    let [store, table, expires, signature] = parts[..] else {
        return Err(forged());
    };
    let expires: i64 = expires.parse().map_err(|_| forged())?;
    if signature.len() != 32
        || !app.signature_matches(
            "table_link",
            &format!("{store}|{table}|{expires}"),
            signature,
        )
    {
        return Err(forged());
    }
    if expires < now_ms() {
        return Err(AppError::BadLink {
            expired: true,
            message: "this table code has expired; ask the staff for a new one".into(),
        });
    }
    Ok((store.to_string(), table.to_string()))
}

/// What a guest sends from the table page.
#[derive(Debug, Default)]
pub struct TableFeedback {
    pub text: String,
    pub rating: Option<i64>,
    pub nps: Option<i64>,
    /// Optional: links the feedback to the guest's membership; not stored.
    pub phone: Option<String>,
    pub photos: Vec<Vec<u8>>,
}

/// Feedback through a table's QR code: no login, the signed link names the
/// store and table. A phone, if given, finds the member; it is not kept.
pub async fn submit_from_table(
    app: &Regulars,
    token: &str,
    input: TableFeedback,
) -> AppResult<FeedbackReceipt> {
    let (store_code, table) = open_table_link(app, token)?;
    let member_id = match input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(phone) => {
            let phone = regulars_core::phone::Phone::parse(phone)?;
            let mut conn = app.db.reader().await?;
            regulars_store::members::find_by_phone_index(&mut conn, &app.phone_index(&phone))
                .await?
                .filter(|m| m.erased_at.is_none())
                .map(|m| m.id)
        }
        None => None,
    };
    receive(
        app,
        &format!("table:{store_code}/{table}"),
        SubmitFeedback {
            store_code,
            channel: FeedbackChannel::TableQr,
            text: input.text,
            rating: input.rating,
            nps: input.nps,
            member_id,
            pos_order_id: None,
        },
        Some(table),
        input.photos,
    )
    .await
}

/// `GET /api/v1/feedback/photos/{id}`: `(content type, bytes)`.
pub async fn photo(app: &Regulars, caller: &Principal, id: &str) -> AppResult<(String, Vec<u8>)> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    let photo = repo::get_photo(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "photo" })?;
    load(&mut conn, caller, &photo.feedback_id, Action::FeedbackRead).await?;
    Ok((photo.content_type, photo.data))
}

// ---------------------------------------------------------------------------
// Imported platform reviews
// ---------------------------------------------------------------------------

/// Platforms a review may come from.
pub const PLATFORMS: [&str; 5] = ["dianping", "meituan", "eleme", "douyin", "other"];
/// The header an import file starts with.
pub const IMPORT_HEADER: [&str; 6] = [
    "store_code",
    "platform",
    "review_id",
    "rating",
    "text",
    "reviewed_at",
];
const MAX_IMPORT_ROWS: usize = 50_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub rows: usize,
    pub imported: usize,
    /// Reviews imported before (same platform and review id): skipped.
    pub already_imported: usize,
    pub complaints: usize,
    pub critical: usize,
    pub by_category: BTreeMap<String, usize>,
}

/// `POST /api/v1/feedback/import` (CSV): platform reviews, all or nothing.
/// Every line is checked first; any bad line refuses the whole file with
/// each line's number and reason, and nothing is stored.
pub async fn import_reviews(
    app: &Regulars,
    caller: &Principal,
    csv_text: &str,
) -> AppResult<ImportReport> {
    caller.check(Action::FeedbackSubmit, None)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| import_error(vec![format!("line 1: {e}")]))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if header != IMPORT_HEADER {
        return Err(import_error(vec![format!(
            "line 1: the header must be `{}`",
            IMPORT_HEADER.join(",")
        )]));
    }
    let stores: std::collections::HashSet<String> = {
        let mut conn = app.db.reader().await?;
        chain::list_stores(&mut conn, None)
            .await?
            .into_iter()
            .map(|s| s.code)
            .collect()
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        if rows.len() + errors.len() >= MAX_IMPORT_ROWS {
            errors.push(format!(
                "line {line}: at most {MAX_IMPORT_ROWS} reviews per file"
            ));
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field = |n: usize| record.get(n).unwrap_or("").trim().to_string();
        let (store, platform, review_id, rating, text, reviewed_at) =
            (field(0), field(1), field(2), field(3), field(4), field(5));
        let mut reasons = Vec::new();
        if !stores.contains(&store) {
            reasons.push(format!("unknown store `{store}`"));
        } else if caller.check(Action::FeedbackSubmit, Some(&store)).is_err() {
            reasons.push(format!("store {store} is not yours"));
        }
        if !PLATFORMS.contains(&platform.as_str()) {
            reasons.push(format!("platform must be one of {}", PLATFORMS.join(", ")));
        }
        if review_id.is_empty() || review_id.len() > 64 {
            reasons.push("review_id must be 1 to 64 characters".into());
        }
        let rating = match rating.as_str() {
            "" => None,
            r => match r.parse::<i64>() {
                Ok(n) if (1..=5).contains(&n) => Some(n),
                _ => {
                    reasons.push(format!("rating `{r}` is not 1 to 5"));
                    None
                }
            },
        };
        if text.is_empty() || text.chars().count() > 2000 {
            reasons.push("text must be 1 to 2000 characters".into());
        }
        if !reviewed_at.is_empty()
            && chrono::NaiveDate::parse_from_str(&reviewed_at, "%Y-%m-%d").is_err()
            && chrono::DateTime::parse_from_rfc3339(&reviewed_at).is_err()
        {
            reasons.push(format!(
                "reviewed_at `{reviewed_at}` is not YYYY-MM-DD or RFC 3339"
            ));
        }
        if let Some(first) = seen.insert((platform.clone(), review_id.clone()), line) {
            reasons.push(format!("repeats the review of line {first}"));
        }
        if reasons.is_empty() {
            rows.push((store, platform, review_id, rating, text, reviewed_at));
        } else {
            errors.push(format!("line {line}: {}", reasons.join("; ")));
        }
    }
    if !errors.is_empty() {
        return Err(import_error(errors));
    }
    let now = now_ms();
    let mut report = ImportReport {
        rows: rows.len(),
        imported: 0,
        already_imported: 0,
        complaints: 0,
        critical: 0,
        by_category: BTreeMap::new(),
    };
    let mut tx = app.db.begin().await?;
    let rules = classifier_rules(&mut tx).await?;
    for (store, platform, review_id, rating, text, reviewed_at) in rows {
        let key = format!("review:{platform}:{review_id}");
        if repo::feedback_by_dedupe(&mut tx, &key).await?.is_some() {
            report.already_imported += 1;
            continue;
        }
        let receipt = receive_in(
            app,
            &mut tx,
            &format!("{}:import", caller.actor),
            Arrival {
                input: SubmitFeedback {
                    store_code: store,
                    channel: FeedbackChannel::ReviewImport,
                    text: text.clone(),
                    rating,
                    nps: None,
                    member_id: None,
                    pos_order_id: None,
                },
                text: mask_phones(&text),
                table: None,
                photos: Vec::new(),
                dedupe_key: key,
            },
            &rules,
            now,
        )
        .await?;
        repo::insert_event(
            &mut tx,
            &receipt.id,
            "imported",
            &format!("{platform} review {review_id} {reviewed_at}"),
            &caller.actor,
            now,
        )
        .await?;
        report.imported += 1;
        if receipt.severity != Severity::None {
            report.complaints += 1;
        }
        if receipt.severity == Severity::Critical {
            report.critical += 1;
        }
        *report
            .by_category
            .entry(receipt.category.as_str().to_string())
            .or_default() += 1;
    }
    commit(tx).await?;
    Ok(report)
}

fn import_error(lines: Vec<String>) -> AppError {
    let shown: Vec<&String> = lines.iter().take(20).collect();
    let more = lines.len().saturating_sub(shown.len());
    let mut message = format!(
        "{} bad line(s); nothing was imported: {}",
        lines.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    if more > 0 {
        message.push_str(&format!(" | … and {more} more"));
    }
    AppError::unprocessable("invalid_import", message)
}

// ---------------------------------------------------------------------------
// Staff and store KPIs
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
pub struct KpiQuery {
    /// Window in days ending now (default 30, at most 365).
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Kpis {
    pub days: i64,
    pub stores: Vec<KpiLine>,
    pub staff: Vec<KpiLine>,
}

/// One store's or one staff member's service-recovery figures.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct KpiLine {
    /// Store code, or the staff user / key (`user:…`, `key:…`).
    pub key: String,
    pub complaints: usize,
    /// Complaints answered by their first-response deadline, 0–1.
    pub sla_met: Option<f64>,
    pub avg_first_response_minutes: Option<f64>,
    pub resolved: usize,
    pub avg_resolution_hours: Option<f64>,
    pub followed_up: usize,
    /// Of those followed up, the share won back ("satisfaction after
    /// recovery"), 0–1.
    pub recovered: Option<f64>,
    /// Members registered (staff lines only).
    pub sign_ups: i64,
}

#[derive(Default)]
struct KpiTally {
    complaints: usize,
    due: usize,
    met: usize,
    response_ms: Vec<i64>,
    resolution_ms: Vec<i64>,
    followed: usize,
    won: usize,
}

impl KpiTally {
    fn add(&mut self, r: &repo::KpiRow) {
        self.complaints += 1;
        if let Some(due) = r.due_at {
            self.due += 1;
            // Escalated means the deadline passed unanswered, whatever came after.
            if r.escalation_level == 0 && r.acknowledged_at.is_some_and(|a| a <= due) {
                self.met += 1;
            }
        }
        if let Some(a) = r.acknowledged_at {
            self.response_ms.push(a - r.created_at);
        }
        if let Some(done) = r.resolved_at {
            self.resolution_ms.push(done - r.created_at);
        }
        if let Some(won) = r.recovered {
            self.followed += 1;
            self.won += usize::from(won != 0);
        }
    }

    fn line(self, key: String, sign_ups: i64) -> KpiLine {
        let avg = |v: &[i64], unit: f64| {
            (!v.is_empty()).then(|| {
                (v.iter().sum::<i64>() as f64 / v.len() as f64 / unit * 10.0).round() / 10.0
            })
        };
        let share = |n: usize, of: usize| {
            (of > 0).then(|| (n as f64 / of as f64 * 1000.0).round() / 1000.0)
        };
        KpiLine {
            key,
            complaints: self.complaints,
            sla_met: share(self.met, self.due),
            avg_first_response_minutes: avg(&self.response_ms, 60_000.0),
            resolved: self.resolution_ms.len(),
            avg_resolution_hours: avg(&self.resolution_ms, 3_600_000.0),
            followed_up: self.followed,
            recovered: share(self.won, self.followed),
            sign_ups,
        }
    }
}

/// `GET /api/v1/feedback/kpis`: per store and per staff member — SLA met,
/// response and resolution times, satisfaction after recovery, sign-ups.
pub async fn kpis(app: &Regulars, caller: &Principal, query: KpiQuery) -> AppResult<Kpis> {
    caller.check(Action::FeedbackRead, None)?;
    let days = query.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(DomainError::invalid("days", "1 to 365").into());
    }
    let now = now_ms();
    let from = now - days * 86_400_000;
    let mut conn = app.db.reader().await?;
    let rows = repo::complaints_between(&mut conn, from, now + 1).await?;
    let sign_ups: BTreeMap<String, i64> = repo::sign_ups_between(&mut conn, from, now + 1)
        .await?
        .into_iter()
        .collect();
    let scope = caller.store_scope();
    let mut stores: BTreeMap<String, KpiTally> = BTreeMap::new();
    let mut staff: BTreeMap<String, KpiTally> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| scope.is_none_or(|s| s == r.store_code))
    {
        stores.entry(r.store_code.clone()).or_default().add(r);
        if let Some(who) = &r.resolver {
            staff.entry(who.clone()).or_default().add(r);
        }
    }
    let mut staff_lines: Vec<KpiLine> = staff
        .into_iter()
        .map(|(who, t)| {
            let n = sign_ups.get(&who).copied().unwrap_or(0);
            t.line(who, n)
        })
        .collect();
    if scope.is_none() {
        for (who, n) in &sign_ups {
            if !staff_lines.iter().any(|l| &l.key == who) {
                staff_lines.push(KpiLine {
                    key: who.clone(),
                    sign_ups: *n,
                    ..KpiLine::default()
                });
            }
        }
    }
    staff_lines.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Kpis {
        days,
        stores: stores.into_iter().map(|(k, t)| t.line(k, 0)).collect(),
        staff: staff_lines,
    })
}

/// `POST /api/v1/feedback/{id}/photos`: staff, the call centre or the
/// member H5 attach photos to feedback already received (at most three per
/// feedback in all), checked like the table page's, all or none.
pub async fn attach_photos(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    photos: Vec<Vec<u8>>,
) -> AppResult<Vec<PhotoRef>> {
    caller.check(Action::FeedbackSubmit, None)?;
    if photos.is_empty() {
        return Err(DomainError::invalid("photo", "send at least one photo").into());
    }
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let row = load(&mut tx, caller, id, Action::FeedbackSubmit).await?;
    let already = repo::photos_of(&mut tx, &row.id).await?.len();
    if already + photos.len() > MAX_PHOTOS {
        return Err(DomainError::invalid(
            "photo",
            format!("at most {MAX_PHOTOS} photos per feedback; it has {already}"),
        )
        .into());
    }
    for (i, bytes) in photos.iter().enumerate() {
        let content_type = check_photo(already + i + 1, bytes)?;
        store_photo(&mut tx, &row.id, bytes, content_type, now).await?;
    }
    repo::insert_event(
        &mut tx,
        id,
        "photos",
        &format!("{} photo(s)", photos.len()),
        &caller.actor,
        now,
    )
    .await?;
    let refs = repo::photos_of(&mut tx, id)
        .await?
        .into_iter()
        .map(photo_ref)
        .collect();
    commit(tx).await?;
    Ok(refs)
}

async fn store_photo(
    tx: &mut Conn,
    feedback_id: &str,
    bytes: &[u8],
    content_type: &str,
    now: i64,
) -> AppResult<()> {
    repo::insert_photo(
        tx,
        &repo::PhotoRow {
            id: uuid::Uuid::now_v7().to_string(),
            feedback_id: feedback_id.to_string(),
            content_type: content_type.to_string(),
            size_bytes: bytes.len() as i64,
            sha256: Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            data: bytes.to_vec(),
            created_at: now,
        },
    )
    .await?;
    Ok(())
}

fn photo_ref((id, content_type, size_bytes): (String, String, i64)) -> PhotoRef {
    PhotoRef {
        path: format!("/api/v1/feedback/photos/{id}"),
        id,
        content_type,
        size_bytes,
    }
}
