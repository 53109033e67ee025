//! Who is calling: API keys (POS systems, scripts, partners) and staff users
//! (console sessions). Both end as a [`Principal`] with a role and a store.

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Principal, Role};
use regulars_core::secret;
use regulars_store::{commit, now_ms, staff, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn role_of(stored: &str) -> AppResult<Role> {
    stored
        .parse()
        .map_err(|e: String| AppError::Store(StoreError::Corrupt(e)))
}

/// Resolve a bearer token to its principal; `None` when unknown or revoked.
pub async fn authenticate_api_key(app: &Regulars, token: &str) -> AppResult<Option<Principal>> {
    let hash = secret::token_hash(token);
    if let Some(principal) = app.api_keys.get(&hash) {
        return Ok(Some(principal));
    }
    let mut conn = app.db.reader().await?;
    let found = staff::api_key_by_hash(&mut conn, &hash).await?;
    match found {
        Some(key) if key.revoked_at.is_none() => {
            let principal = Principal {
                actor: format!("key:{}", key.id),
                role: role_of(&key.role)?,
                store: key.store_code,
            };
            app.api_keys.put(hash, principal.clone());
            Ok(Some(principal))
        }
        _ => Ok(None),
    }
}

/// Keys that authenticated in the last [`ApiKeyCache::TTL`], by token hash.
/// A POS sends its key with every order; reading the key's row each time
/// was a database round trip per request. A revoked key stops working
/// within the TTL on every node (unknown keys are never cached, so a flood
/// of wrong tokens cannot fill it).
#[derive(Default)]
pub struct ApiKeyCache {
    keys: Mutex<HashMap<String, (Instant, Principal)>>,
}

impl ApiKeyCache {
    pub const TTL: Duration = Duration::from_secs(2);
    /// Far more keys than a chain has terminals; past it the cache restarts.
    const MAX_KEYS: usize = 100_000;

    fn get(&self, hash: &str) -> Option<Principal> {
        let keys = self.keys.lock().ok()?;
        keys.get(hash)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, principal)| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= Self::MAX_KEYS {
                keys.clear();
            }
            keys.insert(hash, (Instant::now(), principal));
        }
    }

    /// Forget every cached key (after a revocation on this node).
    pub fn clear(&self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.clear();
        }
    }
}

/// Store-scoped roles need a store, and the store must exist.
async fn check_scope(app: &Regulars, role: Role, store: Option<&str>) -> AppResult<()> {
    match (role.is_store_scoped(), store) {
        (true, None) => Err(AppError::unprocessable(
            "store_required",
            format!("role {role} is limited to one store: name it with --store"),
        )),
        (false, Some(_)) if role != Role::Partner => Err(AppError::unprocessable(
            "store_not_allowed",
            format!("role {role} is not limited to a store"),
        )),
        (_, Some(code)) => super::chain::require_store(app, code).await,
        _ => Ok(()),
    }
}

/// Create an API key; returns `(key id, secret)`. The secret is shown once.
/// `actor` is who asked (`cli`, or a console user), for the audit log.
pub async fn create_api_key(
    app: &Regulars,
    actor: &str,
    role: Role,
    store: Option<&str>,
    name: &str,
) -> AppResult<(String, String)> {
    check_scope(app, role, store).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let key = secret::new_api_key();
    let mut tx = app.db.begin().await?;
    let now = now_ms();
    staff::insert_api_key(
        &mut tx,
        &id,
        name,
        &secret::token_hash(&key),
        role.as_str(),
        store,
        now,
    )
    .await?;
    staff::audit(
        &mut tx,
        actor,
        "apikey.create",
        &format!("key:{id}"),
        role.as_str(),
        now,
    )
    .await?;
    commit(tx).await?;
    Ok((id, key))
}

/// Create a staff user with an argon2id password hash. `actor` is who
/// asked (`cli`, or a console user), for the audit log.
pub async fn create_user(
    app: &Regulars,
    actor: &str,
    username: &str,
    role: Role,
    store: Option<&str>,
    password: &str,
) -> AppResult<()> {
    let username = regulars_core::chain::parse_code("username", username)?;
    check_scope(app, role, store).await?;
    let hash = secret::hash_password(password)?;
    let mut tx = app.db.begin().await?;
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    match staff::insert_user(&mut tx, &id, &username, &hash, role.as_str(), store, now).await {
        Err(e) if e.is_conflict_on("username") => {
            return Err(AppError::Conflict {
                code: "user_exists",
                message: format!("a user named {username} already exists"),
            })
        }
        other => other?,
    }
    staff::audit(
        &mut tx,
        actor,
        "user.create",
        &format!("user:{username}"),
        role.as_str(),
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

/// Set a new password for an existing user (the demo re-issues its admin's).
pub async fn reset_password(app: &Regulars, username: &str, password: &str) -> AppResult<()> {
    let hash = secret::hash_password(password)?;
    let mut tx = app.db.begin().await?;
    match staff::set_password(&mut tx, username, &hash).await {
        Err(StoreError::NotFound) => return Err(AppError::NotFound { what: "user" }),
        other => other?,
    }
    staff::audit(
        &mut tx,
        "cli",
        "user.password",
        &format!("user:{username}"),
        "",
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in console session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub username: String,
    pub csrf_token: String,
}

/// Failed logins per username and per client address; five in fifteen
/// minutes locks that username (or address) for the rest of the window.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
const THROTTLE_LIMIT: usize = 5;

impl LoginThrottle {
    fn blocked(&self, keys: &[String]) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        keys.iter().any(|k| {
            let list = map.entry(k.clone()).or_default();
            list.retain(|t| now.duration_since(*t) < THROTTLE_WINDOW);
            list.len() >= THROTTLE_LIMIT
        })
    }

    fn fail(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.entry(k.clone()).or_default().push(Instant::now());
        }
    }

    fn succeed(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.remove(k);
        }
    }
}

/// Check a password and open a session; returns `(session token, session)`.
pub async fn login(
    app: &Regulars,
    throttle: &LoginThrottle,
    username: &str,
    password: &str,
    client: &str,
) -> AppResult<(String, Session)> {
    let keys = [format!("user:{username}"), format!("addr:{client}")];
    if throttle.blocked(&keys) {
        return Err(AppError::TooManyRequests);
    }
    let user = {
        let mut conn = app.db.reader().await?;
        staff::user_by_username(&mut conn, username).await?
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_string();
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => secret::verify_password(&password, &h),
        None => {
            // Spend the same time for unknown users so timing does not tell.
            let _ = secret::hash_password("timing-equaliser-password");
            false
        }
    })
    .await
    .unwrap_or(false);
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        _ => {
            throttle.fail(&keys);
            return Err(AppError::Unauthorized("wrong username or password"));
        }
    };
    throttle.succeed(&keys);
    let token = secret::random_token(32);
    let csrf = secret::random_token(24);
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    staff::insert_session(
        &mut tx,
        &secret::token_hash(&token),
        &user.id,
        &csrf,
        now,
        now + SESSION_TTL.as_millis() as i64,
    )
    .await?;
    staff::audit(
        &mut tx,
        &format!("user:{}", user.username),
        "session.login",
        &format!("user:{}", user.username),
        "",
        now,
    )
    .await?;
    commit(tx).await?;
    Ok((
        token,
        Session {
            principal: Principal {
                actor: format!("user:{}", user.username),
                role: role_of(&user.role)?,
                store: user.store_code,
            },
            username: user.username,
            csrf_token: csrf,
        },
    ))
}

pub async fn session(app: &Regulars, token: &str) -> AppResult<Option<Session>> {
    let mut conn = app.db.reader().await?;
    match staff::session_by_hash(&mut conn, &secret::token_hash(token)).await? {
        Some(s) if s.expires_at > now_ms() => Ok(Some(Session {
            principal: Principal {
                actor: format!("user:{}", s.username),
                role: role_of(&s.role)?,
                store: s.store_code,
            },
            username: s.username,
            csrf_token: s.csrf_token,
        })),
        _ => Ok(None),
    }
}

pub async fn logout(app: &Regulars, token: &str) -> AppResult<()> {
    let mut conn = app.db.writer().await?;
    staff::delete_session(&mut conn, &secret::token_hash(token)).await?;
    Ok(())
}
