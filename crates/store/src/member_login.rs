//! Member sign-in on the H5 pages: code requests (for the send limits), the
//! codes themselves (only keyed hashes), member sessions (token hashes), the
//! message log (encrypted text), and what a member's export and erasure read
//! and write. No plaintext code, token or phone reaches this module.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

/// Requests for a code after `since` (Unix ms) for one phone key.
pub async fn requests_for_phone(
    conn: &mut AnyConnection,
    phone_key: &str,
    since: i64,
) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM member_login_requests WHERE phone_key = $1 AND at > $2",
    )
    .bind(phone_key)
    .bind(since)
    .fetch_one(conn)
    .await
    .store()
}

/// Requests for a code after `since` from one client address.
pub async fn requests_from_client(
    conn: &mut AnyConnection,
    client: &str,
    since: i64,
) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM member_login_requests WHERE client = $1 AND at > $2",
    )
    .bind(client)
    .bind(since)
    .fetch_one(conn)
    .await
    .store()
}

pub async fn insert_request(
    conn: &mut AnyConnection,
    id: &str,
    phone_key: &str,
    client: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO member_login_requests (id, phone_key, client, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(phone_key)
    .bind(client)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Forget requests and codes older than `before`: they no longer count
/// towards any limit and can no longer be used.
pub async fn prune(conn: &mut AnyConnection, before: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM member_login_requests WHERE at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .store()?;
    sqlx::query("DELETE FROM member_login_codes WHERE created_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct CodeRow {
    pub id: String,
    pub member_id: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A new code for `member_id`; every earlier unused code of the phone ends.
#[allow(clippy::too_many_arguments)]
pub async fn insert_code(
    conn: &mut AnyConnection,
    id: &str,
    member_id: &str,
    phone_key: &str,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE member_login_codes SET expires_at = $2 WHERE phone_key = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(phone_key)
    .bind(now)
    .execute(&mut *conn)
    .await
    .store()?;
    sqlx::query(
        "INSERT INTO member_login_codes (id, member_id, phone_key, code_hash, attempts, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6)",
    )
    .bind(id)
    .bind(member_id)
    .bind(phone_key)
    .bind(code_hash)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// The phone's latest code not yet used (possibly expired or spent on tries).
pub async fn latest_code(
    conn: &mut AnyConnection,
    phone_key: &str,
) -> StoreResult<Option<CodeRow>> {
    sqlx::query_as::<_, CodeRow>(
        "SELECT id, member_id, code_hash, attempts, expires_at, used_at FROM member_login_codes \
         WHERE phone_key = $1 AND used_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(phone_key)
    .fetch_optional(conn)
    .await
    .store()
}

/// Count one try at a code; returns the tries made so far.
pub async fn count_attempt(conn: &mut AnyConnection, id: &str) -> StoreResult<i64> {
    sqlx::query("UPDATE member_login_codes SET attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .store()?;
    sqlx::query_scalar::<_, i64>("SELECT attempts FROM member_login_codes WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .store()
}

/// Mark a code used; false when it was used already (a race of two tries).
pub async fn use_code(conn: &mut AnyConnection, id: &str, now: i64) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE member_login_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await
            .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    member_id: &str,
    csrf_token: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO member_sessions (token_hash, member_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(member_id)
    .bind(csrf_token)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub member_id: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A session of a member who still exists (not erased).
pub async fn session_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> StoreResult<Option<SessionRow>> {
    sqlx::query_as::<_, SessionRow>(
        "SELECT s.member_id, s.csrf_token, s.expires_at FROM member_sessions s \
         JOIN members m ON m.id = s.member_id WHERE s.token_hash = $1 AND m.erased_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn delete_session(conn: &mut AnyConnection, token_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM member_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: String,
    pub member_id: Option<String>,
    pub channel: String,
    pub purpose: String,
    pub recipient: String,
    pub body_enc: Vec<u8>,
    pub delivery: String,
    pub created_at: i64,
}

pub async fn insert_message(conn: &mut AnyConnection, m: &MessageRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO message_log (id, member_id, channel, purpose, recipient, body_enc, delivery, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&m.id)
    .bind(&m.member_id)
    .bind(&m.channel)
    .bind(&m.purpose)
    .bind(&m.recipient)
    .bind(&m.body_enc)
    .bind(&m.delivery)
    .bind(m.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// The newest messages first.
pub async fn messages(conn: &mut AnyConnection, limit: i64) -> StoreResult<Vec<MessageRow>> {
    sqlx::query_as::<_, MessageRow>(
        "SELECT id, member_id, channel, purpose, recipient, body_enc, delivery, created_at \
         FROM message_log ORDER BY created_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: String,
    pub store_code: String,
    pub pos_order_id: String,
    pub channel: String,
    pub occurred_at: i64,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    pub points_earned: i64,
    pub points_reversed: i64,
}

/// A member's orders, newest first (for their data export).
pub async fn orders_of(conn: &mut AnyConnection, member_id: &str) -> StoreResult<Vec<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(
        "SELECT id, store_code, pos_order_id, channel, occurred_at, paid_fen, refunded_fen, \
         points_earned, points_reversed FROM orders WHERE member_id = $1 ORDER BY occurred_at DESC, id DESC",
    )
    .bind(member_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Erase a member's personal data: name, phone (ciphertext and blind
/// index), e-mail, birthday (and the month and day kept from it), notes,
/// anniversaries, gender, age group, city, messaging locale; tags go, every
/// session, code and logged message of the member goes. The row stays (with
/// `erased_at`) so the ledger and orders that point at it stay whole.
/// False when the member was already erased.
pub async fn erase_member(
    conn: &mut AnyConnection,
    member_id: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE members SET phone_index = NULL, phone_enc = NULL, name_enc = NULL, email_enc = NULL, \
         birthday_enc = NULL, notes_enc = NULL, anniversaries_enc = NULL, gender = NULL, \
         birth_month = NULL, birth_day = NULL, age_group = NULL, city = NULL, time_zone = NULL, \
         language = NULL, account_manager = NULL, erased_at = $2, updated_at = $2 \
         WHERE id = $1 AND erased_at IS NULL",
    )
    .bind(member_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .store()?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    for sql in [
        "DELETE FROM member_tags WHERE member_id = $1",
        "DELETE FROM member_sessions WHERE member_id = $1",
        "DELETE FROM member_login_codes WHERE member_id = $1",
        "DELETE FROM message_log WHERE member_id = $1",
    ] {
        sqlx::query(sql)
            .bind(member_id)
            .execute(&mut *conn)
            .await
            .store()?;
    }
    Ok(true)
}

/// When each of a member's positive entries expires, by entry id.
pub async fn lot_expiries(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Vec<(i64, i64)>> {
    sqlx::query_as::<_, (i64, i64)>("SELECT entry_id, expires_at FROM lots WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(conn)
        .await
        .store()
}

/// A member's messaging time zone and language (None when erased or absent).
pub async fn locale_of(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as::<_, (Option<String>, Option<String>)>(
        "SELECT time_zone, language FROM members WHERE id = $1 AND erased_at IS NULL",
    )
    .bind(member_id)
    .fetch_optional(conn)
    .await
    .store()
}
