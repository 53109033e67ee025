//! The member's side of campaign messages: `/api/v1/members/{id}/inbox`,
//! `/api/v1/members/{id}/messaging` (time zone and language), the SMS
//! gateway's reply hook `/api/v1/channels/sms/inbound`, and the one-click
//! unsubscribe page `/u/{member}/{signature}` (no login: the link is signed).

use super::error::{ApiError, ErrorBody, Result};
use super::extract::{Caller, Json, Path};
use super::ApiState;
use crate::app::member_messages::{self, InboundAnswer, InboxMessage, MessagingPreferences};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(member_inbox))
        .routes(routes!(read_message))
        .routes(routes!(set_messaging))
        .routes(routes!(inbound_sms))
}

/// The unsubscribe page and its one-click form.
pub fn pages() -> Router<ApiState> {
    Router::new().route(
        "/u/{member}/{signature}",
        get(unsubscribe_page).post(unsubscribe),
    )
}

/// Campaign messages in the member's H5 inbox, newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/inbox", tag = "members",
    params(("id" = String, Path)),
    responses((status = 200, body = [InboxMessage]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn member_inbox(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<InboxMessage>>> {
    Ok(Json(
        member_messages::inbox(&state.regulars, &caller, &id).await?,
    ))
}

/// The member opened a message.
#[utoipa::path(post, path = "/api/v1/members/{id}/inbox/{message_id}/read", tag = "members",
    params(("id" = String, Path), ("message_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn read_message(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    member_messages::mark_read(&state.regulars, &caller, &id, &message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The member's time zone (quiet hours) and message language.
#[utoipa::path(put, path = "/api/v1/members/{id}/messaging", tag = "members",
    params(("id" = String, Path)), request_body = MessagingPreferences,
    responses((status = 200, body = MessagingPreferences), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_messaging(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Json(input): Json<MessagingPreferences>,
) -> Result<Json<MessagingPreferences>> {
    Ok(Json(
        member_messages::set_preferences(&state.regulars, &caller, &id, input).await?,
    ))
}

/// A member's SMS reply, forwarded by the gateway and signed with its
/// secret (`Regulars-Signature`); "TD", "退订" or "STOP" opts the member out.
#[utoipa::path(post, path = "/api/v1/channels/sms/inbound", tag = "campaigns",
    request_body = member_messages::InboundSms,
    responses((status = 200, body = InboundAnswer), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn inbound_sms(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<InboundAnswer>> {
    let signature = headers
        .get("regulars-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(
        member_messages::inbound_sms(&state.regulars, signature, &body).await?,
    ))
}

const PAGE_STYLE: &str = "body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.6}button{font-size:1rem;padding:.6rem 1.2rem}";

async fn unsubscribe_page(
    State(state): State<ApiState>,
    axum::extract::Path((member, signature)): axum::extract::Path<(String, String)>,
) -> Response {
    if let Err(e) = member_messages::check_unsubscribe_link(&state.regulars, &member, &signature) {
        return ApiError::from(e).into_response();
    }
    // A GET only asks: mail scanners open links, and must not opt anyone out.
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>退订 / Unsubscribe</title><style>{PAGE_STYLE}</style>\
         <h1>退订营销消息</h1><p>确认后，您将不再收到我们的营销短信、微信和邮件。会员积分和权益不受影响。</p>\
         <p>Stop receiving marketing messages? Your points and benefits stay as they are.</p>\
         <form method=\"post\"><button type=\"submit\">确认退订 / Unsubscribe</button></form></html>"
    ))
    .into_response()
}

async fn unsubscribe(
    State(state): State<ApiState>,
    axum::extract::Path((member, signature)): axum::extract::Path<(String, String)>,
) -> Response {
    match member_messages::unsubscribe_by_link(&state.regulars, &member, &signature).await {
        Ok(()) => Html(format!(
            "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
             <title>已退订 / Unsubscribed</title><style>{PAGE_STYLE}</style>\
             <h1>已退订</h1><p>您已退订营销消息，即时生效。</p><p>You are unsubscribed, from now on.</p></html>"
        ))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
