//! The staff console under `/console`: server-rendered pages (askama), a
//! session cookie (HttpOnly, SameSite=Strict) and a CSRF token on every form.
//! Pages call the same application services as the REST API; each section
//! of the navigation is one module here with its templates under
//! `templates/<section>/`. What every page shares is in [`frame`].

use crate::app::auth::{self, Session, SESSION_TTL};
use crate::app::AppError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::secret;
use serde::Deserialize;
use std::net::SocketAddr;

/// The page frame: signed-in staff, language, navigation, errors.
pub mod frame;

/// The audit log viewer.
mod audit;
/// Campaigns: list, builder, approval, results, dead letters.
mod campaigns;
/// The complaint queue and one complaint's page.
mod complaints;
/// The dashboard and its filters.
mod dashboard;
/// Dish performance and cohort charts; store and region alerts.
mod dishes;
/// Loyalty setup: earning rules with a live preview, tiers, rewards, coupons.
mod loyalty;
/// Member search and the member page.
mod members;
/// The message log: sign-in codes and other messages to members.
mod message_log;
/// Segments builder with a live count.
mod segments;
/// Staff accounts, API keys and the message log.
mod staff;
/// The service task queue.
mod tasks;

use frame::{cookie, redirect, render, Lang, LANG_COOKIE, SESSION_COOKIE};

const LOGIN_CSRF_COOKIE: &str = "regulars_login_csrf";

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(switch_language))
        .route("/console/assets/{file}", get(asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .merge(complaints::routes())
        .merge(audit::routes())
        .merge(campaigns::routes())
        .merge(dashboard::routes())
        .merge(dishes::routes())
        .merge(loyalty::routes())
        .merge(members::routes())
        .merge(message_log::routes())
        .merge(segments::routes())
        .merge(staff::routes())
        .merge(tasks::routes())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    lang: Lang,
    csrf: String,
    username: String,
    error: Option<String>,
}

async fn current_session(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<Option<Session>, AppError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(token) => auth::session(&state.regulars, &token).await,
        None => Ok(None),
    }
}

fn error_page(e: AppError) -> Response {
    frame::failure_page(Lang::Zh, None, e)
}

fn login_form(lang: Lang, status: StatusCode, username: &str, error: Option<&str>) -> Response {
    let csrf = secret::random_token(24);
    let mut response = render(
        status,
        LoginPage {
            lang,
            error: error.map(str::to_string),
            csrf: csrf.clone(),
            username: username.to_string(),
        },
    );
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600));
    response
}

async fn login_page(headers: HeaderMap) -> Response {
    login_form(Lang::of(&headers), StatusCode::OK, "", None)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

async fn login(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    // Double-submit check: the form's token must match the cookie set with it.
    let sent = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !secret::same_secret(&sent, &form.csrf) {
        return login_form(
            lang,
            StatusCode::FORBIDDEN,
            &form.username,
            Some(lang.t("页面已过期，请重试", "The form expired; try again")),
        );
    }
    match auth::login(
        &state.regulars,
        &state.login_throttle,
        form.username.trim(),
        &form.password,
        &peer.ip().to_string(),
    )
    .await
    {
        Ok((token, _)) => {
            let mut response = redirect("/console");
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(SESSION_COOKIE, &token, SESSION_TTL.as_secs()),
            );
            response
                .headers_mut()
                .append(SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0));
            response
        }
        Err(AppError::TooManyRequests) => login_form(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            &form.username,
            Some(lang.t(
                "尝试次数过多，请 15 分钟后再试",
                "Too many attempts; wait 15 minutes",
            )),
        ),
        Err(AppError::Unauthorized(_)) => login_form(
            lang,
            StatusCode::UNAUTHORIZED,
            &form.username,
            Some(lang.t("用户名或密码错误", "Wrong username or password")),
        ),
        Err(e) => frame::failure_page(lang, None, e),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let token = cookie(&headers, SESSION_COOKIE);
    match current_session(&state, &headers).await {
        Ok(Some(session)) if session.csrf_token == form.csrf => {
            if let Some(token) = token {
                if let Err(e) = auth::logout(&state.regulars, &token).await {
                    return error_page(e);
                }
            }
            let mut response = redirect("/console/login");
            response
                .headers_mut()
                .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
            response
        }
        Ok(Some(_)) => (StatusCode::FORBIDDEN, "CSRF token mismatch").into_response(),
        Ok(None) => redirect("/console/login"),
        Err(e) => error_page(e),
    }
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("cookie values are URL-safe base64")
}

#[derive(Deserialize)]
struct LanguageChoice {
    to: String,
    #[serde(default)]
    back: String,
}

/// Switch the console (and the member pages) between Chinese and English and
/// go back to the page the switch was pressed on.
async fn switch_language(Query(choice): Query<LanguageChoice>) -> Response {
    let lang = if choice.to == "en" { "en" } else { "zh" };
    // Only a path on this site: never an open redirect.
    let back = if (choice.back.starts_with("/console") || choice.back.starts_with("/m"))
        && !choice.back.starts_with("//")
    {
        choice.back.as_str()
    } else {
        "/console"
    };
    let mut response = redirect(back);
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={lang}; Path=/; SameSite=Lax; Max-Age=31536000"
    )) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// The console's static files, compiled into the binary: our stylesheet and
/// script, and htmx and ECharts as installed by npm from the lockfile.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "console.css" => (
            include_bytes!("../../assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_bytes!("../../assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_bytes!("../../web/node_modules/htmx.org/dist/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "echarts.min.js" => (
            include_bytes!("../../web/node_modules/echarts/dist/echarts.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_str(kind)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}
