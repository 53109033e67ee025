//! The table QR code: `GET /q/{token}` is the page a guest's phone opens,
//! `POST /q/{token}/feedback` takes the form (multipart, photos included).
//! No login: the signed token names the store and table.

use super::error::ApiError;
use super::ApiState;
use crate::app::feedback::{self, TableFeedback};
use crate::app::AppError;
use askama::Template;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use regulars_core::feedback::{MAX_PHOTOS, MAX_PHOTO_BYTES};

pub fn router() -> Router<ApiState> {
    Router::new().route("/q/{token}", get(page)).route(
        "/q/{token}/feedback",
        post(submit).layer(DefaultBodyLimit::max(
            MAX_PHOTOS * MAX_PHOTO_BYTES + 64 * 1024,
        )),
    )
}

#[derive(Template)]
#[template(path = "table_feedback.html")]
struct TablePage {
    store_name: String,
    table: String,
    token: String,
}

async fn page(State(state): State<ApiState>, Path(token): Path<String>) -> Response {
    let app = &state.regulars;
    let (store, table) = match feedback::open_table_link(app, &token) {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let store_name = match app.db.reader().await {
        Ok(mut conn) => regulars_store::chain::get_store(&mut conn, &store)
            .await
            .ok()
            .flatten()
            .map(|s| s.name)
            .unwrap_or(store),
        Err(_) => store,
    };
    match (TablePage {
        store_name,
        table,
        token,
    })
    .render()
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::from(AppError::Invalid(regulars_core::DomainError::invalid(
        field, reason,
    )))
}

/// Read the form: `text`, `rating`, `nps`, `phone`, and up to three `photo`s.
async fn read_form(mut form: Multipart) -> Result<TableFeedback, ApiError> {
    let mut out = TableFeedback::default();
    let number = |field: &'static str, v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| bad(field, format!("{field} must be a whole number")))
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e.status(), e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "photo" => {
                if out.photos.len() == MAX_PHOTOS {
                    return Err(bad("photo", format!("at most {MAX_PHOTOS} photos")));
                }
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(e.status(), e.body_text()))?;
                out.photos.push(bytes.to_vec());
            }
            "text" | "rating" | "nps" | "phone" => {
                let value = field
                    .text()
                    .await
                    .map_err(|e| multipart_error(e.status(), e.body_text()))?;
                match name.as_str() {
                    "text" => out.text = value,
                    "rating" => out.rating = Some(number("rating", &value)?),
                    "nps" => out.nps = Some(number("nps", &value)?),
                    _ => out.phone = Some(value),
                }
            }
            other => return Err(bad("form", format!("unknown field `{other}`"))),
        }
    }
    Ok(out)
}

/// Read a form of `photo` fields only (staff attaching photos).
pub(super) async fn read_photos(mut form: Multipart) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut photos = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(photos),
            Err(e) => return Err(multipart_error(e.status(), e.body_text())),
        };
        if field.name() != Some("photo") {
            return Err(bad("form", "send only `photo` fields"));
        }
        if photos.len() == MAX_PHOTOS {
            return Err(bad("photo", format!("at most {MAX_PHOTOS} photos")));
        }
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(e.status(), e.body_text()))?;
        photos.push(bytes.to_vec());
    }
}

/// The body limit of a form with photos.
pub(super) const PHOTO_FORM_LIMIT: usize = MAX_PHOTOS * MAX_PHOTO_BYTES + 64 * 1024;

pub(super) fn multipart_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the form is too large: at most {MAX_PHOTOS} photos of {} KiB",
                MAX_PHOTO_BYTES / 1024
            ),
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_form", text)
    }
}

async fn submit(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    // The link first: a forged code learns nothing about the form.
    if let Err(e) = feedback::open_table_link(&state.regulars, &token) {
        return ApiError::from(e).into_response();
    }
    let form = match form {
        Ok(f) => f,
        Err(r) => return multipart_error(r.status(), r.body_text()).into_response(),
    };
    let input = match read_form(form).await {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    match feedback::submit_from_table(&state.regulars, &token, input).await {
        Ok(receipt) => (StatusCode::CREATED, axum::Json(receipt)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
