//! Message channels behind one adapter trait: SMS and WeChat template
//! messages through configurable HTTP gateways (signed JSON), e-mail over
//! SMTP (plain text and HTML), and the member's H5 inbox. HQ configures the
//! providers (`/api/v1/campaign-channels`); their secrets are encrypted at
//! rest and never shown again.
//!
//! Every message carries the send's id: the gateways get it as
//! `Idempotency-Key` (a retry after a crash or a time-out is the same
//! message to them), e-mail as its `Message-ID`, the inbox as a unique key.

use super::{AppError, AppResult, Regulars};
use base64::Engine;
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::{sign_webhook, DeliveryChannel};
use regulars_core::privacy::Slot;
use regulars_store::{campaign_sends as repo, Conn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub const SETTINGS_KEY: &str = "campaigns.channels";
/// What a stored secret reads as through the API.
pub const HIDDEN: &str = "(set)";

/// An HTTP gateway for SMS or WeChat template messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProvider {
    pub url: String,
    /// Signs every request (`Regulars-Signature`). Write-only: reads answer
    /// "(set)"; leave it out or send "(set)" to keep the stored one.
    #[serde(default)]
    pub secret: Option<String>,
    /// The provider's rate limit.
    #[serde(default = "fifty")]
    pub rate_per_second: u32,
    #[serde(default = "ten_seconds")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    Starttls,
    Tls,
}

/// An SMTP server for e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpProvider {
    pub host: String,
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// The sender, e.g. "蜀香会员 <members@example.com>".
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Write-only, like an HTTP provider's secret.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "starttls")]
    pub security: SmtpSecurity,
    #[serde(default = "twenty")]
    pub rate_per_second: u32,
}

/// HQ's channel providers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    #[serde(default)]
    pub sms: Option<HttpProvider>,
    #[serde(default)]
    pub wechat: Option<HttpProvider>,
    #[serde(default)]
    pub email: Option<SmtpProvider>,
    /// Where guests reach this server (unsubscribe links), e.g.
    /// "https://crm.example.com".
    #[serde(default)]
    pub public_url: Option<String>,
}

fn fifty() -> u32 {
    50
}
fn twenty() -> u32 {
    20
}
fn ten_seconds() -> u64 {
    10_000
}
fn smtp_port() -> u16 {
    25
}
fn starttls() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AppError {
    regulars_core::DomainError::invalid(field, reason.into()).into()
}

impl ChannelSettings {
    pub fn validate(&self) -> AppResult<()> {
        for (field, p) in [("sms", &self.sms), ("wechat", &self.wechat)] {
            if let Some(p) = p {
                let url = reqwest::Url::parse(&p.url)
                    .map_err(|_| invalid(field, "url must be an absolute http(s) address"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid(field, "url must be http or https"));
                }
                if !(1..=10_000).contains(&p.rate_per_second) {
                    return Err(invalid(field, "rate_per_second must be 1–10,000"));
                }
                if !(100..=60_000).contains(&p.timeout_ms) {
                    return Err(invalid(field, "timeout_ms must be 100–60,000"));
                }
            }
        }
        if let Some(e) = &self.email {
            if e.host.trim().is_empty() {
                return Err(invalid("email", "host is required"));
            }
            e.from
                .parse::<lettre::message::Mailbox>()
                .map_err(|_| invalid("email", "from must be an address, e.g. Name <a@b.cn>"))?;
            if !(1..=10_000).contains(&e.rate_per_second) {
                return Err(invalid("email", "rate_per_second must be 1–10,000"));
            }
        }
        if let Some(url) = &self.public_url {
            reqwest::Url::parse(url)
                .map_err(|_| invalid("public_url", "must be an absolute address"))?;
        }
        Ok(())
    }

    /// Whether `channel` can be used at all.
    pub fn configured(&self, channel: DeliveryChannel) -> bool {
        match channel {
            DeliveryChannel::Sms => self.sms.is_some(),
            DeliveryChannel::Wechat => self.wechat.is_some(),
            DeliveryChannel::Email => self.email.is_some(),
            DeliveryChannel::Inbox => true,
        }
    }

    /// The settings as the API shows them: secrets hidden.
    pub fn redacted(mut self) -> ChannelSettings {
        for p in [&mut self.sms, &mut self.wechat].into_iter().flatten() {
            if p.secret.is_some() {
                p.secret = Some(HIDDEN.into());
            }
        }
        if let Some(e) = &mut self.email {
            if e.password.is_some() {
                e.password = Some(HIDDEN.into());
            }
        }
        self
    }
}

fn secret_slot(name: &str) -> Slot<'_> {
    Slot {
        table: "settings",
        column: SETTINGS_KEY,
        row_id: name,
    }
}

fn seal(app: &Regulars, name: &str, plain: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(app.keys.encrypt(secret_slot(name), plain))
}

fn unseal(app: &Regulars, name: &str, stored: &str) -> AppResult<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .map_err(|_| corrupt("a provider secret is unreadable"))?;
    app.keys
        .decrypt(secret_slot(name), &bytes)
        .map_err(|_| corrupt("a provider secret does not decrypt with this key"))
}

fn corrupt(what: &str) -> AppError {
    AppError::Store(regulars_store::StoreError::Corrupt(format!(
        "{SETTINGS_KEY}: {what}"
    )))
}

/// The stored settings with secrets decrypted (for sending only).
pub async fn load(app: &Regulars, conn: &mut Conn) -> AppResult<ChannelSettings> {
    let Some(json) = regulars_store::staff::get_setting(conn, SETTINGS_KEY).await? else {
        return Ok(ChannelSettings::default());
    };
    let mut s: ChannelSettings =
        serde_json::from_str(&json).map_err(|e| corrupt(&e.to_string()))?;
    for (name, p) in [("sms", &mut s.sms), ("wechat", &mut s.wechat)] {
        if let Some(p) = p {
            if let Some(sealed) = &p.secret {
                p.secret = Some(unseal(app, name, sealed)?);
            }
        }
    }
    if let Some(e) = &mut s.email {
        if let Some(sealed) = &e.password {
            e.password = Some(unseal(app, "email", sealed)?);
        }
    }
    Ok(s)
}

/// The settings to store: new secrets sealed, "(set)" or absent keeps the
/// one stored before.
pub fn sealed_for_storage(
    app: &Regulars,
    mut input: ChannelSettings,
    before: &ChannelSettings,
) -> ChannelSettings {
    let keep = |new: &Option<String>, old: Option<&String>| match new.as_deref() {
        None | Some(HIDDEN) => old.cloned(),
        Some(_) => None,
    };
    for (name, p, old) in [
        ("sms", &mut input.sms, before.sms.as_ref()),
        ("wechat", &mut input.wechat, before.wechat.as_ref()),
    ] {
        if let Some(p) = p {
            let old_secret = old.and_then(|o| o.secret.as_ref());
            p.secret = match keep(&p.secret, old_secret) {
                Some(old_plain) => Some(seal(app, name, &old_plain)),
                None => p.secret.as_deref().map(|s| seal(app, name, s)),
            };
        }
    }
    if let Some(e) = &mut input.email {
        let old_password = before.email.as_ref().and_then(|o| o.password.as_ref());
        e.password = match keep(&e.password, old_password) {
            Some(old_plain) => Some(seal(app, "email", &old_plain)),
            None => e.password.as_deref().map(|s| seal(app, "email", s)),
        };
    }
    input
}

pub async fn settings(app: &Regulars, caller: &Principal) -> AppResult<ChannelSettings> {
    caller.check(Action::CampaignRead, None)?;
    let mut conn = app.db.reader().await?;
    Ok(load(app, &mut conn).await?.redacted())
}

pub async fn set_settings(
    app: &Regulars,
    caller: &Principal,
    input: ChannelSettings,
) -> AppResult<ChannelSettings> {
    caller.check(Action::CampaignApprove, None)?;
    input.validate()?;
    let mut tx = app.db.begin().await?;
    let before = load(app, &mut tx).await?;
    let stored = sealed_for_storage(app, input, &before);
    let json = serde_json::to_string(&stored)
        .map_err(|e| AppError::unprocessable("invalid_settings", e.to_string()))?;
    regulars_store::staff::put_setting(&mut tx, SETTINGS_KEY, &json).await?;
    let at = regulars_store::now_ms();
    // The audit keeps which providers are set, never a secret.
    let summary = format!(
        "sms={} wechat={} email={}",
        stored.sms.as_ref().map(|p| p.url.as_str()).unwrap_or("-"),
        stored
            .wechat
            .as_ref()
            .map(|p| p.url.as_str())
            .unwrap_or("-"),
        stored
            .email
            .as_ref()
            .map(|p| p.host.as_str())
            .unwrap_or("-"),
    );
    regulars_store::staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.channels",
        SETTINGS_KEY,
        &summary,
        at,
    )
    .await?;
    regulars_store::commit(tx).await?;
    let mut conn = app.db.reader().await?;
    Ok(load(app, &mut conn).await?.redacted())
}

// ------------------------------------------------------------- sending

/// One message, rendered, to one member.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub send_id: String,
    pub campaign_id: String,
    pub member_id: String,
    pub channel: DeliveryChannel,
    /// Phone (E.164) for SMS and WeChat, the address for e-mail.
    pub to: String,
    pub variant: String,
    pub text: String,
    pub variables: BTreeMap<String, String>,
    pub unsubscribe_url: String,
}

/// Why a message did not go.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelError {
    /// Worth trying again (time-out, provider busy or down); `after` when
    /// the provider said when.
    #[error("temporary: {reason}")]
    Temporary {
        reason: String,
        after: Option<Duration>,
    },
    /// The provider refused the message itself; retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
}

/// What a channel does: deliver one message, answering the provider's
/// reference for it.
pub trait ChannelAdapter {
    fn deliver(
        &self,
        message: &OutgoingMessage,
    ) -> impl std::future::Future<Output = Result<Option<String>, ChannelError>> + Send;
}

/// Keeps a provider's rate limit: each message waits for its slot.
pub struct Pacer {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn per_second(rate: u32) -> Pacer {
        Pacer {
            gap: Duration::from_secs(1) / rate.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.gap;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// SMS or WeChat through an HTTP gateway: a signed JSON POST.
pub struct HttpGateway {
    client: reqwest::Client,
    provider: HttpProvider,
    pacer: Pacer,
}

impl HttpGateway {
    pub fn new(provider: HttpProvider) -> AppResult<HttpGateway> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(provider.timeout_ms))
            .build()
            .map_err(|e| AppError::unprocessable("channel_setup", format!("http client: {e}")))?;
        Ok(HttpGateway {
            client,
            pacer: Pacer::per_second(provider.rate_per_second),
            provider,
        })
    }
}

impl ChannelAdapter for HttpGateway {
    async fn deliver(&self, m: &OutgoingMessage) -> Result<Option<String>, ChannelError> {
        self.pacer.wait().await;
        let body = serde_json::json!({
            "id": m.send_id,
            "channel": m.channel.as_str(),
            "to": m.to,
            "member_id": m.member_id,
            "campaign_id": m.campaign_id,
            "template": m.variant,
            "text": m.text,
            "variables": m.variables,
            "unsubscribe_url": m.unsubscribe_url,
        })
        .to_string();
        let mut request = self
            .client
            .post(&self.provider.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &m.send_id);
        if let Some(secret) = &self.provider.secret {
            let now = chrono::Utc::now().timestamp();
            request = request.header(
                "regulars-signature",
                sign_webhook(secret.as_bytes(), now, body.as_bytes()),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ChannelError::Temporary {
                reason: format!("{} gateway: {e}", m.channel.as_str()),
                after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            return Ok(answer["message_id"].as_str().map(str::to_string));
        }
        let after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let reason = format!("{} gateway answered {status}: {text}", m.channel.as_str());
        if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Err(ChannelError::Temporary { reason, after })
        } else {
            Err(ChannelError::Refused(reason))
        }
    }
}

/// E-mail over SMTP: a plain-text and an HTML part, the send id as
/// `Message-ID`, a `List-Unsubscribe` header.
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    pacer: Pacer,
}

impl SmtpMailer {
    pub fn new(p: &SmtpProvider) -> AppResult<SmtpMailer> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let failed = |e: lettre::transport::smtp::Error| {
            AppError::unprocessable("channel_setup", format!("smtp {}: {e}", p.host))
        };
        let mut builder = match p.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&p.host),
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&p.host).map_err(failed)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&p.host).map_err(failed)?
            }
        }
        .port(p.port)
        .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&p.username, &p.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from: p
                .from
                .parse()
                .map_err(|_| invalid("email", "from must be an address"))?,
            pacer: Pacer::per_second(p.rate_per_second),
        })
    }
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.trim_matches(['<', '>']).to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `text` safe inside HTML (askama's escaper, as the console pages use).
fn html_escape(text: &str) -> String {
    askama::MarkupDisplay::new_unsafe(text, askama::Html).to_string()
}

/// The subject: the message's first line, at most 60 characters.
fn subject_of(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect()
}

impl ChannelAdapter for SmtpMailer {
    async fn deliver(&self, m: &OutgoingMessage) -> Result<Option<String>, ChannelError> {
        use lettre::message::MultiPart;
        use lettre::AsyncTransport;
        self.pacer.wait().await;
        let to: lettre::message::Mailbox = m.to.parse().map_err(|_| {
            ChannelError::Refused("the member's e-mail address is not valid".into())
        })?;
        let message_id = format!("<{}@regulars>", m.send_id);
        let plain = format!("{}\n\n退订 / Unsubscribe: {}\n", m.text, m.unsubscribe_url);
        let html = format!(
            "<!doctype html><html><body><p>{}</p><p style=\"color:#888;font-size:12px\">\
             <a href=\"{}\">退订 / Unsubscribe</a></p></body></html>",
            html_escape(&m.text).replace('\n', "<br>"),
            html_escape(&m.unsubscribe_url)
        );
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject_of(&m.text))
            .message_id(Some(message_id.clone()))
            .header(ListUnsubscribe(m.unsubscribe_url.clone()))
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| ChannelError::Refused(format!("the e-mail cannot be built: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(Some(message_id)),
            Err(e) if e.is_permanent() => Err(ChannelError::Refused(format!("smtp: {e}"))),
            Err(e) => Err(ChannelError::Temporary {
                reason: format!("smtp: {e}"),
                after: None,
            }),
        }
    }
}

/// The member's H5 inbox: a row in the database.
pub struct Inbox {
    pub app: Regulars,
}

impl ChannelAdapter for Inbox {
    async fn deliver(&self, m: &OutgoingMessage) -> Result<Option<String>, ChannelError> {
        let temporary = |e: regulars_store::StoreError| ChannelError::Temporary {
            reason: format!("inbox: {e}"),
            after: None,
        };
        let mut conn = self.app.db.writer().await.map_err(temporary)?;
        repo::put_in_inbox(
            &mut conn,
            &m.send_id,
            &m.member_id,
            &m.send_id,
            &m.campaign_id,
            &m.text,
            regulars_store::now_ms(),
        )
        .await
        .map_err(temporary)?;
        Ok(Some(m.send_id.clone()))
    }
}

/// Every configured channel, ready to send.
pub struct Channels {
    pub settings: ChannelSettings,
    sms: Option<HttpGateway>,
    wechat: Option<HttpGateway>,
    email: Option<SmtpMailer>,
    inbox: Inbox,
}

impl Channels {
    pub fn open(app: &Regulars, settings: ChannelSettings) -> AppResult<Channels> {
        Ok(Channels {
            sms: settings.sms.clone().map(HttpGateway::new).transpose()?,
            wechat: settings.wechat.clone().map(HttpGateway::new).transpose()?,
            email: settings.email.as_ref().map(SmtpMailer::new).transpose()?,
            inbox: Inbox { app: app.clone() },
            settings,
        })
    }

    pub async fn deliver(&self, m: &OutgoingMessage) -> Result<Option<String>, ChannelError> {
        let missing =
            || ChannelError::Refused(format!("no {} provider is set up", m.channel.as_str()));
        match m.channel {
            DeliveryChannel::Sms => self.sms.as_ref().ok_or_else(missing)?.deliver(m).await,
            DeliveryChannel::Wechat => self.wechat.as_ref().ok_or_else(missing)?.deliver(m).await,
            DeliveryChannel::Email => self.email.as_ref().ok_or_else(missing)?.deliver(m).await,
            DeliveryChannel::Inbox => self.inbox.deliver(m).await,
        }
    }
}
