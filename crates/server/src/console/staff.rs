//! Staff accounts and API keys (hq_admin): who can sign in and which POS or
//! partner systems may call the API. A new key's secret is shown once.

use super::frame::{redirect, render, when, Chrome, FieldErrors, Lang, Staff};
use crate::app::staff_accounts::{self, ApiKeyListing, StaffAccount, MIN_PASSWORD_CHARS};
use crate::app::{chain, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::access::Role;
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/staff", get(page))
        .route("/console/staff/users", post(add_user))
        .route(
            "/console/staff/users/{username}/disable",
            post(disable_user),
        )
        .route("/console/staff/keys", post(add_key))
        .route("/console/staff/keys/{id}/revoke", post(revoke_key))
}

/// A role as the form offers it.
struct RoleChoice {
    value: &'static str,
    label: &'static str,
}

fn role_choices(lang: Lang) -> Vec<RoleChoice> {
    Role::ALL
        .into_iter()
        .map(|r| RoleChoice {
            value: r.as_str(),
            label: role_label(lang, r),
        })
        .collect()
}

fn role_label(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::HqAdmin => lang.t("总部管理员", "HQ admin"),
        Role::Marketing => lang.t("市场", "Marketing"),
        Role::Analyst => lang.t("分析师", "Analyst"),
        Role::ServiceAgent => lang.t("客服", "Service agent"),
        Role::StoreManager => lang.t("店长", "Store manager"),
        Role::Staff => lang.t("门店员工", "Store staff"),
        Role::Pos => lang.t("收银系统", "POS"),
        Role::Partner => lang.t("合作方", "Partner"),
        // Never offered (not in Role::ALL): a guest signed in on /m.
        Role::Member => lang.t("会员本人", "Member"),
    }
}

/// The forms as filled in, kept when they are refused.
#[derive(Default, Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    password: String,
}

#[derive(Default, Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    store: String,
}

#[derive(Template)]
#[template(path = "staff/staff.html")]
struct StaffPage {
    c: Chrome,
    users: Vec<StaffAccount>,
    keys: Vec<ApiKeyListing>,
    roles: Vec<RoleChoice>,
    stores: Vec<(String, String)>,
    user_form: UserForm,
    key_form: KeyForm,
    user_errors: FieldErrors,
    key_errors: FieldErrors,
    /// A key just created: `(name, secret)`, shown this once.
    new_key: Option<(String, String)>,
}

const USER_WORDING: [(&str, &str, &str); 4] = [
    (
        "username",
        "用户名用字母、数字、下划线或连字符，最多 32 个字符",
        "Letters, digits, _ or -, at most 32 characters",
    ),
    ("role", "请选择角色", "Choose a role"),
    (
        "password",
        "密码至少 10 个字符",
        "The password needs at least 10 characters",
    ),
    ("store", "请选择门店", "Choose a store"),
];

const KEY_WORDING: [(&str, &str, &str); 2] = [
    (
        "name",
        "请填写用途（1–80 个字符）",
        "Say what the key is for (1–80 characters)",
    ),
    ("role", "请选择角色", "Choose a role"),
];

/// The two forms' state on one rendering of the page.
#[derive(Default)]
struct Forms {
    user_form: UserForm,
    user_errors: FieldErrors,
    key_form: KeyForm,
    key_errors: FieldErrors,
    new_key: Option<(String, String)>,
}

async fn show(state: &ApiState, staff: &Staff, status: StatusCode, forms: Forms) -> Response {
    let app = &state.regulars;
    let caller = staff.principal();
    let users = match staff_accounts::accounts(app, caller).await {
        Ok(mut u) => {
            u.iter_mut()
                .for_each(|u| u.created_at = when(&u.created_at));
            u
        }
        Err(e) => return staff.fail(e),
    };
    let keys = match staff_accounts::api_keys(app, caller).await {
        Ok(mut k) => {
            k.iter_mut()
                .for_each(|k| k.created_at = when(&k.created_at));
            k
        }
        Err(e) => return staff.fail(e),
    };
    let stores = match chain::list_stores(app, caller).await {
        Ok(s) => s.into_iter().map(|s| (s.code, s.name)).collect(),
        Err(e) => return staff.fail(e),
    };
    render(
        status,
        StaffPage {
            c: staff.chrome(),
            users,
            keys,
            roles: role_choices(staff.lang),
            stores,
            user_form: forms.user_form,
            key_form: forms.key_form,
            user_errors: forms.user_errors,
            key_errors: forms.key_errors,
            new_key: forms.new_key,
        },
    )
}

async fn page(State(state): State<ApiState>, staff: Staff) -> Response {
    show(&state, &staff, StatusCode::OK, Forms::default()).await
}

/// A store-scoped role needs a store; other roles take none (partners may).
fn check_store(lang: Lang, role: &str, store: &str, errors: &mut FieldErrors) {
    if let Ok(role) = role.parse::<Role>() {
        if role.is_store_scoped() && store.is_empty() {
            errors.add(
                "store",
                lang.t(
                    "这个角色只管一家门店，请选择门店",
                    "This role works for one store: choose it",
                ),
            );
        } else if !role.is_store_scoped() && role != Role::Partner && !store.is_empty() {
            errors.add(
                "store",
                lang.t(
                    "这个角色不限门店，请不要选择门店",
                    "This role is not limited to a store: leave it empty",
                ),
            );
        }
    }
}

async fn add_user(
    State(state): State<ApiState>,
    staff: Staff,
    Form(form): Form<UserForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    if form.username.trim().is_empty() {
        errors.add("username", lang.t("请填写用户名", "Enter a username"));
    }
    if form.role.parse::<Role>().is_err() {
        errors.add("role", lang.t("请选择角色", "Choose a role"));
    }
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        errors.add(
            "password",
            lang.t(
                "密码至少 10 个字符",
                "The password needs at least 10 characters",
            ),
        );
    }
    check_store(lang, &form.role, form.store.trim(), &mut errors);
    if errors.is_empty() {
        let store = form.store.trim();
        let store = (!store.is_empty()).then_some(store);
        match staff_accounts::add_account(
            &state.regulars,
            staff.principal(),
            form.username.trim(),
            &form.role,
            store,
            &form.password,
        )
        .await
        {
            Ok(()) => return redirect("/console/staff"),
            Err(AppError::Conflict { .. }) => {
                errors.add(
                    "username",
                    lang.t("这个用户名已被使用", "That username is taken"),
                );
            }
            Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
                errors = FieldErrors::from_app(lang, &e, "username", &USER_WORDING);
            }
            Err(e) => return staff.fail(e),
        }
    }
    // The password is never sent back to the page.
    let kept = UserForm {
        password: String::new(),
        ..form
    };
    let forms = Forms {
        user_form: kept,
        user_errors: errors,
        ..Forms::default()
    };
    show(&state, &staff, StatusCode::UNPROCESSABLE_ENTITY, forms).await
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn disable_user(
    State(state): State<ApiState>,
    staff: Staff,
    Path(username): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    match staff_accounts::disable_account(&state.regulars, staff.principal(), &username).await {
        Ok(()) => redirect("/console/staff"),
        Err(e) => staff.fail(e),
    }
}

async fn add_key(
    State(state): State<ApiState>,
    staff: Staff,
    Form(form): Form<KeyForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 {
        errors.add(
            "name",
            lang.t(
                "请填写用途（1–80 个字符）",
                "Say what the key is for (1–80 characters)",
            ),
        );
    }
    if form.role.parse::<Role>().is_err() {
        errors.add("role", lang.t("请选择角色", "Choose a role"));
    }
    check_store(lang, &form.role, form.store.trim(), &mut errors);
    if errors.is_empty() {
        let store = form.store.trim();
        let store = (!store.is_empty()).then_some(store);
        match staff_accounts::add_api_key(
            &state.regulars,
            staff.principal(),
            &name,
            &form.role,
            store,
        )
        .await
        {
            // Shown on this answer only: the page is not a redirect, so a
            // reload does not show it again and the secret is nowhere stored.
            Ok((_, secret)) => {
                let forms = Forms {
                    new_key: Some((name, secret)),
                    ..Forms::default()
                };
                return show(&state, &staff, StatusCode::CREATED, forms).await;
            }
            Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
                errors = FieldErrors::from_app(lang, &e, "name", &KEY_WORDING);
            }
            Err(e) => return staff.fail(e),
        }
    }
    let forms = Forms {
        key_form: form,
        key_errors: errors,
        ..Forms::default()
    };
    show(&state, &staff, StatusCode::UNPROCESSABLE_ENTITY, forms).await
}

async fn revoke_key(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    match staff_accounts::revoke_api_key(&state.regulars, staff.principal(), &id).await {
        Ok(()) => redirect("/console/staff"),
        Err(e) => staff.fail(e),
    }
}
