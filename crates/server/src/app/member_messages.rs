//! The member's side of campaign messages: the H5 inbox, the clock and
//! language messages follow, and the marketing opt-out, recorded at once by
//! the signed link in every message or by an SMS reply keyword.

use super::channels::{self};
use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::verify_webhook;
use regulars_core::member::ConsentChannel;
use regulars_core::phone::Phone;
use regulars_store::campaign_sends as repo;
use regulars_store::{commit, members, now_ms, Conn};
use serde::{Deserialize, Serialize};

/// A message in the member's inbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxMessage {
    pub id: String,
    pub campaign_id: String,
    pub body: String,
    pub created_at: String,
    pub read_at: Option<String>,
}

/// The member (not erased) and their home store, for the caller's scope.
async fn member_scope(conn: &mut Conn, member_id: &str) -> AppResult<Option<String>> {
    match members::get_member(conn, member_id).await? {
        Some(m) if m.erased_at.is_none() => Ok(m.home_store_code),
        _ => Err(AppError::NotFound { what: "member" }),
    }
}

pub async fn inbox(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
) -> AppResult<Vec<InboxMessage>> {
    let mut conn = app.db.reader().await?;
    let store = member_scope(&mut conn, member_id).await?;
    caller.check(Action::MemberRead, store.as_deref())?;
    let time = |ms: i64| super::ledger::rfc3339(app, ms);
    Ok(repo::inbox_of(&mut conn, member_id)
        .await?
        .into_iter()
        .map(|m| InboxMessage {
            id: m.id,
            campaign_id: m.campaign_id,
            body: m.body,
            created_at: time(m.created_at),
            read_at: m.read_at.map(time),
        })
        .collect())
}

/// The member opened a message (what the campaign's results count as opened).
pub async fn mark_read(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    message_id: &str,
) -> AppResult<()> {
    let mut tx = app.db.begin().await?;
    let store = member_scope(&mut tx, member_id).await?;
    caller.check(Action::MemberUpdate, store.as_deref())?;
    if !repo::mark_read(&mut tx, member_id, message_id, now_ms()).await? {
        return Err(AppError::NotFound { what: "message" });
    }
    commit(tx).await?;
    Ok(())
}

/// The clock quiet hours follow and the language messages are written in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagingPreferences {
    /// IANA time zone, e.g. "Asia/Shanghai", "America/Vancouver"; the
    /// chain's when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// "zh" or "en"; Chinese when absent.
    #[serde(default)]
    pub language: Option<String>,
}

pub async fn set_preferences(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    input: MessagingPreferences,
) -> AppResult<MessagingPreferences> {
    if let Some(zone) = &input.time_zone {
        zone.parse::<chrono_tz::Tz>().map_err(|_| {
            regulars_core::DomainError::invalid(
                "time_zone",
                format!("{zone} is not an IANA time zone such as Asia/Shanghai"),
            )
        })?;
    }
    if let Some(lang) = &input.language {
        if !matches!(lang.as_str(), "zh" | "en") {
            return Err(regulars_core::DomainError::invalid("language", "zh or en").into());
        }
    }
    let mut tx = app.db.begin().await?;
    let store = member_scope(&mut tx, member_id).await?;
    caller.check(Action::MemberUpdate, store.as_deref())?;
    repo::set_locale(
        &mut tx,
        member_id,
        input.time_zone.as_deref(),
        input.language.as_deref(),
    )
    .await?;
    commit(tx).await?;
    Ok(input)
}

/// Record the opt-out: no campaign reaches the member on any channel from
/// now on, and the consent history says when and how.
async fn opt_out(conn: &mut Conn, member_id: &str, source: &str) -> AppResult<bool> {
    let at = now_ms();
    if !repo::opt_out(conn, member_id, at).await? {
        return Ok(false);
    }
    for channel in ConsentChannel::ALL {
        members::set_consent(
            conn,
            member_id,
            channel.as_str(),
            false,
            source,
            "member",
            at,
        )
        .await?;
    }
    Ok(true)
}

/// The member's one-click unsubscribe link: signed, so nobody can opt out
/// someone else.
pub fn unsubscribe_url(app: &Regulars, base: &str, member_id: &str) -> String {
    format!(
        "{}/u/{member_id}/{}",
        base.trim_end_matches('/'),
        app.signature(UNSUBSCRIBE, member_id, 16)
    )
}

/// The signature domain of unsubscribe links.
const UNSUBSCRIBE: &str = "unsubscribe";

/// Whether `/u/{member}/{signature}` is a link we made.
pub fn check_unsubscribe_link(app: &Regulars, member_id: &str, signature: &str) -> AppResult<()> {
    if app.signature_matches(UNSUBSCRIBE, member_id, signature) {
        Ok(())
    } else {
        Err(AppError::BadLink {
            expired: false,
            message: "this unsubscribe link is not valid".into(),
        })
    }
}

/// The one-click link in every message (`/u/{member}/{signature}`).
pub async fn unsubscribe_by_link(
    app: &Regulars,
    member_id: &str,
    signature: &str,
) -> AppResult<()> {
    check_unsubscribe_link(app, member_id, signature)?;
    let mut tx = app.db.begin().await?;
    if !opt_out(&mut tx, member_id, "unsubscribe_link").await? {
        return Err(AppError::NotFound { what: "member" });
    }
    commit(tx).await?;
    Ok(())
}

/// Replies that mean "stop sending me marketing".
const STOP_WORDS: [&str; 6] = ["TD", "T", "退订", "STOP", "UNSUBSCRIBE", "取消"];

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct InboundSms {
    pub phone: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboundAnswer {
    /// "opted_out", or "none" when the reply was not a stop word or the
    /// number is no member's.
    pub action: String,
}

/// A reply the SMS gateway forwards, signed with the gateway's secret.
pub async fn inbound_sms(
    app: &Regulars,
    signature: Option<&str>,
    body: &[u8],
) -> AppResult<InboundAnswer> {
    let settings = {
        let mut conn = app.db.reader().await?;
        channels::load(app, &mut conn).await?
    };
    let secret = settings
        .sms
        .and_then(|p| p.secret)
        .ok_or(AppError::Unauthorized("no SMS gateway secret is set up"))?;
    verify_webhook(
        secret.as_bytes(),
        signature.unwrap_or_default(),
        body,
        chrono::Utc::now().timestamp(),
        300,
    )
    .map_err(|_| AppError::Unauthorized("the Regulars-Signature is missing or wrong"))?;
    let sms: InboundSms = serde_json::from_slice(body).map_err(|e| {
        AppError::unprocessable("invalid_body", format!("expected {{phone, text}}: {e}"))
    })?;
    let word = sms.text.trim().to_uppercase();
    if !STOP_WORDS.contains(&word.as_str()) {
        return Ok(InboundAnswer {
            action: "none".into(),
        });
    }
    let phone = Phone::parse(&sms.phone)?;
    let mut tx = app.db.begin().await?;
    let found = match members::find_by_phone_index(&mut tx, &app.phone_index(&phone)).await? {
        Some(m) if m.erased_at.is_none() => opt_out(&mut tx, &m.id, "sms_keyword").await?,
        _ => false,
    };
    commit(tx).await?;
    Ok(InboundAnswer {
        action: if found { "opted_out" } else { "none" }.into(),
    })
}
