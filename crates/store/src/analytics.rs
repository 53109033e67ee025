//! What the HQ reports read (docs/analytics-reports.md): member visits
//! streamed for the reports that count local days and months (done in Rust,
//! where the time zone is), dish sales summed in SQL by store, part of the day
//! and period (cut by numbers the app works out from the time zone), and the
//! aggregates SQL does alone (coupons by template, members by a dimension).
//!
//! Every report can be limited to a [`Scope`] of stores (brand, region, city,
//! store). The scope is rendered as a sub-select on `stores`, with only the
//! filters given, so no untyped `NULL` parameter reaches PostgreSQL.

use crate::error::{SqlxResultExt, StoreResult};
use futures_util::TryStreamExt;
use sqlx::{AnyConnection, FromRow};

/// Which stores a report covers. Empty: every store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Brand code.
    pub brand: Option<String>,
    /// Region code or region name.
    pub region: Option<String>,
    pub city: Option<String>,
    /// Store code.
    pub store: Option<String>,
}

impl Scope {
    /// No filter: every store of the organisation.
    pub fn is_everything(&self) -> bool {
        self.brand.is_none() && self.region.is_none() && self.city.is_none() && self.store.is_none()
    }

    /// ` AND {column} IN (SELECT …)` with placeholders numbered from
    /// `first`, and the values to bind in that order; empty for everything.
    pub fn condition(&self, column: &str, first: usize) -> (String, Vec<String>) {
        if self.is_everything() {
            return (String::new(), Vec::new());
        }
        let mut sql = format!(
            " AND {column} IN (SELECT s_.code FROM stores s_ \
             JOIN regions r_ ON r_.code = s_.region_code WHERE 1 = 1"
        );
        let mut values = Vec::new();
        let mut n = first;
        if let Some(b) = &self.brand {
            sql.push_str(&format!(" AND s_.brand_code = ${n}"));
            values.push(b.clone());
            n += 1;
        }
        if let Some(r) = &self.region {
            sql.push_str(&format!(" AND (r_.code = ${n} OR r_.name = ${})", n + 1));
            values.push(r.clone());
            values.push(r.clone());
            n += 2;
        }
        if let Some(c) = &self.city {
            sql.push_str(&format!(" AND s_.city = ${n}"));
            values.push(c.clone());
            n += 1;
        }
        if let Some(s) = &self.store {
            sql.push_str(&format!(" AND s_.code = ${n}"));
            values.push(s.clone());
        }
        sql.push(')');
        (sql, values)
    }
}

/// Does a brand with this code exist?
pub async fn brand_exists(conn: &mut AnyConnection, code: &str) -> StoreResult<bool> {
    exists(conn, "SELECT code FROM brands WHERE code = $1", &[code]).await
}

/// Does a region with this code, or this name, exist?
pub async fn region_exists(conn: &mut AnyConnection, code_or_name: &str) -> StoreResult<bool> {
    exists(
        conn,
        "SELECT code FROM regions WHERE code = $1 OR name = $2",
        &[code_or_name, code_or_name],
    )
    .await
}

/// Is there a store in this city?
pub async fn city_exists(conn: &mut AnyConnection, city: &str) -> StoreResult<bool> {
    exists(conn, "SELECT code FROM stores WHERE city = $1", &[city]).await
}

async fn exists(conn: &mut AnyConnection, sql: &str, values: &[&str]) -> StoreResult<bool> {
    let sql = format!("{sql} LIMIT 1");
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for v in values {
        q = q.bind(*v);
    }
    Ok(q.fetch_optional(conn).await.store()?.is_some())
}

/// A store of the scope, with what reports label and group it by.
#[derive(Debug, Clone, FromRow)]
pub struct ScopeStore {
    pub code: String,
    pub name: String,
    pub brand_code: String,
    pub region_code: String,
    pub region_name: String,
    pub city: String,
}

/// The stores a scope covers, by code.
pub async fn stores_in(conn: &mut AnyConnection, scope: &Scope) -> StoreResult<Vec<ScopeStore>> {
    let (cond, values) = scope.condition("s.code", 1);
    let sql = format!(
        "SELECT s.code, s.name, s.brand_code, s.region_code, r.name AS region_name, s.city \
         FROM stores s JOIN regions r ON r.code = s.region_code WHERE 1 = 1{cond} ORDER BY s.code"
    );
    let mut q = sqlx::query_as::<_, ScopeStore>(&sql);
    for v in &values {
        q = q.bind(v);
    }
    q.fetch_all(conn).await.store()
}

/// One order of a member, as the visit reports read it.
#[derive(Debug, Clone, FromRow)]
pub struct MemberVisit {
    pub member_id: String,
    pub store_code: String,
    pub occurred_at: i64,
}

/// Stream the orders with a member at stores of `scope`, from `start` (or
/// the beginning) to before `end`, by member and time (the `orders_member_sums`
/// index), to `each`. Returns how many were read.
pub async fn scan_member_visits<F>(
    conn: &mut AnyConnection,
    scope: &Scope,
    start: Option<i64>,
    end: i64,
    mut each: F,
) -> StoreResult<u64>
where
    F: FnMut(MemberVisit),
{
    let mut sql = String::from(
        "SELECT o.member_id, o.store_code, o.occurred_at FROM orders o \
         WHERE o.member_id IS NOT NULL AND o.occurred_at < $1",
    );
    let mut next = 2;
    if start.is_some() {
        sql.push_str(" AND o.occurred_at >= $2");
        next = 3;
    }
    let (cond, values) = scope.condition("o.store_code", next);
    sql.push_str(&cond);
    sql.push_str(" ORDER BY o.member_id, o.occurred_at");
    let mut q = sqlx::query_as::<_, MemberVisit>(&sql).bind(end);
    if let Some(s) = start {
        q = q.bind(s);
    }
    for v in &values {
        q = q.bind(v);
    }
    let mut rows = q.fetch(conn);
    let mut n = 0;
    while let Some(row) = rows.try_next().await.store()? {
        each(row);
        n += 1;
    }
    Ok(n)
}

/// How the dish report cuts time, as plain numbers the app worked out from
/// the chain's time zone (SQL never sees a zone name, and both backends do
/// the same integer arithmetic).
#[derive(Debug, Clone)]
pub struct TimeCuts {
    /// The UTC offset (ms) in force from each instant on, ascending; the
    /// first applies to everything before the second.
    pub offsets: Vec<(i64, i64)>,
    /// Where one period of the report ends and the next begins (ascending,
    /// inside the scanned range): period `k` is before `periods[k]`, the
    /// last one after every cut.
    pub periods: Vec<i64>,
    /// The part of the day (an index chosen by the app) of each local hour.
    pub parts: [u8; 24],
}

impl TimeCuts {
    /// Local wall-clock ms of `o.occurred_at`.
    fn local_ms(&self) -> String {
        match self.offsets.as_slice() {
            [] => "o.occurred_at".to_string(),
            [(_, off)] => format!("(o.occurred_at + {off})"),
            [(_, first), rest @ ..] => {
                let mut sql = String::from("(o.occurred_at + CASE");
                let mut current = *first;
                for (from, off) in rest {
                    sql.push_str(&format!(" WHEN o.occurred_at < {from} THEN {current}"));
                    current = *off;
                }
                sql.push_str(&format!(" ELSE {current} END)"));
                sql
            }
        }
    }

    /// `part`, `period`: the columns a row is grouped by.
    fn columns(&self) -> String {
        let mut part = format!("CAST(CASE ({} / 3600000) % 24", self.local_ms());
        for (hour, p) in self.parts.iter().enumerate() {
            part.push_str(&format!(" WHEN {hour} THEN {p}"));
        }
        part.push_str(" ELSE 0 END AS BIGINT) AS part");
        let mut period = String::from("CAST(CASE");
        for (k, cut) in self.periods.iter().enumerate() {
            period.push_str(&format!(" WHEN o.occurred_at < {cut} THEN {k}"));
        }
        period.push_str(&format!(
            " ELSE {} END AS BIGINT) AS period",
            self.periods.len()
        ));
        format!("{part}, {period}")
    }
}

/// One dish at one store in one part of the day and one period.
#[derive(Debug, Clone, FromRow)]
pub struct DishCell {
    pub sku: String,
    pub store_code: String,
    pub part: i64,
    pub period: i64,
    /// The greatest of the names the lines carried (the menu's name wins
    /// where there is one).
    pub name: String,
    pub category: String,
    pub quantity: i64,
    /// Charged: quantity × unit price − line discount, never below zero;
    /// comped lines 0.
    pub sales_fen: i64,
    /// Orders with the dish.
    pub orders: i64,
    pub last_at: i64,
}

/// Countable lines (not voided, not staff meals) of every order, with or
/// without a member, at stores of `scope` in `[start, end)`, summed by dish,
/// store, part of the day and period.
pub async fn dish_cells(
    conn: &mut AnyConnection,
    scope: &Scope,
    start: i64,
    end: i64,
    cuts: &TimeCuts,
) -> StoreResult<Vec<DishCell>> {
    let (cond, values) = scope.condition("o.store_code", 3);
    let charged = "i.quantity * i.unit_price_fen - i.discount_fen";
    let sql = format!(
        "SELECT i.sku, o.store_code, {columns}, MAX(i.name) AS name, MAX(i.category) AS category, \
         CAST(SUM(i.quantity) AS BIGINT) AS quantity, \
         CAST(SUM(CASE WHEN i.comped <> 0 THEN 0 WHEN {charged} > 0 THEN {charged} ELSE 0 END) AS BIGINT) AS sales_fen, \
         COUNT(DISTINCT o.id) AS orders, MAX(o.occurred_at) AS last_at \
         FROM orders o JOIN order_items i \
           ON i.order_id = o.id AND i.voided = 0 AND i.staff_meal = 0 \
         WHERE o.occurred_at >= $1 AND o.occurred_at < $2{cond} \
         GROUP BY i.sku, o.store_code, part, period",
        columns = cuts.columns()
    );
    let mut q = sqlx::query_as::<_, DishCell>(&sql).bind(start).bind(end);
    for v in &values {
        q = q.bind(v);
    }
    q.fetch_all(conn).await.store()
}

/// Orders at one store in one part of the day and one period.
#[derive(Debug, Clone, FromRow)]
pub struct OrderCell {
    pub store_code: String,
    pub part: i64,
    pub period: i64,
    pub orders: i64,
}

/// Every order (with or without a member) at stores of `scope` in
/// `[start, end)`, counted by store, part of the day and period.
pub async fn order_cells(
    conn: &mut AnyConnection,
    scope: &Scope,
    start: i64,
    end: i64,
    cuts: &TimeCuts,
) -> StoreResult<Vec<OrderCell>> {
    let (cond, values) = scope.condition("o.store_code", 3);
    let sql = format!(
        "SELECT o.store_code, {columns}, COUNT(*) AS orders FROM orders o \
         WHERE o.occurred_at >= $1 AND o.occurred_at < $2{cond} \
         GROUP BY o.store_code, part, period",
        columns = cuts.columns()
    );
    let mut q = sqlx::query_as::<_, OrderCell>(&sql).bind(start).bind(end);
    for v in &values {
        q = q.bind(v);
    }
    q.fetch_all(conn).await.store()
}

/// A dish of the menu, as the dish report lists it.
#[derive(Debug, Clone, FromRow)]
pub struct MenuDish {
    pub sku: String,
    pub brand_code: String,
    pub name: String,
    pub category: String,
    pub is_new: i64,
    pub created_at: i64,
}

/// The menu of every brand, by SKU.
pub async fn menu(conn: &mut AnyConnection) -> StoreResult<Vec<MenuDish>> {
    sqlx::query_as(
        "SELECT sku, brand_code, name, category, is_new, created_at FROM menu_items ORDER BY sku",
    )
    .fetch_all(conn)
    .await
    .store()
}

/// Coupons issued in a window, counted by template, source and status.
#[derive(Debug, Clone, FromRow)]
pub struct CouponCount {
    pub template_id: String,
    pub template_name: String,
    pub source: String,
    pub status: String,
    pub coupons: i64,
    pub discount_fen: i64,
}

/// Coupons issued in `[start, end)` to members whose home store is in
/// `scope`, by template, source and status.
pub async fn coupon_counts(
    conn: &mut AnyConnection,
    scope: &Scope,
    start: i64,
    end: i64,
) -> StoreResult<Vec<CouponCount>> {
    let (cond, values) = scope.condition("m.home_store_code", 3);
    let sql = format!(
        "SELECT c.template_id, t.name AS template_name, c.source, c.status, \
         COUNT(*) AS coupons, CAST(COALESCE(SUM(c.discount_fen), 0) AS BIGINT) AS discount_fen \
         FROM coupons c JOIN coupon_templates t ON t.id = c.template_id \
         JOIN members m ON m.id = c.member_id \
         WHERE c.issued_at >= $1 AND c.issued_at < $2{cond} \
         GROUP BY c.template_id, t.name, c.source, c.status \
         ORDER BY c.template_id, c.source, c.status"
    );
    let mut q = sqlx::query_as::<_, CouponCount>(&sql).bind(start).bind(end);
    for v in &values {
        q = q.bind(v);
    }
    q.fetch_all(conn).await.store()
}

/// What members are counted by in the distribution report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The home store's region (code; the name as label).
    Region,
    /// The member's own city.
    City,
    /// The home store (code; the name as label).
    Store,
    AgeGroup,
    Tier,
    /// From the last scoring run; `unscored` without one.
    Lifecycle,
    /// From the last scoring run; `unscored` without one.
    Grade,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Region,
        Dimension::City,
        Dimension::Store,
        Dimension::AgeGroup,
        Dimension::Tier,
        Dimension::Lifecycle,
        Dimension::Grade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Region => "region",
            Dimension::City => "city",
            Dimension::Store => "store",
            Dimension::AgeGroup => "age_group",
            Dimension::Tier => "tier",
            Dimension::Lifecycle => "lifecycle",
            Dimension::Grade => "grade",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The SQL of the key and of its label (fixed text, never input).
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Dimension::Region => ("COALESCE(r.code, 'unknown')", "COALESCE(r.name, 'unknown')"),
            Dimension::City => ("COALESCE(m.city, 'unknown')", "COALESCE(m.city, 'unknown')"),
            Dimension::Store => (
                "COALESCE(m.home_store_code, 'unknown')",
                "COALESCE(s.name, 'unknown')",
            ),
            Dimension::AgeGroup => (
                "COALESCE(m.age_group, 'unknown')",
                "COALESCE(m.age_group, 'unknown')",
            ),
            Dimension::Tier => ("m.tier", "m.tier"),
            Dimension::Lifecycle => (
                "COALESCE(i.lifecycle, 'unscored')",
                "COALESCE(i.lifecycle, 'unscored')",
            ),
            Dimension::Grade => (
                "COALESCE(i.grade, 'unscored')",
                "COALESCE(i.grade, 'unscored')",
            ),
        }
    }
}

/// Members of one value of a [`Dimension`].
#[derive(Debug, Clone, FromRow)]
pub struct DistributionRow {
    pub key: String,
    pub label: String,
    pub members: i64,
    /// Members with an order in the window.
    pub active_members: i64,
    /// Paid minus refunded in the window.
    pub spend_fen: i64,
    /// Paid minus refunded in the twelve months before the window's end.
    pub spend_12m_fen: i64,
}

/// Members not erased (whose home store is in `scope`, when it is not
/// everything), counted by `dimension`, with their orders at stores of
/// `scope`: active in `[start, end)`, spend there, and spend in
/// `[start_12m, end)`.
pub async fn distribution(
    conn: &mut AnyConnection,
    scope: &Scope,
    dimension: Dimension,
    start: i64,
    start_12m: i64,
    end: i64,
) -> StoreResult<Vec<DistributionRow>> {
    let (key, label) = dimension.sql();
    let (orders_in_scope, order_values) = scope.condition("o.store_code", 5);
    let (members_in_scope, member_values) =
        scope.condition("m.home_store_code", 5 + order_values.len());
    let sql = format!(
        "SELECT {key} AS key, MAX({label}) AS label, COUNT(*) AS members, \
         CAST(SUM(CASE WHEN a.visits > 0 THEN 1 ELSE 0 END) AS BIGINT) AS active_members, \
         CAST(COALESCE(SUM(a.spend), 0) AS BIGINT) AS spend_fen, \
         CAST(COALESCE(SUM(a.spend_12m), 0) AS BIGINT) AS spend_12m_fen \
         FROM members m \
         LEFT JOIN stores s ON s.code = m.home_store_code \
         LEFT JOIN regions r ON r.code = s.region_code \
         LEFT JOIN member_insights i ON i.member_id = m.id \
         LEFT JOIN (SELECT o.member_id, \
             CAST(SUM(CASE WHEN o.occurred_at >= $1 THEN 1 ELSE 0 END) AS BIGINT) AS visits, \
             CAST(SUM(CASE WHEN o.occurred_at >= $1 THEN o.paid_fen - o.refunded_fen ELSE 0 END) AS BIGINT) AS spend, \
             CAST(SUM(CASE WHEN o.occurred_at >= $2 THEN o.paid_fen - o.refunded_fen ELSE 0 END) AS BIGINT) AS spend_12m \
           FROM orders o WHERE o.member_id IS NOT NULL AND o.occurred_at >= $3 AND o.occurred_at < $4{orders_in_scope} \
           GROUP BY o.member_id) a ON a.member_id = m.id \
         WHERE m.erased_at IS NULL{members_in_scope} \
         GROUP BY {key}"
    );
    let mut q = sqlx::query_as::<_, DistributionRow>(&sql)
        .bind(start)
        .bind(start_12m)
        .bind(start.min(start_12m))
        .bind(end);
    for v in order_values.iter().chain(&member_values) {
        q = q.bind(v);
    }
    q.fetch_all(conn).await.store()
}

/// What the dashboard shows beside the reports, for one scope and window.
#[derive(Debug, Clone, Default)]
pub struct Pulse {
    /// Points on the balances of the scope's members (home store): what the
    /// chain owes its guests.
    pub points_outstanding: i64,
    /// NPS answers (0–10) at the scope's stores in the window: from
    /// feedback and from survey responses not already filed as feedback.
    pub nps_answers: i64,
    pub promoters: i64,
    pub detractors: i64,
    /// Complaints (feedback with a severity) at the scope's stores in the
    /// window; of those with a first-response deadline, how many were
    /// answered by it.
    pub complaints: i64,
    pub complaints_due: i64,
    pub complaints_in_time: i64,
    /// Complaints not yet closed (any date).
    pub complaints_open: i64,
}

/// The dashboard's figures beside the reports; see [`Pulse`].
pub async fn pulse(
    conn: &mut AnyConnection,
    scope: &Scope,
    start: i64,
    end: i64,
) -> StoreResult<Pulse> {
    let mut pulse = Pulse::default();
    let (members_in_scope, values) = scope.condition("m.home_store_code", 1);
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(m.points_balance), 0) AS BIGINT) FROM members m \
         WHERE m.erased_at IS NULL{members_in_scope}"
    );
    let mut q = sqlx::query_scalar::<_, i64>(&sql);
    for v in &values {
        q = q.bind(v);
    }
    pulse.points_outstanding = q.fetch_one(&mut *conn).await.store()?;

    let (answers_in_scope, values) = scope.condition("x.store_code", 3);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN x.nps >= 9 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN x.nps <= 6 THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM (SELECT nps, store_code, created_at FROM feedback WHERE nps IS NOT NULL \
               UNION ALL SELECT nps, store_code, created_at FROM survey_responses \
               WHERE nps IS NOT NULL AND feedback_id IS NULL) x \
         WHERE x.created_at >= $1 AND x.created_at < $2{answers_in_scope}"
    );
    let mut q = sqlx::query_as::<_, (i64, i64, i64)>(&sql)
        .bind(start)
        .bind(end);
    for v in &values {
        q = q.bind(v);
    }
    (pulse.nps_answers, pulse.promoters, pulse.detractors) =
        q.fetch_one(&mut *conn).await.store()?;

    let (complaints_in_scope, values) = scope.condition("f.store_code", 3);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN f.due_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN f.acknowledged_at IS NOT NULL AND f.acknowledged_at <= f.due_at \
              THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM feedback f WHERE f.severity <> 'none' \
         AND f.created_at >= $1 AND f.created_at < $2{complaints_in_scope}"
    );
    let mut q = sqlx::query_as::<_, (i64, i64, i64)>(&sql)
        .bind(start)
        .bind(end);
    for v in &values {
        q = q.bind(v);
    }
    (
        pulse.complaints,
        pulse.complaints_due,
        pulse.complaints_in_time,
    ) = q.fetch_one(&mut *conn).await.store()?;

    let (open_in_scope, values) = scope.condition("f.store_code", 1);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM feedback f WHERE f.severity <> 'none' \
         AND f.status <> 'closed'{open_in_scope}"
    );
    let mut q = sqlx::query_scalar::<_, i64>(&sql);
    for v in &values {
        q = q.bind(v);
    }
    pulse.complaints_open = q.fetch_one(&mut *conn).await.store()?;
    Ok(pulse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_binds_only_the_filters_given() {
        assert_eq!(
            Scope::default().condition("o.store_code", 3),
            (String::new(), vec![])
        );
        let scope = Scope {
            region: Some("西南".into()),
            store: Some("CD01".into()),
            ..Scope::default()
        };
        let (sql, values) = scope.condition("o.store_code", 3);
        assert!(sql.contains("(r_.code = $3 OR r_.name = $4)"), "{sql}");
        assert!(sql.contains("s_.code = $5"), "{sql}");
        assert_eq!(values, vec!["西南", "西南", "CD01"]);
    }

    #[test]
    fn time_cuts_are_integer_sql() {
        let mut cuts = TimeCuts {
            offsets: vec![(i64::MIN, 28_800_000)],
            periods: vec![100, 200],
            parts: [3; 24],
        };
        cuts.parts[12] = 0;
        let sql = cuts.columns();
        assert!(
            sql.contains("CASE ((o.occurred_at + 28800000) / 3600000) % 24"),
            "{sql}"
        );
        assert!(sql.contains("WHEN 12 THEN 0 WHEN 13 THEN 3"), "{sql}");
        assert!(
            sql.contains("WHEN o.occurred_at < 100 THEN 0 WHEN o.occurred_at < 200 THEN 1 ELSE 2"),
            "{sql}"
        );
        cuts.offsets = vec![(i64::MIN, 3_600_000), (500, 7_200_000)];
        assert_eq!(
            cuts.local_ms(),
            "(o.occurred_at + CASE WHEN o.occurred_at < 500 THEN 3600000 ELSE 7200000 END)"
        );
    }
}
