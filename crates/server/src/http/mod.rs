//! The HTTP surface: `/api/v1` (REST, described by OpenAPI), `/console`,
//! operations endpoints; request ids, tracing, body limits and JSON errors for
//! every failure, including unknown routes and panics.

/// HQ reports: `/api/v1/analytics/*`.
pub mod analytics;
/// `/api/v1/campaigns`, `/api/v1/campaign-settings`.
pub mod campaigns;
/// `/api/v1/checkout/quote`, pay codes.
pub mod checkout;
/// Errors → responses, in one place.
pub mod error;
/// Extractors whose failures are JSON errors; the authenticated caller.
pub mod extract;
/// Feedback, complaints, compensation, tasks.
pub mod feedback;
/// `/healthz`, `/readyz`.
pub mod health;
/// Customer intelligence: a member's insights, segments.
pub mod insights;
/// `/api/v1/members`.
pub mod members;
/// Inbox, messaging preferences, SMS replies, the unsubscribe page.
pub mod messages;
/// `/api/v1/orders`: ingest, refunds, preview, claims.
pub mod orders;
/// Points, tiers, redemptions, earning rules.
pub mod points;
/// Rewards catalogue, coupon templates, coupons.
pub mod rewards;
/// `/api/v1/stores`.
pub mod stores;
/// The table QR code page and its form (no login).
pub mod table;
/// `/api/v1/webhooks`, `/api/v1/webhook-deliveries`.
pub mod webhooks;

use crate::app::auth::LoginThrottle;
use crate::app::Regulars;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    pub regulars: Regulars,
    pub login_throttle: Arc<LoginThrottle>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Regulars API", description = "Customer relationship and loyalty engine for restaurant chains. Amounts are integer fen; times RFC 3339."),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    tags((name = "members"), (name = "orders"), (name = "points"), (name = "rewards"), (name = "feedback"), (name = "insights"), (name = "segments"), (name = "analytics"), (name = "campaigns"), (name = "webhooks"), (name = "stores"), (name = "operations"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI description, built together so they
/// cannot drift apart.
pub fn api() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .merge(stores::router())
        .merge(members::router())
        .merge(orders::router())
        .merge(points::router())
        .merge(checkout::router())
        .merge(rewards::router())
        .merge(insights::router())
        .merge(feedback::router())
        .merge(analytics::router())
        .merge(campaigns::router())
        .merge(messages::router())
        .merge(webhooks::router())
        .split_for_parts()
}

/// The answer of an idempotent call: `201` the first time; a replay gets the
/// first body unchanged with `200` and `Idempotent-Replayed: true`.
pub fn recorded(r: crate::app::ledger::Recorded) -> axum::response::Response {
    use axum::http::header::CONTENT_TYPE;
    let status = if r.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, [(CONTENT_TYPE, "application/json")], r.json).into_response();
    if r.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(regulars: Regulars) -> Router {
    let state = ApiState {
        regulars,
        login_throttle: Arc::new(LoginThrottle::default()),
    };
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = openapi.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .merge(crate::console::router())
    .merge(crate::h5::router())
    .merge(table::router())
    .merge(messages::pages())
    .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    })
    .layer(DefaultBodyLimit::max(1024 * 1024))
    .layer(CatchPanicLayer::custom(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response()
    }))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(
        // The span records method and path only: query strings can carry a
        // phone number (`/members/lookup?phone=`), and must never be logged.
        TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
                actor = tracing::field::Empty,
            )
        }),
    )
    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
    .with_state(state)
}
