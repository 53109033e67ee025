//! Campaigns: `/api/v1/campaigns` (create, list, read, change a draft, move
//! along its life) and `/api/v1/campaign-settings` (delivery rules and the
//! approval line).

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::ApiState;
use crate::app::campaign_results::{self, CampaignResults, SendView};
use crate::app::campaigns::{self, CampaignSettings, CampaignView, StatusRequest};
use crate::app::channels::{self, ChannelSettings};
use axum::extract::State;
use axum::http::StatusCode;
use regulars_core::campaign::{CampaignSpec, CampaignStatus};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, change_campaign))
        .routes(routes!(campaign_status))
        .routes(routes!(campaign_settings, set_campaign_settings))
        .routes(routes!(channel_settings, set_channel_settings))
        .routes(routes!(campaign_results))
        .routes(routes!(campaign_sends))
        .routes(routes!(retry_send))
}

/// HQ's message providers (secrets never shown).
#[utoipa::path(get, path = "/api/v1/campaign-channels", tag = "campaigns",
    responses((status = 200, body = ChannelSettings)), security(("api_key" = [])))]
pub async fn channel_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<ChannelSettings>> {
    Ok(Json(channels::settings(&state.regulars, &caller).await?))
}

/// Set the SMS and WeChat gateways, the SMTP server and the public address.
#[utoipa::path(put, path = "/api/v1/campaign-channels", tag = "campaigns",
    request_body = ChannelSettings,
    responses((status = 200, body = ChannelSettings), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_channel_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(input): Json<ChannelSettings>,
) -> Result<Json<ChannelSettings>> {
    Ok(Json(
        channels::set_settings(&state.regulars, &caller, input).await?,
    ))
}

/// Reached, delivered, opened, redeemed, visits and spend per arm, and the
/// uplift over the control group with 95% intervals.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/results", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignResults), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn campaign_results(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignResults>> {
    Ok(Json(
        campaign_results::results(&state.regulars, &caller, &id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SendFilter {
    /// pending, sending, sent, control, skipped or dead (the dead letters).
    pub status: Option<String>,
    /// At most this many (default 500, up to 5,000).
    pub limit: Option<i64>,
}

/// The campaign's messages, one per member and occasion.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/sends", tag = "campaigns",
    params(("id" = String, Path), SendFilter),
    responses((status = 200, body = [SendView]), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn campaign_sends(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(filter): Query<SendFilter>,
) -> Result<Json<Vec<SendView>>> {
    Ok(Json(
        campaign_results::sends(
            &state.regulars,
            &caller,
            &id,
            filter.status.as_deref(),
            filter.limit,
        )
        .await?,
    ))
}

/// Put a dead letter back in the queue.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/sends/{send_id}/retry", tag = "campaigns",
    params(("id" = String, Path), ("send_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn retry_send(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path((id, send_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    campaign_results::retry(&state.regulars, &caller, &id, &send_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CampaignFilter {
    /// Only campaigns in this status.
    pub status: Option<CampaignStatus>,
}

/// Campaigns, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", params(CampaignFilter),
    responses((status = 200, body = [CampaignView])), security(("api_key" = [])))]
pub async fn list_campaigns(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(filter): Query<CampaignFilter>,
) -> Result<Json<Vec<CampaignView>>> {
    Ok(Json(
        campaigns::list(&state.regulars, &caller, filter.status).await?,
    ))
}

/// Create a campaign as a draft.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = CampaignSpec,
    responses((status = 201, body = CampaignView),
              (status = 422, description = "invalid_field, unknown_segment", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_campaign(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(spec): Json<CampaignSpec>,
) -> Result<(StatusCode, Json<CampaignView>)> {
    let created = campaigns::create(&state.regulars, &caller, spec).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_campaign(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>> {
    Ok(Json(campaigns::get(&state.regulars, &caller, &id).await?))
}

/// Change a draft.
#[utoipa::path(put, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path)), request_body = CampaignSpec,
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, description = "campaign_not_draft", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_campaign(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(spec): Json<CampaignSpec>,
) -> Result<Json<CampaignView>> {
    Ok(Json(
        campaigns::change(&state.regulars, &caller, &id, spec).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// submit, approve, reject, pause, resume or end.
    pub change: StatusRequest,
    /// Why (kept in the audit log), e.g. the reason for a rejection.
    #[serde(default)]
    pub note: Option<String>,
}

/// Submit, approve, reject, pause, resume or end a campaign.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/status", tag = "campaigns",
    params(("id" = String, Path)), request_body = StatusInput,
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, description = "campaign_status", body = ErrorBody),
              (status = 422, description = "own_campaign", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn campaign_status(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(input): Json<StatusInput>,
) -> Result<Json<CampaignView>> {
    Ok(Json(
        campaigns::change_status(
            &state.regulars,
            &caller,
            &id,
            input.change,
            input.note.as_deref(),
        )
        .await?,
    ))
}

/// Delivery rules (quiet hours, caps, de-duplication) and the approval line.
#[utoipa::path(get, path = "/api/v1/campaign-settings", tag = "campaigns",
    responses((status = 200, body = CampaignSettings)), security(("api_key" = [])))]
pub async fn campaign_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<CampaignSettings>> {
    Ok(Json(campaigns::settings(&state.regulars, &caller).await?))
}

#[utoipa::path(put, path = "/api/v1/campaign-settings", tag = "campaigns",
    request_body = CampaignSettings,
    responses((status = 200, body = CampaignSettings),
              (status = 422, description = "invalid_field", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_campaign_settings(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(input): Json<CampaignSettings>,
) -> Result<Json<CampaignSettings>> {
    Ok(Json(
        campaigns::set_settings(&state.regulars, &caller, input).await?,
    ))
}
