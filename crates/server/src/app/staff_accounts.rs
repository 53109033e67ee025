//! What HQ does with staff accounts and API keys from the console — list,
//! create, disable, revoke — and reading the audit log. Creating goes through
//! `auth` (the same code as the CLI); every change is audited with its actor.

use super::auth;
use super::{AppError, AppResult, Regulars};
use crate::app::ledger::rfc3339;
use regulars_core::access::{Action, Principal, Role};
use regulars_core::error::DomainError;
use regulars_store::{commit, now_ms, staff};

/// Shortest password HQ may give a new staff account.
pub const MIN_PASSWORD_CHARS: usize = 10;

pub struct StaffAccount {
    pub username: String,
    pub role: String,
    pub store: Option<String>,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

pub struct ApiKeyListing {
    pub id: String,
    pub name: String,
    pub role: String,
    pub store: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

fn parse_role(role: &str) -> AppResult<Role> {
    role.parse::<Role>()
        .map_err(|reason| DomainError::invalid("role", reason).into())
}

pub async fn accounts(app: &Regulars, caller: &Principal) -> AppResult<Vec<StaffAccount>> {
    caller.check(Action::StaffManage, None)?;
    let mut conn = app.db.reader().await?;
    Ok(staff::list_users(&mut conn)
        .await?
        .into_iter()
        .map(|u| StaffAccount {
            username: u.username,
            role: u.role,
            store: u.store_code,
            created_at: rfc3339(app, u.created_at),
            disabled_at: u.disabled_at.map(|t| rfc3339(app, t)),
        })
        .collect())
}

pub async fn add_account(
    app: &Regulars,
    caller: &Principal,
    username: &str,
    role: &str,
    store: Option<&str>,
    password: &str,
) -> AppResult<()> {
    caller.check(Action::StaffManage, None)?;
    let role = parse_role(role)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_CHARS} characters"),
        )
        .into());
    }
    auth::create_user(app, &caller.actor, username, role, store, password).await
}

pub async fn disable_account(app: &Regulars, caller: &Principal, username: &str) -> AppResult<()> {
    caller.check(Action::StaffManage, None)?;
    if caller.actor == format!("user:{username}") {
        return Err(AppError::unprocessable(
            "own_account",
            "you cannot disable your own account",
        ));
    }
    let mut tx = app.db.begin().await?;
    let now = now_ms();
    if !staff::disable_user(&mut tx, username, now).await? {
        return Err(AppError::NotFound { what: "user" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "user.disable",
        &format!("user:{username}"),
        "",
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

pub async fn api_keys(app: &Regulars, caller: &Principal) -> AppResult<Vec<ApiKeyListing>> {
    caller.check(Action::StaffManage, None)?;
    let mut conn = app.db.reader().await?;
    Ok(staff::list_api_keys(&mut conn)
        .await?
        .into_iter()
        .map(|k| ApiKeyListing {
            id: k.id,
            name: k.name,
            role: k.role,
            store: k.store_code,
            created_at: rfc3339(app, k.created_at),
            revoked_at: k.revoked_at.map(|t| rfc3339(app, t)),
        })
        .collect())
}

/// A new key; returns `(id, secret)` — the secret is shown this once.
pub async fn add_api_key(
    app: &Regulars,
    caller: &Principal,
    name: &str,
    role: &str,
    store: Option<&str>,
) -> AppResult<(String, String)> {
    caller.check(Action::StaffManage, None)?;
    let role = parse_role(role)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(DomainError::invalid("name", "1 to 80 characters").into());
    }
    auth::create_api_key(app, &caller.actor, role, store, name).await
}

pub async fn revoke_api_key(app: &Regulars, caller: &Principal, id: &str) -> AppResult<()> {
    caller.check(Action::StaffManage, None)?;
    let mut tx = app.db.begin().await?;
    let now = now_ms();
    if !staff::revoke_api_key(&mut tx, id, now).await? {
        return Err(AppError::NotFound { what: "API key" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "apikey.revoke",
        &format!("key:{id}"),
        "",
        now,
    )
    .await?;
    commit(tx).await?;
    // This node forgets cached keys at once; others within the cache's TTL.
    app.api_keys.clear();
    Ok(())
}

/// What the audit viewer filters by; empty strings mean "any".
#[derive(Default)]
pub struct AuditFilter {
    pub actor: String,
    /// An action (`member.reveal`) or its family (`member`).
    pub action: String,
    pub subject: String,
    pub before: Option<i64>,
}

/// A page of the audit log, newest first.
pub async fn audit_log(
    app: &Regulars,
    caller: &Principal,
    filter: &AuditFilter,
    limit: i64,
) -> AppResult<Vec<AuditEntry>> {
    caller.check(Action::AuditRead, None)?;
    let some = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    let mut conn = app.db.reader().await?;
    Ok(staff::audit_search(
        &mut conn,
        some(&filter.actor).as_deref(),
        some(&filter.action).as_deref(),
        some(&filter.subject).as_deref(),
        filter.before,
        limit.clamp(1, 500),
    )
    .await?
    .into_iter()
    .map(|r| AuditEntry {
        id: r.id,
        at: rfc3339(app, r.at),
        actor: r.actor,
        action: r.action,
        subject: r.subject,
        detail: r.detail,
    })
    .collect())
}
