//! What the scoring job reads (members, the menu, every member's order lines
//! in one streamed pass) and writes (one `member_insights` row per member,
//! the fitted model parameters), and saved segments.

use crate::error::{SqlxResultExt, StoreResult};
use futures_util::TryStreamExt;
use sqlx::{AnyConnection, FromRow};

/// A member as scoring sees them.
#[derive(Debug, Clone, FromRow)]
pub struct ScoringMember {
    pub id: String,
    pub home_store_code: Option<String>,
    pub tier: String,
    pub taste_json: String,
    pub created_at: i64,
}

/// Every member not erased, in id order.
pub async fn scoring_members(conn: &mut AnyConnection) -> StoreResult<Vec<ScoringMember>> {
    sqlx::query_as(
        "SELECT id, home_store_code, tier, taste_json, created_at FROM members \
         WHERE erased_at IS NULL ORDER BY id",
    )
    .fetch_all(conn)
    .await
    .store()
}

/// (member id, tag) for the tags that are staff grade marks.
pub async fn tags_among(
    conn: &mut AnyConnection,
    tags: &[&str],
) -> StoreResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for tag in tags {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT member_id, tag FROM member_tags WHERE tag = $1")
                .bind(*tag)
                .fetch_all(&mut *conn)
                .await
                .store()?;
        out.extend(rows);
    }
    Ok(out)
}

/// A dish of the menu: (sku, name, category, spice level).
pub async fn menu(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String, String, i64)>> {
    sqlx::query_as("SELECT sku, name, category, spice_level FROM menu_items ORDER BY sku")
        .fetch_all(conn)
        .await
        .store()
}

/// One member's whole order history as the scan delivers it: orders
/// separated by `;`, each `occurred_at|net_fen|sku:quantity,…` (countable
/// lines only: not voided, not staff meals), in no particular order.
#[derive(Debug, Clone, FromRow)]
pub struct MemberHistory {
    pub member_id: String,
    pub history: String,
}

/// Stream every member's order history, one row per member (the
/// `orders_member_sums` index groups them without a sort). One row per member,
/// not per order or line: a row is a hop from the database driver to us, and
/// those hops, not the SQL, were the cost of scoring.
/// `from`/`to` bound the member ids (`from` ≤ id < `to`, in the database's
/// own order), so two connections can scan halves at once.
pub async fn scan_member_histories<F>(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    from: Option<&str>,
    to: Option<&str>,
    mut each: F,
) -> StoreResult<u64>
where
    F: FnMut(MemberHistory),
{
    let concat = match backend {
        crate::Backend::Sqlite => "group_concat",
        crate::Backend::Postgres => "string_agg",
    };
    let sql = format!(
        "SELECT o.member_id, {concat}(CAST(o.occurred_at AS TEXT) || '|' \
           || CAST(o.paid_fen - o.refunded_fen AS TEXT) || '|' \
           || COALESCE((SELECT {concat}(i.sku || ':' || CAST(i.quantity AS TEXT), ',') FROM order_items i \
                WHERE i.order_id = o.id AND i.voided = 0 AND i.staff_meal = 0), ''), ';') AS history \
         FROM orders o WHERE o.member_id IS NOT NULL {} {} GROUP BY o.member_id",
        if from.is_some() { "AND o.member_id >= $1" } else { "" },
        match (from.is_some(), to.is_some()) {
            (true, true) => "AND o.member_id < $2",
            (false, true) => "AND o.member_id < $1",
            _ => "",
        }
    );
    let mut query = sqlx::query_as::<_, MemberHistory>(&sql);
    if let Some(from) = from {
        query = query.bind(from);
    }
    if let Some(to) = to {
        query = query.bind(to);
    }
    let mut rows = query.fetch(conn);
    let mut n = 0;
    while let Some(member) = rows.try_next().await.store()? {
        each(member);
        n += 1;
    }
    Ok(n)
}

/// One member's scores, as stored.
#[derive(Debug, Clone, PartialEq, FromRow, serde::Serialize)]
pub struct InsightRow {
    pub member_id: String,
    pub scored_at: i64,
    pub first_visit_at: Option<i64>,
    pub last_visit_at: Option<i64>,
    pub visits_total: i64,
    pub visits_12m: i64,
    pub spend_total_fen: i64,
    pub spend_12m_fen: i64,
    pub spend_90d_fen: i64,
    pub spend_prev_90d_fen: i64,
    pub cadence_days: Option<f64>,
    pub r_score: Option<i64>,
    pub f_score: Option<i64>,
    pub m_score: Option<i64>,
    pub rfm: Option<i64>,
    pub grade: String,
    pub vip: i64,
    pub vip_decline: i64,
    pub lifecycle: String,
    pub p_alive: Option<f64>,
    pub expected_visits_30: Option<f64>,
    pub expected_visits_90: Option<f64>,
    pub expected_spend_fen: Option<i64>,
    pub clv_fen: Option<i64>,
    pub churn_risk: Option<String>,
    pub spice_level: Option<i64>,
    pub taste_json: String,
    pub recommendations_json: String,
}

const INSIGHT_COLUMNS: &str = "member_id, scored_at, first_visit_at, last_visit_at, visits_total, \
    visits_12m, spend_total_fen, spend_12m_fen, spend_90d_fen, spend_prev_90d_fen, cadence_days, \
    r_score, f_score, m_score, rfm, grade, vip, vip_decline, lifecycle, p_alive, expected_visits_30, \
    expected_visits_90, expected_spend_fen, clv_fen, churn_risk, spice_level, taste_json, \
    recommendations_json";

/// Replace every member's scores: the caller runs this in one transaction
/// (delete, then insert in batches), so readers see the old night's scores
/// or the new ones, never a mix.
pub async fn clear_insights(conn: &mut AnyConnection) -> StoreResult<()> {
    sqlx::query("DELETE FROM member_insights")
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

/// Insert a batch of any size; on PostgreSQL as one JSON parameter: SQLite's cost of binding
/// grows with the square of a statement's parameter count (sqlx looks each
/// one up by name), so many rows × 28 columns as separate parameters would
/// spend the run in `sqlite3_bind_parameter_name`.
pub async fn insert_insights(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    rows: &[InsightRow],
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if backend == crate::Backend::Sqlite {
        // SQLite: a few rows per statement. Its JSON functions re-parse each
        // row once per column, and binding many parameters costs the square.
        for chunk in rows.chunks(4) {
            insert_insights_values(conn, chunk).await?;
        }
        return Ok(());
    }
    let json = serde_json::to_string(rows)
        .map_err(|e| crate::StoreError::Corrupt(format!("insights do not serialise: {e}")))?;
    let sql = match backend {
        crate::Backend::Sqlite => format!(
            "INSERT INTO member_insights ({INSIGHT_COLUMNS}) SELECT json_extract(value, '$.member_id'), json_extract(value, '$.scored_at'), json_extract(value, '$.first_visit_at'), json_extract(value, '$.last_visit_at'), json_extract(value, '$.visits_total'), json_extract(value, '$.visits_12m'), json_extract(value, '$.spend_total_fen'), json_extract(value, '$.spend_12m_fen'), json_extract(value, '$.spend_90d_fen'), json_extract(value, '$.spend_prev_90d_fen'), json_extract(value, '$.cadence_days'), json_extract(value, '$.r_score'), json_extract(value, '$.f_score'), json_extract(value, '$.m_score'), json_extract(value, '$.rfm'), json_extract(value, '$.grade'), json_extract(value, '$.vip'), json_extract(value, '$.vip_decline'), json_extract(value, '$.lifecycle'), json_extract(value, '$.p_alive'), json_extract(value, '$.expected_visits_30'), json_extract(value, '$.expected_visits_90'), json_extract(value, '$.expected_spend_fen'), json_extract(value, '$.clv_fen'), json_extract(value, '$.churn_risk'), json_extract(value, '$.spice_level'), json_extract(value, '$.taste_json'), json_extract(value, '$.recommendations_json') FROM json_each($1)"
        ),
        crate::Backend::Postgres => format!(
            "INSERT INTO member_insights ({INSIGHT_COLUMNS}) SELECT {INSIGHT_COLUMNS} \
             FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS x(member_id TEXT, scored_at BIGINT, first_visit_at BIGINT, last_visit_at BIGINT, visits_total BIGINT, visits_12m BIGINT, spend_total_fen BIGINT, spend_12m_fen BIGINT, spend_90d_fen BIGINT, spend_prev_90d_fen BIGINT, cadence_days DOUBLE PRECISION, r_score BIGINT, f_score BIGINT, m_score BIGINT, rfm BIGINT, grade TEXT, vip BIGINT, vip_decline BIGINT, lifecycle TEXT, p_alive DOUBLE PRECISION, expected_visits_30 DOUBLE PRECISION, expected_visits_90 DOUBLE PRECISION, expected_spend_fen BIGINT, clv_fen BIGINT, churn_risk TEXT, spice_level BIGINT, taste_json TEXT, recommendations_json TEXT)"
        ),
    };
    sqlx::query(&sql).bind(json).execute(conn).await.store()?;
    Ok(())
}

async fn insert_insights_values(conn: &mut AnyConnection, rows: &[InsightRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO member_insights ({INSIGHT_COLUMNS}) VALUES ");
    for r in 0..rows.len() {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..28 {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", r * 28 + c + 1));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(&r.member_id)
            .bind(r.scored_at)
            .bind(r.first_visit_at)
            .bind(r.last_visit_at)
            .bind(r.visits_total)
            .bind(r.visits_12m)
            .bind(r.spend_total_fen)
            .bind(r.spend_12m_fen)
            .bind(r.spend_90d_fen)
            .bind(r.spend_prev_90d_fen)
            .bind(r.cadence_days)
            .bind(r.r_score)
            .bind(r.f_score)
            .bind(r.m_score)
            .bind(r.rfm)
            .bind(&r.grade)
            .bind(r.vip)
            .bind(r.vip_decline)
            .bind(&r.lifecycle)
            .bind(r.p_alive)
            .bind(r.expected_visits_30)
            .bind(r.expected_visits_90)
            .bind(r.expected_spend_fen)
            .bind(r.clv_fen)
            .bind(&r.churn_risk)
            .bind(r.spice_level)
            .bind(&r.taste_json)
            .bind(&r.recommendations_json);
    }
    q.execute(conn).await.store()?;
    Ok(())
}

pub async fn insight_of(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Option<InsightRow>> {
    sqlx::query_as(&format!(
        "SELECT {INSIGHT_COLUMNS} FROM member_insights WHERE member_id = $1"
    ))
    .bind(member_id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Record a fit of the models.
pub async fn insert_model_fit(
    conn: &mut AnyConnection,
    id: &str,
    fitted_at: i64,
    customers: i64,
    bgnbd_json: &str,
    gamma_json: Option<&str>,
    report_json: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO model_fits (id, fitted_at, customers, bgnbd_json, gamma_json, report_json) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(fitted_at)
    .bind(customers)
    .bind(bgnbd_json)
    .bind(gamma_json)
    .bind(report_json)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// The newest fit: (fitted_at, customers, bgnbd_json, gamma_json, report_json).
pub async fn latest_model_fit(
    conn: &mut AnyConnection,
) -> StoreResult<Option<(i64, i64, String, Option<String>, String)>> {
    sqlx::query_as(
        "SELECT fitted_at, customers, bgnbd_json, gamma_json, report_json FROM model_fits \
         ORDER BY fitted_at DESC, id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .store()
}
