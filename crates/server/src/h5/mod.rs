//! The member pages under `/m`, laid out for a guest's phone: sign-in with a
//! one-time code, balance and tier with the QR code the POS scans, points
//! history with reasons, rewards and coupons, feedback, preferences, and the
//! member's own data (export, delete).
//!
//! Same rules as the console (crate::console): handlers are thin over
//! `crate::app` (here [`crate::app::member_self`], which only ever acts on
//! the signed-in member's own id), text in both languages side by side
//! (`regulars_lang` cookie, Chinese by default), a CSRF token tied to the
//! member session on every form, friendly pages for errors. The session
//! cookie is HttpOnly, SameSite=Lax, Path=/m; see docs/h5.md.

use crate::app::member_login::{self, MemberSession, SESSION_TTL_MS};
use crate::app::AppError;
use crate::console::frame::{cookie, explain, redirect, render, status_of, FieldErrors, Lang};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::secret;
use regulars_core::DomainError;
use serde::Deserialize;
use std::net::SocketAddr;

mod account;
mod loyalty;

pub const MEMBER_COOKIE: &str = "regulars_member";
const LOGIN_CSRF_COOKIE: &str = "regulars_m_login";

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/m/login", get(login_page).post(send_code))
        .route("/m/login/verify", post(verify_code))
        .route("/m/logout", post(logout))
        .route("/m/h5.css", get(stylesheet))
        .merge(loyalty::routes())
        .merge(account::routes())
}

/// What every member page shares: language, the session's CSRF token, the
/// page's own address (for the language switch) and the bottom navigation.
pub struct Chrome {
    pub lang: Lang,
    pub csrf: String,
    pub here: String,
    pub signed_in: bool,
}

impl Chrome {
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.t(zh, en)
    }

    /// Whether a bottom-navigation entry is the current page.
    pub fn at(&self, href: &str) -> bool {
        if href == "/m" {
            self.here == "/m" || self.here == "/m/"
        } else {
            self.here.starts_with(href)
        }
    }
}

/// The signed-in member of a request; strangers go to `/m/login`.
pub struct Member {
    pub session: MemberSession,
    pub lang: Lang,
    pub here: String,
}

impl Member {
    pub fn chrome(&self) -> Chrome {
        Chrome {
            lang: self.lang,
            csrf: self.session.csrf_token.clone(),
            here: self.here.clone(),
            signed_in: true,
        }
    }

    /// The form's token must be this session's.
    pub fn csrf_refusal(&self, token: &str) -> Option<Response> {
        (!secret::same_secret(token, &self.session.csrf_token))
            .then(|| self.fail(AppError::Unauthorized("csrf")))
    }

    pub fn fail(&self, e: AppError) -> Response {
        failure(self.chrome(), e)
    }
}

fn path_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string())
}

impl FromRequestParts<ApiState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Member, Response> {
        let lang = Lang::of(&parts.headers);
        let here = path_of(parts);
        let session = match cookie(&parts.headers, MEMBER_COOKIE) {
            Some(token) => member_login::session(&state.regulars, &token)
                .await
                .map_err(|e| failure(guest_chrome(lang, &here), e))?,
            None => None,
        };
        match session {
            Some(session) => Ok(Member {
                session,
                lang,
                here,
            }),
            None => Err(redirect("/m/login")),
        }
    }
}

fn guest_chrome(lang: Lang, here: &str) -> Chrome {
    Chrome {
        lang,
        csrf: String::new(),
        here: here.to_string(),
        signed_in: false,
    }
}

#[derive(Template)]
#[template(path = "h5/error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    title: String,
    message: String,
}

/// A friendly page in the reader's language; never the raw error.
pub fn failure(c: Chrome, e: AppError) -> Response {
    let status = status_of(&e);
    let (title, message) = explain(c.lang, &e, status);
    render(
        status,
        ErrorPage {
            c,
            status: status.as_u16(),
            title,
            message,
        },
    )
}

fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/m; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}"
    ))
    .ok()
}

fn with_cookie(mut response: Response, value: Option<HeaderValue>) -> Response {
    if let Some(v) = value {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// The member's QR code as inline SVG (no image request, works offline).
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // Inline in HTML: drop the XML declaration before <svg>.
            match svg.find("<svg") {
                Some(at) => svg[at..].to_string(),
                None => svg,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "QR code could not be drawn");
            String::new()
        }
    }
}

async fn stylesheet() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../templates/h5/h5.css"),
    )
        .into_response()
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "h5/login.html")]
struct LoginPage {
    c: Chrome,
    /// The second step: the code was asked for.
    code_step: bool,
    phone: String,
    login_csrf: String,
    notice: Option<String>,
    errors: FieldErrors,
}

fn login_form(
    lang: Lang,
    status: StatusCode,
    code_step: bool,
    phone: &str,
    notice: Option<String>,
    errors: FieldErrors,
) -> Response {
    let csrf = secret::random_token(24);
    let page = render(
        status,
        LoginPage {
            c: guest_chrome(lang, "/m/login"),
            code_step,
            phone: phone.to_string(),
            login_csrf: csrf.clone(),
            notice,
            errors,
        },
    );
    with_cookie(page, set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600))
}

async fn login_page(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    // Already signed in: straight home.
    if let Some(token) = cookie(&headers, MEMBER_COOKIE) {
        if let Ok(Some(_)) = member_login::session(&state.regulars, &token).await {
            return redirect("/m");
        }
    }
    login_form(
        lang,
        StatusCode::OK,
        false,
        "",
        None,
        FieldErrors::default(),
    )
}

#[derive(Deserialize)]
struct PhoneForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    csrf: String,
}

fn login_csrf_ok(headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, LOGIN_CSRF_COOKIE)
        .is_some_and(|c| !c.is_empty() && secret::same_secret(&c, token))
}

fn expired_form(lang: Lang, phone: &str) -> Response {
    let mut errors = FieldErrors::default();
    errors.add(
        "form",
        lang.t("页面已过期，请重试", "The form expired; try again"),
    );
    login_form(lang, StatusCode::FORBIDDEN, false, phone, None, errors)
}

fn phone_error(lang: Lang) -> FieldErrors {
    let mut errors = FieldErrors::default();
    errors.add(
        "phone",
        lang.t(
            "请输入有效的手机号（11 位）",
            "Enter a valid mobile number (11 digits)",
        ),
    );
    errors
}

async fn send_code(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PhoneForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let phone = form.phone.trim();
    if !login_csrf_ok(&headers, &form.csrf) {
        return expired_form(lang, phone);
    }
    match member_login::request_code(&state.regulars, phone, &peer.ip().to_string()).await {
        // The same words whether or not the phone is a member's.
        Ok(()) => login_form(
            lang,
            StatusCode::OK,
            true,
            phone,
            Some(
                lang.t(
                    "验证码已发送，5 分钟内有效。",
                    "A code is on its way; it is valid for 5 minutes.",
                )
                .to_string(),
            ),
            FieldErrors::default(),
        ),
        Err(AppError::TooManyRequests) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "phone",
                lang.t(
                    "获取验证码太频繁，请稍后再试（每分钟 1 次，每天 10 次）",
                    "Too many codes asked for; try again later (once a minute, 10 a day)",
                ),
            );
            login_form(
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                false,
                phone,
                None,
                errors,
            )
        }
        Err(AppError::Invalid(DomainError::InvalidPhone(_))) => login_form(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
            phone,
            None,
            phone_error(lang),
        ),
        Err(e) => failure(guest_chrome(lang, "/m/login"), e),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

async fn verify_code(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let phone = form.phone.trim();
    if !login_csrf_ok(&headers, &form.csrf) {
        return expired_form(lang, phone);
    }
    let code_error = |zh: &str, en: &str| {
        let mut errors = FieldErrors::default();
        errors.add("code", lang.t(zh, en));
        login_form(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            true,
            phone,
            None,
            errors,
        )
    };
    match member_login::sign_in(&state.regulars, phone, &form.code).await {
        Ok((token, _)) => {
            let response = with_cookie(
                redirect("/m"),
                set_cookie(MEMBER_COOKIE, &token, SESSION_TTL_MS / 1000),
            );
            with_cookie(response, set_cookie(LOGIN_CSRF_COOKIE, "", 0))
        }
        Err(AppError::Unprocessable {
            code: "code_dead", ..
        }) => code_error(
            "验证码已失效（超时或错误次数过多），请重新获取",
            "This code is no longer valid (expired or too many tries); ask for a new one",
        ),
        Err(AppError::Unprocessable { .. }) => code_error(
            "验证码不正确，请检查后重试",
            "That code is not right; check it and try again",
        ),
        Err(AppError::Invalid(DomainError::Invalid { field: "code", .. })) => {
            code_error("请输入 6 位数字验证码", "Enter the 6-digit code")
        }
        Err(AppError::Invalid(DomainError::InvalidPhone(_))) => login_form(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
            phone,
            None,
            phone_error(lang),
        ),
        Err(e) => failure(guest_chrome(lang, "/m/login"), e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<ApiState>,
    member: Member,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    if let Some(token) = cookie(&headers, MEMBER_COOKIE) {
        if let Err(e) = member_login::sign_out(&state.regulars, &token).await {
            return member.fail(e);
        }
    }
    with_cookie(redirect("/m/login"), set_cookie(MEMBER_COOKIE, "", 0))
}

/// A JSON download (the data export).
pub fn download(name: &str, json: String) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (CONTENT_DISPOSITION, disposition),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        json,
    )
        .into_response()
}

/// After the account is deleted: the cookie goes too.
pub fn signed_out(response: Response) -> Response {
    with_cookie(response, set_cookie(MEMBER_COOKIE, "", 0))
}
