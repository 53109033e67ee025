//! Members: registration, lookup, the profile staff see, tags and consents.
//!
//! Personal data (phone, name, e-mail, full birthday, notes, anniversaries) is
//! encrypted here before it reaches the store and decrypted only for the view;
//! callers without the reveal permission see masked values only.

use super::{AppError, AppResult, Regulars};
use chrono::{Datelike, NaiveDate, TimeZone};
use rand::Rng;
use regulars_core::access::{Action, Principal};
use regulars_core::member::{
    parse_birthday, parse_email, parse_name, parse_note, parse_tag, AgeGroup, Anniversary,
    ConsentChannel, Gender, SourceChannel, TasteProfile,
};
use regulars_core::phone::Phone;
use regulars_core::privacy::Slot;
use regulars_core::tier::Tier;
use regulars_core::DomainError;
use regulars_store::members::{self as repo, MemberFilter, MemberPatch, MemberRow, NewMemberRow};
use regulars_store::{commit, now_ms, staff, StoreError, Tx};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

const TABLE: &str = "members";

/// Consents given at registration.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    pub sms: Option<bool>,
    pub email: Option<bool>,
    pub wechat: Option<bool>,
}

impl ConsentInput {
    fn decisions(&self) -> Vec<(ConsentChannel, bool)> {
        [
            (ConsentChannel::Sms, self.sms),
            (ConsentChannel::Email, self.email),
            (ConsentChannel::Wechat, self.wechat),
        ]
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, v)))
        .collect()
    }
}

/// `POST /api/v1/members`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMember {
    /// Any common writing: `13800138000`, `+86 138 0013 8000`, `86-138-0013-8000`.
    pub phone: String,
    pub name: Option<String>,
    pub gender: Option<Gender>,
    /// `YYYY-MM-DD`
    pub birthday: Option<String>,
    pub email: Option<String>,
    pub home_store: Option<String>,
    pub city: Option<String>,
    pub age_group: Option<AgeGroup>,
    /// Where the guest signed up; defaults from the caller (POS key → `pos`).
    pub source: Option<SourceChannel>,
    /// Another member's referral code.
    pub referrer_code: Option<String>,
    pub consents: Option<ConsentInput>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub taste: Option<TasteProfile>,
    pub notes: Option<String>,
    #[serde(default)]
    pub anniversaries: Vec<Anniversary>,
}

/// `PATCH /api/v1/members/{id}`: fields present are changed, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Gender>)]
    pub gender: Option<Option<Gender>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub birthday: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub home_store: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AgeGroup>)]
    pub age_group: Option<Option<AgeGroup>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub family_group: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub account_manager: Option<Option<String>>,
    pub taste: Option<TasteProfile>,
    pub anniversaries: Option<Vec<Anniversary>>,
}

/// Tell "absent" (`None`) from "null" (`Some(None)`) in a PATCH body.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub granted: bool,
    pub source: String,
    /// RFC 3339
    pub changed_at: String,
}

/// Unmasked personal data; only for roles that may reveal it, and audited.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalData {
    pub phone: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub notes: Option<String>,
    pub anniversaries: Vec<Anniversary>,
}

/// A member as staff and POS see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    /// Printed on the member card; the POS can search by it.
    pub member_code: String,
    /// `138****8000`
    pub phone_masked: String,
    pub tier: Tier,
    pub points_balance: i64,
    /// `王**`
    pub name_masked: Option<String>,
    pub gender: Option<String>,
    /// Month and day of the birthday, `MM-DD` (the year stays encrypted).
    pub birthday_month_day: Option<String>,
    pub age_group: Option<String>,
    pub city: Option<String>,
    pub home_store: Option<String>,
    pub source_channel: String,
    pub referral_code: String,
    pub referrer_id: Option<String>,
    pub family_group: Option<String>,
    pub account_manager: Option<String>,
    pub tags: Vec<String>,
    pub consents: BTreeMap<String, ConsentView>,
    pub taste: TasteProfile,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal: Option<PersonalData>,
}

/// One page of the member list.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    pub members: Vec<MemberView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// `GET /api/v1/members` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    /// Home store code.
    pub store: Option<String>,
    pub tier: Option<Tier>,
    pub tag: Option<String>,
    /// Exact phone (any writing); finds at most one member.
    pub phone: Option<String>,
    /// Exact member code.
    pub member_code: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// `next_after` of the previous page.
    pub after: Option<String>,
}

fn slot<'a>(id: &'a str, column: &'a str) -> Slot<'a> {
    Slot {
        table: TABLE,
        column,
        row_id: id,
    }
}

fn store_err(e: StoreError) -> AppError {
    AppError::Store(e)
}

fn rfc3339(app: &Regulars, ms: i64) -> String {
    app.timezone
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// `王小明` → `王**`; the first character stays, the rest become stars.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => {
            let rest = chars.count();
            format!("{first}{}", "*".repeat(rest))
        }
        None => String::new(),
    }
}

/// Where a consent was given, as recorded with it.
fn consent_source(caller: &Principal) -> String {
    match &caller.store {
        Some(store) => format!("{}@{}", caller.role, store),
        None => caller.role.to_string(),
    }
}

fn default_source(caller: &Principal) -> SourceChannel {
    match caller.role {
        regulars_core::access::Role::Pos => SourceChannel::Pos,
        _ => SourceChannel::Console,
    }
}

fn random_member_code() -> String {
    // 10 digits, never starting with 0, so it survives spreadsheets.
    let n: u64 = rand::thread_rng().gen_range(1_000_000_000..10_000_000_000);
    n.to_string()
}

fn random_referral_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..7)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Regulars {
    /// The blind index of a phone number, the only form in which it is searched.
    pub fn phone_index(&self, phone: &Phone) -> Vec<u8> {
        self.keys.blind_index("phone", phone.e164_str())
    }

    fn seal(&self, id: &str, column: &str, value: Option<&str>) -> Option<Vec<u8>> {
        value.map(|v| self.keys.encrypt(slot(id, column), v))
    }

    pub(crate) fn open(
        &self,
        id: &str,
        column: &str,
        value: Option<&[u8]>,
    ) -> AppResult<Option<String>> {
        match value {
            Some(bytes) => Ok(Some(self.keys.decrypt(slot(id, column), bytes).map_err(
                |e| {
                    tracing::error!(member = id, column, "cannot decrypt personal data");
                    AppError::Invalid(e)
                },
            )?)),
            None => Ok(None),
        }
    }
}

/// Validated registration input, ready to be written.
struct Registration {
    row: NewMemberRow,
    consents: Vec<(ConsentChannel, bool)>,
    tags: Vec<String>,
}

fn prepare(app: &Regulars, caller: &Principal, input: CreateMember) -> AppResult<Registration> {
    let sealed = seal_member(
        app,
        caller,
        input,
        uuid::Uuid::now_v7().to_string(),
        now_ms(),
    )?;
    Ok(Registration {
        row: sealed.row,
        consents: sealed.consents,
        tags: sealed.tags,
    })
}

/// A registration validated and encrypted, not yet written: what
/// [`seal_member`] makes for bulk loaders that write rows themselves.
#[derive(Debug, Clone)]
pub struct SealedMember {
    /// The member row, personal data encrypted under the row's id.
    /// `referrer_id` still holds the referrer *code* as given (unresolved);
    /// `city` is empty unless the input named one; `member_code` and
    /// `referral_code` are random draws the writer must keep unique.
    pub row: NewMemberRow,
    /// Consent decisions given at registration.
    pub consents: Vec<(ConsentChannel, bool)>,
    /// Tags, validated.
    pub tags: Vec<String>,
    /// Where the consents were given (`role` or `role@store` of the caller),
    /// as the normal path records it.
    pub consent_source: String,
}

/// Validate a registration and encrypt its personal data exactly as
/// [`create_member`] does (phone blind index, AES-GCM columns bound to
/// `id`), without touching the database. `id` is the row's id (it is part of
/// every ciphertext's associated data, so it cannot change afterwards) and
/// `created_at` its creation time in Unix ms. The caller checks permissions.
pub fn seal_member(
    app: &Regulars,
    caller: &Principal,
    input: CreateMember,
    id: String,
    created_at: i64,
) -> AppResult<SealedMember> {
    let today = app.today();
    let phone = Phone::parse(&input.phone)?;
    let name = input.name.as_deref().map(parse_name).transpose()?;
    let birthday = input
        .birthday
        .as_deref()
        .map(|b| parse_birthday("birthday", b, today))
        .transpose()?;
    let email = input.email.as_deref().map(parse_email).transpose()?;
    let city = input
        .city
        .as_deref()
        .map(|c| regulars_core::chain::parse_name("city", c))
        .transpose()?;
    let home_store = input
        .home_store
        .as_deref()
        .map(|s| regulars_core::chain::parse_code("home_store", s))
        .transpose()?;
    let notes = input
        .notes
        .as_deref()
        .map(|n| parse_note("notes", n))
        .transpose()?;
    let taste = input.taste.unwrap_or_default().validate()?;
    let anniversaries = input
        .anniversaries
        .into_iter()
        .map(|a| a.validate(today))
        .collect::<Result<Vec<_>, DomainError>>()?;
    let tags = input
        .tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>, DomainError>>()?;
    let age_group = input
        .age_group
        .or_else(|| birthday.map(|b| AgeGroup::of(b, today)));

    let birthday_text = birthday.map(|b| b.format("%Y-%m-%d").to_string());
    let anniversaries_json = if anniversaries.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&anniversaries).expect("anniversaries serialise"))
    };
    let row = NewMemberRow {
        member_code: random_member_code(),
        phone_index: app.phone_index(&phone),
        phone_enc: app.keys.encrypt(slot(&id, "phone"), phone.e164_str()),
        name_enc: app.seal(&id, "name", name.as_deref()),
        email_enc: app.seal(&id, "email", email.as_deref()),
        birthday_enc: app.seal(&id, "birthday", birthday_text.as_deref()),
        notes_enc: app.seal(&id, "notes", notes.as_deref()),
        anniversaries_enc: app.seal(&id, "anniversaries", anniversaries_json.as_deref()),
        gender: input.gender.map(|g| g.as_str().to_string()),
        birth_month: birthday.map(|b| i64::from(b.month())),
        birth_day: birthday.map(|b| i64::from(b.day())),
        age_group: age_group.map(|g| g.as_str().to_string()),
        city,
        home_store_code: home_store,
        source_channel: input
            .source
            .unwrap_or_else(|| default_source(caller))
            .as_str()
            .to_string(),
        referral_code: random_referral_code(),
        referrer_id: input.referrer_code, // resolved to an id in `register`
        taste_json: serde_json::to_string(&taste).expect("taste serialises"),
        created_at,
        id,
    };
    Ok(SealedMember {
        row,
        consents: input.consents.unwrap_or_default().decisions(),
        tags,
        consent_source: consent_source(caller),
    })
}

/// Register a new member. `409 member_exists` when the phone (in any
/// writing) belongs to someone already.
pub async fn create_member(
    app: &Regulars,
    caller: &Principal,
    input: CreateMember,
) -> AppResult<MemberView> {
    caller.check(Action::MemberCreate, input.home_store.as_deref())?;
    let mut reg = prepare(app, caller, input)?;
    let mut tx = app.db.begin().await?;
    register(caller, &mut tx, &mut reg).await?;
    let view = fresh_view(app, &mut tx, &reg.row.id).await?;
    commit(tx).await?;
    Ok(view)
}

/// Write a prepared registration inside `tx` (shared with bulk imports).
async fn register(caller: &Principal, tx: &mut Tx, reg: &mut Registration) -> AppResult<()> {
    if let Some(store) = &reg.row.home_store_code {
        let home = regulars_store::chain::get_store(tx, store)
            .await?
            .ok_or_else(|| {
                AppError::unprocessable("unknown_store", format!("no store with code {store}"))
            })?;
        if reg.row.city.is_none() {
            reg.row.city = Some(home.city);
        }
    }
    if let Some(code) = reg.row.referrer_id.take() {
        let referrer = repo::find_by_referral_code(tx, code.trim()).await?;
        reg.row.referrer_id = Some(referrer.ok_or_else(|| {
            AppError::unprocessable("unknown_referral_code", "no member has that referral code")
        })?);
    }
    // Member and referral codes are random; on the rare collision draw again.
    let mut attempts = 0;
    loop {
        match repo::insert_member(tx, &reg.row).await {
            Ok(()) => break,
            Err(e) if e.is_conflict_on("phone_index") => {
                return Err(AppError::Conflict {
                    code: "member_exists",
                    message: "a member with this phone number already exists".into(),
                })
            }
            Err(e)
                if attempts < 5
                    && (e.is_conflict_on("member_code") || e.is_conflict_on("referral_code")) =>
            {
                attempts += 1;
                reg.row.member_code = random_member_code();
                reg.row.referral_code = random_referral_code();
            }
            Err(e) => return Err(store_err(e)),
        }
    }
    let now = reg.row.created_at;
    let source = consent_source(caller);
    for (channel, granted) in &reg.consents {
        repo::set_consent(
            tx,
            &reg.row.id,
            channel.as_str(),
            *granted,
            &source,
            &caller.actor,
            now,
        )
        .await?;
    }
    for tag in &reg.tags {
        repo::add_tag(tx, &reg.row.id, tag, &caller.actor, now).await?;
    }
    staff::audit(
        tx,
        &caller.actor,
        "member.create",
        &format!("member:{}", reg.row.id),
        "",
        now,
    )
    .await?;
    Ok(())
}

/// The member as it is now in `conn` (inside a transaction: with its changes).
async fn fresh_view(
    app: &Regulars,
    conn: &mut regulars_store::Conn,
    id: &str,
) -> AppResult<MemberView> {
    let row = load(conn, id).await?;
    view_in(app, conn, row, None).await
}

async fn load(conn: &mut regulars_store::Conn, id: &str) -> AppResult<MemberRow> {
    match repo::get_member(conn, id).await? {
        Some(row) if row.erased_at.is_none() => Ok(row),
        _ => Err(AppError::NotFound { what: "member" }),
    }
}

/// Build the view of a row; `reveal` carries the caller when the unmasked
/// personal data was asked for (already authorised; the reveal is audited).
async fn view_in(
    app: &Regulars,
    conn: &mut regulars_store::Conn,
    row: MemberRow,
    reveal: Option<&Principal>,
) -> AppResult<MemberView> {
    let tags = repo::tags_of(conn, &row.id).await?;
    let consents = repo::consents_of(conn, &row.id).await?;
    view_of(app, row, tags, consents, reveal)
}

fn view_of(
    app: &Regulars,
    row: MemberRow,
    tags: Vec<String>,
    consents: Vec<regulars_store::members::ConsentRow>,
    reveal: Option<&Principal>,
) -> AppResult<MemberView> {
    let id = row.id.as_str();
    let phone_text = app
        .open(id, "phone", row.phone_enc.as_deref())?
        .unwrap_or_default();
    let phone = Phone::parse(&phone_text)?;
    let name = app.open(id, "name", row.name_enc.as_deref())?;
    let personal = match reveal {
        Some(_) => Some(PersonalData {
            phone: phone.e164_str().to_string(),
            name: name.clone(),
            email: app.open(id, "email", row.email_enc.as_deref())?,
            birthday: app.open(id, "birthday", row.birthday_enc.as_deref())?,
            notes: app.open(id, "notes", row.notes_enc.as_deref())?,
            anniversaries: app
                .open(id, "anniversaries", row.anniversaries_enc.as_deref())?
                .map(|j| serde_json::from_str(&j).unwrap_or_default())
                .unwrap_or_default(),
        }),
        None => None,
    };
    let taste: TasteProfile = serde_json::from_str(&row.taste_json).unwrap_or_default();
    Ok(MemberView {
        member_code: row.member_code,
        phone_masked: phone.masked(),
        tier: Tier::parse(&row.tier).unwrap_or(Tier::Regular),
        points_balance: row.points_balance,
        name_masked: name.as_deref().map(mask_name),
        gender: row.gender,
        birthday_month_day: match (row.birth_month, row.birth_day) {
            (Some(m), Some(d)) => Some(format!("{m:02}-{d:02}")),
            _ => None,
        },
        age_group: row.age_group,
        city: row.city,
        home_store: row.home_store_code,
        source_channel: row.source_channel,
        referral_code: row.referral_code,
        referrer_id: row.referrer_id,
        family_group: row.family_group_id,
        account_manager: row.account_manager,
        tags,
        consents: consents
            .into_iter()
            .map(|c| {
                (
                    c.channel,
                    ConsentView {
                        granted: c.granted != 0,
                        source: c.source,
                        changed_at: rfc3339(app, c.changed_at),
                    },
                )
            })
            .collect(),
        taste,
        created_at: rfc3339(app, row.created_at),
        personal,
        id: row.id,
    })
}

/// Check and audit a reveal of personal data.
async fn authorise_reveal(app: &Regulars, caller: &Principal, member_id: &str) -> AppResult<()> {
    caller.check(Action::MemberRevealPii, None)?;
    let mut conn = app.db.writer().await?;
    staff::audit(
        &mut conn,
        &caller.actor,
        "member.reveal",
        &format!("member:{member_id}"),
        "phone,name,email,birthday,notes",
        now_ms(),
    )
    .await?;
    Ok(())
}

pub async fn get_member(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    reveal: bool,
) -> AppResult<MemberView> {
    caller.check(Action::MemberRead, None)?;
    let mut conn = app.db.reader().await?;
    let row = load(&mut conn, id).await?;
    if reveal {
        authorise_reveal(app, caller, id).await?;
    }
    view_in(app, &mut conn, row, reveal.then_some(caller)).await
}

/// Find a member by phone, in any writing of the number.
pub async fn lookup_by_phone(
    app: &Regulars,
    caller: &Principal,
    phone: &str,
) -> AppResult<MemberView> {
    caller.check(Action::MemberRead, None)?;
    let phone = Phone::parse(phone)?;
    let mut conn = app.db.reader().await?;
    match repo::find_by_phone_index(&mut conn, &app.phone_index(&phone)).await? {
        Some(row) if row.erased_at.is_none() => view_in(app, &mut conn, row, None).await,
        _ => Err(AppError::NotFound { what: "member" }),
    }
}

pub async fn list_members(
    app: &Regulars,
    caller: &Principal,
    query: MemberQuery,
) -> AppResult<MemberPage> {
    caller.check(Action::MemberList, query.store.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1 to 200").into());
    }
    let tag = query.tag.as_deref().map(parse_tag).transpose()?;
    let home_store = query
        .store
        .clone()
        .or_else(|| caller.store_scope().map(str::to_string));
    let mut conn = app.db.reader().await?;

    // Exact searches find at most one member, then the other filters apply.
    let exact = if let Some(phone) = &query.phone {
        let phone = Phone::parse(phone)?;
        Some(repo::find_by_phone_index(&mut conn, &app.phone_index(&phone)).await?)
    } else if let Some(code) = &query.member_code {
        Some(repo::find_by_member_code(&mut conn, code.trim()).await?)
    } else {
        None
    };
    let rows = match exact {
        Some(found) => {
            let mut rows: Vec<MemberRow> = found
                .into_iter()
                .filter(|r| r.erased_at.is_none())
                .collect();
            rows.retain(|r| home_store.is_none() || r.home_store_code == home_store);
            rows.retain(|r| query.tier.is_none_or(|t| r.tier == t.as_str()));
            if let Some(tag) = &tag {
                let mut kept = Vec::new();
                for r in rows {
                    if repo::tags_of(&mut conn, &r.id).await?.contains(tag) {
                        kept.push(r);
                    }
                }
                rows = kept;
            }
            rows
        }
        None => {
            repo::list_members(
                &mut conn,
                &MemberFilter {
                    home_store,
                    tier: query.tier.map(|t| t.as_str().to_string()),
                    tag,
                    after: query.after.clone(),
                    limit: limit + 1,
                },
            )
            .await?
        }
    };
    let has_more = rows.len() as i64 > limit;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows.into_iter().take(limit as usize) {
        members.push(view_in(app, &mut conn, row, None).await?);
    }
    let next_after = if has_more {
        members.last().map(|m| m.id.clone())
    } else {
        None
    };
    Ok(MemberPage {
        members,
        next_after,
    })
}

fn clear_or<T, U>(
    field: Option<Option<T>>,
    f: impl FnOnce(T) -> Result<U, DomainError>,
) -> Result<Option<Option<U>>, DomainError> {
    match field {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(v)) => f(v).map(|u| Some(Some(u))),
    }
}

pub async fn update_member(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: UpdateMember,
) -> AppResult<MemberView> {
    caller.check(Action::MemberUpdate, None)?;
    let today = app.today();
    let mut tx = app.db.begin().await?;
    let current = load(&mut tx, id).await?;
    if caller.role.is_store_scoped() {
        // Store staff change only their own store's members, and cannot move
        // a member to another store.
        caller.check(
            Action::MemberUpdate,
            Some(current.home_store_code.as_deref().unwrap_or("")),
        )?;
        if let Some(Some(target)) = &input.home_store {
            caller.check(Action::MemberUpdate, Some(target))?;
        }
    }
    let mut changed: Vec<&str> = Vec::new();
    let mut patch = MemberPatch::default();
    if let Some(name) = clear_or(input.name, |n| parse_name(&n))? {
        patch.name_enc = Some(app.seal(id, "name", name.as_deref()));
        changed.push("name");
    }
    if let Some(email) = clear_or(input.email, |e| parse_email(&e))? {
        patch.email_enc = Some(app.seal(id, "email", email.as_deref()));
        changed.push("email");
    }
    if let Some(birthday) = clear_or(input.birthday, |b| parse_birthday("birthday", &b, today))? {
        let text = birthday.map(|b: NaiveDate| b.format("%Y-%m-%d").to_string());
        patch.birthday_enc = Some(app.seal(id, "birthday", text.as_deref()));
        patch.birth_month = Some(birthday.map(|b| i64::from(b.month())));
        patch.birth_day = Some(birthday.map(|b| i64::from(b.day())));
        if input.age_group.is_none() {
            if let Some(b) = birthday {
                patch.age_group = Some(Some(AgeGroup::of(b, today).as_str().to_string()));
            }
        }
        changed.push("birthday");
    }
    if let Some(notes) = clear_or(input.notes, |n| parse_note("notes", &n))? {
        patch.notes_enc = Some(app.seal(id, "notes", notes.as_deref()));
        changed.push("notes");
    }
    if let Some(gender) = input.gender {
        patch.gender = Some(gender.map(|g| g.as_str().to_string()));
        changed.push("gender");
    }
    if let Some(age_group) = input.age_group {
        patch.age_group = Some(age_group.map(|g| g.as_str().to_string()));
        changed.push("age_group");
    }
    if let Some(city) = clear_or(input.city, |c| regulars_core::chain::parse_name("city", &c))? {
        patch.city = Some(city);
        changed.push("city");
    }
    if let Some(store) = clear_or(input.home_store, |s| {
        regulars_core::chain::parse_code("home_store", &s)
    })? {
        if let Some(code) = &store {
            if regulars_store::chain::get_store(&mut tx, code)
                .await?
                .is_none()
            {
                return Err(AppError::unprocessable(
                    "unknown_store",
                    format!("no store with code {code}"),
                ));
            }
        }
        patch.home_store_code = Some(store);
        changed.push("home_store");
    }
    if let Some(group) = clear_or(input.family_group, |g| parse_tag(&g))? {
        patch.family_group_id = Some(group);
        changed.push("family_group");
    }
    if let Some(manager) = clear_or(input.account_manager, |m| parse_tag(&m))? {
        patch.account_manager = Some(manager);
        changed.push("account_manager");
    }
    if let Some(taste) = input.taste {
        let taste = taste.validate()?;
        patch.taste_json = Some(serde_json::to_string(&taste).expect("taste serialises"));
        changed.push("taste");
    }
    if let Some(list) = input.anniversaries {
        let list = list
            .into_iter()
            .map(|a| a.validate(today))
            .collect::<Result<Vec<_>, DomainError>>()?;
        let json = (!list.is_empty()).then(|| serde_json::to_string(&list).expect("serialises"));
        patch.anniversaries_enc = Some(app.seal(id, "anniversaries", json.as_deref()));
        changed.push("anniversaries");
    }
    let now = now_ms();
    if !changed.is_empty() {
        repo::update_member(&mut tx, id, patch, now).await?;
        staff::audit(
            &mut tx,
            &caller.actor,
            "member.update",
            &format!("member:{id}"),
            &changed.join(","),
            now,
        )
        .await?;
    }
    let view = fresh_view(app, &mut tx, id).await?;
    commit(tx).await?;
    Ok(view)
}

pub async fn add_tag(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    tag: &str,
) -> AppResult<MemberView> {
    caller.check(Action::MemberTag, None)?;
    let tag = parse_tag(tag)?;
    let mut tx = app.db.begin().await?;
    load(&mut tx, id).await?;
    let now = now_ms();
    if repo::add_tag(&mut tx, id, &tag, &caller.actor, now).await? {
        staff::audit(
            &mut tx,
            &caller.actor,
            "member.tag.add",
            &format!("member:{id}"),
            &tag,
            now,
        )
        .await?;
    }
    let view = fresh_view(app, &mut tx, id).await?;
    commit(tx).await?;
    Ok(view)
}

pub async fn remove_tag(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    tag: &str,
) -> AppResult<MemberView> {
    caller.check(Action::MemberTag, None)?;
    let mut tx = app.db.begin().await?;
    load(&mut tx, id).await?;
    let now = now_ms();
    if !repo::remove_tag(&mut tx, id, tag).await? {
        return Err(AppError::NotFound { what: "tag" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "member.tag.remove",
        &format!("member:{id}"),
        tag,
        now,
    )
    .await?;
    let view = fresh_view(app, &mut tx, id).await?;
    commit(tx).await?;
    Ok(view)
}

/// `PUT /api/v1/members/{id}/consents`: the channels named change; the
/// others keep their state. `source` says where the guest decided.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConsents {
    pub sms: Option<bool>,
    pub email: Option<bool>,
    pub wechat: Option<bool>,
    /// e.g. `h5`, `paper_form`, `call_center`; defaults to the caller.
    pub source: Option<String>,
}

pub async fn set_consents(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: UpdateConsents,
) -> AppResult<MemberView> {
    caller.check(Action::MemberConsent, None)?;
    let source = match &input.source {
        Some(s) => parse_tag(s)?,
        None => consent_source(caller),
    };
    let decisions = ConsentInput {
        sms: input.sms,
        email: input.email,
        wechat: input.wechat,
    }
    .decisions();
    if decisions.is_empty() {
        return Err(
            DomainError::invalid("consents", "name at least one of sms, email, wechat").into(),
        );
    }
    let mut tx = app.db.begin().await?;
    load(&mut tx, id).await?;
    let now = now_ms();
    for (channel, granted) in &decisions {
        repo::set_consent(
            &mut tx,
            id,
            channel.as_str(),
            *granted,
            &source,
            &caller.actor,
            now,
        )
        .await?;
    }
    let detail: Vec<String> = decisions
        .iter()
        .map(|(c, g)| format!("{}={}", c.as_str(), g))
        .collect();
    staff::audit(
        &mut tx,
        &caller.actor,
        "member.consent",
        &format!("member:{id}"),
        &detail.join(","),
        now,
    )
    .await?;
    let view = fresh_view(app, &mut tx, id).await?;
    commit(tx).await?;
    Ok(view)
}

/// Register many members in one transaction: all or none. An invalid entry
/// fails the whole batch with its index in the message.
pub async fn create_members_batch(
    app: &Regulars,
    caller: &Principal,
    inputs: Vec<CreateMember>,
) -> AppResult<Vec<String>> {
    let mut regs = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        caller.check(Action::MemberCreate, input.home_store.as_deref())?;
        let reg = prepare(app, caller, input).map_err(|e| match e {
            AppError::Invalid(d) => {
                AppError::unprocessable("invalid_entry", format!("entry {}: {d}", i + 1))
            }
            other => other,
        })?;
        regs.push(reg);
    }
    let mut tx = app.db.begin().await?;
    let mut ids = Vec::with_capacity(regs.len());
    for reg in &mut regs {
        register(caller, &mut tx, reg).await?;
        ids.push(reg.row.id.clone());
    }
    commit(tx).await?;
    Ok(ids)
}

/// The member's page as a store-scoped role may open it: store staff open
/// only their own store's members (a member without a home store belongs to
/// HQ). Other roles open any member. `reveal` is audited as in [`get_member`].
pub async fn open_member(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    reveal: bool,
) -> AppResult<MemberView> {
    caller.check(Action::MemberRead, None)?;
    let mut conn = app.db.reader().await?;
    let row = load(&mut conn, id).await?;
    if caller.role.is_store_scoped() {
        caller.check(
            Action::MemberRead,
            Some(row.home_store_code.as_deref().unwrap_or("")),
        )?;
    }
    if reveal {
        authorise_reveal(app, caller, id).await?;
    }
    view_in(app, &mut conn, row, reveal.then_some(caller)).await
}

/// Most members a name search reads (names are encrypted: each is opened).
const NAME_SCAN_LIMIT: usize = 20_000;

/// Members whose name contains `name`, in the caller's scope, at most
/// `limit`. Names are stored encrypted, so this opens them one by one
/// (bounded by [`NAME_SCAN_LIMIT`]); the phone search is the fast path.
pub async fn search_by_name(
    app: &Regulars,
    caller: &Principal,
    name: &str,
    limit: usize,
) -> AppResult<Vec<MemberView>> {
    caller.check(Action::MemberList, None)?;
    let wanted = name.trim();
    if wanted.is_empty() {
        return Err(DomainError::invalid("name", "must not be empty").into());
    }
    let home_store = caller.store_scope().map(str::to_string);
    let mut conn = app.db.reader().await?;
    let mut found = Vec::new();
    let mut after = None;
    let mut scanned = 0;
    while found.len() < limit && scanned < NAME_SCAN_LIMIT {
        let rows = repo::list_members(
            &mut conn,
            &MemberFilter {
                home_store: home_store.clone(),
                tier: None,
                tag: None,
                after: after.clone(),
                limit: 500,
            },
        )
        .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        scanned += rows.len();
        for row in rows {
            let matches = app
                .open(&row.id, "name", row.name_enc.as_deref())?
                .is_some_and(|n| n.contains(wanted));
            if matches && found.len() < limit {
                found.push(view_in(app, &mut conn, row, None).await?);
            }
        }
    }
    Ok(found)
}

/// One of a member's orders as the member page lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOrderView {
    pub id: String,
    pub store_code: String,
    pub pos_order_id: String,
    pub channel: String,
    pub occurred_at: String,
    pub paid_fen: i64,
    pub refunded_fen: i64,
    pub points_earned: i64,
    pub points_reversed: i64,
}

/// A member's latest orders, newest first (same scope as [`open_member`]).
pub async fn member_orders(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    limit: i64,
) -> AppResult<Vec<MemberOrderView>> {
    caller.check(Action::MemberRead, None)?;
    let mut conn = app.db.reader().await?;
    let row = load(&mut conn, id).await?;
    if caller.role.is_store_scoped() {
        caller.check(
            Action::MemberRead,
            Some(row.home_store_code.as_deref().unwrap_or("")),
        )?;
    }
    Ok(
        regulars_store::orders::orders_of_member(&mut conn, id, limit.clamp(1, 200))
            .await?
            .into_iter()
            .map(|o| MemberOrderView {
                occurred_at: rfc3339(app, o.occurred_at),
                id: o.id,
                store_code: o.store_code,
                pos_order_id: o.pos_order_id,
                channel: o.channel,
                paid_fen: o.paid_fen,
                refunded_fen: o.refunded_fen,
                points_earned: o.points_earned,
                points_reversed: o.points_reversed,
            })
            .collect(),
    )
}

/// One audit entry about a member: who did what, when.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub at: String,
    /// `user:<username>` or `key:<id>`.
    pub actor: String,
    /// `member.reveal`, `member.update`, `points.adjust`, …
    pub action: String,
    pub detail: String,
}

/// Who looked at or changed this member, oldest first: for auditors and for
/// the roles that may reveal personal data (they see who else did).
pub async fn access_log(
    app: &Regulars,
    caller: &Principal,
    id: &str,
) -> AppResult<Vec<AccessEntry>> {
    if caller.check(Action::AuditRead, None).is_err() {
        caller.check(Action::MemberRevealPii, None)?;
    }
    let mut conn = app.db.reader().await?;
    Ok(staff::audit_of(&mut conn, &format!("member:{id}"))
        .await?
        .into_iter()
        .map(|a| AccessEntry {
            at: rfc3339(app, a.at),
            actor: a.actor,
            action: a.action,
            detail: a.detail,
        })
        .collect())
}
