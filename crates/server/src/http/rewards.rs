//! Rewards and coupons: `/api/v1/rewards`, `/api/v1/coupon-templates`,
//! `/api/v1/members/{id}/coupons`, `/api/v1/coupons/validate`,
//! `/api/v1/coupons/{code}/redeem|void`.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::points::idempotency_key;
use super::{recorded, ApiState};
use crate::app::coupons::{
    self, CouponCheck, CouponFilter, CouponReceipt, CouponRedemption, CouponVerdict, CouponView,
    IssueCoupon, TemplateChange, TemplateView,
};
use crate::app::rewards::{self, CatalogueQuery, RewardChange, RewardView};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use regulars_core::coupon::CouponTemplate;
use regulars_core::reward::RewardSpec;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(catalogue, create_reward))
        .routes(routes!(change_reward))
        .routes(routes!(templates, create_template))
        .routes(routes!(change_template))
        .routes(routes!(member_coupons, issue_coupon))
        .routes(routes!(validate_coupon))
        .routes(routes!(redeem_coupon))
        .routes(routes!(void_coupon))
}

/// The rewards catalogue; with `member_id`, each reward says whether that
/// member may redeem it and why not.
#[utoipa::path(get, path = "/api/v1/rewards", tag = "rewards", params(CatalogueQuery),
    responses((status = 200, body = [RewardView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn catalogue(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<CatalogueQuery>,
) -> Result<Json<Vec<RewardView>>> {
    Ok(Json(rewards::catalogue(&state.regulars, &caller, q).await?))
}

/// Add a reward to the catalogue. Redeem it with
/// `POST /api/v1/members/{id}/redemptions` and `reward_id`.
#[utoipa::path(post, path = "/api/v1/rewards", tag = "rewards", request_body = RewardSpec,
    responses((status = 201, body = RewardView),
              (status = 422, description = "invalid_field, unknown_coupon_template", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_reward(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<RewardSpec>,
) -> Result<(StatusCode, Json<RewardView>)> {
    Ok((
        StatusCode::CREATED,
        Json(rewards::create(&state.regulars, &caller, body).await?),
    ))
}

/// Rename, reprice, retire or restock a reward.
#[utoipa::path(patch, path = "/api/v1/rewards/{id}", tag = "rewards", request_body = RewardChange,
    params(("id" = String, Path)),
    responses((status = 200, body = RewardView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_reward(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<RewardChange>,
) -> Result<Json<RewardView>> {
    Ok(Json(
        rewards::change(&state.regulars, &caller, &id, body).await?,
    ))
}

/// Coupon templates.
#[utoipa::path(get, path = "/api/v1/coupon-templates", tag = "rewards",
    responses((status = 200, body = [TemplateView])),
    security(("api_key" = [])))]
pub async fn templates(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<TemplateView>>> {
    Ok(Json(
        coupons::list_templates(&state.regulars, &caller).await?,
    ))
}

/// Define a coupon: amount off, percent off or a free dish; minimum spend;
/// stores; weekdays and hours; validity in days or until a date.
#[utoipa::path(post, path = "/api/v1/coupon-templates", tag = "rewards", request_body = CouponTemplate,
    responses((status = 201, body = TemplateView), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_template(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<CouponTemplate>,
) -> Result<(StatusCode, Json<TemplateView>)> {
    Ok((
        StatusCode::CREATED,
        Json(coupons::create_template(&state.regulars, &caller, body).await?),
    ))
}

/// Retire a template (no new coupons) or bring it back.
#[utoipa::path(patch, path = "/api/v1/coupon-templates/{id}", tag = "rewards", request_body = TemplateChange,
    params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_template(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<TemplateChange>,
) -> Result<Json<TemplateView>> {
    Ok(Json(
        coupons::change_template(&state.regulars, &caller, &id, body).await?,
    ))
}

/// A member's coupons: `status=usable` (default) or `all`.
#[utoipa::path(get, path = "/api/v1/members/{id}/coupons", tag = "rewards",
    params(("id" = String, Path), CouponFilter),
    responses((status = 200, body = [CouponView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn member_coupons(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<CouponFilter>,
) -> Result<Json<Vec<CouponView>>> {
    Ok(Json(
        coupons::member_coupons(&state.regulars, &caller, &id, q).await?,
    ))
}

/// Give a member a coupon (goodwill, compensation, campaign). Send an
/// `Idempotency-Key` header.
#[utoipa::path(post, path = "/api/v1/members/{id}/coupons", tag = "rewards", request_body = IssueCoupon,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = CouponView),
              (status = 200, description = "replay: the first answer", body = CouponView),
              (status = 409, description = "idempotency_conflict", body = ErrorBody),
              (status = 422, description = "unknown_coupon_template, idempotency_key_required", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn issue_coupon(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<IssueCoupon>,
) -> Result<Response> {
    Ok(recorded(
        coupons::issue(
            &state.regulars,
            &caller,
            &id,
            idempotency_key(&headers),
            body,
        )
        .await?,
    ))
}

/// Would this coupon work on this bill, and for how much? Changes nothing.
#[utoipa::path(post, path = "/api/v1/coupons/validate", tag = "rewards", request_body = CouponCheck,
    responses((status = 200, body = CouponVerdict), (status = 404, description = "no such coupon", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn validate_coupon(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<CouponCheck>,
) -> Result<Json<CouponVerdict>> {
    Ok(Json(
        coupons::validate(&state.regulars, &caller, body).await?,
    ))
}

/// Use a coupon on an order, once. A retry for the same order: `200`, same
/// body, `Idempotent-Replayed: true`; another order: `409 coupon_used`.
#[utoipa::path(post, path = "/api/v1/coupons/{code}/redeem", tag = "rewards", request_body = CouponRedemption,
    params(("code" = String, Path)),
    responses((status = 201, body = CouponReceipt),
              (status = 200, description = "replay: the first answer", body = CouponReceipt),
              (status = 404, body = ErrorBody),
              (status = 409, description = "coupon_used", body = ErrorBody),
              (status = 422, description = "coupon_expired, coupon_wrong_store, coupon_below_minimum, …", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn redeem_coupon(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(code): Path<String>,
    Json(body): Json<CouponRedemption>,
) -> Result<Response> {
    Ok(recorded(
        coupons::redeem(&state.regulars, &caller, &code, body).await?,
    ))
}

/// Withdraw a coupon that has not been used.
#[utoipa::path(post, path = "/api/v1/coupons/{code}/void", tag = "rewards",
    params(("code" = String, Path)),
    responses((status = 200, body = CouponView), (status = 404, body = ErrorBody),
              (status = 409, description = "coupon_not_issued", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn void_coupon(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(code): Path<String>,
) -> Result<Json<CouponView>> {
    Ok(Json(coupons::void(&state.regulars, &caller, &code).await?))
}
