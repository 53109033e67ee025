//! HQ reports (docs/analytics-reports.md): repurchase rate against the 40%
//! line of seed 001, monthly cohort retention, dish performance (sales,
//! growth, attach rate, hot and slow dishes), promotion response, and members
//! by region, city, store, age group, tier, lifecycle and grade.
//!
//! Days, months and hours are the chain's local ones (`app.timezone`): the
//! store streams visits and order lines, and the bucketing happens here, so
//! both backends give the same answer. Every report takes the same filters
//! (a window of local dates and a scope of stores); a store-scoped caller
//! (store manager) sees their own store only.

use super::{AppError, AppResult, Regulars};
use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use regulars_core::access::{Action, Principal};
use regulars_core::chain::{parse_code, parse_name};
use regulars_core::insight;
use regulars_core::DomainError;
use regulars_store::analytics::{self as repo, Dimension, MenuDish, Scope, ScopeStore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use utoipa::{IntoParams, ToSchema};

/// Seed 001: a well-run hot-pot chain sees 40%+ of its guests come back.
pub const REPURCHASE_BENCHMARK: f64 = 0.4;
/// The longest window a report covers (about ten years).
pub const MAX_WINDOW_DAYS: i64 = 3660;
/// The parts of the day the dish report can be limited to or grouped by
/// (the same hours as a member's usual times: lunch 10:00–14:59, afternoon
/// 15:00–16:59, dinner 17:00–20:59, late 21:00–09:59).
pub const DAYPARTS: [&str; 4] = ["lunch", "afternoon", "dinner", "late"];
/// Days in each of the two periods dish growth compares.
pub const GROWTH_DAYS: u64 = 30;

const COMMON: [&str; 6] = ["from", "to", "brand", "region", "city", "store"];

/// The filters every report takes (documentation of the query string; the
/// handlers read the raw pairs so that a bad value is a 422 that names it).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportFilters {
    /// First local day, `YYYY-MM-DD` (default: the first day of the month
    /// 11 months before `to`'s: the last 12 calendar months, the current
    /// one so far).
    pub from: Option<String>,
    /// Last local day, `YYYY-MM-DD`, included (default: today).
    pub to: Option<String>,
    /// Brand code.
    pub brand: Option<String>,
    /// Region code or name.
    pub region: Option<String>,
    /// City of the stores.
    pub city: Option<String>,
    /// Store code (a store manager: their own store, the default).
    pub store: Option<String>,
}

/// A query string as parsed: each known parameter once.
#[derive(Debug, Default, Clone)]
pub struct RawQuery {
    values: BTreeMap<String, String>,
}

impl RawQuery {
    /// Check the pairs of a query string against the parameters a report
    /// takes (the common filters and `extra`): an unknown or repeated
    /// parameter is a 422 that names it.
    pub fn parse(pairs: Vec<(String, String)>, extra: &[&str]) -> AppResult<RawQuery> {
        let mut values = BTreeMap::new();
        for (k, v) in pairs {
            if !COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
                let known: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
                return Err(AppError::unprocessable(
                    "invalid_field",
                    format!(
                        "unknown parameter `{}`; this report takes {}",
                        truncate(&k),
                        known.join(", ")
                    ),
                ));
            }
            if values.insert(k.clone(), v).is_some() {
                return Err(AppError::unprocessable(
                    "invalid_field",
                    format!("parameter `{k}` is given twice"),
                ));
            }
        }
        Ok(RawQuery { values })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

// ---------------------------------------------------------------------------
// Window and scope
// ---------------------------------------------------------------------------

/// The local days a report covers, and the instants they start and end.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Unix ms of local midnight starting `from`.
    pub start: i64,
    /// Unix ms of local midnight after `to`.
    pub end: i64,
}

/// The window and filters as the report applied them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    /// `YYYY-MM-DD`, local.
    pub from: String,
    /// `YYYY-MM-DD`, local, included.
    pub to: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScopeView {
    pub brand: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub store: Option<String>,
}

impl From<&Scope> for ScopeView {
    fn from(s: &Scope) -> ScopeView {
        ScopeView {
            brand: s.brand.clone(),
            region: s.region.clone(),
            city: s.city.clone(),
            store: s.store.clone(),
        }
    }
}

impl Window {
    fn view(&self) -> WindowView {
        WindowView {
            from: self.from.to_string(),
            to: self.to.to_string(),
        }
    }
}

fn parse_date(field: &'static str, value: &str) -> AppResult<NaiveDate> {
    let bad = || {
        AppError::from(DomainError::InvalidDate {
            field,
            reason: format!(
                "`{}` is not a date; expected YYYY-MM-DD, e.g. 2026-03-01",
                truncate(value)
            ),
        })
    };
    let v = value.trim();
    if v.len() != 10 {
        return Err(bad());
    }
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?;
    if !(2000..=9000).contains(&date.year()) {
        return Err(DomainError::InvalidDate {
            field,
            reason: "the year must be between 2000 and 9000".into(),
        }
        .into());
    }
    Ok(date)
}

/// Unix ms of the first instant of a local day (midnight, or the end of a
/// daylight-saving gap that swallows midnight).
pub fn day_start(tz: chrono_tz::Tz, day: NaiveDate) -> i64 {
    let midnight = day.and_time(NaiveTime::MIN);
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
}

/// The local wall-clock time of an instant.
fn local(tz: chrono_tz::Tz, at_ms: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(at_ms).map(|t| t.with_timezone(&tz).naive_local())
}

/// The zone's UTC offsets (ms) over `[start, end)`: `(from, offset)` pairs,
/// the first one from the beginning of time. Each day is sampled and each
/// change narrowed down to the millisecond (zones change a few times a year
/// at most; Asia/Shanghai never since 1991).
pub fn utc_offsets(tz: chrono_tz::Tz, start: i64, end: i64) -> Vec<(i64, i64)> {
    let offset = |t: i64| -> i64 {
        chrono::DateTime::from_timestamp_millis(t)
            .map(|u| {
                i64::from(
                    tz.offset_from_utc_datetime(&u.naive_utc())
                        .fix()
                        .local_minus_utc(),
                ) * 1000
            })
            .unwrap_or(0)
    };
    const DAY: i64 = 86_400_000;
    let mut out = vec![(i64::MIN, offset(start))];
    let mut t = start;
    while t < end {
        let next = t.saturating_add(DAY).min(end);
        let (before, after) = (offset(t), offset(next));
        if before != after {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push((hi, after));
        }
        t = next;
    }
    out
}

/// A month as one number: `year × 12 + month − 1`.
fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

fn month_label(index: i32) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

fn resolve_window(app: &Regulars, q: &RawQuery) -> AppResult<Window> {
    let to = match q.get("to") {
        Some(v) => parse_date("to", v)?,
        None => app.today(),
    };
    let from = match q.get("from") {
        Some(v) => parse_date("from", v)?,
        // The last 12 calendar months, the current one so far.
        None => to
            .with_day(1)
            .and_then(|d| d.checked_sub_months(Months::new(11)))
            .unwrap_or(to),
    };
    if from > to {
        return Err(DomainError::InvalidDate {
            field: "from",
            reason: format!("from ({from}) is after to ({to})"),
        }
        .into());
    }
    if (to - from).num_days() >= MAX_WINDOW_DAYS {
        return Err(DomainError::InvalidDate {
            field: "from",
            reason: format!("a report covers at most {MAX_WINDOW_DAYS} days"),
        }
        .into());
    }
    let after = to.succ_opt().unwrap_or(to);
    Ok(Window {
        from,
        to,
        start: day_start(app.timezone, from),
        end: day_start(app.timezone, after),
    })
}

/// The stores the caller asked for and may see. A store-scoped caller is
/// held to their store: naming another is 403.
async fn resolve_scope(app: &Regulars, caller: &Principal, q: &RawQuery) -> AppResult<Scope> {
    let mut scope = Scope::default();
    if let Some(b) = q.get("brand") {
        scope.brand = Some(parse_code("brand", b)?);
    }
    if let Some(r) = q.get("region") {
        scope.region = Some(parse_name("region", r)?);
    }
    if let Some(c) = q.get("city") {
        scope.city = Some(parse_name("city", c)?);
    }
    let asked = match q.get("store") {
        Some(s) => Some(parse_code("store", s)?),
        None => None,
    };
    if caller.role.is_store_scoped() {
        let own = caller.store_scope().unwrap_or("").to_string();
        if let Some(s) = &asked {
            caller.check(Action::SegmentRead, Some(s))?;
        }
        scope.store = Some(own);
    } else {
        scope.store = asked;
    }
    let mut conn = app.db.reader().await?;
    let unknown = |code: &'static str, message: String| Err(AppError::unprocessable(code, message));
    if let Some(b) = &scope.brand {
        if !repo::brand_exists(&mut conn, b).await? {
            return unknown("unknown_brand", format!("no brand with code {b}"));
        }
    }
    if let Some(r) = &scope.region {
        if !repo::region_exists(&mut conn, r).await? {
            return unknown("unknown_region", format!("no region with code or name {r}"));
        }
    }
    if let Some(c) = &scope.city {
        if !repo::city_exists(&mut conn, c).await? {
            return unknown("unknown_city", format!("no store in city {c}"));
        }
    }
    if !caller.role.is_store_scoped() {
        if let Some(s) = &scope.store {
            if regulars_store::chain::get_store(&mut conn, s)
                .await?
                .is_none()
            {
                return unknown("unknown_store", format!("no store with code {s}"));
            }
        }
    }
    Ok(scope)
}

/// The permission, the window and the scope of a report.
async fn prepare(
    app: &Regulars,
    caller: &Principal,
    q: &RawQuery,
) -> AppResult<(Window, Scope, Vec<ScopeStore>)> {
    caller.check(Action::SegmentRead, None)?;
    let window = resolve_window(app, q)?;
    let scope = resolve_scope(app, caller, q).await?;
    let stores = {
        let mut conn = app.db.reader().await?;
        repo::stores_in(&mut conn, &scope).await?
    };
    Ok((window, scope, stores))
}

/// `n / d` to four places; `None` when `d` is zero.
fn rate(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| round4(n as f64 / d as f64))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

// ---------------------------------------------------------------------------
// Repurchase
// ---------------------------------------------------------------------------

/// `GET /api/v1/analytics/repurchase`
#[derive(Debug, Serialize, ToSchema)]
pub struct RepurchaseReport {
    pub window: WindowView,
    pub scope: ScopeView,
    /// Members with at least one visit (a local day with an order) in the window.
    pub members_with_visit: i64,
    /// Of those, members with visits on two or more days.
    pub members_with_2plus: i64,
    /// `members_with_2plus / members_with_visit`; null when nobody visited.
    pub repurchase_rate: Option<f64>,
    /// The 40% line (seed 001).
    pub benchmark: f64,
    pub below_benchmark: bool,
    /// Per store of the scope: members who visited that store, and those who
    /// visited it on two or more days.
    pub by_store: Vec<StoreRepurchase>,
    /// Per local month of the window (months cut by the window count only
    /// the days inside it).
    pub by_month: Vec<MonthRepurchase>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreRepurchase {
    pub store_code: String,
    pub store_name: String,
    pub city: String,
    pub region: String,
    pub members: i64,
    pub members_with_2plus: i64,
    pub rate: Option<f64>,
    pub below_benchmark: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthRepurchase {
    /// `YYYY-MM`
    pub month: String,
    pub members: i64,
    pub members_with_2plus: i64,
    pub rate: Option<f64>,
}

/// Visit days of one member: overall, per store, per month.
#[derive(Default)]
struct MemberDays {
    days: u32,
    last: Option<NaiveDate>,
    /// (store index, days, last day)
    stores: Vec<(usize, u32, NaiveDate)>,
    /// (month index, days, last day)
    months: Vec<(i32, u32, NaiveDate)>,
}

impl MemberDays {
    fn add(&mut self, day: NaiveDate, store: Option<usize>) {
        if self.last != Some(day) {
            self.days += 1;
            self.last = Some(day);
        }
        if let Some(s) = store {
            match self.stores.iter_mut().find(|(i, _, _)| *i == s) {
                Some((_, n, last)) if *last != day => {
                    *n += 1;
                    *last = day;
                }
                Some(_) => {}
                None => self.stores.push((s, 1, day)),
            }
        }
        let m = month_index(day);
        match self.months.iter_mut().find(|(i, _, _)| *i == m) {
            Some((_, n, last)) if *last != day => {
                *n += 1;
                *last = day;
            }
            Some(_) => {}
            None => self.months.push((m, 1, day)),
        }
    }
}

/// Counters: (members, members with 2+ days).
type Pair = (i64, i64);

fn count(pair: &mut Pair, days: u32) {
    pair.0 += 1;
    if days >= 2 {
        pair.1 += 1;
    }
}

pub async fn repurchase(
    app: &Regulars,
    caller: &Principal,
    q: &RawQuery,
) -> AppResult<RepurchaseReport> {
    let (window, scope, stores) = prepare(app, caller, q).await?;
    let store_index: HashMap<&str, usize> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| (s.code.as_str(), i))
        .collect();
    let first_month = month_index(window.from);
    let months = (month_index(window.to) - first_month + 1).max(1) as usize;
    let mut overall: Pair = (0, 0);
    let mut per_store: Vec<Pair> = vec![(0, 0); stores.len()];
    let mut per_month: Vec<Pair> = vec![(0, 0); months];
    let mut flush = |m: &MemberDays| {
        if m.days == 0 {
            return;
        }
        count(&mut overall, m.days);
        for &(s, n, _) in &m.stores {
            count(&mut per_store[s], n);
        }
        for &(k, n, _) in &m.months {
            if let Some(p) = usize::try_from(k - first_month)
                .ok()
                .and_then(|i| per_month.get_mut(i))
            {
                count(p, n);
            }
        }
    };
    let tz = app.timezone;
    let mut current: Option<String> = None;
    let mut days = MemberDays::default();
    {
        let mut conn = app.db.reader().await?;
        repo::scan_member_visits(&mut conn, &scope, Some(window.start), window.end, |v| {
            if current.as_deref() != Some(v.member_id.as_str()) {
                flush(&days);
                days = MemberDays::default();
                current = Some(v.member_id);
            }
            if let Some(t) = local(tz, v.occurred_at) {
                days.add(t.date(), store_index.get(v.store_code.as_str()).copied());
            }
        })
        .await?;
    }
    flush(&days);
    let repurchase_rate = rate(overall.1, overall.0);
    let below = |r: Option<f64>| r.is_some_and(|r| r < REPURCHASE_BENCHMARK);
    Ok(RepurchaseReport {
        window: window.view(),
        scope: ScopeView::from(&scope),
        members_with_visit: overall.0,
        members_with_2plus: overall.1,
        repurchase_rate,
        benchmark: REPURCHASE_BENCHMARK,
        below_benchmark: below(repurchase_rate),
        by_store: stores
            .iter()
            .zip(&per_store)
            .map(|(s, &(members, repeat))| StoreRepurchase {
                store_code: s.code.clone(),
                store_name: s.name.clone(),
                city: s.city.clone(),
                region: s.region_name.clone(),
                members,
                members_with_2plus: repeat,
                rate: rate(repeat, members),
                below_benchmark: below(rate(repeat, members)),
            })
            .collect(),
        by_month: per_month
            .iter()
            .enumerate()
            .map(|(i, &(members, repeat))| MonthRepurchase {
                month: month_label(first_month + i as i32),
                members,
                members_with_2plus: repeat,
                rate: rate(repeat, members),
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Cohorts
// ---------------------------------------------------------------------------

/// `GET /api/v1/analytics/cohorts`
#[derive(Debug, Serialize, ToSchema)]
pub struct CohortReport {
    pub window: WindowView,
    pub scope: ScopeView,
    /// The months of the window, `YYYY-MM`.
    pub months: Vec<String>,
    /// One row per month of the window in which members made their first
    /// visit (to a store of the scope); months with no new member are left out.
    pub cohorts: Vec<Cohort>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Cohort {
    /// The month of the first visit, `YYYY-MM`.
    pub cohort: String,
    /// Members whose first visit was in that month.
    pub members: i64,
    /// `retained[k]`: members of the cohort with a visit in the k-th month
    /// after (k = 0 is the cohort month: everyone), up to the window's last month.
    pub retained: Vec<i64>,
    /// `retained[k] / members`.
    pub retention: Vec<f64>,
}

pub async fn cohorts(app: &Regulars, caller: &Principal, q: &RawQuery) -> AppResult<CohortReport> {
    let (window, scope, _) = prepare(app, caller, q).await?;
    let first = month_index(window.from);
    let last = month_index(window.to);
    let width = (last - first + 1).max(1) as usize;
    // retained[c][k] for cohort month first + c.
    let mut retained: Vec<Vec<i64>> = (0..width).map(|c| vec![0; width - c]).collect();
    let mut flush = |months: &[i32]| {
        let Some(&cohort) = months.first() else {
            return;
        };
        if cohort < first || cohort > last {
            return;
        }
        let row = &mut retained[(cohort - first) as usize];
        for &m in months {
            if let Some(slot) = row.get_mut((m - cohort) as usize) {
                *slot += 1;
            }
        }
    };
    let tz = app.timezone;
    let mut current: Option<String> = None;
    let mut months: Vec<i32> = Vec::new();
    {
        let mut conn = app.db.reader().await?;
        // The whole history up to the window's end: a cohort is the month
        // of a member's first visit ever (at the scope's stores).
        repo::scan_member_visits(&mut conn, &scope, None, window.end, |v| {
            if current.as_deref() != Some(v.member_id.as_str()) {
                flush(&months);
                months.clear();
                current = Some(v.member_id);
            }
            if let Some(t) = local(tz, v.occurred_at) {
                let m = month_index(t.date());
                if months.last() != Some(&m) {
                    months.push(m);
                }
            }
        })
        .await?;
    }
    flush(&months);
    Ok(CohortReport {
        window: window.view(),
        scope: ScopeView::from(&scope),
        months: (first..=last).map(month_label).collect(),
        cohorts: retained
            .into_iter()
            .enumerate()
            .filter(|(_, row)| row.first().is_some_and(|n| *n > 0))
            .map(|(c, row)| {
                let members = row.first().copied().unwrap_or(0);
                Cohort {
                    cohort: month_label(first + c as i32),
                    members,
                    retention: row
                        .iter()
                        .map(|n| rate(*n, members).unwrap_or(0.0))
                        .collect(),
                    retained: row,
                }
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Dishes
// ---------------------------------------------------------------------------

/// `GET /api/v1/analytics/dishes`
#[derive(Debug, Serialize, ToSchema)]
pub struct DishReport {
    pub window: WindowView,
    pub scope: ScopeView,
    /// The part of the day the report is limited to, if any.
    pub daypart: Option<String>,
    /// The two periods growth compares: the 30 local days ending with the
    /// window's last day, and the 30 days before them.
    pub growth: GrowthWindow,
    /// Orders in the window (and daypart) at the scope's stores, with or
    /// without a member: the denominator of attach rates.
    pub orders: i64,
    pub dishes: Vec<DishView>,
    /// With `by`: the same table per store, region or daypart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<DishGroup>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrowthWindow {
    pub recent_from: String,
    pub recent_to: String,
    pub previous_from: String,
    pub previous_to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DishGroup {
    /// Store code, region code or daypart.
    pub key: String,
    /// Store or region name; the daypart again.
    pub name: String,
    pub orders: i64,
    pub dishes: Vec<DishView>,
}

/// One dish, by SKU. Voided lines and staff meals are not counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DishView {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// On the menu of a brand of the scope.
    pub on_menu: bool,
    /// Units sold in the window.
    pub quantity: i64,
    /// What guests were charged for them (after line discounts; comped lines 0).
    pub sales_fen: i64,
    /// Orders in the window with the dish.
    pub orders: i64,
    /// `orders / all orders` in the window.
    pub attach_rate: Option<f64>,
    pub quantity_recent: i64,
    pub quantity_previous: i64,
    /// `(recent − previous) / previous`; null when the previous period sold none.
    pub growth: Option<f64>,
    /// Local date of the last sale seen (window and growth periods).
    pub last_sold: Option<String>,
    /// Top decile by quantity, and selling more than in the previous period.
    pub hot: bool,
    /// Not hot, and bottom decile by quantity or no sale in the recent period.
    pub slow: bool,
}

#[derive(Default)]
struct DishAcc {
    name: String,
    category: String,
    quantity: i64,
    sales_fen: i64,
    orders: i64,
    recent: i64,
    previous: i64,
    last_sold: Option<i64>,
}

#[derive(Default)]
struct GroupAcc {
    orders: i64,
    dishes: HashMap<String, DishAcc>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DishBy {
    Store,
    Region,
    Daypart,
}

/// What each period of the SQL cuts is part of.
#[derive(Clone, Copy)]
struct Period {
    in_window: bool,
    recent: bool,
    previous: bool,
}

impl GroupAcc {
    fn add_orders(&mut self, orders: i64, p: Period) {
        if p.in_window {
            self.orders += orders;
        }
    }

    fn add_dish(&mut self, c: &repo::DishCell, p: Period) {
        let d = self.dishes.entry(c.sku.clone()).or_default();
        // The name of the latest sale wins.
        if d.last_sold.is_none_or(|t| c.last_at >= t) {
            d.name.clone_from(&c.name);
            d.category.clone_from(&c.category);
            d.last_sold = Some(c.last_at);
        }
        if p.in_window {
            d.quantity += c.quantity;
            d.sales_fen += c.sales_fen;
            d.orders += c.orders;
        }
        if p.recent {
            d.recent += c.quantity;
        }
        if p.previous {
            d.previous += c.quantity;
        }
    }

    /// The group's table: dishes sold in the window and every dish of the
    /// given menus, with their flags, best sellers first.
    fn finish(mut self, menu: &[&MenuDish], tz: chrono_tz::Tz) -> (i64, Vec<DishView>) {
        let on_menu: BTreeSet<&str> = menu.iter().map(|m| m.sku.as_str()).collect();
        for m in menu {
            let d = self.dishes.entry(m.sku.clone()).or_default();
            d.name.clone_from(&m.name);
            d.category.clone_from(&m.category);
        }
        let orders = self.orders;
        let mut dishes: Vec<DishView> = self
            .dishes
            .into_iter()
            .filter(|(sku, d)| d.quantity > 0 || on_menu.contains(sku.as_str()))
            .map(|(sku, d)| DishView {
                on_menu: on_menu.contains(sku.as_str()),
                name: d.name,
                category: d.category,
                quantity: d.quantity,
                sales_fen: d.sales_fen,
                orders: d.orders,
                attach_rate: rate(d.orders, orders),
                quantity_recent: d.recent,
                quantity_previous: d.previous,
                growth: (d.previous > 0)
                    .then(|| round4((d.recent - d.previous) as f64 / d.previous as f64)),
                last_sold: d
                    .last_sold
                    .and_then(|t| local(tz, t))
                    .map(|t| t.date().to_string()),
                hot: false,
                slow: false,
                sku,
            })
            .collect();
        flag(&mut dishes);
        dishes.sort_by(|a, b| {
            b.quantity
                .cmp(&a.quantity)
                .then(b.sales_fen.cmp(&a.sales_fen))
                .then(a.sku.cmp(&b.sku))
        });
        (orders, dishes)
    }
}

/// Hot: in the top decile by quantity (ties included; at least one dish)
/// and selling more in the recent period than in the previous one. Slow: not
/// hot, and in the bottom decile by quantity or no sale in the recent period.
fn flag(dishes: &mut [DishView]) {
    if dishes.is_empty() {
        return;
    }
    let mut quantities: Vec<i64> = dishes.iter().map(|d| d.quantity).collect();
    quantities.sort_unstable();
    let decile = dishes.len().div_ceil(10);
    let bottom = quantities[decile - 1];
    let top = quantities[quantities.len() - decile];
    for d in dishes.iter_mut() {
        d.hot = d.quantity > 0 && d.quantity >= top && d.quantity_recent > d.quantity_previous;
        d.slow = !d.hot && (d.quantity <= bottom || d.quantity_recent == 0);
    }
}

pub async fn dishes(app: &Regulars, caller: &Principal, q: &RawQuery) -> AppResult<DishReport> {
    caller.check(Action::SegmentRead, None)?;
    let daypart = match q.get("daypart") {
        None => None,
        Some(v) => Some(
            DAYPARTS
                .iter()
                .position(|d| *d == v.trim())
                .ok_or_else(|| {
                    DomainError::invalid("daypart", "one of lunch, afternoon, dinner, late")
                })?,
        ),
    };
    let by = match q.get("by").map(str::trim) {
        None => None,
        Some("store") => Some(DishBy::Store),
        Some("region") => Some(DishBy::Region),
        Some("daypart") => Some(DishBy::Daypart),
        Some(_) => {
            return Err(DomainError::invalid("by", "one of store, region, daypart").into());
        }
    };
    let (window, scope, stores) = prepare(app, caller, q).await?;
    let tz = app.timezone;
    let back = |days: u64| {
        window
            .to
            .checked_sub_days(Days::new(days - 1))
            .unwrap_or(window.to)
    };
    let (recent_from, previous_from) = (back(GROWTH_DAYS), back(2 * GROWTH_DAYS));
    let (recent_start, previous_start) = (day_start(tz, recent_from), day_start(tz, previous_from));
    let scan_start = window.start.min(previous_start);
    // The periods: every boundary inside the scanned range cuts it.
    let bounds: BTreeSet<i64> = [window.start, previous_start, recent_start]
        .into_iter()
        .filter(|t| *t > scan_start && *t < window.end)
        .collect();
    let starts: Vec<i64> = std::iter::once(scan_start)
        .chain(bounds.iter().copied())
        .collect();
    let kinds: Vec<Period> = starts
        .iter()
        .map(|&t| Period {
            in_window: t >= window.start,
            recent: t >= recent_start,
            previous: t >= previous_start && t < recent_start,
        })
        .collect();
    let mut parts = [0u8; 24];
    for (hour, part) in parts.iter_mut().enumerate() {
        *part = (insight::time_bucket(hour as u16 * 60, 0) % 4) as u8;
    }
    let cuts = repo::TimeCuts {
        offsets: utc_offsets(tz, scan_start, window.end),
        periods: bounds.into_iter().collect(),
        parts,
    };
    let (dish_cells, order_cells) = {
        let mut conn = app.db.reader().await?;
        let dishes = repo::dish_cells(&mut conn, &scope, scan_start, window.end, &cuts).await?;
        let orders = repo::order_cells(&mut conn, &scope, scan_start, window.end, &cuts).await?;
        (dishes, orders)
    };

    let region_of: HashMap<&str, &str> = stores
        .iter()
        .map(|s| (s.code.as_str(), s.region_code.as_str()))
        .collect();
    // The group of a cell (with `by`), or None when the daypart filter
    // leaves it out.
    let place = |store: &str, part: i64| -> Option<Option<String>> {
        let part = usize::try_from(part).ok().filter(|p| *p < DAYPARTS.len())?;
        if daypart.is_some_and(|d| d != part) {
            return None;
        }
        let key = match by {
            None => None,
            Some(DishBy::Store) => Some(store.to_string()),
            Some(DishBy::Region) => region_of.get(store).map(|r| r.to_string()),
            Some(DishBy::Daypart) => Some(DAYPARTS[part].to_string()),
        };
        Some(key)
    };
    let period = |k: i64| usize::try_from(k).ok().and_then(|k| kinds.get(k)).copied();
    let mut overall = GroupAcc::default();
    let mut groups: HashMap<String, GroupAcc> = HashMap::new();
    for c in &order_cells {
        let (Some(key), Some(p)) = (place(&c.store_code, c.part), period(c.period)) else {
            continue;
        };
        overall.add_orders(c.orders, p);
        if let Some(key) = key {
            groups.entry(key).or_default().add_orders(c.orders, p);
        }
    }
    for c in &dish_cells {
        let (Some(key), Some(p)) = (place(&c.store_code, c.part), period(c.period)) else {
            continue;
        };
        overall.add_dish(c, p);
        if let Some(key) = key {
            groups.entry(key).or_default().add_dish(c, p);
        }
    }

    // The menus of the scope's brands: their dishes are listed even unsold.
    let menu = {
        let mut conn = app.db.reader().await?;
        repo::menu(&mut conn).await?
    };
    let menu_of = |brands: &BTreeSet<&str>| -> Vec<&MenuDish> {
        menu.iter()
            .filter(|m| brands.contains(m.brand_code.as_str()) && m.created_at < window.end)
            .collect()
    };
    let all_brands: BTreeSet<&str> = stores.iter().map(|s| s.brand_code.as_str()).collect();
    let (orders, dishes) = overall.finish(&menu_of(&all_brands), tz);

    let groups = by.map(|by| {
        // Every store, region or daypart of the scope, sold or not.
        let mut keys: Vec<(String, String, BTreeSet<&str>)> = Vec::new();
        match by {
            DishBy::Store => {
                for s in &stores {
                    keys.push((
                        s.code.clone(),
                        s.name.clone(),
                        BTreeSet::from([s.brand_code.as_str()]),
                    ));
                }
            }
            DishBy::Region => {
                for s in &stores {
                    match keys.iter_mut().find(|k| k.0 == s.region_code) {
                        Some(k) => {
                            k.2.insert(s.brand_code.as_str());
                        }
                        None => keys.push((
                            s.region_code.clone(),
                            s.region_name.clone(),
                            BTreeSet::from([s.brand_code.as_str()]),
                        )),
                    }
                }
            }
            DishBy::Daypart => {
                for (i, d) in DAYPARTS.iter().enumerate() {
                    if daypart.is_none_or(|p| p == i) {
                        keys.push((d.to_string(), d.to_string(), all_brands.clone()));
                    }
                }
            }
        }
        keys.into_iter()
            .map(|(key, name, brands)| {
                let acc = groups.remove(&key).unwrap_or_default();
                let (orders, dishes) = acc.finish(&menu_of(&brands), tz);
                DishGroup {
                    key,
                    name,
                    orders,
                    dishes,
                }
            })
            .collect()
    });

    Ok(DishReport {
        window: window.view(),
        scope: ScopeView::from(&scope),
        daypart: daypart.map(|d| DAYPARTS[d].to_string()),
        growth: GrowthWindow {
            recent_from: recent_from.to_string(),
            recent_to: window.to.to_string(),
            previous_from: previous_from.to_string(),
            previous_to: recent_from.pred_opt().unwrap_or(recent_from).to_string(),
        },
        orders,
        dishes,
        groups,
    })
}

// ---------------------------------------------------------------------------
// Promotions
// ---------------------------------------------------------------------------

/// `GET /api/v1/analytics/promotions`
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionReport {
    pub window: WindowView,
    pub scope: ScopeView,
    /// Coupons issued in the window (to members whose home store is in scope).
    pub issued: i64,
    /// Of those, redeemed (at any time up to now).
    pub redeemed: i64,
    /// `redeemed / issued`; null when none was issued.
    pub redemption_rate: Option<f64>,
    /// Still usable or past their date but not yet marked by the expiry job.
    pub outstanding: i64,
    pub expired: i64,
    pub void: i64,
    /// Discount given by the redeemed ones.
    pub discount_fen: i64,
    pub by_template: Vec<TemplateResponse>,
    /// By where the coupons came from: campaign, birthday, redemption, …
    pub by_source: Vec<SourceResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateResponse {
    pub template_id: String,
    pub name: String,
    pub issued: i64,
    pub redeemed: i64,
    pub redemption_rate: Option<f64>,
    pub discount_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceResponse {
    pub source: String,
    pub issued: i64,
    pub redeemed: i64,
    pub redemption_rate: Option<f64>,
}

pub async fn promotions(
    app: &Regulars,
    caller: &Principal,
    q: &RawQuery,
) -> AppResult<PromotionReport> {
    let (window, scope, _) = prepare(app, caller, q).await?;
    let rows = {
        let mut conn = app.db.reader().await?;
        repo::coupon_counts(&mut conn, &scope, window.start, window.end).await?
    };
    let mut report = PromotionReport {
        window: window.view(),
        scope: ScopeView::from(&scope),
        issued: 0,
        redeemed: 0,
        redemption_rate: None,
        outstanding: 0,
        expired: 0,
        void: 0,
        discount_fen: 0,
        by_template: Vec::new(),
        by_source: Vec::new(),
    };
    for r in rows {
        let redeemed = if r.status == "redeemed" { r.coupons } else { 0 };
        report.issued += r.coupons;
        report.redeemed += redeemed;
        report.discount_fen += r.discount_fen;
        match r.status.as_str() {
            "issued" => report.outstanding += r.coupons,
            "expired" => report.expired += r.coupons,
            "void" => report.void += r.coupons,
            _ => {}
        }
        match report
            .by_template
            .iter_mut()
            .find(|t| t.template_id == r.template_id)
        {
            Some(t) => {
                t.issued += r.coupons;
                t.redeemed += redeemed;
                t.discount_fen += r.discount_fen;
            }
            None => report.by_template.push(TemplateResponse {
                template_id: r.template_id.clone(),
                name: r.template_name.clone(),
                issued: r.coupons,
                redeemed,
                redemption_rate: None,
                discount_fen: r.discount_fen,
            }),
        }
        match report.by_source.iter_mut().find(|s| s.source == r.source) {
            Some(s) => {
                s.issued += r.coupons;
                s.redeemed += redeemed;
            }
            None => report.by_source.push(SourceResponse {
                source: r.source.clone(),
                issued: r.coupons,
                redeemed,
                redemption_rate: None,
            }),
        }
    }
    report.redemption_rate = rate(report.redeemed, report.issued);
    for t in &mut report.by_template {
        t.redemption_rate = rate(t.redeemed, t.issued);
    }
    for s in &mut report.by_source {
        s.redemption_rate = rate(s.redeemed, s.issued);
    }
    report
        .by_template
        .sort_by(|a, b| b.issued.cmp(&a.issued).then(a.name.cmp(&b.name)));
    report
        .by_source
        .sort_by(|a, b| b.issued.cmp(&a.issued).then(a.source.cmp(&b.source)));
    Ok(report)
}

// ---------------------------------------------------------------------------
// Distribution
// ---------------------------------------------------------------------------

/// `GET /api/v1/analytics/distribution`
#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionReport {
    pub window: WindowView,
    pub scope: ScopeView,
    /// region, city, store, age_group, tier, lifecycle or grade.
    pub by: String,
    /// Largest group first.
    pub rows: Vec<DistributionView>,
    pub total: DistributionTotal,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionView {
    /// The value (`unknown` when the member has none; lifecycle and grade
    /// `unscored` before the member's first scoring run). Region and store:
    /// the code.
    pub key: String,
    /// Region and store: the name; otherwise the key.
    pub name: String,
    /// Members not erased.
    pub members: i64,
    /// Members with an order in the window.
    pub active_members: i64,
    pub active_rate: Option<f64>,
    /// Paid minus refunded in the window.
    pub spend_fen: i64,
    /// Paid minus refunded in the 12 months ending with the window's last day.
    pub spend_12m_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionTotal {
    pub members: i64,
    pub active_members: i64,
    pub spend_fen: i64,
    pub spend_12m_fen: i64,
}

pub async fn distribution(
    app: &Regulars,
    caller: &Principal,
    q: &RawQuery,
) -> AppResult<DistributionReport> {
    caller.check(Action::SegmentRead, None)?;
    let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.as_str()).collect();
    let by = q
        .get("by")
        .map(str::trim)
        .and_then(Dimension::parse)
        .ok_or_else(|| DomainError::invalid("by", format!("one of {}", names.join(", "))))?;
    let (window, scope, _) = prepare(app, caller, q).await?;
    let after = window.to.succ_opt().unwrap_or(window.to);
    let start_12m = day_start(
        app.timezone,
        after
            .checked_sub_months(Months::new(12))
            .unwrap_or(window.from),
    );
    let rows = {
        let mut conn = app.db.reader().await?;
        repo::distribution(&mut conn, &scope, by, window.start, start_12m, window.end).await?
    };
    let mut total = DistributionTotal {
        members: 0,
        active_members: 0,
        spend_fen: 0,
        spend_12m_fen: 0,
    };
    let mut rows: Vec<DistributionView> = rows
        .into_iter()
        .map(|r| {
            total.members += r.members;
            total.active_members += r.active_members;
            total.spend_fen += r.spend_fen;
            total.spend_12m_fen += r.spend_12m_fen;
            DistributionView {
                active_rate: rate(r.active_members, r.members),
                key: r.key,
                name: r.label,
                members: r.members,
                active_members: r.active_members,
                spend_fen: r.spend_fen,
                spend_12m_fen: r.spend_12m_fen,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.members.cmp(&a.members).then(a.key.cmp(&b.key)));
    Ok(DistributionReport {
        window: window.view(),
        scope: ScopeView::from(&scope),
        by: by.as_str().to_string(),
        rows,
        total,
    })
}

/// The dashboard's figures beside the reports (`repurchase`,
/// `distribution`): points owed, NPS, complaints and their SLA.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pulse {
    pub window: WindowView,
    pub scope: ScopeView,
    /// Points on the balances of the scope's members (by home store).
    pub points_outstanding: i64,
    pub nps_answers: i64,
    /// % promoters (9–10) minus % detractors (0–6); null with no answers.
    pub nps: Option<f64>,
    pub complaints: i64,
    /// Complaints answered by their first-response deadline, 0–1.
    pub sla_met: Option<f64>,
    /// Complaints not closed yet, whenever they came in.
    pub complaints_open: i64,
}

pub async fn pulse(app: &Regulars, caller: &Principal, q: &RawQuery) -> AppResult<Pulse> {
    let (window, scope, _) = prepare(app, caller, q).await?;
    let p = {
        let mut conn = app.db.reader().await?;
        repo::pulse(&mut conn, &scope, window.start, window.end).await?
    };
    Ok(Pulse {
        window: window.view(),
        scope: ScopeView::from(&scope),
        points_outstanding: p.points_outstanding,
        nps_answers: p.nps_answers,
        nps: (p.nps_answers > 0)
            .then(|| 100.0 * (p.promoters - p.detractors) as f64 / p.nps_answers as f64),
        complaints: p.complaints,
        sla_met: rate(p.complaints_in_time, p.complaints_due),
        complaints_open: p.complaints_open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dish(sku: &str, quantity: i64, recent: i64, previous: i64) -> DishView {
        DishView {
            sku: sku.into(),
            name: sku.into(),
            category: String::new(),
            on_menu: true,
            quantity,
            sales_fen: 0,
            orders: 0,
            attach_rate: None,
            quantity_recent: recent,
            quantity_previous: previous,
            growth: None,
            last_sold: None,
            hot: false,
            slow: false,
        }
    }

    #[test]
    fn deciles_flag_at_least_one_dish_and_include_ties() {
        let mut d = vec![
            dish("A", 50, 40, 10),
            dish("B", 30, 10, 20),
            dish("C", 20, 10, 10),
            dish("D", 5, 0, 5),
            dish("E", 1, 1, 0),
        ];
        flag(&mut d);
        let hot: Vec<_> = d.iter().filter(|x| x.hot).map(|x| x.sku.as_str()).collect();
        let slow: Vec<_> = d
            .iter()
            .filter(|x| x.slow)
            .map(|x| x.sku.as_str())
            .collect();
        assert_eq!(hot, ["A"]);
        // E is the bottom decile; D sold nothing in the recent period.
        assert_eq!(slow, ["D", "E"]);
        // The top seller that is not growing is not hot.
        let mut d = vec![dish("A", 50, 10, 40), dish("B", 50, 30, 20)];
        flag(&mut d);
        assert!(!d[0].hot && d[1].hot);
    }

    #[test]
    fn query_parameters_are_checked() {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(RawQuery::parse(pairs(&[("from", "2026-01-01")]), &[]).is_ok());
        assert!(RawQuery::parse(pairs(&[("form", "2026-01-01")]), &[]).is_err());
        assert!(RawQuery::parse(pairs(&[("by", "tier")]), &[]).is_err());
        assert!(RawQuery::parse(pairs(&[("by", "tier")]), &["by"]).is_ok());
        assert!(
            RawQuery::parse(pairs(&[("to", "2026-01-01"), ("to", "2026-02-01")]), &[]).is_err()
        );
        assert!(parse_date("from", "2026-02-30").is_err());
        assert!(parse_date("from", "2026-2-3").is_err());
        assert!(parse_date("from", "20260203").is_err());
        assert_eq!(
            parse_date("from", "2026-02-03").ok(),
            NaiveDate::from_ymd_opt(2026, 2, 3)
        );
    }

    #[test]
    fn months_are_numbered_across_years() {
        let jan = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap_or_default();
        let dec = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap_or_default();
        assert_eq!(month_index(jan) - month_index(dec), 1);
        assert_eq!(month_label(month_index(dec)), "2025-12");
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        // Shanghai: one offset. Berlin: summer time from 2026-03-29 01:00 UTC.
        let (start, end) = (1_767_225_600_000, 1_772_294_400_000 + 90 * 86_400_000);
        assert_eq!(
            utc_offsets(chrono_tz::Asia::Shanghai, start, end),
            [(i64::MIN, 28_800_000)]
        );
        assert_eq!(
            utc_offsets(chrono_tz::Europe::Berlin, start, end),
            [(i64::MIN, 3_600_000), (1_774_746_000_000, 7_200_000)]
        );
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        // 2026-03-01 00:00 +08:00 is 2026-02-28 16:00 UTC.
        assert_eq!(day_start(chrono_tz::Asia::Shanghai, day), 1_772_294_400_000);
    }
}
