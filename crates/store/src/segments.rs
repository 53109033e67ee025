//! Segments in SQL: where each field of the segments language lives in the
//! schema, counting and listing the members an expression matches, and the
//! saved segments.

use crate::error::{SqlxResultExt, StoreResult};
use regulars_core::segment::{self, Expr, Field, SqlColumns, SqlTarget, SqlValue};
use sqlx::{AnyConnection, FromRow};

/// The schema behind each field. `now_ms` fixes `days_since_visit` to the
/// moment of the query (an integer the server computed, never user input).
pub struct SegmentColumns {
    pub now_ms: i64,
}

impl SqlColumns for SegmentColumns {
    fn column(&self, field: Field) -> SqlTarget {
        let consent = |channel: &str| {
            SqlTarget::Expr(format!(
                "(SELECT c.granted FROM member_consents c WHERE c.member_id = m.id AND c.channel = '{channel}')"
            ))
        };
        let plain = |sql: &str| SqlTarget::Expr(sql.to_string());
        match field {
            Field::Tier => plain("m.tier"),
            Field::Grade => plain("i.grade"),
            Field::Vip => plain("i.vip"),
            Field::Lifecycle => plain("i.lifecycle"),
            Field::RScore => plain("i.r_score"),
            Field::FScore => plain("i.f_score"),
            Field::MScore => plain("i.m_score"),
            Field::Rfm => plain("i.rfm"),
            Field::DaysSinceVisit => {
                SqlTarget::Expr(format!("(({} - i.last_visit_at) / 86400000)", self.now_ms))
            }
            Field::Visits12m => plain("i.visits_12m"),
            Field::Spend12mFen => plain("i.spend_12m_fen"),
            Field::ClvFen => plain("i.clv_fen"),
            Field::PointsBalance => plain("m.points_balance"),
            Field::BirthdayMonth => plain("m.birth_month"),
            Field::PAlive => plain("i.p_alive"),
            Field::ChurnRisk => plain("i.churn_risk"),
            Field::City => plain("m.city"),
            Field::Region => plain(
                "(SELECT r.name FROM stores s JOIN regions r ON r.code = s.region_code \
                 WHERE s.code = m.home_store_code)",
            ),
            Field::Store => plain("m.home_store_code"),
            Field::AgeGroup => plain("m.age_group"),
            Field::Gender => plain("m.gender"),
            Field::Tag => SqlTarget::Exists(
                "EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = {})"
                    .to_string(),
            ),
            Field::SpiceLevel => plain("i.spice_level"),
            Field::SourceChannel => plain("m.source_channel"),
            Field::ConsentSms => consent("sms"),
            Field::ConsentEmail => consent("email"),
            Field::ConsentWechat => consent("wechat"),
        }
    }
}

/// A compiled segment with the caller's scope: the WHERE clause and its values.
pub struct Compiled {
    sql: String,
    values: Vec<SqlValue>,
}

/// Compile `expr`; a store-scoped caller sees their store's members only.
pub fn compile(expr: &Expr, now_ms: i64, store: Option<&str>) -> Compiled {
    let (filter, mut values) = segment::to_sql(expr, &SegmentColumns { now_ms }, 1);
    let mut sql = format!("m.erased_at IS NULL AND ({filter})");
    if let Some(store) = store {
        values.push(SqlValue::Text(store.to_string()));
        sql.push_str(&format!(" AND m.home_store_code = ${}", values.len()));
    }
    Compiled { sql, values }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: &'q [SqlValue],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for v in values {
        q = match v {
            SqlValue::Int(i) => q.bind(*i),
            SqlValue::Float(f) => q.bind(*f),
            SqlValue::Text(t) => q.bind(t.as_str()),
        };
    }
    q
}

const FROM: &str = "FROM members m LEFT JOIN member_insights i ON i.member_id = m.id";

pub async fn count(conn: &mut AnyConnection, c: &Compiled) -> StoreResult<i64> {
    use sqlx::Row;
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) {FROM} WHERE {}", c.sql);
    let row = bind_all(sqlx::query(&sql), &c.values)
        .fetch_one(conn)
        .await
        .store()?;
    row.try_get::<i64, _>(0).store()
}

/// A member in a segment's list.
#[derive(Debug, Clone, FromRow)]
pub struct SegmentMember {
    pub id: String,
    pub member_code: String,
    pub phone_enc: Option<Vec<u8>>,
    pub tier: String,
    pub home_store_code: Option<String>,
    pub city: Option<String>,
    pub points_balance: i64,
    pub lifecycle: Option<String>,
    pub grade: Option<String>,
    pub last_visit_at: Option<i64>,
    pub spend_12m_fen: Option<i64>,
    pub clv_fen: Option<i64>,
    pub p_alive: Option<f64>,
}

/// One page of matching members in id order, after `after`.
pub async fn page(
    conn: &mut AnyConnection,
    c: &Compiled,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<SegmentMember>> {
    let n = c.values.len();
    let sql = format!(
        "SELECT m.id, m.member_code, m.phone_enc, m.tier, m.home_store_code, m.city, m.points_balance, \
         i.lifecycle, i.grade, i.last_visit_at, i.spend_12m_fen, i.clv_fen, i.p_alive \
         {FROM} WHERE {} AND m.id > ${} ORDER BY m.id LIMIT ${}",
        c.sql,
        n + 1,
        n + 2
    );
    let q = bind_all(sqlx::query(&sql), &c.values)
        .bind(after.unwrap_or(""))
        .bind(limit);
    let rows = q.fetch_all(conn).await.store()?;
    rows.iter()
        .map(|r| SegmentMember::from_row(r).store())
        .collect()
}

/// A saved segment.
#[derive(Debug, Clone, FromRow)]
pub struct SavedSegment {
    pub id: String,
    pub name: String,
    pub expression: String,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SAVED: &str = "id, name, expression, description, created_by, created_at, updated_at";

/// Insert; `Conflict` on `segments_name` when the name is taken.
pub async fn insert_saved(conn: &mut AnyConnection, s: &SavedSegment) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO segments ({SAVED}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.expression)
    .bind(&s.description)
    .bind(&s.created_by)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn update_saved(conn: &mut AnyConnection, s: &SavedSegment) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE segments SET name = $2, expression = $3, description = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.expression)
    .bind(&s.description)
    .bind(s.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_saved(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM segments WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_saved(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<SavedSegment>> {
    sqlx::query_as(&format!("SELECT {SAVED} FROM segments WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .store()
}

pub async fn list_saved(conn: &mut AnyConnection) -> StoreResult<Vec<SavedSegment>> {
    sqlx::query_as(&format!("SELECT {SAVED} FROM segments ORDER BY name"))
        .fetch_all(conn)
        .await
        .store()
}
