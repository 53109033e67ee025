//! Staff users, API keys, console sessions and the audit log.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct StaffUserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub store_code: Option<String>,
    pub disabled_at: Option<i64>,
}

pub async fn insert_user(
    conn: &mut AnyConnection,
    id: &str,
    username: &str,
    password_hash: &str,
    role: &str,
    store_code: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO staff_users (id, username, password_hash, role, store_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(store_code)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn set_password(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: &str,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE staff_users SET password_hash = $1 WHERE username = $2")
        .bind(password_hash)
        .bind(username)
        .execute(conn)
        .await
        .store()?;
    if done.rows_affected() == 0 {
        return Err(crate::StoreError::NotFound);
    }
    Ok(())
}

pub async fn user_by_username(
    conn: &mut AnyConnection,
    username: &str,
) -> StoreResult<Option<StaffUserRow>> {
    sqlx::query_as::<_, StaffUserRow>(
        "SELECT id, username, password_hash, role, store_code, disabled_at FROM staff_users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub store_code: Option<String>,
    pub revoked_at: Option<i64>,
}

pub async fn insert_api_key(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    key_hash: &str,
    role: &str,
    store_code: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, role, store_code, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(key_hash)
    .bind(role)
    .bind(store_code)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn api_key_by_hash(
    conn: &mut AnyConnection,
    key_hash: &str,
) -> StoreResult<Option<ApiKeyRow>> {
    sqlx::query_as::<_, ApiKeyRow>(
        "SELECT id, name, role, store_code, revoked_at FROM api_keys WHERE key_hash = $1",
    )
    .bind(key_hash)
    .fetch_optional(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: String,
    pub username: String,
    pub role: String,
    pub store_code: Option<String>,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub async fn insert_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: &str,
    csrf_token: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO staff_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(csrf_token)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn session_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> StoreResult<Option<SessionRow>> {
    sqlx::query_as::<_, SessionRow>(
        "SELECT s.user_id, u.username, u.role, u.store_code, s.csrf_token, s.expires_at \
         FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND u.disabled_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn delete_session(conn: &mut AnyConnection, token_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

/// Append one line to the audit log. `detail` must hold no personal data.
pub async fn audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

pub async fn audit_of(conn: &mut AnyConnection, subject: &str) -> StoreResult<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(
        "SELECT id, at, actor, action, subject, detail FROM audit_log WHERE subject = $1 ORDER BY id",
    )
    .bind(subject)
    .fetch_all(conn)
    .await
    .store()
}

pub async fn get_setting(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<String>> {
    sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await
        .store()
}

pub async fn put_setting(conn: &mut AnyConnection, key: &str, value: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// The newest audit entries first, narrowed by whatever is given; `before`
/// is the id to page back from.
pub async fn audit_search(
    conn: &mut AnyConnection,
    actor: Option<&str>,
    action: Option<&str>,
    subject: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(
        "SELECT id, at, actor, action, subject, detail FROM audit_log \
         WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2 OR action LIKE $3) \
         AND ($4 = '' OR subject = $4) AND id < $5 ORDER BY id DESC LIMIT $6",
    )
    .bind(actor.unwrap_or(""))
    .bind(action.unwrap_or(""))
    .bind(format!("{}.%", action.unwrap_or("")))
    .bind(subject.unwrap_or(""))
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// A staff account as the staff page lists it (never the password hash).
#[derive(Debug, Clone, FromRow)]
pub struct StaffUserListRow {
    pub username: String,
    pub role: String,
    pub store_code: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

pub async fn list_users(conn: &mut AnyConnection) -> StoreResult<Vec<StaffUserListRow>> {
    sqlx::query_as::<_, StaffUserListRow>(
        "SELECT username, role, store_code, created_at, disabled_at FROM staff_users ORDER BY username",
    )
    .fetch_all(conn)
    .await
    .store()
}

/// Disable an account and end its sessions; false when no such active user.
pub async fn disable_user(conn: &mut AnyConnection, username: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET disabled_at = $1 WHERE username = $2 AND disabled_at IS NULL",
    )
    .bind(now)
    .bind(username)
    .execute(&mut *conn)
    .await
    .store()?;
    sqlx::query(
        "DELETE FROM staff_sessions WHERE user_id IN (SELECT id FROM staff_users WHERE username = $1)",
    )
    .bind(username)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() > 0)
}

/// An API key as the staff page lists it (never the key or its hash).
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyListRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub store_code: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn list_api_keys(conn: &mut AnyConnection) -> StoreResult<Vec<ApiKeyListRow>> {
    sqlx::query_as::<_, ApiKeyListRow>(
        "SELECT id, name, role, store_code, created_at, revoked_at FROM api_keys ORDER BY created_at DESC",
    )
    .fetch_all(conn)
    .await
    .store()
}

/// Revoke a key; false when no such unrevoked key.
pub async fn revoke_api_key(conn: &mut AnyConnection, id: &str, now: i64) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .store()?;
    Ok(done.rows_affected() > 0)
}
