//! Points and tiers: `/api/v1/members/{id}/points|tier|redemptions|transfers|adjustments`,
//! `/api/v1/earning-rules`, `/api/v1/tier-policy`.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::{recorded, ApiState};
use crate::app::points::{
    self, Adjust, AdjustReceipt, FamilyShare, FamilyShareView, PointsQuery, PointsView, PutRules,
    Redeem, RedemptionReceipt, RulesView, TierFloor, TierView, Transfer, TransferReceipt,
};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use regulars_core::tier::TierPolicy;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(points_of))
        .routes(routes!(tier_of))
        .routes(routes!(redeem))
        .routes(routes!(transfer))
        .routes(routes!(adjust))
        .routes(routes!(set_tier_floor))
        .routes(routes!(set_family_share))
        .routes(routes!(rules, put_rules))
        .routes(routes!(tier_policy, put_tier_policy))
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// Balance, points expiring by date, and the ledger newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/points", tag = "points",
    params(("id" = String, Path), PointsQuery),
    responses((status = 200, body = PointsView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn points_of(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<PointsQuery>,
) -> Result<Json<PointsView>> {
    Ok(Json(
        points::points_of(&state.regulars, &caller, &id, q).await?,
    ))
}

/// Tier, 12-month qualifying spend, distance to the next tier, history.
#[utoipa::path(get, path = "/api/v1/members/{id}/tier", tag = "points",
    params(("id" = String, Path)),
    responses((status = 200, body = TierView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn tier_of(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TierView>> {
    Ok(Json(points::tier_of(&state.regulars, &caller, &id).await?))
}

/// Spend points (soonest-expiring first). Send an `Idempotency-Key` header.
#[utoipa::path(post, path = "/api/v1/members/{id}/redemptions", tag = "points", request_body = Redeem,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = RedemptionReceipt),
              (status = 200, description = "replay: the first answer", body = RedemptionReceipt),
              (status = 409, description = "idempotency_conflict", body = ErrorBody),
              (status = 422, description = "insufficient_points (nothing deducted), idempotency_key_required", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn redeem(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Redeem>,
) -> Result<Response> {
    Ok(recorded(
        points::redeem(
            &state.regulars,
            &caller,
            &id,
            idempotency_key(&headers),
            body,
        )
        .await?,
    ))
}

/// Give points to another member; they keep their expiry dates.
#[utoipa::path(post, path = "/api/v1/members/{id}/transfers", tag = "points", request_body = Transfer,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = TransferReceipt), (status = 200, body = TransferReceipt),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn transfer(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Transfer>,
) -> Result<Response> {
    Ok(recorded(
        points::transfer(
            &state.regulars,
            &caller,
            &id,
            idempotency_key(&headers),
            body,
        )
        .await?,
    ))
}

/// Manual adjustment, bonus or compensation, within the caller's limit.
#[utoipa::path(post, path = "/api/v1/members/{id}/adjustments", tag = "points", request_body = Adjust,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = AdjustReceipt), (status = 200, body = AdjustReceipt),
              (status = 409, body = ErrorBody),
              (status = 422, description = "over_adjust_limit, insufficient_points", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn adjust(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Adjust>,
) -> Result<Response> {
    Ok(recorded(
        points::adjust(
            &state.regulars,
            &caller,
            &id,
            idempotency_key(&headers),
            body,
        )
        .await?,
    ))
}

/// Keep a member at least at a tier until a date.
#[utoipa::path(put, path = "/api/v1/members/{id}/tier-floor", tag = "points", request_body = TierFloor,
    params(("id" = String, Path)),
    responses((status = 200, body = TierView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_tier_floor(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<TierFloor>,
) -> Result<Json<TierView>> {
    Ok(Json(
        points::set_tier_floor(&state.regulars, &caller, &id, body).await?,
    ))
}

/// The active earning rules and their version.
#[utoipa::path(get, path = "/api/v1/earning-rules", tag = "points",
    responses((status = 200, body = RulesView)), security(("api_key" = [])))]
pub async fn rules(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<RulesView>> {
    Ok(Json(points::rules(&state.regulars, &caller).await?))
}

/// Replace the earning rules (a new version; old versions are kept).
#[utoipa::path(put, path = "/api/v1/earning-rules", tag = "points", request_body = PutRules,
    responses((status = 200, body = RulesView), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_rules(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<PutRules>,
) -> Result<Json<RulesView>> {
    Ok(Json(
        points::put_rules(&state.regulars, &caller, body).await?,
    ))
}

/// The tier ladder: thresholds, multipliers, expiry, birthday gifts.
#[utoipa::path(get, path = "/api/v1/tier-policy", tag = "points",
    responses((status = 200, body = TierPolicy)), security(("api_key" = [])))]
pub async fn tier_policy(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<TierPolicy>> {
    Ok(Json(points::tier_policy(&state.regulars, &caller).await?))
}

#[utoipa::path(put, path = "/api/v1/tier-policy", tag = "points", request_body = TierPolicy,
    responses((status = 200, body = TierPolicy), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_tier_policy(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<TierPolicy>,
) -> Result<Json<TierPolicy>> {
    Ok(Json(
        points::put_tier_policy(&state.regulars, &caller, body).await?,
    ))
}

/// The member agrees (or no longer agrees) that their family group may
/// redeem from their points (`family: true` on a redemption).
#[utoipa::path(put, path = "/api/v1/members/{id}/family-share", tag = "points", request_body = FamilyShare,
    params(("id" = String, Path)),
    responses((status = 200, body = FamilyShareView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_family_share(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<FamilyShare>,
) -> Result<Json<FamilyShareView>> {
    Ok(Json(
        points::set_family_share(&state.regulars, &caller, &id, body).await?,
    ))
}
