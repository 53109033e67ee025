//! Feedback rows, the complaint timeline, classifier corrections,
//! compensations and the service task queue. The workflow's rules live in
//! the server's `app::feedback`; these are the rows and the conditional
//! updates that make each step happen once.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct FeedbackRow {
    pub id: String,
    pub store_code: String,
    pub member_id: Option<String>,
    pub order_id: Option<String>,
    pub pos_order_id: Option<String>,
    pub table_no: Option<String>,
    pub channel: String,
    pub text: String,
    pub rating: Option<i64>,
    pub nps: Option<i64>,
    pub category: String,
    pub severity: String,
    pub reasons_json: String,
    pub auto_category: String,
    pub auto_severity: String,
    pub status: String,
    pub escalation_level: i64,
    pub due_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub started_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub followed_up_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub escalated_at: Option<i64>,
    pub root_cause: Option<String>,
    pub recovered: Option<i64>,
    pub resolution: Option<String>,
    pub dedupe_key: String,
    pub submitted_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, store_code, member_id, order_id, pos_order_id, table_no, channel, text, rating, \
    nps, category, severity, reasons_json, auto_category, auto_severity, status, escalation_level, \
    due_at, acknowledged_at, started_at, resolved_at, followed_up_at, closed_at, escalated_at, \
    root_cause, recovered, resolution, dedupe_key, submitted_by, created_at, updated_at";

pub async fn insert_feedback(conn: &mut AnyConnection, f: &FeedbackRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO feedback ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)"
    ))
    .bind(&f.id)
    .bind(&f.store_code)
    .bind(&f.member_id)
    .bind(&f.order_id)
    .bind(&f.pos_order_id)
    .bind(&f.table_no)
    .bind(&f.channel)
    .bind(&f.text)
    .bind(f.rating)
    .bind(f.nps)
    .bind(&f.category)
    .bind(&f.severity)
    .bind(&f.reasons_json)
    .bind(&f.auto_category)
    .bind(&f.auto_severity)
    .bind(&f.status)
    .bind(f.escalation_level)
    .bind(f.due_at)
    .bind(f.acknowledged_at)
    .bind(f.started_at)
    .bind(f.resolved_at)
    .bind(f.followed_up_at)
    .bind(f.closed_at)
    .bind(f.escalated_at)
    .bind(&f.root_cause)
    .bind(f.recovered)
    .bind(&f.resolution)
    .bind(&f.dedupe_key)
    .bind(&f.submitted_by)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_feedback(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<FeedbackRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM feedback WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .store()
}

pub async fn feedback_by_dedupe(
    conn: &mut AnyConnection,
    key: &str,
) -> StoreResult<Option<FeedbackRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM feedback WHERE dedupe_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await
    .store()
}

/// Newest first; `store` and `status` narrow the list when given.
pub async fn list_feedback(
    conn: &mut AnyConnection,
    store: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<FeedbackRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM feedback WHERE ($1 = '' OR store_code = $1) \
         AND ($2 = '' OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(store.unwrap_or(""))
    .bind(status.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Which timestamp column a status sets. A fixed list, never input.
fn stamp_column(status: &str) -> Option<&'static str> {
    Some(match status {
        "acknowledged" => "acknowledged_at",
        "in_progress" => "started_at",
        "resolved" => "resolved_at",
        "followed_up" => "followed_up_at",
        "closed" => "closed_at",
        _ => return None,
    })
}

/// Move a complaint from `from` to `to`, stamping `to`'s time (and the first
/// response, if none yet). False when it is no longer in `from`.
pub async fn move_status(
    conn: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    at: i64,
    root_cause: Option<&str>,
    resolution: Option<&str>,
) -> StoreResult<bool> {
    let column = stamp_column(to).unwrap_or("updated_at");
    // Any step counts as the first response; PostgreSQL refuses a column
    // assigned twice, so acknowledging sets it only once.
    let first_response = if column == "acknowledged_at" {
        ""
    } else {
        "acknowledged_at = COALESCE(acknowledged_at, $4), "
    };
    let done = sqlx::query(&format!(
        "UPDATE feedback SET status = $3, {column} = $4, updated_at = $4, {first_response}\
         root_cause = COALESCE($5, root_cause), resolution = COALESCE($6, resolution) \
         WHERE id = $1 AND status = $2"
    ))
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(at)
    .bind(root_cause)
    .bind(resolution)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_classification(
    conn: &mut AnyConnection,
    id: &str,
    category: &str,
    severity: &str,
    due_at: Option<i64>,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE feedback SET category = $2, severity = $3, due_at = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(category)
    .bind(severity)
    .bind(due_at)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn insert_event(
    conn: &mut AnyConnection,
    feedback_id: &str,
    kind: &str,
    detail: &str,
    actor: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO feedback_events (id, feedback_id, kind, detail, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(feedback_id)
    .bind(kind)
    .bind(detail)
    .bind(actor)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub kind: String,
    pub detail: String,
    pub actor: String,
    pub at: i64,
}

pub async fn events_of(conn: &mut AnyConnection, feedback_id: &str) -> StoreResult<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT kind, detail, actor, at FROM feedback_events WHERE feedback_id = $1 ORDER BY at, id",
    )
    .bind(feedback_id)
    .fetch_all(conn)
    .await
    .store()
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_correction(
    conn: &mut AnyConnection,
    feedback_id: &str,
    from_category: &str,
    to_category: &str,
    from_severity: &str,
    to_severity: &str,
    note: Option<&str>,
    actor: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO feedback_corrections (id, feedback_id, from_category, to_category, \
         from_severity, to_severity, note, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(feedback_id)
    .bind(from_category)
    .bind(to_category)
    .bind(from_severity)
    .bind(to_severity)
    .bind(note)
    .bind(actor)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Per final category: `(category, feedback, auto category agreed, auto
/// severity agreed, corrected by staff)`.
pub async fn classifier_agreement(
    conn: &mut AnyConnection,
) -> StoreResult<Vec<(String, i64, i64, i64, i64)>> {
    sqlx::query_as(
        "SELECT f.category, CAST(COUNT(*) AS BIGINT), \
         CAST(SUM(CASE WHEN f.auto_category = f.category THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN f.auto_severity = f.severity THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN EXISTS (SELECT 1 FROM feedback_corrections c WHERE c.feedback_id = f.id) \
           THEN 1 ELSE 0 END) AS BIGINT) \
         FROM feedback f GROUP BY f.category ORDER BY f.category",
    )
    .fetch_all(conn)
    .await
    .store()
}

/// Open complaints whose first response is overdue and that can still go
/// up a level: `(id, level, due_at)`.
pub async fn overdue(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<(String, i64, i64)>> {
    sqlx::query_as(
        "SELECT id, escalation_level, due_at FROM feedback \
         WHERE status = 'open' AND due_at IS NOT NULL AND due_at <= $1 AND escalation_level < 2 \
         ORDER BY due_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Raise a complaint from `from_level` to `to_level`, once.
pub async fn escalate(
    conn: &mut AnyConnection,
    id: &str,
    from_level: i64,
    to_level: i64,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE feedback SET escalation_level = $3, escalated_at = $4, updated_at = $4 \
         WHERE id = $1 AND escalation_level = $2 AND status = 'open'",
    )
    .bind(id)
    .bind(from_level)
    .bind(to_level)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct CompensationRow {
    pub id: String,
    pub feedback_id: String,
    pub member_id: Option<String>,
    pub kind: String,
    pub points: Option<i64>,
    pub template_id: Option<String>,
    pub amount_fen: Option<i64>,
    pub note: String,
    pub status: String,
    pub requested_by: String,
    pub requested_role: String,
    pub approved_by: Option<String>,
    pub entry_id: Option<i64>,
    pub coupon_code: Option<String>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

const COMPENSATION_COLUMNS: &str = "id, feedback_id, member_id, kind, points, template_id, \
    amount_fen, note, status, requested_by, requested_role, approved_by, entry_id, coupon_code, \
    created_at, decided_at";

pub async fn insert_compensation(conn: &mut AnyConnection, c: &CompensationRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO compensations ({COMPENSATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&c.id)
    .bind(&c.feedback_id)
    .bind(&c.member_id)
    .bind(&c.kind)
    .bind(c.points)
    .bind(&c.template_id)
    .bind(c.amount_fen)
    .bind(&c.note)
    .bind(&c.status)
    .bind(&c.requested_by)
    .bind(&c.requested_role)
    .bind(&c.approved_by)
    .bind(c.entry_id)
    .bind(&c.coupon_code)
    .bind(c.created_at)
    .bind(c.decided_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_compensation(
    conn: &mut AnyConnection,
    id: &str,
) -> StoreResult<Option<CompensationRow>> {
    sqlx::query_as(&format!(
        "SELECT {COMPENSATION_COLUMNS} FROM compensations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn compensations_of(
    conn: &mut AnyConnection,
    feedback_id: &str,
) -> StoreResult<Vec<CompensationRow>> {
    sqlx::query_as(&format!(
        "SELECT {COMPENSATION_COLUMNS} FROM compensations WHERE feedback_id = $1 ORDER BY created_at, id"
    ))
    .bind(feedback_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Decide a pending compensation, once.
pub async fn decide_compensation(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    approver: &str,
    entry_id: Option<i64>,
    coupon_code: Option<&str>,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE compensations SET status = $2, approved_by = $3, entry_id = $4, coupon_code = $5, \
         decided_at = $6 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(approver)
    .bind(entry_id)
    .bind(coupon_code)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub kind: String,
    pub store_code: Option<String>,
    pub member_id: Option<String>,
    pub feedback_id: Option<String>,
    pub title: String,
    pub due_at: i64,
    pub assignee: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

const TASK_COLUMNS: &str = "id, kind, store_code, member_id, feedback_id, title, due_at, \
    assignee, status, outcome, created_at, done_at";

/// Add a task unless `once_key` already made one; true when added.
#[allow(clippy::too_many_arguments)]
pub async fn insert_task(
    conn: &mut AnyConnection,
    once_key: &str,
    kind: &str,
    store_code: Option<&str>,
    member_id: Option<&str>,
    feedback_id: Option<&str>,
    title: &str,
    due_at: i64,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO service_tasks (id, kind, store_code, member_id, feedback_id, title, due_at, \
         status, once_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) \
         ON CONFLICT (once_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(kind)
    .bind(store_code)
    .bind(member_id)
    .bind(feedback_id)
    .bind(title)
    .bind(due_at)
    .bind(once_key)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// The queue: soonest due first; `store` narrows it, `open_only` hides done.
pub async fn list_tasks(
    conn: &mut AnyConnection,
    store: Option<&str>,
    open_only: bool,
    limit: i64,
) -> StoreResult<Vec<TaskRow>> {
    sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM service_tasks WHERE ($1 = '' OR store_code = $1) \
         AND ($2 = 0 OR status = 'open') ORDER BY due_at, id LIMIT $3"
    ))
    .bind(store.unwrap_or(""))
    .bind(i64::from(open_only))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

pub async fn get_task(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<TaskRow>> {
    sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM service_tasks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn open_task_of(
    conn: &mut AnyConnection,
    feedback_id: &str,
    kind: &str,
) -> StoreResult<Option<TaskRow>> {
    sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM service_tasks WHERE feedback_id = $1 AND kind = $2 AND status = 'open'"
    ))
    .bind(feedback_id)
    .bind(kind)
    .fetch_optional(conn)
    .await
    .store()
}

/// Mark a task done with its outcome, once.
pub async fn complete_task(
    conn: &mut AnyConnection,
    id: &str,
    outcome: &str,
    actor: &str,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE service_tasks SET status = 'done', outcome = $2, assignee = COALESCE(assignee, $3), \
         done_at = $4 WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(outcome)
    .bind(actor)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct PhotoRow {
    pub id: String,
    pub feedback_id: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub data: Vec<u8>,
    pub created_at: i64,
}

pub async fn insert_photo(conn: &mut AnyConnection, p: &PhotoRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO feedback_photos (id, feedback_id, content_type, size_bytes, sha256, data, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&p.id)
    .bind(&p.feedback_id)
    .bind(&p.content_type)
    .bind(p.size_bytes)
    .bind(&p.sha256)
    .bind(&p.data)
    .bind(p.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_photo(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<PhotoRow>> {
    sqlx::query_as(
        "SELECT id, feedback_id, content_type, size_bytes, sha256, data, created_at \
         FROM feedback_photos WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

/// `(id, content_type, size_bytes)` of a feedback's photos.
pub async fn photos_of(
    conn: &mut AnyConnection,
    feedback_id: &str,
) -> StoreResult<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT id, content_type, size_bytes FROM feedback_photos WHERE feedback_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(feedback_id)
    .fetch_all(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct SurveyRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub questions_json: String,
    pub active: i64,
    pub created_at: i64,
}

pub async fn insert_survey(conn: &mut AnyConnection, s: &SurveyRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO surveys (id, name, kind, questions_json, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.kind)
    .bind(&s.questions_json)
    .bind(s.active)
    .bind(s.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_survey(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<SurveyRow>> {
    sqlx::query_as(
        "SELECT id, name, kind, questions_json, active, created_at FROM surveys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn list_surveys(conn: &mut AnyConnection) -> StoreResult<Vec<SurveyRow>> {
    sqlx::query_as(
        "SELECT id, name, kind, questions_json, active, created_at FROM surveys ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await
    .store()
}

pub struct NewResponse<'a> {
    pub id: &'a str,
    pub survey_id: &'a str,
    pub member_id: &'a str,
    pub store_code: &'a str,
    pub period_key: &'a str,
    pub nps: Option<i64>,
    pub answers_json: &'a str,
    pub feedback_id: Option<&'a str>,
    pub at: i64,
}

/// Store an answer unless this member answered this survey for this period;
/// true when stored.
pub async fn insert_response(conn: &mut AnyConnection, r: &NewResponse<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO survey_responses (id, survey_id, member_id, store_code, period_key, nps, \
         answers_json, feedback_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (survey_id, member_id, period_key) DO NOTHING",
    )
    .bind(r.id)
    .bind(r.survey_id)
    .bind(r.member_id)
    .bind(r.store_code)
    .bind(r.period_key)
    .bind(r.nps)
    .bind(r.answers_json)
    .bind(r.feedback_id)
    .bind(r.at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// `(store_code, region, created_at, nps, answers_json)` of a survey's
/// answers in `[from, to)`.
pub async fn responses_between(
    conn: &mut AnyConnection,
    survey_id: &str,
    from: i64,
    to: i64,
) -> StoreResult<Vec<(String, String, i64, Option<i64>, String)>> {
    sqlx::query_as(
        "SELECT r.store_code, g.name, r.created_at, r.nps, r.answers_json \
         FROM survey_responses r JOIN stores s ON s.code = r.store_code \
         JOIN regions g ON g.code = s.region_code \
         WHERE r.survey_id = $1 AND r.created_at >= $2 AND r.created_at < $3",
    )
    .bind(survey_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .store()
}

/// Per store in `[from, to)`: `(store_code, region, orders, complaints)`.
pub async fn complaint_counts(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> StoreResult<Vec<(String, String, i64, i64)>> {
    sqlx::query_as(
        "SELECT s.code, g.name, \
         COALESCE((SELECT CAST(COUNT(*) AS BIGINT) FROM orders o WHERE o.store_code = s.code \
           AND o.occurred_at >= $1 AND o.occurred_at < $2), 0), \
         COALESCE((SELECT CAST(COUNT(*) AS BIGINT) FROM feedback f WHERE f.store_code = s.code \
           AND f.severity <> 'none' AND f.created_at >= $1 AND f.created_at < $2), 0) \
         FROM stores s JOIN regions g ON g.code = s.region_code ORDER BY s.code",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .store()
}

pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub scope: &'a str,
    pub subject: &'a str,
    pub day: &'a str,
    pub value: f64,
    pub threshold: f64,
    pub detail: &'a str,
    pub at: i64,
}

/// Raise an alert once per `(kind, subject, day)`; true when new.
pub async fn insert_alert(conn: &mut AnyConnection, a: &NewAlert<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, kind, scope, subject, day, value, threshold, detail, raised_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kind, subject, day) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(a.kind)
    .bind(a.scope)
    .bind(a.subject)
    .bind(a.day)
    .bind(a.value)
    .bind(a.threshold)
    .bind(a.detail)
    .bind(a.at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertRow {
    pub kind: String,
    pub scope: String,
    pub subject: String,
    pub day: String,
    pub value: f64,
    pub threshold: f64,
    pub detail: String,
    pub raised_at: i64,
}

pub async fn recent_alerts(conn: &mut AnyConnection, limit: i64) -> StoreResult<Vec<AlertRow>> {
    sqlx::query_as(
        "SELECT kind, scope, subject, day, value, threshold, detail, raised_at FROM alerts \
         ORDER BY raised_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Record whether the guest was won back (the follow-up's answer).
pub async fn set_recovered(conn: &mut AnyConnection, id: &str, recovered: bool) -> StoreResult<()> {
    sqlx::query("UPDATE feedback SET recovered = $2 WHERE id = $1")
        .bind(id)
        .bind(i64::from(recovered))
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

/// A complaint as the KPIs see it.
#[derive(Debug, Clone, FromRow)]
pub struct KpiRow {
    pub store_code: String,
    pub created_at: i64,
    pub due_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub recovered: Option<i64>,
    pub escalation_level: i64,
    /// Who resolved it (the last `resolved` step).
    pub resolver: Option<String>,
}

/// Complaints that arrived in `[from, to)`.
pub async fn complaints_between(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> StoreResult<Vec<KpiRow>> {
    sqlx::query_as(
        "SELECT f.store_code, f.created_at, f.due_at, f.acknowledged_at, f.resolved_at, f.recovered, \
         f.escalation_level, \
         (SELECT e.actor FROM feedback_events e WHERE e.feedback_id = f.id AND e.kind = 'resolved' \
          ORDER BY e.at DESC, e.id DESC LIMIT 1) AS resolver \
         FROM feedback f WHERE f.severity <> 'none' AND f.created_at >= $1 AND f.created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .store()
}

/// Members each staff user or key registered in `[from, to)` (audit log).
pub async fn sign_ups_between(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> StoreResult<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT actor, CAST(COUNT(*) AS BIGINT) FROM audit_log WHERE action = 'member.create' \
         AND at >= $1 AND at < $2 GROUP BY actor ORDER BY actor",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .store()
}
