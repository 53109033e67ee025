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

/// One order of a member as the scan delivers it, with its countable lines
/// (not voided, not staff meals) folded into `dishes`: `sku:quantity,…`.
#[derive(Debug, Clone, FromRow)]
pub struct VisitOrder {
    pub member_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub net_fen: i64,
    pub dishes: Option<String>,
}

/// Stream every member's orders, ordered by member and time (the
/// `orders_member` index, no sort), to `each`. One row per order with its
/// lines folded in: what scoring costs is what this scan costs.
pub async fn scan_visit_orders<F>(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    mut each: F,
) -> StoreResult<u64>
where
    F: FnMut(VisitOrder),
{
    let fold = match backend {
        crate::Backend::Sqlite => "group_concat(i.sku || ':' || CAST(i.quantity AS TEXT), ',')",
        crate::Backend::Postgres => "string_agg(i.sku || ':' || CAST(i.quantity AS TEXT), ',')",
    };
    let sql = format!(
        "SELECT o.member_id, o.id AS order_id, o.occurred_at, o.paid_fen - o.refunded_fen AS net_fen, \
         (SELECT {fold} FROM order_items i WHERE i.order_id = o.id AND i.voided = 0 AND i.staff_meal = 0) AS dishes \
         FROM orders o WHERE o.member_id IS NOT NULL \
         ORDER BY o.member_id, o.occurred_at"
    );
    let mut rows = sqlx::query_as::<_, VisitOrder>(&sql).fetch(conn);
    let mut n = 0;
    while let Some(order) = rows.try_next().await.store()? {
        each(order);
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
const INSIGHT_WIDTH: usize = 28;

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

/// Insert a batch (at most 1,000 rows: both backends' parameter limits).
pub async fn insert_insights(conn: &mut AnyConnection, rows: &[InsightRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO member_insights ({INSIGHT_COLUMNS}) VALUES ");
    for r in 0..rows.len() {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..INSIGHT_WIDTH {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", r * INSIGHT_WIDTH + c + 1));
        }
        sql.push(')');
    }
    // Not a cached prepared statement: PostgreSQL would fix each parameter's
    // type at the first execution, and a NULL there (a member with no score)
    // is typed as an integer, which a later float in that place then breaks.
    let mut q = sqlx::query(&sql).persistent(false);
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
