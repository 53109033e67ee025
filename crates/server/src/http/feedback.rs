//! Feedback and service recovery: `/api/v1/feedback…`, `/api/v1/compensations/{id}/decision`,
//! `/api/v1/tasks…`.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path, Query};
use super::points::idempotency_key;
use super::{recorded, ApiState};
use crate::app::alerts::{AlertView, ComplaintRates, RateQuery};
use crate::app::feedback::{
    self, Accuracy, Compensate, CompensationView, Correction, Decision, FeedbackQuery,
    FeedbackReceipt, FeedbackView, ImportReport, KpiQuery, Kpis, PhotoRef, SubmitFeedback,
    TableLink, TableLinkRequest, TaskDone, TaskQuery, TaskView, Transition,
};
use crate::app::surveys::{Respond, ResponseReceipt, ResultsQuery, SurveyResults, SurveyView};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use regulars_core::feedback::ClassifierRules;
use regulars_core::survey::SurveyDefinition;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, submit))
        .routes(routes!(accuracy))
        .routes(routes!(kpis))
        .routes(routes!(import))
        .routes(routes!(rules, put_rules))
        .routes(routes!(get))
        .routes(routes!(transition))
        .routes(routes!(correct))
        .routes(routes!(compensate))
        .routes(routes!(decide))
        .routes(routes!(tasks))
        .routes(routes!(complete_task))
        .routes(routes!(table_link))
        .routes(routes!(surveys, create_survey))
        .routes(routes!(respond))
        .routes(routes!(survey_results))
        .routes(routes!(complaint_rates))
        .routes(routes!(alerts))
        .routes(routes!(photo))
        .routes({
            // Photos need more than the API's 1 MiB body limit.
            let (schemas, paths, method) = routes!(attach_photos);
            (
                schemas,
                paths,
                method.layer(axum::extract::DefaultBodyLimit::max(
                    super::table::PHOTO_FORM_LIMIT,
                )),
            )
        })
}

/// A signed link for a table's QR code: guests open `/q/{token}` and leave
/// feedback without logging in.
#[utoipa::path(post, path = "/api/v1/stores/{code}/table-links", tag = "feedback", request_body = TableLinkRequest,
    params(("code" = String, Path)),
    responses((status = 201, body = TableLink), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn table_link(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(code): Path<String>,
    Json(body): Json<TableLinkRequest>,
) -> Result<(StatusCode, Json<TableLink>)> {
    Ok((
        StatusCode::CREATED,
        Json(feedback::table_link(&state.regulars, &caller, &code, body).await?),
    ))
}

/// A photo attached to feedback.
#[utoipa::path(get, path = "/api/v1/feedback/photos/{id}", tag = "feedback",
    params(("id" = String, Path)),
    responses((status = 200, description = "the image", content_type = "image/*"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn photo(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    use axum::response::IntoResponse;
    let (content_type, bytes) = feedback::photo(&state.regulars, &caller, &id).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=3600".to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Feedback from any channel, classified on arrival (API.md).
#[utoipa::path(post, path = "/api/v1/feedback", tag = "feedback", request_body = SubmitFeedback,
    responses((status = 201, body = FeedbackReceipt),
              (status = 409, description = "duplicate_feedback", body = ErrorBody),
              (status = 422, description = "invalid_field, unknown_store, unknown_member, unknown_order", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn submit(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<SubmitFeedback>,
) -> Result<(StatusCode, Json<FeedbackReceipt>)> {
    Ok((
        StatusCode::CREATED,
        Json(feedback::submit(&state.regulars, &caller, body).await?),
    ))
}

/// Feedback newest first (`store`, `status` narrow it).
#[utoipa::path(get, path = "/api/v1/feedback", tag = "feedback", params(FeedbackQuery),
    responses((status = 200, body = [FeedbackView])), security(("api_key" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<FeedbackQuery>,
) -> Result<Json<Vec<FeedbackView>>> {
    Ok(Json(feedback::list(&state.regulars, &caller, q).await?))
}

/// One feedback with its timeline and compensations.
#[utoipa::path(get, path = "/api/v1/feedback/{id}", tag = "feedback", params(("id" = String, Path)),
    responses((status = 200, body = FeedbackView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<FeedbackView>> {
    Ok(Json(feedback::get(&state.regulars, &caller, &id).await?))
}

/// Move a complaint along: acknowledged, in_progress, resolved (with root
/// cause and the outcome the guest is told), followed_up, closed.
#[utoipa::path(post, path = "/api/v1/feedback/{id}/transitions", tag = "feedback", request_body = Transition,
    params(("id" = String, Path)),
    responses((status = 200, body = FeedbackView), (status = 404, body = ErrorBody),
              (status = 409, description = "invalid_transition", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn transition(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<Transition>,
) -> Result<Json<FeedbackView>> {
    Ok(Json(
        feedback::transition(&state.regulars, &caller, &id, body).await?,
    ))
}

/// Correct the classifier (kept to measure its accuracy).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/classification", tag = "feedback", request_body = Correction,
    params(("id" = String, Path)),
    responses((status = 200, body = FeedbackView), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn correct(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<Correction>,
) -> Result<Json<FeedbackView>> {
    Ok(Json(
        feedback::correct(&state.regulars, &caller, &id, body).await?,
    ))
}

/// How often the classifier agreed with staff.
#[utoipa::path(get, path = "/api/v1/feedback/accuracy", tag = "feedback",
    responses((status = 200, body = Accuracy)), security(("api_key" = [])))]
pub async fn accuracy(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Accuracy>> {
    Ok(Json(feedback::accuracy(&state.regulars, &caller).await?))
}

/// The classifier's phrase rules.
#[utoipa::path(get, path = "/api/v1/feedback/rules", tag = "feedback",
    responses((status = 200, body = ClassifierRules)), security(("api_key" = [])))]
pub async fn rules(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<ClassifierRules>> {
    Ok(Json(feedback::rules(&state.regulars, &caller).await?))
}

/// Replace the classifier's phrase rules.
#[utoipa::path(put, path = "/api/v1/feedback/rules", tag = "feedback", request_body = ClassifierRules,
    responses((status = 200, body = ClassifierRules), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_rules(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<ClassifierRules>,
) -> Result<Json<ClassifierRules>> {
    Ok(Json(
        feedback::put_rules(&state.regulars, &caller, body).await?,
    ))
}

/// Compensate the guest: points (ledger), a coupon, or a refund note. Above
/// the caller's limit it waits for approval. Send an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/feedback/{id}/compensations", tag = "feedback", request_body = Compensate,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = CompensationView),
              (status = 200, description = "replay", body = CompensationView),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn compensate(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Compensate>,
) -> Result<Response> {
    Ok(recorded(
        feedback::compensate(
            &state.regulars,
            &caller,
            &id,
            idempotency_key(&headers),
            body,
        )
        .await?,
    ))
}

/// Approve or reject a compensation waiting for approval.
#[utoipa::path(post, path = "/api/v1/compensations/{id}/decision", tag = "feedback", request_body = Decision,
    params(("id" = String, Path)),
    responses((status = 200, body = CompensationView), (status = 409, description = "already_decided", body = ErrorBody),
              (status = 422, description = "over_approval_limit, approver_is_requester", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn decide(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<Decision>,
) -> Result<Json<CompensationView>> {
    Ok(Json(
        feedback::decide(&state.regulars, &caller, &id, body).await?,
    ))
}

/// The service task queue (complaints, follow-ups, care calls), soonest due first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "feedback", params(TaskQuery),
    responses((status = 200, body = [TaskView])), security(("api_key" = [])))]
pub async fn tasks(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<TaskQuery>,
) -> Result<Json<Vec<TaskView>>> {
    Ok(Json(feedback::tasks(&state.regulars, &caller, q).await?))
}

/// Close a task with its outcome.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/done", tag = "feedback", request_body = TaskDone,
    params(("id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 409, description = "task_done", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn complete_task(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<TaskDone>,
) -> Result<Json<TaskView>> {
    Ok(Json(
        feedback::complete_task(&state.regulars, &caller, &id, body).await?,
    ))
}

/// Import platform reviews from CSV (`store_code,platform,review_id,rating,text,reviewed_at`;
/// up to 1 MiB a request). All or nothing: any bad line refuses the file
/// with each line's number and reason. Reviews imported before are skipped.
#[utoipa::path(post, path = "/api/v1/feedback/import", tag = "feedback",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport),
              (status = 422, description = "invalid_import: the lines and reasons", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn import(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    body: axum::body::Bytes,
) -> Result<Json<ImportReport>> {
    let text = std::str::from_utf8(&body).map_err(|e| {
        crate::app::AppError::unprocessable(
            "invalid_import",
            format!(
                "the file is not UTF-8 (byte {}); save it from Excel as \"CSV UTF-8\"",
                e.valid_up_to()
            ),
        )
    })?;
    Ok(Json(
        feedback::import_reviews(&state.regulars, &caller, text).await?,
    ))
}

/// Surveys (question sets).
#[utoipa::path(get, path = "/api/v1/surveys", tag = "feedback",
    responses((status = 200, body = [SurveyView])), security(("api_key" = [])))]
pub async fn surveys(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<SurveyView>>> {
    Ok(Json(
        crate::app::surveys::list(&state.regulars, &caller).await?,
    ))
}

/// Define a survey: `post_visit` (once per visit) or `monthly`, with its questions.
#[utoipa::path(post, path = "/api/v1/surveys", tag = "feedback", request_body = SurveyDefinition,
    responses((status = 201, body = SurveyView), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_survey(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<SurveyDefinition>,
) -> Result<(StatusCode, Json<SurveyView>)> {
    Ok((
        StatusCode::CREATED,
        Json(crate::app::surveys::create(&state.regulars, &caller, body).await?),
    ))
}

/// A member's answers. One per member and visit (post-visit) or month.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/responses", tag = "feedback", request_body = Respond,
    params(("id" = String, Path)),
    responses((status = 201, body = ResponseReceipt),
              (status = 409, description = "already_answered", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn respond(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(body): Json<Respond>,
) -> Result<(StatusCode, Json<ResponseReceipt>)> {
    Ok((
        StatusCode::CREATED,
        Json(crate::app::surveys::respond(&state.regulars, &caller, &id, body).await?),
    ))
}

/// NPS and dimension averages by store, region or month.
#[utoipa::path(get, path = "/api/v1/surveys/{id}/results", tag = "feedback",
    params(("id" = String, Path), ResultsQuery),
    responses((status = 200, body = SurveyResults), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn survey_results(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<SurveyResults>> {
    Ok(Json(
        crate::app::surveys::results(&state.regulars, &caller, &id, q).await?,
    ))
}

/// Complaints per 1,000 orders by store and region, flagged against the
/// threshold and the chain's distribution.
#[utoipa::path(get, path = "/api/v1/alerts/complaint-rates", tag = "feedback", params(RateQuery),
    responses((status = 200, body = ComplaintRates)), security(("api_key" = [])))]
pub async fn complaint_rates(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<RateQuery>,
) -> Result<Json<ComplaintRates>> {
    Ok(Json(
        crate::app::alerts::complaint_rates(&state.regulars, &caller, q).await?,
    ))
}

/// Alerts the jobs raised, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "feedback",
    responses((status = 200, body = [AlertView])), security(("api_key" = [])))]
pub async fn alerts(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<AlertView>>> {
    Ok(Json(
        crate::app::alerts::recent(&state.regulars, &caller).await?,
    ))
}

/// Service-recovery KPIs per store and per staff member.
#[utoipa::path(get, path = "/api/v1/feedback/kpis", tag = "feedback", params(KpiQuery),
    responses((status = 200, body = Kpis)), security(("api_key" = [])))]
pub async fn kpis(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Query(q): Query<KpiQuery>,
) -> Result<Json<Kpis>> {
    Ok(Json(feedback::kpis(&state.regulars, &caller, q).await?))
}

/// Attach photos (multipart `photo` fields: JPEG, PNG or WebP, 2 MiB each, at
/// most 3 per feedback in all).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/photos", tag = "feedback",
    params(("id" = String, Path)),
    request_body(content_type = "multipart/form-data"),
    responses((status = 201, body = [PhotoRef]), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn attach_photos(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    form: std::result::Result<
        axum::extract::Multipart,
        axum::extract::multipart::MultipartRejection,
    >,
) -> Result<(StatusCode, Json<Vec<PhotoRef>>)> {
    let form = form.map_err(|r| super::table::multipart_error(r.status(), r.body_text()))?;
    let photos = super::table::read_photos(form).await?;
    Ok((
        StatusCode::CREATED,
        Json(feedback::attach_photos(&state.regulars, &caller, &id, photos).await?),
    ))
}
