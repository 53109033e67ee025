//! `/api/v1/members`

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::ApiState;
use crate::app::members::{
    self, CreateMember, MemberPage, MemberQuery, MemberView, UpdateConsents, UpdateMember,
};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_member, list_members))
        .routes(routes!(lookup_member))
        .routes(routes!(get_member, update_member))
        .routes(routes!(add_tag))
        .routes(routes!(remove_tag))
        .routes(routes!(set_consents))
}

/// Register a member.
#[utoipa::path(post, path = "/api/v1/members", tag = "members", request_body = CreateMember,
    responses((status = 201, body = MemberView),
              (status = 409, description = "member_exists: the phone belongs to a member", body = ErrorBody),
              (status = 422, description = "invalid_phone, invalid_date, invalid_field, unknown_store", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<CreateMember>,
) -> Result<(StatusCode, Json<MemberView>)> {
    let member = members::create_member(&state.regulars, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// Phone in any writing.
    pub phone: String,
}

/// Find a member by phone number.
#[utoipa::path(get, path = "/api/v1/members/lookup", tag = "members", params(LookupQuery),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn lookup_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<LookupQuery>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::lookup_by_phone(&state.regulars, &caller, &q.phone).await?,
    ))
}

/// List and search members, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/members", tag = "members", params(MemberQuery),
    responses((status = 200, body = MemberPage), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_members(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<MemberQuery>,
) -> Result<Json<MemberPage>> {
    Ok(Json(
        members::list_members(&state.regulars, &caller, q).await?,
    ))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    /// Include unmasked personal data (hq_admin, service_agent; audited).
    #[serde(default)]
    pub reveal: bool,
}

#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = String, Path), RevealQuery),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::get_member(&state.regulars, &caller, &id, q.reveal).await?,
    ))
}

/// Change a member's profile: fields present change, `null` clears.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members", request_body = UpdateMember,
    params(("id" = String, Path)),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_member(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateMember>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::update_member(&state.regulars, &caller, &id, body).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagBody {
    pub tag: String,
}

/// Tag a member (`辣`, `素食`, `生日宴`).
#[utoipa::path(post, path = "/api/v1/members/{id}/tags", tag = "members", request_body = TagBody,
    params(("id" = String, Path)),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_tag(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<TagBody>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::add_tag(&state.regulars, &caller, &id, &body.tag).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/members/{id}/tags/{tag}", tag = "members",
    params(("id" = String, Path), ("tag" = String, Path)),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn remove_tag(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::remove_tag(&state.regulars, &caller, &id, &tag).await?,
    ))
}

/// Record consent decisions per channel (time and source kept, with history).
#[utoipa::path(put, path = "/api/v1/members/{id}/consents", tag = "members", request_body = UpdateConsents,
    params(("id" = String, Path)),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_consents(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateConsents>,
) -> Result<Json<MemberView>> {
    Ok(Json(
        members::set_consents(&state.regulars, &caller, &id, body).await?,
    ))
}
