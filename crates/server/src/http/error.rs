//! The one place where errors become HTTP responses:
//! `{"error": {"code": "snake_case_code", "message": "human text"}}`.

use crate::app::AppError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use regulars_core::DomainError;
use regulars_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Where in the caller's text the problem is (segment expressions).
    pub at: Option<TextPosition>,
}

/// A place in a text the caller sent, and what was expected there.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TextPosition {
    /// 0-based character offset.
    pub position: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub expected: String,
    pub found: String,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The error body every failing call returns.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; scripts match on it.
    pub code: String,
    /// For people; may change wording.
    pub message: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub at: Option<TextPosition>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            at: None,
        }
    }

    pub(crate) fn internal(cause: &dyn std::error::Error) -> ApiError {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id in the x-request-id header finds it in the logs",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                at: self.at,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "member" => "member_not_found",
        "store" => "store_not_found",
        "tag" => "tag_not_found",
        "user" => "user_not_found",
        "order" => "order_not_found",
        "receipt" => "receipt_not_found",
        "webhook" => "webhook_not_found",
        "webhook delivery" => "delivery_not_found",
        _ => "not_found",
    }
}

/// The one mapping of application errors to HTTP. It borrows, so the
/// console can ask for a status without giving the error up; the REST
/// handlers use the owning `From<AppError>` below.
impl From<&AppError> for ApiError {
    fn from(e: &AppError) -> ApiError {
        use StatusCode as S;
        match e {
            AppError::Invalid(DomainError::InvalidPhone(reason)) => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid_phone",
                format!("invalid phone number: {reason}"),
            ),
            AppError::Invalid(d @ DomainError::InvalidDate { .. }) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_date", d.to_string())
            }
            AppError::Invalid(d @ DomainError::Invalid { .. }) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_field", d.to_string())
            }
            AppError::Invalid(d @ (DomainError::Decrypt | DomainError::MasterKey(_))) => {
                ApiError::internal(d)
            }
            AppError::Unprocessable { code, message } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            AppError::NotFound { what } => ApiError::new(
                S::NOT_FOUND,
                not_found_code(what),
                format!("{what} not found"),
            ),
            AppError::Conflict { code, message } => {
                ApiError::new(S::CONFLICT, code, message.clone())
            }
            AppError::Unauthorized(message) => {
                ApiError::new(S::UNAUTHORIZED, "unauthorized", *message)
            }
            AppError::Forbidden(denied) => {
                ApiError::new(S::FORBIDDEN, "forbidden", denied.to_string())
            }
            AppError::BadLink {
                expired: true,
                message,
            } => ApiError::new(S::GONE, "table_link_expired", message.clone()),
            AppError::BadLink { message, .. } => {
                ApiError::new(S::FORBIDDEN, "invalid_table_link", message.clone())
            }
            AppError::BadSegment(p) => ApiError {
                at: Some(TextPosition {
                    position: p.position,
                    column: p.column,
                    expected: p.expected.clone(),
                    found: p.found.clone(),
                }),
                ..ApiError::new(S::UNPROCESSABLE_ENTITY, "bad_segment", p.to_string())
            },
            AppError::TooManyRequests => {
                ApiError::new(S::TOO_MANY_REQUESTS, "too_many_requests", e.to_string())
            }
            AppError::Store(StoreError::NotFound) => {
                ApiError::new(S::NOT_FOUND, "not_found", "not found")
            }
            AppError::Store(StoreError::Conflict { constraint }) => ApiError::new(
                S::CONFLICT,
                "conflict",
                format!("conflicts with existing data ({constraint})"),
            ),
            AppError::Store(other) => ApiError::internal(other),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError::from(&e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        use StatusCode as S;
        match r {
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                S::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.body_text().replace(
                    "Failed to deserialize the JSON body into the target type: ",
                    "",
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == S::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    S::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the body is larger than 1 MiB",
                )
            }
            other => ApiError::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            r.body_text()
                .replace("Failed to deserialize query string: ", "query string: "),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}
