//! Outgoing webhooks: `/api/v1/webhooks` (subscriptions, their secret,
//! their delivery log) and `/api/v1/webhook-deliveries/{id}/replay`.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::ApiState;
use crate::app::webhooks::{
    self, DeliveryView, WebhookInput, WebhookPatch, WebhookView, WebhookWithSecret,
};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(webhook_deliveries))
        .routes(routes!(replay_delivery))
}

/// Subscriptions, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = [WebhookView]), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_webhooks(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<WebhookView>>> {
    Ok(Json(webhooks::list(&state.regulars, &caller).await?))
}

/// Subscribe a URL to outbox events. The answer carries the signing secret;
/// it is not shown again.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses((status = 201, body = WebhookWithSecret),
              (status = 422, description = "invalid_field (url, event_kinds, description)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_webhook(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(input): Json<WebhookInput>,
) -> Result<(StatusCode, Json<WebhookWithSecret>)> {
    let created = webhooks::create(&state.regulars, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_webhook(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>> {
    Ok(Json(webhooks::get(&state.regulars, &caller, &id).await?))
}

/// Change the URL, the event kinds, the description, or switch it off/on.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)), request_body = WebhookPatch,
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_webhook(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(patch): Json<WebhookPatch>,
) -> Result<Json<WebhookView>> {
    Ok(Json(
        webhooks::update(&state.regulars, &caller, &id, patch).await?,
    ))
}

/// Delete a subscription and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_webhook(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    webhooks::delete(&state.regulars, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once; the old one stops at once.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rotate_webhook_secret(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>> {
    Ok(Json(
        webhooks::rotate_secret(&state.regulars, &caller, &id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// pending, delivered or dead.
    pub status: Option<String>,
}

/// The delivery log: attempts, last status code and error, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), DeliveryFilter),
    responses((status = 200, body = [DeliveryView]), (status = 404, body = ErrorBody),
              (status = 422, description = "invalid_field (status)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn webhook_deliveries(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(filter): Query<DeliveryFilter>,
) -> Result<Json<Vec<DeliveryView>>> {
    Ok(Json(
        webhooks::deliveries(&state.regulars, &caller, &id, filter.status.as_deref()).await?,
    ))
}

/// Send a delivery again (pending, due now, a fresh run of attempts),
/// whether it was dead, delivered or still pending.
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/replay", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay_delivery(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>> {
    Ok(Json(webhooks::replay(&state.regulars, &caller, &id).await?))
}
