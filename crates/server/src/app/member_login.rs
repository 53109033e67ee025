//! Member sign-in on the H5 pages (`/m`) with a one-time code sent to the
//! phone, member sessions, and the message log HQ reads in the console.
//!
//! The rules (docs/h5.md): a 6-digit random code, stored only as a keyed
//! hash, lives 5 minutes and takes at most 5 tries; a phone may ask once a
//! minute and 10 times a day, a client address 30 times an hour. A phone
//! that is no member's gets the same answer as a member's, but no code.
//! The code goes out through the SMS gateway when one is configured;
//! otherwise (the demo) into the message log, encrypted, where hq_admin
//! reads it. Codes are never written to the tracing log.

use super::channels::{self, Channels, OutgoingMessage};
use super::{AppError, AppResult, Regulars};
use rand::Rng;
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::DeliveryChannel;
use regulars_core::phone::Phone;
use regulars_core::privacy::Slot;
use regulars_core::secret;
use regulars_store::member_login as repo;
use regulars_store::{commit, members, now_ms, staff};
use std::collections::BTreeMap;

/// How long a code may be used.
pub const CODE_TTL_MS: i64 = 5 * 60_000;
/// Tries per code; the fifth wrong one ends it.
pub const MAX_TRIES: i64 = 5;
/// Codes a phone may ask for: one a minute, ten a day.
pub const PER_PHONE_MINUTE: i64 = 1;
pub const PER_PHONE_DAY: i64 = 10;
/// Code requests from one client address in an hour.
pub const PER_CLIENT_HOUR: i64 = 30;
/// How long a member stays signed in.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A signed-in member. Everything the member pages do goes through
/// [`MemberSession::principal`] with [`MemberSession::member_id`], and
/// nothing else: a session can only ever touch its own member.
#[derive(Debug, Clone)]
pub struct MemberSession {
    pub member_id: String,
    pub csrf_token: String,
}

impl MemberSession {
    pub fn principal(&self) -> Principal {
        Principal::member(&self.member_id)
    }
}

/// The keyed hash a phone's requests and codes are filed under (its own
/// domain: it does not match the members' phone index).
fn phone_key(app: &Regulars, phone: &Phone) -> String {
    app.signature("member_login_phone", phone.e164_str(), 16)
}

/// The keyed hash of a code, bound to its row: a database dump does not let
/// anyone try the million codes offline without the master key.
fn code_hash(app: &Regulars, id: &str, code: &str) -> String {
    app.signature("member_login_code", &format!("{id}|{code}"), 32)
}

fn message_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "message_log",
        column: "body",
        row_id: id,
    }
}

/// Ask for a code for `phone` from `client` (its address). `Ok` whether or
/// not the phone is a member's; `TooManyRequests` past a send limit.
pub async fn request_code(app: &Regulars, phone: &str, client: &str) -> AppResult<()> {
    request_code_at(app, phone, client, now_ms()).await
}

/// [`request_code`] at a given time (tests move the clock).
pub async fn request_code_at(app: &Regulars, phone: &str, client: &str, now: i64) -> AppResult<()> {
    let phone = Phone::parse(phone)?;
    let key = phone_key(app, &phone);
    let mut tx = app.db.begin().await?;
    repo::prune(&mut tx, now - DAY).await?;
    if repo::requests_for_phone(&mut tx, &key, now - MINUTE).await? >= PER_PHONE_MINUTE
        || repo::requests_for_phone(&mut tx, &key, now - DAY).await? >= PER_PHONE_DAY
        || repo::requests_from_client(&mut tx, client, now - HOUR).await? >= PER_CLIENT_HOUR
    {
        return Err(AppError::TooManyRequests);
    }
    repo::insert_request(
        &mut tx,
        &uuid::Uuid::now_v7().to_string(),
        &key,
        client,
        now,
    )
    .await?;
    let member = members::find_by_phone_index(&mut tx, &app.phone_index(&phone))
        .await?
        .filter(|m| m.erased_at.is_none());
    let Some(member) = member else {
        // Same answer as for a member: nobody learns who is one.
        commit(tx).await?;
        return Ok(());
    };
    let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
    let id = uuid::Uuid::now_v7().to_string();
    repo::insert_code(
        &mut tx,
        &id,
        &member.id,
        &key,
        &code_hash(app, &id, &code),
        now,
        now + CODE_TTL_MS,
    )
    .await?;
    let settings = channels::load(app, &mut tx).await?;
    let text = format!("【熟客】您的登录验证码是 {code}，5 分钟内有效，请勿告诉他人。");
    let logged = |body: &str, delivery: &str| {
        repo::MessageRow {
            id: uuid::Uuid::now_v7().to_string(),
            member_id: Some(member.id.clone()),
            channel: "sms".into(),
            purpose: "login_code".into(),
            recipient: phone.masked(),
            body_enc: Vec::new(),
            delivery: delivery.into(),
            created_at: now,
        }
        .sealed(app, body)
    };
    if !settings.configured(DeliveryChannel::Sms) {
        // The demo: no gateway, so the code is in the log for HQ to read.
        repo::insert_message(&mut tx, &logged(&text, "logged")).await?;
        commit(tx).await?;
        return Ok(());
    }
    commit(tx).await?;
    let message = OutgoingMessage {
        send_id: id.clone(),
        campaign_id: "member_login".into(),
        member_id: member.id.clone(),
        channel: DeliveryChannel::Sms,
        to: phone.e164_str().to_string(),
        variant: "login_code".into(),
        text,
        variables: BTreeMap::from([("code".to_string(), code)]),
        unsubscribe_url: String::new(),
    };
    let delivery = match Channels::open(app, settings)?.deliver(&message).await {
        Ok(_) => "sent",
        Err(e) => {
            tracing::warn!(error = %e, "sign-in code not delivered");
            "failed"
        }
    };
    let note = "【熟客】登录验证码已由短信网关发送（验证码不记录）";
    let mut conn = app.db.writer().await?;
    repo::insert_message(&mut conn, &logged(note, delivery)).await?;
    Ok(())
}

trait Sealed {
    fn sealed(self, app: &Regulars, body: &str) -> Self;
}

impl Sealed for repo::MessageRow {
    fn sealed(mut self, app: &Regulars, body: &str) -> Self {
        self.body_enc = app.keys.encrypt(message_slot(&self.id), body);
        self
    }
}

/// Sign in with a code: a new session token (shown once, as the cookie) and
/// the session. A wrong code is `Unprocessable { code: "wrong_code" }`; a
/// code past its time or its tries is `"code_dead"`.
pub async fn sign_in(
    app: &Regulars,
    phone: &str,
    code: &str,
) -> AppResult<(String, MemberSession)> {
    sign_in_at(app, phone, code, now_ms()).await
}

fn wrong() -> AppError {
    AppError::unprocessable("wrong_code", "the code is not right")
}

fn dead() -> AppError {
    AppError::unprocessable(
        "code_dead",
        "the code has expired or had too many tries; ask for a new one",
    )
}

/// [`sign_in`] at a given time (tests move the clock).
pub async fn sign_in_at(
    app: &Regulars,
    phone: &str,
    code: &str,
    now: i64,
) -> AppResult<(String, MemberSession)> {
    let phone = Phone::parse(phone)?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(regulars_core::DomainError::invalid("code", "six digits").into());
    }
    let key = phone_key(app, &phone);
    let mut tx = app.db.begin().await?;
    let Some(row) = repo::latest_code(&mut tx, &key).await? else {
        return Err(wrong());
    };
    if row.expires_at <= now || row.attempts >= MAX_TRIES {
        return Err(dead());
    }
    let tries = repo::count_attempt(&mut tx, &row.id).await?;
    if !app.signature_matches(
        "member_login_code",
        &format!("{}|{code}", row.id),
        &row.code_hash,
    ) {
        // The try counts even though the sign-in fails.
        commit(tx).await?;
        return Err(if tries >= MAX_TRIES { dead() } else { wrong() });
    }
    if !repo::use_code(&mut tx, &row.id, now).await? {
        return Err(dead());
    }
    let member = members::get_member(&mut tx, &row.member_id)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or_else(dead)?;
    let token = secret::random_token(32);
    let csrf = secret::random_token(24);
    repo::insert_session(
        &mut tx,
        &secret::token_hash(&token),
        &member.id,
        &csrf,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    staff::audit(
        &mut tx,
        &format!("member:{}", member.id),
        "member.login",
        &format!("member:{}", member.id),
        "h5 code",
        now,
    )
    .await?;
    commit(tx).await?;
    Ok((
        token,
        MemberSession {
            member_id: member.id,
            csrf_token: csrf,
        },
    ))
}

/// The session a cookie's token opens; `None` when unknown, expired, or the
/// member was erased.
pub async fn session(app: &Regulars, token: &str) -> AppResult<Option<MemberSession>> {
    let mut conn = app.db.reader().await?;
    Ok(
        match repo::session_by_hash(&mut conn, &secret::token_hash(token)).await? {
            Some(s) if s.expires_at > now_ms() => Some(MemberSession {
                member_id: s.member_id,
                csrf_token: s.csrf_token,
            }),
            _ => None,
        },
    )
}

pub async fn sign_out(app: &Regulars, token: &str) -> AppResult<()> {
    let mut conn = app.db.writer().await?;
    repo::delete_session(&mut conn, &secret::token_hash(token)).await?;
    Ok(())
}

/// One line of the message log as HQ reads it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedMessage {
    pub at: String,
    pub channel: String,
    pub purpose: String,
    /// Masked: `138****8000`.
    pub recipient: String,
    pub body: String,
    /// `logged` (no gateway: the text is only here), `sent`, `failed`.
    pub delivery: String,
}

/// The newest messages to members (hq_admin; reading it is audited, since
/// it may hold sign-in codes).
pub async fn message_log(
    app: &Regulars,
    caller: &Principal,
    limit: i64,
) -> AppResult<Vec<LoggedMessage>> {
    caller.check(Action::StaffManage, None)?;
    let rows = {
        let mut conn = app.db.reader().await?;
        repo::messages(&mut conn, limit.clamp(1, 500)).await?
    };
    let mut conn = app.db.writer().await?;
    staff::audit(
        &mut conn,
        &caller.actor,
        "message_log.read",
        "message_log",
        "",
        now_ms(),
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let body = app
                .keys
                .decrypt(message_slot(&r.id), &r.body_enc)
                .map_err(AppError::Invalid)?;
            Ok(LoggedMessage {
                at: super::ledger::rfc3339(app, r.created_at),
                channel: r.channel,
                purpose: r.purpose,
                recipient: r.recipient,
                body,
                delivery: r.delivery,
            })
        })
        .collect()
}
