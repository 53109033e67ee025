//! The dashboard: the chain (or the manager's store) at a glance — members,
//! active members, repurchase against the 40% line, sales, points owed, tier
//! mix, lifecycle funnel, complaints with their SLA, NPS — filtered by brand,
//! region, city, store and date range. Figures come from the same reports as
//! `/api/v1/analytics/*`.

use super::frame::{render, yuan_grouped, Chrome, FieldErrors, Lang, Staff};
use crate::app::analytics::{
    self, DistributionReport, Pulse, RawQuery, RepurchaseReport, REPURCHASE_BENCHMARK,
};
use crate::app::{chain, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use regulars_core::access::Action;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/", get(dashboard))
}

struct StoreLine {
    code: String,
    name: String,
    region: String,
    city: String,
}

/// The filter form as the user filled it in (kept on a re-render).
#[derive(Default)]
pub(super) struct Filters {
    pub from: String,
    pub to: String,
    pub brand: String,
    pub region: String,
    pub city: String,
    pub store: String,
}

impl Filters {
    pub(super) fn read(pairs: &[(String, String)]) -> Filters {
        let mut f = Filters::default();
        for (k, v) in pairs {
            let v = v.trim().to_string();
            match k.as_str() {
                "from" => f.from = v,
                "to" => f.to = v,
                "brand" => f.brand = v,
                "region" => f.region = v,
                "city" => f.city = v,
                "store" => f.store = v,
                _ => {}
            }
        }
        f
    }

    /// The filled-in filters as report parameters, plus `extra`.
    pub(super) fn query(&self, extra: &[(&str, &str)]) -> Result<RawQuery, AppError> {
        let mut pairs: Vec<(String, String)> = [
            ("from", &self.from),
            ("to", &self.to),
            ("brand", &self.brand),
            ("region", &self.region),
            ("city", &self.city),
            ("store", &self.store),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let names: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RawQuery::parse(pairs, &names)
    }
}

/// One number on the dashboard.
struct Tile {
    id: &'static str,
    label: String,
    value: String,
    hint: String,
    warn: bool,
}

/// The report figures, when the role may read them and the filters parse.
struct Figures {
    window: String,
    tiles: Vec<Tile>,
    repurchase_by_month: String,
    repurchase_by_store: String,
    tier_mix: String,
    lifecycle: String,
}

#[derive(Template)]
#[template(path = "dashboard/dashboard.html")]
struct DashboardPage {
    c: Chrome,
    store_count: usize,
    member_count: i64,
    stores: Vec<StoreLine>,
    brands: Vec<String>,
    regions: Vec<String>,
    cities: Vec<String>,
    filters: Filters,
    errors: FieldErrors,
    figures: Option<Figures>,
}

/// What the filter fields say when the reports refuse a value.
const WORDING: [(&str, &str, &str); 2] = [
    (
        "from",
        "开始日期格式为 2026-05-01，且不晚于结束日期，跨度不超过十年",
        "Start date as 2026-05-01, not after the end date, at most ten years before it",
    ),
    ("to", "结束日期格式为 2026-05-31", "End date as 2026-05-31"),
];

async fn dashboard(
    State(state): State<ApiState>,
    staff: Staff,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let stores = match chain::list_stores(&state.regulars, staff.principal()).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let member_count = match state.regulars.db.reader().await {
        Ok(mut conn) => {
            regulars_store::members::count_members(&mut conn, staff.principal().store_scope())
                .await
                .unwrap_or(0)
        }
        Err(_) => 0,
    };
    let filters = Filters::read(&pairs);
    let mut errors = FieldErrors::default();
    let figures = if staff.may(Action::SegmentRead) {
        match figures(&state, &staff, &filters).await {
            Ok(f) => Some(f),
            Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
                errors = filter_errors(staff.lang, &e);
                None
            }
            Err(e) => return staff.fail(e),
        }
    } else {
        None
    };
    let set = |f: fn(&chain::StoreView) -> &String| -> Vec<String> {
        stores
            .iter()
            .map(|s| f(s).clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let (brands, regions, cities) = (set(|s| &s.brand), set(|s| &s.region), set(|s| &s.city));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        DashboardPage {
            c: staff.chrome(),
            store_count: stores.len(),
            member_count,
            brands,
            regions,
            cities,
            stores: stores
                .into_iter()
                .map(|s| StoreLine {
                    code: s.code,
                    name: s.name,
                    region: s.region,
                    city: s.city,
                })
                .collect(),
            filters,
            errors,
            figures,
        },
    )
}

/// A refused filter, next to its field. Unknown brand/region/city/store
/// codes name their field through the error code.
pub(super) fn filter_errors(lang: Lang, e: &AppError) -> FieldErrors {
    if let AppError::Unprocessable { code, .. } = e {
        let field = match *code {
            "unknown_brand" => Some(("brand", "没有这个品牌", "No such brand")),
            "unknown_region" => Some(("region", "没有这个区域", "No such region")),
            "unknown_city" => Some(("city", "这个城市没有门店", "No store in this city")),
            "unknown_store" => Some(("store", "没有这家门店", "No such store")),
            _ => None,
        };
        if let Some((field, zh, en)) = field {
            let mut errors = FieldErrors::default();
            errors.add(field, lang.t(zh, en));
            return errors;
        }
    }
    FieldErrors::from_app(lang, e, "from", &WORDING)
}

async fn figures(state: &ApiState, staff: &Staff, filters: &Filters) -> Result<Figures, AppError> {
    let app = &state.regulars;
    let caller = staff.principal();
    let lang = staff.lang;
    let plain = filters.query(&[])?;
    let repurchase = analytics::repurchase(app, caller, &plain).await?;
    let pulse = analytics::pulse(app, caller, &plain).await?;
    let tiers = analytics::distribution(app, caller, &filters.query(&[("by", "tier")])?).await?;
    let lifecycle =
        analytics::distribution(app, caller, &filters.query(&[("by", "lifecycle")])?).await?;
    Ok(Figures {
        window: format!("{} — {}", repurchase.window.from, repurchase.window.to),
        tiles: tiles(lang, &repurchase, &pulse, &tiers),
        repurchase_by_month: repurchase_by_month(lang, &repurchase).to_string(),
        repurchase_by_store: repurchase_by_store(lang, &repurchase).to_string(),
        tier_mix: tier_mix(lang, &tiers).to_string(),
        lifecycle: lifecycle_funnel(lang, &lifecycle).to_string(),
    })
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn tiles(
    lang: Lang,
    repurchase: &RepurchaseReport,
    pulse: &Pulse,
    tiers: &DistributionReport,
) -> Vec<Tile> {
    let t = |zh: &str, en: &str| lang.t(zh, en).to_string();
    let total = &tiers.total;
    let active_rate =
        (total.members > 0).then(|| total.active_members as f64 / total.members as f64);
    vec![
        Tile {
            id: "tile-active",
            label: t("活跃会员", "Active members"),
            value: total.active_members.to_string(),
            hint: format!("{} {}", t("占比", "share"), percent(active_rate)),
            warn: false,
        },
        Tile {
            id: "tile-repurchase",
            label: t("复购率", "Repurchase rate"),
            value: percent(repurchase.repurchase_rate),
            hint: format!(
                "{} {:.0}%",
                t("基准线", "benchmark"),
                REPURCHASE_BENCHMARK * 100.0
            ),
            warn: repurchase.below_benchmark,
        },
        Tile {
            id: "tile-sales",
            label: t("会员消费", "Member sales"),
            value: yuan_grouped(total.spend_fen),
            hint: t("实付减退款", "paid minus refunds"),
            warn: false,
        },
        Tile {
            id: "tile-liability",
            label: t("积分负债", "Points liability"),
            value: pulse.points_outstanding.to_string(),
            hint: t("会员未用积分", "unspent member points"),
            warn: false,
        },
        Tile {
            id: "tile-complaints",
            label: t("投诉", "Complaints"),
            value: pulse.complaints.to_string(),
            hint: format!(
                "{} {} · {} {}",
                t("按时响应", "SLA met"),
                percent(pulse.sla_met),
                t("未关闭", "open"),
                pulse.complaints_open
            ),
            warn: pulse.sla_met.is_some_and(|r| r < 0.9),
        },
        Tile {
            id: "tile-nps",
            label: "NPS".into(),
            value: pulse
                .nps
                .map(|n| format!("{n:.0}"))
                .unwrap_or_else(|| "—".into()),
            hint: format!("{} {}", pulse.nps_answers, t("份评分", "answers")),
            warn: pulse.nps.is_some_and(|n| n < 0.0),
        },
    ]
}

/// The 40% line drawn across a rate chart.
fn benchmark_line(lang: Lang) -> Value {
    json!({
        "silent": true,
        "symbol": "none",
        "lineStyle": {"color": "#c0392b", "type": "dashed"},
        "label": {"formatter": lang.t("40% 基准", "40% line")},
        "data": [{"yAxis": REPURCHASE_BENCHMARK * 100.0}],
    })
}

fn rate_axis() -> Value {
    json!({"type": "value", "min": 0, "max": 100, "axisLabel": {"formatter": "{value}%"}})
}

fn repurchase_by_month(lang: Lang, r: &RepurchaseReport) -> Value {
    let months: Vec<&str> = r.by_month.iter().map(|m| m.month.as_str()).collect();
    let rates: Vec<Value> = r
        .by_month
        .iter()
        .map(|m| {
            m.rate
                .map(|x| json!((x * 1000.0).round() / 10.0))
                .unwrap_or(Value::Null)
        })
        .collect();
    json!({
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 24, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": months},
        "yAxis": rate_axis(),
        "series": [{
            "name": lang.t("复购率", "Repurchase rate"),
            "type": "line",
            "data": rates,
            "markLine": benchmark_line(lang),
        }],
    })
}

fn repurchase_by_store(lang: Lang, r: &RepurchaseReport) -> Value {
    let mut stores: Vec<_> = r.by_store.iter().filter(|s| s.members > 0).collect();
    stores.sort_by(|a, b| {
        b.rate
            .unwrap_or(0.0)
            .total_cmp(&a.rate.unwrap_or(0.0))
            .then(a.store_code.cmp(&b.store_code))
    });
    let names: Vec<&str> = stores.iter().map(|s| s.store_name.as_str()).collect();
    let bars: Vec<Value> = stores
        .iter()
        .map(|s| {
            json!({
                "value": s.rate.map(|x| (x * 1000.0).round() / 10.0).unwrap_or(0.0),
                "itemStyle": {"color": if s.below_benchmark { "#e67e22" } else { "#2e7d32" }},
            })
        })
        .collect();
    json!({
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 24, "top": 24, "bottom": 64},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": rate_axis(),
        "series": [{
            "name": lang.t("复购率", "Repurchase rate"),
            "type": "bar",
            "data": bars,
            "markLine": benchmark_line(lang),
        }],
    })
}

fn tier_mix(lang: Lang, d: &DistributionReport) -> Value {
    let slices: Vec<Value> = d
        .rows
        .iter()
        .map(|row| json!({"name": tier_name(lang, &row.key), "value": row.members}))
        .collect();
    json!({
        "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
        "legend": {"bottom": 0},
        "series": [{
            "name": lang.t("等级", "Tier"),
            "type": "pie",
            "radius": ["35%", "65%"],
            "data": slices,
        }],
    })
}

/// A tier's name as staff say it.
pub(super) fn tier_name(lang: Lang, key: &str) -> String {
    match key {
        "regular" => lang.t("普通会员", "Regular"),
        "silver" => lang.t("银卡", "Silver"),
        "gold" => lang.t("金卡", "Gold"),
        "black_gold" => lang.t("黑金", "Black gold"),
        other => other,
    }
    .to_string()
}

/// Lifecycle stages in the order a guest moves through them.
const STAGES: [(&str, &str, &str); 7] = [
    ("potential", "潜在", "Potential"),
    ("new", "新客", "New"),
    ("active", "活跃", "Active"),
    ("reactivated", "回流", "Reactivated"),
    ("dormant", "沉睡", "Dormant"),
    ("churned", "流失", "Churned"),
    ("unscored", "未评分", "Not scored yet"),
];

fn lifecycle_funnel(lang: Lang, d: &DistributionReport) -> Value {
    let labels: Vec<&str> = STAGES.iter().map(|(_, zh, en)| lang.t(zh, en)).collect();
    let counts: Vec<i64> = STAGES
        .iter()
        .map(|(key, _, _)| {
            d.rows
                .iter()
                .filter(|r| r.key == *key)
                .map(|r| r.members)
                .sum()
        })
        .collect();
    json!({
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 96, "right": 24, "top": 16, "bottom": 24},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": labels, "inverse": true},
        "series": [{
            "name": lang.t("会员", "Members"),
            "type": "bar",
            "data": counts,
            "label": {"show": true, "position": "right"},
            "itemStyle": {"color": "#c0392b"},
        }],
    })
}
