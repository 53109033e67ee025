//! Dish performance (hot and slow dishes, 30-day growth), monthly cohort
//! retention, and the store and region alerts (complaint rates against the
//! chain). Same reports as `/api/v1/analytics/*` and `/api/v1/alerts`.

use super::dashboard::{filter_errors, Filters};
use super::frame::{csv_download, render, when, yuan_grouped, Chrome, FieldErrors, Lang, Staff};
use crate::app::alerts::{self, AlertView, RateLine, RateQuery};
use crate::app::analytics::{self, CohortReport, DishView};
use crate::app::AppError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/dishes", get(dishes))
        .route("/console/dishes.csv", get(dishes_csv))
        .route("/console/alerts", get(alerts_page))
}

/// One dish as the table shows it.
struct DishLine {
    sku: String,
    name: String,
    category: String,
    quantity: i64,
    sales: String,
    attach: String,
    growth: String,
    hot: bool,
    slow: bool,
}

impl DishLine {
    fn of(d: &DishView) -> DishLine {
        DishLine {
            sku: d.sku.clone(),
            name: d.name.clone(),
            category: d.category.clone(),
            quantity: d.quantity,
            sales: yuan_grouped(d.sales_fen),
            attach: percent(d.attach_rate),
            growth: d
                .growth
                .map(|g| format!("{:+.0}%", g * 100.0))
                .unwrap_or_else(|| "—".into()),
            hot: d.hot,
            slow: d.slow,
        }
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

#[derive(Template)]
#[template(path = "dishes/dishes.html")]
struct DishesPage {
    c: Chrome,
    filters: Filters,
    errors: FieldErrors,
    query: String,
    window: String,
    orders: i64,
    dishes: Vec<DishLine>,
    cohort_chart: String,
    cohort_count: usize,
}

async fn dishes(
    State(state): State<ApiState>,
    staff: Staff,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let filters = Filters::read(&pairs);
    let query = pairs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{}={}", k, v.trim()))
        .collect::<Vec<_>>()
        .join("&");
    let reports = async {
        let q = filters.query(&[])?;
        let dishes = analytics::dishes(&state.regulars, staff.principal(), &q).await?;
        let cohorts = analytics::cohorts(&state.regulars, staff.principal(), &q).await?;
        Ok::<_, AppError>((dishes, cohorts))
    };
    let mut page = DishesPage {
        c: staff.chrome(),
        filters: Filters::default(),
        errors: FieldErrors::default(),
        query,
        window: String::new(),
        orders: 0,
        dishes: Vec::new(),
        cohort_chart: String::new(),
        cohort_count: 0,
    };
    let status = match reports.await {
        Ok((d, c)) => {
            page.window = format!("{} — {}", d.window.from, d.window.to);
            page.orders = d.orders;
            page.dishes = d.dishes.iter().map(DishLine::of).collect();
            page.cohort_count = c.cohorts.len();
            page.cohort_chart = cohort_heatmap(staff.lang, &c).to_string();
            StatusCode::OK
        }
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            page.errors = filter_errors(staff.lang, &e);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e) => return staff.fail(e),
    };
    page.filters = filters;
    render(status, page)
}

/// Retention by months since the first visit, one row per cohort.
fn cohort_heatmap(lang: Lang, c: &CohortReport) -> Value {
    let width = c
        .cohorts
        .iter()
        .map(|k| k.retention.len())
        .max()
        .unwrap_or(0);
    let offsets: Vec<String> = (0..width).map(|k| format!("+{k}")).collect();
    let rows: Vec<&str> = c.cohorts.iter().map(|k| k.cohort.as_str()).collect();
    let mut cells = Vec::new();
    for (y, cohort) in c.cohorts.iter().enumerate() {
        for (x, share) in cohort.retention.iter().enumerate() {
            cells.push(json!([x, y, (share * 1000.0).round() / 10.0]));
        }
    }
    json!({
        "tooltip": {"position": "top"},
        "grid": {"left": 72, "right": 24, "top": 16, "bottom": 72},
        "xAxis": {"type": "category", "data": offsets, "name": lang.t("首访后月数", "months after first visit"), "nameLocation": "middle", "nameGap": 28},
        "yAxis": {"type": "category", "data": rows, "inverse": true},
        "visualMap": {"min": 0, "max": 100, "calculable": true, "orient": "horizontal", "left": "center", "bottom": 0, "inRange": {"color": ["#fff5f0", "#c0392b"]}},
        "series": [{
            "name": lang.t("留存率 %", "Retention %"),
            "type": "heatmap",
            "data": cells,
            "label": {"show": true, "fontSize": 10},
        }],
    })
}

async fn dishes_csv(
    State(state): State<ApiState>,
    staff: Staff,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let filters = Filters::read(&pairs);
    let report = match filters.query(&[]) {
        Ok(q) => analytics::dishes(&state.regulars, staff.principal(), &q).await,
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => return staff.fail(e),
    };
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
    let rows = report
        .dishes
        .iter()
        .map(|d| {
            vec![
                d.sku.clone(),
                d.name.clone(),
                d.category.clone(),
                d.quantity.to_string(),
                d.sales_fen.to_string(),
                d.orders.to_string(),
                opt(d.attach_rate),
                d.quantity_recent.to_string(),
                d.quantity_previous.to_string(),
                opt(d.growth),
                d.hot.to_string(),
                d.slow.to_string(),
            ]
        })
        .collect();
    csv_download(
        "dishes.csv",
        &[
            "sku",
            "name",
            "category",
            "quantity",
            "sales_fen",
            "orders",
            "attach_rate",
            "quantity_recent",
            "quantity_previous",
            "growth",
            "hot",
            "slow",
        ],
        rows,
    )
}

#[derive(Template)]
#[template(path = "dishes/alerts.html")]
struct AlertsPage {
    c: Chrome,
    days: i64,
    threshold: String,
    alerts: Vec<AlertView>,
    stores: Vec<RateLine>,
    regions: Vec<RateLine>,
    store_chart: String,
}

async fn alerts_page(State(state): State<ApiState>, staff: Staff) -> Response {
    let app = &state.regulars;
    let rates =
        match alerts::complaint_rates(app, staff.principal(), RateQuery { days: None }).await {
            Ok(r) => r,
            Err(e) => return staff.fail(e),
        };
    let mut recent = match alerts::recent(app, staff.principal()).await {
        Ok(a) => a,
        Err(e) => return staff.fail(e),
    };
    recent
        .iter_mut()
        .for_each(|a| a.raised_at = when(&a.raised_at));
    let names: Vec<&str> = rates.stores.iter().map(|s| s.key.as_str()).collect();
    let bars: Vec<Value> = rates
        .stores
        .iter()
        .map(|s| {
            json!({
                "value": (s.per_1000 * 10.0).round() / 10.0,
                "itemStyle": {"color": if s.flags.is_empty() { "#2e7d32" } else { "#c0392b" }},
            })
        })
        .collect();
    let store_chart = json!({
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 24, "top": 24, "bottom": 48},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value", "name": staff.lang.t("每千单投诉", "per 1,000 orders")},
        "series": [{
            "type": "bar",
            "data": bars,
            "markLine": {
                "silent": true, "symbol": "none",
                "lineStyle": {"color": "#c0392b", "type": "dashed"},
                "label": {"formatter": staff.lang.t("预警线", "alert line")},
                "data": [{"yAxis": (rates.threshold_per_1000 * 10.0).round() / 10.0}],
            },
        }],
    })
    .to_string();
    render(
        StatusCode::OK,
        AlertsPage {
            c: staff.chrome(),
            days: rates.days,
            threshold: format!("{:.1}", rates.threshold_per_1000),
            alerts: recent,
            stores: rates.stores,
            regions: rates.regions,
            store_chart,
        },
    )
}
