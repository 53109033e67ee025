//! HQ reports: `/api/v1/analytics/repurchase|cohorts|dishes|promotions|distribution`
//! (docs/analytics-reports.md). Every report takes `from`, `to` (local
//! dates), `brand`, `region`, `city` and `store`; a bad or unknown parameter
//! is a 422 that names it.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Query};
use super::ApiState;
use crate::app::analytics::{
    self, CohortReport, DishReport, DistributionReport, PromotionReport, RawQuery, ReportFilters,
    RepurchaseReport,
};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(repurchase))
        .routes(routes!(cohorts))
        .routes(routes!(dishes))
        .routes(routes!(promotions))
        .routes(routes!(distribution))
}

type Pairs = Query<Vec<(String, String)>>;

/// Repurchase rate: of the members with a visit (a local day with an order)
/// in the window, the share with visits on two or more days — against the
/// 40% line of a well-run chain — overall, per store and per month.
#[utoipa::path(get, path = "/api/v1/analytics/repurchase", tag = "analytics",
    params(ReportFilters),
    responses((status = 200, body = RepurchaseReport),
              (status = 403, description = "not an HQ role, or another store than the caller's", body = ErrorBody),
              (status = 422, description = "invalid_date, invalid_field, unknown_store, unknown_region, unknown_city, unknown_brand", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn repurchase(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(pairs): Pairs,
) -> Result<Json<RepurchaseReport>> {
    let q = RawQuery::parse(pairs, &[])?;
    Ok(Json(
        analytics::repurchase(&state.regulars, &caller, &q).await?,
    ))
}

/// Monthly cohorts by the month of a member's first visit, with the share
/// of each cohort that visited again in each later month of the window.
#[utoipa::path(get, path = "/api/v1/analytics/cohorts", tag = "analytics",
    params(ReportFilters),
    responses((status = 200, body = CohortReport),
              (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cohorts(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(pairs): Pairs,
) -> Result<Json<CohortReport>> {
    let q = RawQuery::parse(pairs, &[])?;
    Ok(Json(
        analytics::cohorts(&state.regulars, &caller, &q).await?,
    ))
}

/// Dish performance: quantity, sales, orders and attach rate in the window;
/// growth over the last 30 days against the 30 before; hot and slow dishes.
/// Voided lines and staff meals are not counted.
#[utoipa::path(get, path = "/api/v1/analytics/dishes", tag = "analytics",
    params(ReportFilters,
        ("daypart" = Option<String>, Query, description = "only orders at lunch (10:00–14:59), afternoon (15:00–16:59), dinner (17:00–20:59) or late (21:00–09:59), local time"),
        ("by" = Option<String>, Query, description = "also the table per `store`, `region` or `daypart`")),
    responses((status = 200, body = DishReport),
              (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn dishes(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(pairs): Pairs,
) -> Result<Json<DishReport>> {
    let q = RawQuery::parse(pairs, &["daypart", "by"])?;
    Ok(Json(analytics::dishes(&state.regulars, &caller, &q).await?))
}

/// Promotion response: coupons issued in the window and how many were
/// redeemed, overall, per template and per source.
#[utoipa::path(get, path = "/api/v1/analytics/promotions", tag = "analytics",
    params(ReportFilters),
    responses((status = 200, body = PromotionReport),
              (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn promotions(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(pairs): Pairs,
) -> Result<Json<PromotionReport>> {
    let q = RawQuery::parse(pairs, &[])?;
    Ok(Json(
        analytics::promotions(&state.regulars, &caller, &q).await?,
    ))
}

/// Members (not erased) by region, city, home store, age group, tier,
/// lifecycle or grade: how many, how many were active in the window, and
/// what they spent.
#[utoipa::path(get, path = "/api/v1/analytics/distribution", tag = "analytics",
    params(ReportFilters,
        ("by" = String, Query, description = "region, city, store, age_group, tier, lifecycle or grade")),
    responses((status = 200, body = DistributionReport),
              (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn distribution(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(pairs): Pairs,
) -> Result<Json<DistributionReport>> {
    let q = RawQuery::parse(pairs, &["by"])?;
    Ok(Json(
        analytics::distribution(&state.regulars, &caller, &q).await?,
    ))
}
