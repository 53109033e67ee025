//! Customer intelligence: `/api/v1/members/{id}/insights`, and segments:
//! `/api/v1/segments/fields|count|members|export`, saved `/api/v1/segments`.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path};
use super::ApiState;
use crate::app::insights::{self, MemberInsights};
use crate::app::segments::{self, SegmentCount, SegmentInput, SegmentPage};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use regulars_core::insight::InsightPolicy;
use regulars_core::segment::FieldInfo;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(member_insights))
        .routes(routes!(insight_policy, set_insight_policy))
        .routes(routes!(segment_fields))
        .routes(routes!(segment_count))
        .routes(routes!(segment_members))
        .routes(routes!(segment_export))
        .routes(routes!(saved_segments, save_segment))
        .routes(routes!(saved_segment, change_segment, delete_segment))
}

/// The scoring policy: VIP threshold, VIP-decline drop, lifecycle windows.
#[utoipa::path(get, path = "/api/v1/insights/policy", tag = "insights",
    responses((status = 200, body = InsightPolicy)), security(("api_key" = [])))]
pub async fn insight_policy(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<InsightPolicy>> {
    Ok(Json(insights::policy_for(&state.regulars, &caller).await?))
}

/// Change the scoring policy (the next scoring run uses it). Every field is
/// optional; absent ones take their default.
#[utoipa::path(put, path = "/api/v1/insights/policy", tag = "insights", request_body = InsightPolicy,
    responses((status = 200, body = InsightPolicy),
              (status = 422, description = "invalid_field", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_insight_policy(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(policy): Json<InsightPolicy>,
) -> Result<Json<InsightPolicy>> {
    Ok(Json(
        insights::set_policy(&state.regulars, &caller, policy).await?,
    ))
}

/// An expression of the segments language (docs/segments.md).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentQuery {
    /// e.g. `tier >= gold and days_since_visit > 60 and city = "成都"`
    pub expression: String,
    /// Paging (members only): the `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// Paging (members only): 1–500, default 50.
    #[serde(default)]
    pub limit: Option<i64>,
}

/// The fields of the segments language with their types, values and
/// operators, for a builder.
#[utoipa::path(get, path = "/api/v1/segments/fields", tag = "segments",
    responses((status = 200, body = [FieldInfo])), security(("api_key" = [])))]
pub async fn segment_fields(Caller(caller): Caller) -> Result<Json<Vec<FieldInfo>>> {
    Ok(Json(segments::fields(&caller)?))
}

/// How many members match (live count for a builder). A bad expression is
/// `422 bad_segment` with `position`, `column`, `expected` and `found`.
#[utoipa::path(post, path = "/api/v1/segments/count", tag = "segments", request_body = SegmentQuery,
    responses((status = 200, body = SegmentCount),
              (status = 422, description = "bad_segment", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn segment_count(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(q): Json<SegmentQuery>,
) -> Result<Json<SegmentCount>> {
    Ok(Json(
        segments::count(&state.regulars, &caller, &q.expression).await?,
    ))
}

/// A page of the matching members (phones masked), in id order.
#[utoipa::path(post, path = "/api/v1/segments/members", tag = "segments", request_body = SegmentQuery,
    responses((status = 200, body = SegmentPage),
              (status = 422, description = "bad_segment", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn segment_members(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(q): Json<SegmentQuery>,
) -> Result<Json<SegmentPage>> {
    Ok(Json(
        segments::members(
            &state.regulars,
            &caller,
            &q.expression,
            q.after.as_deref(),
            q.limit,
        )
        .await?,
    ))
}

/// Every matching member as CSV, phones masked; audited.
#[utoipa::path(post, path = "/api/v1/segments/export", tag = "segments", request_body = SegmentQuery,
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 422, description = "bad_segment", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn segment_export(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(q): Json<SegmentQuery>,
) -> Result<Response> {
    let csv = segments::export_csv(&state.regulars, &caller, &q.expression).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"segment.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

/// Saved segments, by name.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments",
    responses((status = 200, body = [SavedSegmentView])), security(("api_key" = [])))]
pub async fn saved_segments(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<SavedSegmentView>>> {
    Ok(Json(
        segments::list(&state.regulars, &caller)
            .await?
            .into_iter()
            .map(SavedSegmentView::from)
            .collect(),
    ))
}

/// Save a segment under a unique name (the expression is stored in its
/// canonical form).
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = SegmentInput,
    responses((status = 201, body = SavedSegmentView),
              (status = 409, description = "segment_exists", body = ErrorBody),
              (status = 422, description = "bad_segment, invalid_field", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn save_segment(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(input): Json<SegmentInput>,
) -> Result<(StatusCode, Json<SavedSegmentView>)> {
    let saved = segments::save(&state.regulars, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path)),
    responses((status = 200, body = SavedSegmentView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn saved_segment(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SavedSegmentView>> {
    Ok(Json(
        segments::get(&state.regulars, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(put, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path)), request_body = SegmentInput,
    responses((status = 200, body = SavedSegmentView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_segment(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(input): Json<SegmentInput>,
) -> Result<Json<SavedSegmentView>> {
    Ok(Json(
        segments::change(&state.regulars, &caller, &id, input)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_segment(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    segments::delete(&state.regulars, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A saved segment.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SavedSegmentView {
    pub id: String,
    pub name: String,
    pub expression: String,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<regulars_store::segments::SavedSegment> for SavedSegmentView {
    fn from(s: regulars_store::segments::SavedSegment) -> Self {
        SavedSegmentView {
            id: s.id,
            name: s.name,
            expression: s.expression,
            description: s.description,
            created_by: s.created_by,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// What the nightly scoring found for one member: lifecycle stage, value
/// grade, RFM, BG/NBD P(alive) and expected visits, Gamma-Gamma spend, CLV,
/// churn risk, VIP decline, taste profile and five recommended dishes.
#[utoipa::path(get, path = "/api/v1/members/{id}/insights", tag = "insights",
    params(("id" = String, Path, description = "member id")),
    responses((status = 200, body = MemberInsights),
              (status = 404, body = ErrorBody),
              (status = 422, description = "not_scored: no scoring run has seen this member yet", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn member_insights(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<MemberInsights>> {
    Ok(Json(
        insights::member_insights(&state.regulars, &caller, &id).await?,
    ))
}
