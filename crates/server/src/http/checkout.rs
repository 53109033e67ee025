//! `/api/v1/checkout/quote` and the member's pay code.

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path};
use super::ApiState;
use crate::app::checkout::{self, PayCode, Quote, QuoteRequest};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(pay_code))
}

/// At the till: who is this guest, what can they spend, what will they earn.
#[utoipa::path(post, path = "/api/v1/checkout/quote", tag = "points", request_body = QuoteRequest,
    responses((status = 200, body = Quote), (status = 404, description = "member_not_found", body = ErrorBody),
              (status = 422, description = "invalid_pay_code, pay_code_expired, invalid_field", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn quote(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<QuoteRequest>,
) -> Result<Json<Quote>> {
    Ok(Json(checkout::quote(&state.regulars, &caller, body).await?))
}

/// A pay code for the member's phone to show as a QR (valid two minutes).
#[utoipa::path(post, path = "/api/v1/members/{id}/pay-code", tag = "points",
    params(("id" = String, Path)),
    responses((status = 200, body = PayCode), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn pay_code(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<PayCode>> {
    Ok(Json(
        checkout::issue_pay_code(&state.regulars, &caller, &id).await?,
    ))
}
