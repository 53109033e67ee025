//! The staff console under `/console`: server-rendered pages (askama), a
//! session cookie (HttpOnly, SameSite=Strict) and a CSRF token on every form.
//! Pages call the same application services as the REST API.

use crate::app::auth::{self, Session, SESSION_TTL};
use crate::app::{chain, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::secret;
use serde::Deserialize;
use std::net::SocketAddr;

/// The complaint queue and one complaint's page.
mod complaints;

const SESSION_COOKIE: &str = "regulars_session";
const LOGIN_CSRF_COOKIE: &str = "regulars_login_csrf";

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/complaints", get(complaints::list))
        .route(
            "/console/complaints/{id}",
            get(complaints::detail).post(complaints::move_along),
        )
        .route("/console/assets/console.css", get(stylesheet))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: Option<String>,
}

struct StoreLine {
    code: String,
    name: String,
    region: String,
    city: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    username: String,
    role: String,
    store: Option<String>,
    csrf: String,
    store_count: usize,
    member_count: i64,
    stores: Vec<StoreLine>,
}

fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("cookie values are URL-safe base64")
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_str(to).expect("static path"))],
    )
        .into_response()
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
    let api: crate::http::error::ApiError = e.into();
    (api.status, api.message).into_response()
}

async fn home(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect("/console/login"),
        Err(e) => return error_page(e),
    };
    let stores = match chain::list_stores(&state.regulars, &session.principal).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let member_count = match state.regulars.db.reader().await {
        Ok(mut conn) => {
            regulars_store::members::count_members(&mut conn, session.principal.store_scope())
                .await
                .unwrap_or(0)
        }
        Err(_) => 0,
    };
    render(
        StatusCode::OK,
        HomePage {
            username: session.username,
            role: session.principal.role.to_string(),
            store: session.principal.store.clone(),
            csrf: session.csrf_token,
            store_count: stores.len(),
            member_count,
            stores: stores
                .into_iter()
                .map(|s| StoreLine {
                    code: s.code,
                    name: s.name,
                    region: s.region,
                    city: s.city,
                })
                .collect(),
        },
    )
}

fn login_form(status: StatusCode, username: &str, error: Option<String>) -> Response {
    let csrf = secret::random_token(24);
    let mut response = render(
        status,
        LoginPage {
            csrf: csrf.clone(),
            username: username.to_string(),
            error,
        },
    );
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600));
    response
}

async fn login_page() -> Response {
    login_form(StatusCode::OK, "", None)
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
    // Double-submit check: the form's token must match the cookie set with it.
    if cookie(&headers, LOGIN_CSRF_COOKIE).as_deref() != Some(form.csrf.as_str()) {
        return login_form(
            StatusCode::FORBIDDEN,
            &form.username,
            Some("页面已过期，请重试 (form expired, try again)".into()),
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
            StatusCode::TOO_MANY_REQUESTS,
            &form.username,
            Some("尝试次数过多，请 15 分钟后再试 (too many attempts; wait 15 minutes)".into()),
        ),
        Err(AppError::Unauthorized(_)) => login_form(
            StatusCode::UNAUTHORIZED,
            &form.username,
            Some("用户名或密码错误 (wrong username or password)".into()),
        ),
        Err(e) => error_page(e),
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

async fn stylesheet() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console.css"),
    )
}
