//! `/api/v1/orders`: ingest, refunds, preview; claims of unlinked orders.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path};
use super::{recorded, ApiState};
use crate::app::orders::{
    self, ClaimOrder, ClaimReceipt, IngestOrder, OrderReceipt, PreviewAnswer, PreviewOrder,
    RefundOrder, RefundReceipt,
};
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_order))
        .routes(routes!(refund_order))
        .routes(routes!(preview_order))
        .routes(routes!(claim_order))
}

/// Record an order and earn points for its member, exactly once per
/// `(store_code, pos_order_id)`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = IngestOrder,
    responses((status = 201, body = OrderReceipt),
              (status = 200, description = "replay of the same order: the first answer, header `Idempotent-Replayed: true`", body = OrderReceipt),
              (status = 409, description = "idempotency_conflict: same (store_code, pos_order_id), other body", body = ErrorBody),
              (status = 422, description = "invalid_field, invalid_date, invalid_phone, unknown_store, unknown_member", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn ingest_order(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<IngestOrder>,
) -> Result<Response> {
    Ok(recorded(
        orders::ingest_order(&state.regulars, &caller, body).await?,
    ))
}

/// Refund part or all of an order; points are reversed in proportion.
#[utoipa::path(post, path = "/api/v1/orders/{store_code}/{pos_order_id}/refunds", tag = "orders",
    request_body = RefundOrder,
    params(("store_code" = String, Path), ("pos_order_id" = String, Path)),
    responses((status = 201, body = RefundReceipt),
              (status = 200, description = "replay by refund_id", body = RefundReceipt),
              (status = 404, body = ErrorBody),
              (status = 409, description = "idempotency_conflict", body = ErrorBody),
              (status = 422, description = "refund_exceeds_order", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn refund_order(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path((store_code, pos_order_id)): Path<(String, String)>,
    Json(body): Json<RefundOrder>,
) -> Result<Response> {
    Ok(recorded(
        orders::refund_order(&state.regulars, &caller, &store_code, &pos_order_id, body).await?,
    ))
}

/// What would this order earn for this member, and why? Writes nothing.
#[utoipa::path(post, path = "/api/v1/orders/preview", tag = "orders", request_body = PreviewOrder,
    responses((status = 200, body = PreviewAnswer), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn preview_order(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<PreviewOrder>,
) -> Result<Json<PreviewAnswer>> {
    Ok(Json(
        orders::preview_order(&state.regulars, &caller, body).await?,
    ))
}

/// A member claims an order placed before they joined, by its receipt code.
#[utoipa::path(post, path = "/api/v1/members/{id}/claims", tag = "orders", request_body = ClaimOrder,
    params(("id" = String, Path)),
    responses((status = 200, body = ClaimReceipt),
              (status = 404, description = "receipt_not_found", body = ErrorBody),
              (status = 409, description = "order_already_claimed", body = ErrorBody),
              (status = 422, description = "claim_window_passed, order_refunded", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn claim_order(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<ClaimOrder>,
) -> Result<Json<ClaimReceipt>> {
    Ok(Json(
        orders::claim_order(&state.regulars, &caller, &id, body).await?,
    ))
}
