//! Feedback, messaging preferences and consents, and the member's own data:
//! export as JSON, delete the account.

use super::{download, signed_out, Chrome, Member};
use crate::app::member_messages::MessagingPreferences;
use crate::app::{member_self, AppError};
use crate::console::frame::{redirect, render, FieldErrors, Lang};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/m/feedback", get(feedback_page).post(give_feedback))
        .route("/m/preferences", get(preferences).post(save_preferences))
        .route("/m/privacy", get(privacy))
        .route("/m/privacy/export", post(export))
        .route("/m/privacy/delete", post(delete))
        .route("/m/deleted", get(deleted))
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    done: Option<String>,
}

// ---------------------------------------------------------------- feedback

#[derive(Template)]
#[template(path = "h5/feedback.html")]
struct FeedbackPage {
    c: Chrome,
    stores: Vec<(String, String)>,
    store: String,
    text: String,
    /// 1–5 and whether that one is chosen.
    stars: Vec<(i64, bool)>,
    thanks: bool,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub(super) struct FeedbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    rating: String,
}

async fn feedback_form(
    state: &ApiState,
    member: &Member,
    status: StatusCode,
    form: FeedbackForm,
    thanks: bool,
    errors: FieldErrors,
) -> Response {
    let app = &state.regulars;
    let (stores, profile) = match tokio::try_join!(
        member_self::stores(app),
        member_self::profile(app, &member.session)
    ) {
        Ok(v) => v,
        Err(e) => return member.fail(e),
    };
    let store = if form.store.is_empty() {
        profile.home_store.unwrap_or_default()
    } else {
        form.store
    };
    render(
        status,
        FeedbackPage {
            c: member.chrome(),
            stores,
            store,
            text: form.text,
            stars: (1..=5)
                .map(|n| (n, form.rating.trim() == n.to_string()))
                .collect(),
            thanks,
            errors,
        },
    )
}

async fn feedback_page(
    State(state): State<ApiState>,
    member: Member,
    Query(q): Query<DoneQuery>,
) -> Response {
    let empty = FeedbackForm {
        csrf: String::new(),
        store: String::new(),
        text: String::new(),
        rating: String::new(),
    };
    feedback_form(
        &state,
        &member,
        StatusCode::OK,
        empty,
        q.done.is_some(),
        FieldErrors::default(),
    )
    .await
}

/// What the feedback form says when a field is wrong.
const FEEDBACK_WORDING: [(&str, &str, &str); 3] = [
    (
        "text",
        "请写下您的意见（1–2000 字）",
        "Write your feedback (1 to 2000 characters)",
    ),
    ("rating", "请选择 1–5 星", "Choose 1 to 5 stars"),
    ("store", "请选择门店", "Choose a store"),
];

async fn give_feedback(
    State(state): State<ApiState>,
    member: Member,
    Form(form): Form<FeedbackForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = member.lang;
    let mut errors = FieldErrors::default();
    let rating = match form.rating.trim() {
        "" => None,
        r => match r.parse::<i64>() {
            Ok(n) if (1..=5).contains(&n) => Some(n),
            _ => {
                errors.add("rating", lang.t("请选择 1–5 星", "Choose 1 to 5 stars"));
                None
            }
        },
    };
    if form.text.trim().is_empty() {
        errors.add(
            "text",
            lang.t("请写下您的意见", "Write a few words of feedback"),
        );
    }
    if form.store.trim().is_empty() {
        errors.add("store", lang.t("请选择门店", "Choose a store"));
    }
    if !errors.is_empty() {
        return feedback_form(
            &state,
            &member,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            false,
            errors,
        )
        .await;
    }
    match member_self::give_feedback(
        &state.regulars,
        &member.session,
        form.store.trim(),
        &form.text,
        rating,
    )
    .await
    {
        Ok(_) => redirect("/m/feedback?done=1"),
        Err(
            e @ (AppError::Invalid(_) | AppError::Unprocessable { .. } | AppError::Conflict { .. }),
        ) => {
            let errors = match &e {
                AppError::Unprocessable { code, .. } if *code == "unknown_store" => {
                    let mut errors = FieldErrors::default();
                    errors.add("store", lang.t("请选择门店", "Choose a store"));
                    errors
                }
                _ => FieldErrors::from_app(lang, &e, "text", &FEEDBACK_WORDING),
            };
            feedback_form(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                false,
                errors,
            )
            .await
        }
        Err(e) => member.fail(e),
    }
}

// ---------------------------------------------------------------- preferences

#[derive(Template)]
#[template(path = "h5/preferences.html")]
struct PreferencesPage {
    c: Chrome,
    sms: bool,
    email: bool,
    wechat: bool,
    language: String,
    time_zone: String,
    saved: bool,
    errors: FieldErrors,
}

async fn preferences(
    State(state): State<ApiState>,
    member: Member,
    Query(q): Query<DoneQuery>,
) -> Response {
    let app = &state.regulars;
    let (profile, prefs) = match tokio::try_join!(
        member_self::profile(app, &member.session),
        member_self::preferences(app, &member.session)
    ) {
        Ok(v) => v,
        Err(e) => return member.fail(e),
    };
    let granted = |c: &str| profile.consents.get(c).is_some_and(|v| v.granted);
    render(
        StatusCode::OK,
        PreferencesPage {
            c: member.chrome(),
            sms: granted("sms"),
            email: granted("email"),
            wechat: granted("wechat"),
            language: prefs.language.unwrap_or_else(|| "zh".into()),
            time_zone: prefs.time_zone.unwrap_or_default(),
            saved: q.done.is_some(),
            errors: FieldErrors::default(),
        },
    )
}

#[derive(Deserialize)]
pub(super) struct PreferencesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    wechat: Option<String>,
    #[serde(default)]
    language: String,
    #[serde(default)]
    time_zone: String,
}

async fn save_preferences(
    State(state): State<ApiState>,
    member: Member,
    Form(form): Form<PreferencesForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = member.lang;
    let again = |errors: FieldErrors| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            PreferencesPage {
                c: member.chrome(),
                sms: form.sms.is_some(),
                email: form.email.is_some(),
                wechat: form.wechat.is_some(),
                language: form.language.clone(),
                time_zone: form.time_zone.clone(),
                saved: false,
                errors,
            },
        )
    };
    let mut errors = FieldErrors::default();
    let language = form.language.trim();
    if !matches!(language, "zh" | "en") {
        errors.add(
            "language",
            lang.t("请选择中文或英文", "Choose Chinese or English"),
        );
    }
    let zone = form.time_zone.trim();
    if !zone.is_empty() && zone.parse::<chrono_tz::Tz>().is_err() {
        errors.add(
            "time_zone",
            lang.t(
                "请填写时区，例如 Asia/Shanghai",
                "Enter a time zone such as Asia/Shanghai",
            ),
        );
    }
    if !errors.is_empty() {
        return again(errors);
    }
    let app = &state.regulars;
    let me = &member.session;
    let saved = async {
        member_self::set_consents(
            app,
            me,
            form.sms.is_some(),
            form.email.is_some(),
            form.wechat.is_some(),
        )
        .await?;
        member_self::set_preferences(
            app,
            me,
            MessagingPreferences {
                time_zone: (!zone.is_empty()).then(|| zone.to_string()),
                language: Some(language.to_string()),
            },
        )
        .await
    }
    .await;
    match saved {
        Ok(_) => redirect("/m/preferences?done=1"),
        Err(e @ AppError::Invalid(_)) => again(FieldErrors::from_app(lang, &e, "form", &[])),
        Err(e) => member.fail(e),
    }
}

// ---------------------------------------------------------------- privacy

#[derive(Template)]
#[template(path = "h5/privacy.html")]
struct PrivacyPage {
    c: Chrome,
    errors: FieldErrors,
}

async fn privacy(member: Member) -> Response {
    render(
        StatusCode::OK,
        PrivacyPage {
            c: member.chrome(),
            errors: FieldErrors::default(),
        },
    )
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn export(
    State(state): State<ApiState>,
    member: Member,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    let data = match member_self::export(&state.regulars, &member.session).await {
        Ok(d) => d,
        Err(e) => return member.fail(e),
    };
    match serde_json::to_string_pretty(&data) {
        Ok(json) => download("regulars-my-data.json", json),
        Err(e) => member.fail(AppError::Store(regulars_store::StoreError::Corrupt(
            e.to_string(),
        ))),
    }
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn delete(
    State(state): State<ApiState>,
    member: Member,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    if form.confirm.trim() != "DELETE" && form.confirm.trim() != "删除" {
        let mut errors = FieldErrors::default();
        errors.add(
            "confirm",
            member
                .lang
                .t("请输入“删除”以确认", "Type DELETE to confirm"),
        );
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            PrivacyPage {
                c: member.chrome(),
                errors,
            },
        );
    }
    match member_self::erase(&state.regulars, &member.session).await {
        Ok(()) => signed_out(redirect("/m/deleted")),
        Err(e) => member.fail(e),
    }
}

#[derive(Template)]
#[template(path = "h5/deleted.html")]
struct DeletedPage {
    c: Chrome,
}

async fn deleted(headers: HeaderMap) -> Response {
    render(
        StatusCode::OK,
        DeletedPage {
            c: super::guest_chrome(Lang::of(&headers), "/m/deleted"),
        },
    )
}
