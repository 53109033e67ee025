//! What every console page shares: the signed-in staff member (an axum
//! extractor that sends strangers to the login page), the chosen language,
//! the role-aware navigation, the CSRF check, friendly error pages and
//! messages next to form fields.
//!
//! Text is written where it is shown, both languages side by side:
//! `{{ c.t("会员", "Members") }}` in a template, `lang.t("…", "…")` in Rust.
//! Chinese is the default; `/console/lang?to=en` switches (a cookie keeps it).

use crate::app::auth::{self, Session};
use crate::app::AppError;
use crate::http::error::ApiError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use regulars_core::access::{allows, Action, Principal};
use regulars_core::error::DomainError;
use regulars_core::secret;

pub const SESSION_COOKIE: &str = "regulars_session";
pub const LANG_COOKIE: &str = "regulars_lang";

/// The language a page is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The browser's choice, from the language cookie (Chinese by default).
    pub fn of(headers: &HeaderMap) -> Lang {
        match cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        self.t("zh-CN", "en")
    }

    pub fn is_en(self) -> bool {
        self == Lang::En
    }
}

/// One entry of the navigation bar.
pub struct NavLink {
    /// `nav-<id>` is the link's element id (`nav-members`).
    pub id: &'static str,
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The console's sections, in the order of the navigation bar, with the
/// action a role needs to see each one.
const SECTIONS: [(&str, &str, &str, Action); 12] = [
    ("/console", "总览", "Dashboard", Action::StoreRead),
    ("/console/members", "会员", "Members", Action::MemberList),
    (
        "/console/loyalty",
        "积分规则",
        "Loyalty",
        Action::RulesManage,
    ),
    ("/console/segments", "分群", "Segments", Action::SegmentRead),
    (
        "/console/campaigns",
        "营销活动",
        "Campaigns",
        Action::CampaignRead,
    ),
    (
        "/console/complaints",
        "投诉",
        "Complaints",
        Action::FeedbackRead,
    ),
    ("/console/tasks", "服务任务", "Tasks", Action::FeedbackRead),
    (
        "/console/dishes",
        "菜品与复购",
        "Dishes",
        Action::SegmentRead,
    ),
    ("/console/alerts", "预警", "Alerts", Action::FeedbackRead),
    ("/console/audit", "审计日志", "Audit log", Action::AuditRead),
    (
        "/console/staff",
        "员工与密钥",
        "Staff & keys",
        Action::StaffManage,
    ),
    (
        "/console/messages",
        "消息记录",
        "Message log",
        Action::StaffManage,
    ),
];

/// The id of a section's navigation link: the last part of its path.
fn nav_id(href: &'static str) -> &'static str {
    match href.rsplit_once('/') {
        Some((_, "console")) | None => "dashboard",
        Some((_, last)) => last,
    }
}

/// The frame around a page's content: who is signed in, the language, the
/// navigation their role allows, and the CSRF token for the page's forms.
pub struct Chrome {
    pub username: String,
    pub role: String,
    pub store: Option<String>,
    pub csrf: String,
    pub lang: Lang,
    pub nav: Vec<NavLink>,
    /// The page's own address with its query, for the language switch to
    /// come back to.
    pub here: String,
}

impl Chrome {
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.t(zh, en)
    }
}

/// The signed-in staff member of a console request. A request without a
/// valid session is answered with a redirect to the login page.
pub struct Staff {
    pub session: Session,
    pub lang: Lang,
    /// The path of the request (which navigation entry is current).
    pub here: String,
    /// Path and query, for the language switch to come back to.
    back: String,
}

impl Staff {
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }

    /// May this staff member do `action` at all (scope is checked by the
    /// application call itself)?
    pub fn may(&self, action: Action) -> bool {
        allows(self.session.principal.role, action)
    }

    pub fn chrome(&self) -> Chrome {
        let role = self.session.principal.role;
        let nav = SECTIONS
            .iter()
            .filter(|(_, _, _, action)| allows(role, *action))
            .map(|(href, zh, en, _)| NavLink {
                id: nav_id(href),
                href,
                label: self.lang.t(zh, en),
                current: if *href == "/console" {
                    self.here == "/console" || self.here == "/console/"
                } else {
                    self.here == *href || self.here.starts_with(&format!("{href}/"))
                },
            })
            .collect();
        Chrome {
            username: self.session.username.clone(),
            role: role.to_string(),
            store: self.session.principal.store.clone(),
            csrf: self.session.csrf_token.clone(),
            lang: self.lang,
            nav,
            here: self.back.clone(),
        }
    }

    /// A form's CSRF token must be the session's: the refusal to answer
    /// with when it is not, `None` when it is.
    /// `if let Some(refused) = staff.csrf_refusal(&form.csrf) { return refused; }`
    pub fn csrf_refusal(&self, token: &str) -> Option<Response> {
        (!secret::same_secret(token, &self.session.csrf_token))
            .then(|| self.fail(AppError::Unauthorized("csrf")))
    }

    /// The error page for a failed call, in this staff member's language.
    pub fn fail(&self, e: AppError) -> Response {
        failure_page(self.lang, Some(self.chrome()), e)
    }
}

impl FromRequestParts<ApiState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Staff, Response> {
        let lang = Lang::of(&parts.headers);
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let here = uri.path().to_string();
        // A page answering a form post comes back to the page the form was
        // on (a GET of the post's address would not show it).
        let back = if parts.method == axum::http::Method::GET {
            uri.path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| here.clone())
        } else {
            parts
                .headers
                .get(axum::http::header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(|r| r.parse::<axum::http::Uri>().ok())
                .and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
                .filter(|p| p.starts_with("/console"))
                .unwrap_or_else(|| "/console".to_string())
        };
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => auth::session(&state.regulars, &token)
                .await
                .map_err(|e| failure_page(lang, None, e))?,
            None => None,
        };
        match session {
            Some(session) => Ok(Staff {
                session,
                lang,
                here,
                back,
            }),
            None => Err(redirect("/console/login")),
        }
    }
}

/// `¥12.34` from integer fen.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", fen / 100, fen % 100)
}

/// `¥1,234.56` from fen.
pub fn yuan_grouped(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}¥{grouped}.{:02}", fen % 100)
}

/// A CSV file download: a header row, then the rows, as `filename`.
pub fn csv_download(filename: &str, header: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = out
        .write_record(header)
        .and_then(|()| rows.iter().try_for_each(|row| out.write_record(row)));
    let body = match (written, out.into_inner()) {
        (Ok(()), Ok(body)) => body,
        _ => {
            tracing::error!(filename, "CSV export failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A stored RFC 3339 time as a table has room for: `2026-11-25 10:30`.
pub fn when(rfc3339: &str) -> String {
    rfc3339
        .get(..16)
        .map(|t| t.replace('T', " "))
        .unwrap_or_else(|| rfc3339.to_string())
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn redirect(to: &str) -> Response {
    let location =
        HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/console"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// Render a page; a template that fails to render is logged and answered
/// with a plain 500 (a bug, never the user's input).
pub fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    signed_in: bool,
    status: u16,
    title: String,
    message: String,
}

/// A page that says what went wrong in the reader's language, with the
/// status of the REST API's mapping of the same error. Never a raw error.
pub fn failure_page(lang: Lang, chrome: Option<Chrome>, e: AppError) -> Response {
    let status = status_of(&e);
    let (title, message) = explain(lang, &e, status);
    let signed_in = chrome.is_some();
    let c = chrome.unwrap_or(Chrome {
        username: String::new(),
        role: String::new(),
        store: None,
        csrf: String::new(),
        lang,
        nav: Vec::new(),
        here: String::new(),
    });
    render(
        status,
        ErrorPage {
            c,
            signed_in,
            status: status.as_u16(),
            title,
            message,
        },
    )
}

/// The status the REST API gives the same error (its English text is not
/// shown here; a 5xx is logged with its cause by the mapping).
pub(crate) fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Unauthorized("csrf") => StatusCode::FORBIDDEN,
        other => ApiError::from(other).status,
    }
}

/// A title and a sentence for an error, in the reader's language. English
/// readers also get the API's own detail; Chinese readers a translation of
/// the kind of error (the detail is written for integrators, in English).
pub fn explain(lang: Lang, e: &AppError, status: StatusCode) -> (String, String) {
    let (title, zh) = match e {
        AppError::Forbidden(_) => (
            lang.t("没有权限", "Not allowed"),
            "你的角色或门店不能查看或修改这项内容。",
        ),
        AppError::NotFound { .. } | AppError::Store(regulars_store::StoreError::NotFound) => (
            lang.t("找不到", "Not found"),
            "要找的记录不存在，或已被删除。",
        ),
        AppError::Unauthorized("csrf") => (
            lang.t("页面已过期", "Page expired"),
            "表单已过期，请返回刷新后重试。",
        ),
        AppError::Unauthorized(_) => (lang.t("请先登录", "Please sign in"), "请重新登录。"),
        AppError::TooManyRequests => (
            lang.t("操作太频繁", "Too many attempts"),
            "尝试次数过多，请稍后再试。",
        ),
        AppError::Conflict { .. }
        | AppError::Store(regulars_store::StoreError::Conflict { .. }) => (
            lang.t("与现有记录冲突", "Conflict"),
            "与现有记录冲突，请检查后重试。",
        ),
        AppError::BadLink { .. } => (lang.t("链接无效", "Invalid link"), "链接无效或已过期。"),
        AppError::Invalid(DomainError::Decrypt | DomainError::MasterKey(_))
        | AppError::Store(_) => (
            lang.t("系统出错了", "Something went wrong"),
            "系统暂时无法完成这项操作，已记录，请稍后再试。",
        ),
        AppError::Invalid(_) | AppError::Unprocessable { .. } | AppError::BadSegment(_) => (
            lang.t("输入有误", "Invalid input"),
            "输入的内容不符合要求，请检查后重试。",
        ),
    };
    let message = match lang {
        Lang::Zh => zh.to_string(),
        Lang::En if status.is_server_error() => {
            "The system could not do this just now; it has been logged. Try again later."
                .to_string()
        }
        Lang::En if matches!(e, AppError::Unauthorized("csrf")) => {
            "The form has expired; go back, reload and try again.".to_string()
        }
        Lang::En => {
            let text = e.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
                None => title.to_string(),
            }
        }
    };
    (title.to_string(), message)
}

/// Messages shown next to form fields (`<p class="field-error">`), in the
/// reader's language. Pages check their fields first and word the message
/// themselves; [`FieldErrors::from_app`] places what the application
/// rejected next to the field it names.
#[derive(Default)]
pub struct FieldErrors {
    entries: Vec<(String, String)>,
}

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.entries.push((field.to_string(), message.into()));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An application error as a field message: a domain rule names its
    /// field; anything else goes to `fallback` (the form as a whole).
    /// `wording` is the page's own message per field, `(field, zh, en)`,
    /// used when the rule broken is on one of those fields.
    pub fn from_app(
        lang: Lang,
        e: &AppError,
        fallback: &str,
        wording: &[(&str, &str, &str)],
    ) -> FieldErrors {
        let mut errors = FieldErrors::default();
        let named = match e {
            AppError::Invalid(DomainError::Invalid { field, .. })
            | AppError::Invalid(DomainError::InvalidDate { field, .. }) => Some(*field),
            AppError::Invalid(DomainError::InvalidPhone(_)) => Some("phone"),
            _ => None,
        };
        if let Some((field, zh, en)) = wording.iter().find(|(f, _, _)| Some(*f) == named) {
            errors.add(field, lang.t(zh, en));
            return errors;
        }
        let (field, zh, en) = match e {
            AppError::Invalid(DomainError::InvalidPhone(_)) => (
                "phone",
                "请输入有效的手机号（11 位）".to_string(),
                "Enter a valid mobile number (11 digits)".to_string(),
            ),
            AppError::Invalid(DomainError::InvalidDate { field, reason }) => (
                *field,
                "日期格式不正确（例如 2026-05-01）".to_string(),
                format!("Invalid date: {reason}"),
            ),
            AppError::Invalid(DomainError::Invalid { field, reason }) => (
                *field,
                "此项填写有误，请检查".to_string(),
                capitalise(reason),
            ),
            other => {
                let (_, message) = explain(lang, other, status_of(other));
                (fallback, message.clone(), message)
            }
        };
        errors.add(field, lang.t(&zh, &en).to_string());
        errors
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_keeps_fen_and_groups_thousands_when_asked() {
        assert_eq!(yuan(0), "¥0.00");
        assert_eq!(yuan(123_456_789), "¥1234567.89");
        assert_eq!(yuan(-1_050), "-¥10.50");
        assert_eq!(yuan_grouped(0), "¥0.00");
        assert_eq!(yuan_grouped(5), "¥0.05");
        assert_eq!(yuan_grouped(123_456_789), "¥1,234,567.89");
        assert_eq!(yuan_grouped(-1_050), "-¥10.50");
    }

    #[test]
    fn field_errors_name_the_field_of_a_domain_rule() {
        let e = AppError::Invalid(DomainError::invalid("name", "must not be empty"));
        let zh = FieldErrors::from_app(Lang::Zh, &e, "form", &[]);
        assert_eq!(zh.get("name"), Some("此项填写有误，请检查"));
        assert_eq!(zh.get("form"), None);
        let en = FieldErrors::from_app(Lang::En, &e, "form", &[]);
        assert_eq!(en.get("name"), Some("Must not be empty"));
        let worded = FieldErrors::from_app(
            Lang::Zh,
            &e,
            "form",
            &[("name", "请填写名称", "Enter a name")],
        );
        assert_eq!(worded.get("name"), Some("请填写名称"));
    }

    #[test]
    fn storage_failures_never_show_their_cause() {
        let e = AppError::Store(regulars_store::StoreError::Conflict {
            constraint: "members_pkey".into(),
        });
        let (_, zh) = explain(Lang::Zh, &e, StatusCode::CONFLICT);
        assert!(!zh.contains("members_pkey"));
    }
}
