//! Member rows. Personal data arrives here already encrypted (`*_enc` columns)
//! and the phone only as its blind index: this module never sees plaintext.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub id: String,
    pub member_code: String,
    pub phone_enc: Option<Vec<u8>>,
    pub name_enc: Option<Vec<u8>>,
    pub email_enc: Option<Vec<u8>>,
    pub birthday_enc: Option<Vec<u8>>,
    pub notes_enc: Option<Vec<u8>>,
    pub anniversaries_enc: Option<Vec<u8>>,
    pub gender: Option<String>,
    pub birth_month: Option<i64>,
    pub birth_day: Option<i64>,
    pub age_group: Option<String>,
    pub city: Option<String>,
    pub home_store_code: Option<String>,
    pub source_channel: String,
    pub referral_code: String,
    pub referrer_id: Option<String>,
    pub family_group_id: Option<String>,
    pub account_manager: Option<String>,
    pub tier: String,
    pub points_balance: i64,
    pub taste_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub erased_at: Option<i64>,
}

const MEMBER_COLUMNS: &str = "id, member_code, phone_enc, name_enc, email_enc, birthday_enc, notes_enc, \
    anniversaries_enc, gender, birth_month, birth_day, age_group, city, home_store_code, source_channel, \
    referral_code, referrer_id, family_group_id, account_manager, tier, points_balance, taste_json, \
    created_at, updated_at, erased_at";

/// Everything needed to insert a member row.
#[derive(Debug, Clone)]
pub struct NewMemberRow {
    pub id: String,
    pub member_code: String,
    pub phone_index: Vec<u8>,
    pub phone_enc: Vec<u8>,
    pub name_enc: Option<Vec<u8>>,
    pub email_enc: Option<Vec<u8>>,
    pub birthday_enc: Option<Vec<u8>>,
    pub notes_enc: Option<Vec<u8>>,
    pub anniversaries_enc: Option<Vec<u8>>,
    pub gender: Option<String>,
    pub birth_month: Option<i64>,
    pub birth_day: Option<i64>,
    pub age_group: Option<String>,
    pub city: Option<String>,
    pub home_store_code: Option<String>,
    pub source_channel: String,
    pub referral_code: String,
    pub referrer_id: Option<String>,
    pub taste_json: String,
    pub created_at: i64,
}

/// Insert; `Conflict` on `members_phone_index` when the phone is taken.
/// The insert runs in a savepoint: on PostgreSQL a failed statement spoils
/// the whole transaction, and the caller draws new codes and tries again
/// after a code collision.
pub async fn insert_member(conn: &mut AnyConnection, m: &NewMemberRow) -> StoreResult<()> {
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await.store()?;
    sqlx::query(
        "INSERT INTO members (id, member_code, phone_index, phone_enc, name_enc, email_enc, birthday_enc, \
         notes_enc, anniversaries_enc, gender, birth_month, birth_day, age_group, city, home_store_code, \
         source_channel, referral_code, referrer_id, taste_json, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20)",
    )
    .bind(&m.id)
    .bind(&m.member_code)
    .bind(&m.phone_index)
    .bind(&m.phone_enc)
    .bind(&m.name_enc)
    .bind(&m.email_enc)
    .bind(&m.birthday_enc)
    .bind(&m.notes_enc)
    .bind(&m.anniversaries_enc)
    .bind(&m.gender)
    .bind(m.birth_month)
    .bind(m.birth_day)
    .bind(&m.age_group)
    .bind(&m.city)
    .bind(&m.home_store_code)
    .bind(&m.source_channel)
    .bind(&m.referral_code)
    .bind(&m.referrer_id)
    .bind(&m.taste_json)
    .bind(m.created_at)
    .execute(&mut *savepoint)
    .await
    .store()?;
    savepoint.commit().await.store()
}

pub async fn get_member(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<MemberRow>> {
    sqlx::query_as::<_, MemberRow>(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Exact lookup through the phone blind index (an indexed equality).
pub async fn find_by_phone_index(
    conn: &mut AnyConnection,
    phone_index: &[u8],
) -> StoreResult<Option<MemberRow>> {
    sqlx::query_as::<_, MemberRow>(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE phone_index = $1"
    ))
    .bind(phone_index)
    .fetch_optional(conn)
    .await
    .store()
}

/// The statement [`find_by_phone_index`] runs, for query-plan checks.
pub const LOOKUP_BY_PHONE_SQL: &str = "SELECT id FROM members WHERE phone_index = $1";

pub async fn find_by_member_code(
    conn: &mut AnyConnection,
    code: &str,
) -> StoreResult<Option<MemberRow>> {
    sqlx::query_as::<_, MemberRow>(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE member_code = $1"
    ))
    .bind(code)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn find_by_referral_code(
    conn: &mut AnyConnection,
    code: &str,
) -> StoreResult<Option<String>> {
    sqlx::query_scalar::<_, String>("SELECT id FROM members WHERE referral_code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await
        .store()
}

/// Filters of the member list. All optional; combined with `and`.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub home_store: Option<String>,
    pub tier: Option<String>,
    pub tag: Option<String>,
    /// Only ids greater than this (keyset pagination on the time-ordered id).
    pub after: Option<String>,
    pub limit: i64,
}

/// A page of members, oldest first, at most `limit` long.
pub async fn list_members(
    conn: &mut AnyConnection,
    f: &MemberFilter,
) -> StoreResult<Vec<MemberRow>> {
    let mut sql = format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE m.erased_at IS NULL");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if f.home_store.is_some() {
        sql.push_str(&format!(" AND m.home_store_code = ${}", next()));
    }
    if f.tier.is_some() {
        sql.push_str(&format!(" AND m.tier = ${}", next()));
    }
    if f.tag.is_some() {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = ${})",
            next()
        ));
    }
    if f.after.is_some() {
        sql.push_str(&format!(" AND m.id > ${}", next()));
    }
    sql.push_str(&format!(" ORDER BY m.id LIMIT ${}", next()));
    let mut q = sqlx::query_as::<_, MemberRow>(&sql);
    for value in [&f.home_store, &f.tier, &f.tag, &f.after]
        .into_iter()
        .flatten()
    {
        q = q.bind(value.as_str());
    }
    q.bind(f.limit).fetch_all(conn).await.store()
}

/// A change to a member row: `Some(v)` sets the column to `v` (which may be
/// NULL), `None` leaves it alone.
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    pub name_enc: Option<Option<Vec<u8>>>,
    pub email_enc: Option<Option<Vec<u8>>>,
    pub birthday_enc: Option<Option<Vec<u8>>>,
    pub birth_month: Option<Option<i64>>,
    pub birth_day: Option<Option<i64>>,
    pub notes_enc: Option<Option<Vec<u8>>>,
    pub anniversaries_enc: Option<Option<Vec<u8>>>,
    pub gender: Option<Option<String>>,
    pub age_group: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub home_store_code: Option<Option<String>>,
    pub family_group_id: Option<Option<String>>,
    pub account_manager: Option<Option<String>>,
    pub taste_json: Option<String>,
}

enum Value {
    Bytes(Option<Vec<u8>>),
    Text(Option<String>),
    Int(Option<i64>),
}

pub async fn update_member(
    conn: &mut AnyConnection,
    id: &str,
    patch: MemberPatch,
    now: i64,
) -> StoreResult<()> {
    let mut sets: Vec<(&str, Value)> = Vec::new();
    macro_rules! set {
        ($field:ident, $variant:ident) => {
            if let Some(v) = patch.$field {
                sets.push((stringify!($field), Value::$variant(v)));
            }
        };
    }
    set!(name_enc, Bytes);
    set!(email_enc, Bytes);
    set!(birthday_enc, Bytes);
    set!(birth_month, Int);
    set!(birth_day, Int);
    set!(notes_enc, Bytes);
    set!(anniversaries_enc, Bytes);
    set!(gender, Text);
    set!(age_group, Text);
    set!(city, Text);
    set!(home_store_code, Text);
    set!(family_group_id, Text);
    set!(account_manager, Text);
    if let Some(t) = patch.taste_json {
        sets.push(("taste_json", Value::Text(Some(t))));
    }
    let mut sql = String::from("UPDATE members SET updated_at = $1");
    for (i, (column, _)) in sets.iter().enumerate() {
        sql.push_str(&format!(", {column} = ${}", i + 2));
    }
    sql.push_str(&format!(" WHERE id = ${}", sets.len() + 2));
    let mut q = sqlx::query(&sql).bind(now);
    for (_, value) in sets {
        q = match value {
            Value::Bytes(v) => q.bind(v),
            Value::Text(v) => q.bind(v),
            Value::Int(v) => q.bind(v),
        };
    }
    let done = q.bind(id).execute(conn).await.store()?;
    if done.rows_affected() == 0 {
        return Err(crate::StoreError::NotFound);
    }
    Ok(())
}

pub async fn tags_of(conn: &mut AnyConnection, member_id: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>("SELECT tag FROM member_tags WHERE member_id = $1 ORDER BY tag")
        .bind(member_id)
        .fetch_all(conn)
        .await
        .store()
}

pub async fn add_tag(
    conn: &mut AnyConnection,
    member_id: &str,
    tag: &str,
    actor: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO member_tags (member_id, tag, added_by, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (member_id, tag) DO NOTHING",
    )
    .bind(member_id)
    .bind(tag)
    .bind(actor)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() > 0)
}

pub async fn remove_tag(conn: &mut AnyConnection, member_id: &str, tag: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM member_tags WHERE member_id = $1 AND tag = $2")
        .bind(member_id)
        .bind(tag)
        .execute(conn)
        .await
        .store()?;
    Ok(done.rows_affected() > 0)
}

#[derive(Debug, Clone, FromRow)]
pub struct ConsentRow {
    pub channel: String,
    /// 1 granted, 0 refused.
    pub granted: i64,
    pub source: String,
    pub changed_at: i64,
}

pub async fn consents_of(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Vec<ConsentRow>> {
    sqlx::query_as::<_, ConsentRow>(
        "SELECT channel, granted, source, changed_at FROM member_consents WHERE member_id = $1 ORDER BY channel",
    )
    .bind(member_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Record a consent decision: the current state and a history event.
pub async fn set_consent(
    conn: &mut AnyConnection,
    member_id: &str,
    channel: &str,
    granted: bool,
    source: &str,
    actor: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO member_consents (member_id, channel, granted, source, changed_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (member_id, channel) DO UPDATE SET granted = excluded.granted, source = excluded.source, \
         changed_at = excluded.changed_at",
    )
    .bind(member_id)
    .bind(channel)
    .bind(i64::from(granted))
    .bind(source)
    .bind(now)
    .execute(&mut *conn)
    .await
    .store()?;
    sqlx::query(
        "INSERT INTO consent_events (member_id, channel, granted, source, actor, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(member_id)
    .bind(channel)
    .bind(i64::from(granted))
    .bind(source)
    .bind(actor)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Members not erased; only those of `home_store` when given.
pub async fn count_members(conn: &mut AnyConnection, home_store: Option<&str>) -> StoreResult<i64> {
    match home_store {
        Some(store) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM members WHERE erased_at IS NULL AND home_store_code = $1",
        )
        .bind(store)
        .fetch_one(conn)
        .await
        .store(),
        None => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM members WHERE erased_at IS NULL")
                .fetch_one(conn)
                .await
                .store()
        }
    }
}
