//! Bulk writes of generated or imported history: members (personal data
//! already encrypted), their consents and tags, orders with their lines,
//! refunds and tier changes, in batches far larger than the order path ever
//! writes.
//!
//! * PostgreSQL: one `COPY ... FROM STDIN` (text format) per table and batch
//!   on a native connection, one transaction per batch.
//! * SQLite: a native connection, multi-row prepared `INSERT`s (hundreds of
//!   rows per statement, far below SQLite's 32766 parameters), one
//!   transaction per batch. The load relaxes `PRAGMA synchronous` to NORMAL
//!   on its own connection only: in WAL mode that still never corrupts the
//!   file, it only means a power cut may lose the last batches, and a bulk
//!   load is restartable (the generator skips members already written),
//!   unlike a guest's order, which the normal path keeps at FULL.
//!
//! Orders written here are `imported = 1`: they earn nothing
//! (`points_earned = 0`), have no ledger entry and no outbox event, and carry
//! `request_hash = 'generated'` so a POS replay of their key is told apart.
//! A batch is all or nothing: every row of a member, their orders included,
//! is in the same batch.
//!
//! Ids should increase in insertion order ([`sortable_id`]) so every B-tree
//! insert appends.

use crate::error::{SqlxResultExt, StoreResult};
use crate::members::NewMemberRow;
use crate::Backend;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor, Row};
use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// A member row and its tier (computed by the caller from its history).
#[derive(Debug, Clone)]
pub struct BulkMember {
    pub row: NewMemberRow,
    pub tier: &'static str,
}

/// A consent decision of `members[member]` of the same batch.
#[derive(Debug, Clone)]
pub struct BulkConsent {
    pub member: usize,
    pub channel: &'static str,
    pub granted: bool,
    pub at: i64,
}

/// A tag of `members[member]` of the same batch.
#[derive(Debug, Clone)]
pub struct BulkTag {
    pub member: usize,
    pub tag: String,
    pub at: i64,
}

/// An order; `member` indexes the batch's members.
#[derive(Debug, Clone)]
pub struct BulkOrder {
    pub id: String,
    pub store_code: Cow<'static, str>,
    pub pos_order_id: String,
    pub member: Option<usize>,
    pub channel: &'static str,
    pub occurred_at: i64,
    pub paid_fen: i64,
    pub eligible_fen: i64,
    pub qualifying_fen: i64,
    pub refunded_fen: i64,
    pub party_size: Option<i64>,
    pub receipt_code: String,
    pub created_at: i64,
}

/// An order line; `order` indexes the batch's orders.
#[derive(Debug, Clone)]
pub struct BulkItem {
    pub order: usize,
    pub line: i64,
    pub sku: Cow<'static, str>,
    pub name: Cow<'static, str>,
    pub category: Cow<'static, str>,
    pub quantity: i64,
    pub unit_price_fen: i64,
    pub discount_fen: i64,
    pub voided: bool,
    pub comped: bool,
    pub staff_meal: bool,
}

/// A refund of `orders[order]` (which must carry `refunded_fen` = the sum of
/// its refunds); it reversed no points.
#[derive(Debug, Clone)]
pub struct BulkRefund {
    pub order: usize,
    pub refund_id: String,
    pub amount_fen: i64,
    pub created_at: i64,
}

/// A tier change of `members[member]`.
#[derive(Debug, Clone)]
pub struct BulkTierChange {
    pub member: usize,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub qualifying_spend_fen: i64,
    pub at: i64,
}

/// Rows written together in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub members: Vec<BulkMember>,
    pub consents: Vec<BulkConsent>,
    pub tags: Vec<BulkTag>,
    pub orders: Vec<BulkOrder>,
    pub items: Vec<BulkItem>,
    pub refunds: Vec<BulkRefund>,
    pub tier_changes: Vec<BulkTierChange>,
}

/// A UUID-shaped id (version 7 layout, the same TEXT form as the ids of the
/// normal path) that sorts by `(run_ms, kind, seq)`: give each run its start
/// time and number rows in insertion order, and every insert appends to the
/// primary key's B-tree. `seq` must stay below 2^62.
pub fn sortable_id(run_ms: i64, kind: u16, seq: u64) -> String {
    let mut bytes = [0u8; 16];
    let ms = (run_ms.max(0) as u64) & 0xFFFF_FFFF_FFFF;
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let kind = kind & 0x0FFF;
    bytes[6] = 0x70 | (kind >> 8) as u8;
    bytes[7] = (kind & 0xFF) as u8;
    let seq = seq & 0x3FFF_FFFF_FFFF_FFFF;
    bytes[8..].copy_from_slice(&seq.to_be_bytes());
    bytes[8] = 0x80 | (bytes[8] & 0x3F);
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// A store of the chain as generators need it.
#[derive(Debug, Clone)]
pub struct StoreBrief {
    pub code: String,
    pub city: String,
    pub region_code: String,
}

/// A dish of the menu as generators need it.
#[derive(Debug, Clone)]
pub struct DishBrief {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub spice_level: i64,
    pub price_fen: i64,
    pub is_new: bool,
}

/// Open stores (by code) and the menu (by SKU).
pub async fn chain_and_menu(
    conn: &mut sqlx::AnyConnection,
) -> StoreResult<(Vec<StoreBrief>, Vec<DishBrief>)> {
    let stores = sqlx::query(
        "SELECT code, city, region_code FROM stores WHERE status = 'open' ORDER BY code",
    )
    .fetch_all(&mut *conn)
    .await
    .store()?
    .iter()
    .map(|r| {
        Ok(StoreBrief {
            code: r.try_get(0)?,
            city: r.try_get(1)?,
            region_code: r.try_get(2)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .store()?;
    let menu = sqlx::query(
        "SELECT sku, name, category, spice_level, price_fen, is_new FROM menu_items ORDER BY sku",
    )
    .fetch_all(&mut *conn)
    .await
    .store()?
    .iter()
    .map(|r| {
        Ok(DishBrief {
            sku: r.try_get(0)?,
            name: r.try_get(1)?,
            category: r.try_get(2)?,
            spice_level: r.try_get(3)?,
            price_fen: r.try_get(4)?,
            is_new: r.try_get::<i64, _>(5)? != 0,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .store()?;
    Ok((stores, menu))
}

enum Native {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// A native connection that writes [`Batch`]es.
pub struct BulkWriter {
    conn: Native,
    actor: String,
    consent_source: String,
    fk_triggers_off: bool,
}

/// Rows per multi-row INSERT on SQLite, by the number of parameters per row
/// (SQLite allows 32766 parameters per statement).
fn rows_per_statement(params: usize) -> usize {
    (30_000 / params).min(1_000)
}

impl BulkWriter {
    /// Connect to `url` (the same URL as [`crate::Db::connect`]). `actor` is
    /// recorded as who added tags and changed tiers; `consent_source` as
    /// where consents were given.
    pub async fn connect(url: &str, actor: &str, consent_source: &str) -> StoreResult<BulkWriter> {
        let mut fk_triggers_off = false;
        let conn = match Backend::from_url(url) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)
                    .store()?
                    .busy_timeout(Duration::from_secs(30))
                    // Rows reference only rows of the same batch (written
                    // first) or stores and members that exist; not checking
                    // each reference again is what `.import` and pg_restore
                    // do too. The normal path's connections keep checking.
                    .foreign_keys(false)
                    .synchronous(SqliteSynchronous::Normal)
                    // Fewer, larger checkpoints (each one is an fsync).
                    .pragma("wal_autocheckpoint", "16384")
                    // 1 GiB of page cache: the secondary indexes' hot pages
                    // stay in memory for the whole load.
                    .pragma("cache_size", "-1048576")
                    .disable_statement_logging();
                Native::Sqlite(options.connect().await.store()?)
            }
            Some(Backend::Postgres) => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .store()?
                    .disable_statement_logging();
                let mut conn = options.connect().await.store()?;
                // Like `pg_restore --disable-triggers`: the per-row foreign
                // key triggers would re-check references this writer makes
                // true by construction (half the load's time). Only a
                // superuser may; anyone else loads with the checks on.
                fk_triggers_off = conn
                    .execute("SET session_replication_role = replica")
                    .await
                    .is_ok();
                Native::Postgres(conn)
            }
            None => {
                return Err(crate::StoreError::Corrupt(
                    "database URL must start with sqlite:// or postgres://".into(),
                ))
            }
        };
        Ok(BulkWriter {
            conn,
            actor: actor.to_string(),
            consent_source: consent_source.to_string(),
            fk_triggers_off,
        })
    }

    /// Does this connection skip PostgreSQL's per-row foreign key triggers?
    /// (`false` on SQLite, whose per-row checks are off on this connection.)
    pub fn fk_triggers_off(&self) -> bool {
        self.fk_triggers_off
    }

    /// Which backend this writer writes to.
    pub fn backend(&self) -> Backend {
        match self.conn {
            Native::Sqlite(_) => Backend::Sqlite,
            Native::Postgres(_) => Backend::Postgres,
        }
    }

    /// Which of these phone blind indexes already belong to a member.
    pub async fn taken_phone_indexes(
        &mut self,
        indexes: &[&[u8]],
    ) -> StoreResult<HashSet<Vec<u8>>> {
        let mut taken = HashSet::new();
        match &mut self.conn {
            Native::Postgres(conn) => {
                for chunk in indexes.chunks(5_000) {
                    let list: Vec<Vec<u8>> = chunk.iter().map(|b| b.to_vec()).collect();
                    let rows =
                        sqlx::query("SELECT phone_index FROM members WHERE phone_index = ANY($1)")
                            .bind(list)
                            .fetch_all(&mut *conn)
                            .await
                            .store()?;
                    for r in rows {
                        taken.insert(r.try_get::<Vec<u8>, _>(0).store()?);
                    }
                }
            }
            Native::Sqlite(conn) => {
                for chunk in indexes.chunks(500) {
                    let sql = format!(
                        "SELECT phone_index FROM members WHERE phone_index IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for b in chunk {
                        q = q.bind(*b);
                    }
                    for r in q.fetch_all(&mut *conn).await.store()? {
                        taken.insert(r.try_get::<Vec<u8>, _>(0).store()?);
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Write a batch in one transaction.
    pub async fn write(&mut self, batch: &Batch) -> StoreResult<()> {
        let (actor, source) = (self.actor.as_str(), self.consent_source.as_str());
        match &mut self.conn {
            Native::Postgres(conn) => pg_write(conn, batch, actor, source).await,
            Native::Sqlite(conn) => sqlite_write(conn, batch, actor, source).await,
        }
    }

    /// After the load: refresh the planner's statistics of the tables
    /// written, and fold SQLite's write-ahead log back into the file.
    pub async fn finish(self) -> StoreResult<()> {
        match self.conn {
            Native::Postgres(mut conn) => {
                conn.execute("ANALYZE members, orders, order_items, refunds")
                    .await
                    .store()?;
                conn.close().await.store()?;
            }
            Native::Sqlite(mut conn) => {
                // `optimize` may ANALYZE tables of hundreds of millions of
                // rows: a sample of each index is enough for the planner.
                conn.execute(
                    "PRAGMA analysis_limit = 1000; PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);",
                )
                    .await
                    .store()?;
                conn.close().await.store()?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// Rows in COPY's text format: tab between fields, newline after a row,
/// `\N` for NULL, backslash escapes.
struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    fn with_capacity(n: usize) -> CopyRows {
        CopyRows {
            buf: Vec::with_capacity(n),
        }
    }
    fn text(&mut self, s: &str) -> &mut Self {
        for &b in s.as_bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                _ => self.buf.push(b),
            }
        }
        self.buf.push(b'\t');
        self
    }
    fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }
    fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(b"\\N\t");
        self
    }
    fn int(&mut self, v: i64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut n = v.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(&digits[i..]);
        self.buf.push(b'\t');
        self
    }
    fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // bytea's hex input `\x...`, its backslash escaped for COPY.
        self.buf.extend_from_slice(b"\\\\x");
        for &x in b {
            self.buf.push(HEX[(x >> 4) as usize]);
            self.buf.push(HEX[(x & 15) as usize]);
        }
        self.buf.push(b'\t');
        self
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.bytes(b),
            None => self.null(),
        }
    }
    fn end(&mut self) {
        if let Some(last) = self.buf.last_mut() {
            *last = b'\n';
        }
    }
}

async fn copy(conn: &mut PgConnection, statement: &str, rows: CopyRows) -> StoreResult<()> {
    if rows.buf.is_empty() {
        return Ok(());
    }
    let mut copy = conn.copy_in_raw(statement).await.store()?;
    copy.send(rows.buf).await.store()?;
    copy.finish().await.store()?;
    Ok(())
}

async fn pg_write(
    conn: &mut PgConnection,
    batch: &Batch,
    actor: &str,
    source: &str,
) -> StoreResult<()> {
    let member_id = |i: usize| batch.members[i].row.id.as_str();
    let mut tx = conn.begin().await.store()?;
    // A lost batch at a crash is re-made by running the load again.
    tx.execute("SET LOCAL synchronous_commit = off")
        .await
        .store()?;

    let mut rows = CopyRows::with_capacity(batch.members.len() * 400);
    for m in &batch.members {
        let r = &m.row;
        rows.text(&r.id)
            .text(&r.member_code)
            .bytes(&r.phone_index)
            .bytes(&r.phone_enc)
            .opt_bytes(r.name_enc.as_deref())
            .opt_bytes(r.email_enc.as_deref())
            .opt_bytes(r.birthday_enc.as_deref())
            .opt_bytes(r.notes_enc.as_deref())
            .opt_bytes(r.anniversaries_enc.as_deref())
            .opt_text(r.gender.as_deref())
            .opt_int(r.birth_month)
            .opt_int(r.birth_day)
            .opt_text(r.age_group.as_deref())
            .opt_text(r.city.as_deref())
            .opt_text(r.home_store_code.as_deref())
            .text(&r.source_channel)
            .text(&r.referral_code)
            .opt_text(r.referrer_id.as_deref())
            .text(&r.taste_json)
            .int(r.created_at)
            .int(r.created_at)
            .text(m.tier)
            .end();
    }
    copy(
        &mut tx,
        "COPY members (id, member_code, phone_index, phone_enc, name_enc, email_enc, birthday_enc, \
         notes_enc, anniversaries_enc, gender, birth_month, birth_day, age_group, city, home_store_code, \
         source_channel, referral_code, referrer_id, taste_json, created_at, updated_at, tier) FROM STDIN",
        rows,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.consents.len() * 80);
    let mut events = CopyRows::with_capacity(batch.consents.len() * 90);
    for c in &batch.consents {
        rows.text(member_id(c.member))
            .text(c.channel)
            .int(i64::from(c.granted))
            .text(source)
            .int(c.at)
            .end();
        events
            .text(member_id(c.member))
            .text(c.channel)
            .int(i64::from(c.granted))
            .text(source)
            .text(actor)
            .int(c.at)
            .end();
    }
    copy(
        &mut tx,
        "COPY member_consents (member_id, channel, granted, source, changed_at) FROM STDIN",
        rows,
    )
    .await?;
    copy(
        &mut tx,
        "COPY consent_events (member_id, channel, granted, source, actor, at) FROM STDIN",
        events,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.tags.len() * 80);
    for t in &batch.tags {
        rows.text(member_id(t.member))
            .text(&t.tag)
            .text(actor)
            .int(t.at)
            .end();
    }
    copy(
        &mut tx,
        "COPY member_tags (member_id, tag, added_by, created_at) FROM STDIN",
        rows,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.orders.len() * 200);
    for o in &batch.orders {
        rows.text(&o.id)
            .text(&o.store_code)
            .text(&o.pos_order_id)
            .opt_text(o.member.map(member_id))
            .text(o.channel)
            .int(o.occurred_at)
            .int(o.paid_fen)
            .int(o.eligible_fen)
            .int(o.qualifying_fen)
            .int(o.refunded_fen)
            .int(0)
            .int(0)
            .opt_int(o.party_size)
            .text(&o.receipt_code)
            .text("generated")
            .text("")
            .int(o.created_at)
            .int(1)
            .end();
    }
    copy(
        &mut tx,
        "COPY orders (id, store_code, pos_order_id, member_id, channel, occurred_at, paid_fen, \
         eligible_fen, qualifying_fen, refunded_fen, points_earned, points_reversed, party_size, \
         receipt_code, request_hash, response_json, created_at, imported) FROM STDIN",
        rows,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.items.len() * 90);
    for i in &batch.items {
        rows.text(&batch.orders[i.order].id)
            .int(i.line)
            .text(&i.sku)
            .text(&i.name)
            .text(&i.category)
            .int(i.quantity)
            .int(i.unit_price_fen)
            .int(i.discount_fen)
            .int(i64::from(i.voided))
            .int(i64::from(i.comped))
            .int(i64::from(i.staff_meal))
            .end();
    }
    copy(
        &mut tx,
        "COPY order_items (order_id, line, sku, name, category, quantity, unit_price_fen, \
         discount_fen, voided, comped, staff_meal) FROM STDIN",
        rows,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.refunds.len() * 120);
    for r in &batch.refunds {
        let o = &batch.orders[r.order];
        rows.text(&o.store_code)
            .text(&r.refund_id)
            .text(&o.id)
            .int(r.amount_fen)
            .int(0)
            .int(0)
            .text("generated")
            .text("")
            .int(r.created_at)
            .end();
    }
    copy(
        &mut tx,
        "COPY refunds (store_code, refund_id, order_id, amount_fen, points_reversed, shortfall, \
         request_hash, response_json, created_at) FROM STDIN",
        rows,
    )
    .await?;

    let mut rows = CopyRows::with_capacity(batch.tier_changes.len() * 120);
    for t in &batch.tier_changes {
        rows.text(member_id(t.member))
            .text(t.from)
            .text(t.to)
            .text(&t.reason)
            .int(t.qualifying_spend_fen)
            .text(actor)
            .int(t.at)
            .end();
    }
    copy(
        &mut tx,
        "COPY tier_history (member_id, from_tier, to_tier, reason, qualifying_spend_fen, actor, at) \
         FROM STDIN",
        rows,
    )
    .await?;
    tx.commit().await.store()
}

// -------------------------------------------------------------------- SQLite

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// The statements of a multi-row INSERT over `n` rows: `INSERT {head}
/// VALUES {row}, {row}, ...` with at most [`rows_per_statement`] rows each
/// (the full-size one reused, prepared once per connection), and a shorter
/// one for the rest.
struct Statements {
    per: usize,
    full: String,
    tail: String,
}

fn statements(head: &str, row: &str, params: usize, n: usize) -> Statements {
    let per = rows_per_statement(params);
    let make = |k: usize| {
        let mut sql = String::with_capacity(head.len() + k * (row.len() + 1) + 8);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        for i in 0..k {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(row);
        }
        sql
    };
    Statements {
        per,
        full: if n >= per { make(per) } else { String::new() },
        tail: make(n % per),
    }
}

async fn sqlite_insert<'q, T>(
    conn: &mut SqliteConnection,
    sql: &'q Statements,
    rows: &'q [T],
    bind: impl Fn(SqliteQuery<'q>, &'q T) -> SqliteQuery<'q>,
) -> StoreResult<()> {
    for chunk in rows.chunks(sql.per) {
        let text = if chunk.len() == sql.per {
            &sql.full
        } else {
            &sql.tail
        };
        let mut q = sqlx::query(text);
        for r in chunk {
            q = bind(q, r);
        }
        q.execute(&mut *conn).await.store()?;
    }
    Ok(())
}

async fn sqlite_write(
    conn: &mut SqliteConnection,
    batch: &Batch,
    actor: &str,
    source: &str,
) -> StoreResult<()> {
    let member_id = |i: usize| batch.members[i].row.id.as_str();
    let mut tx = conn.begin().await.store()?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO members (id, member_code, phone_index, phone_enc, name_enc, email_enc, birthday_enc, \
             notes_enc, anniversaries_enc, gender, birth_month, birth_day, age_group, city, home_store_code, \
             source_channel, referral_code, referrer_id, taste_json, created_at, updated_at, tier)",
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            22,
            batch.members.len(),
        ),
        &batch.members,
        |q, m| {
            let r = &m.row;
            q.bind(r.id.as_str())
                .bind(r.member_code.as_str())
                .bind(r.phone_index.as_slice())
                .bind(r.phone_enc.as_slice())
                .bind(r.name_enc.as_deref())
                .bind(r.email_enc.as_deref())
                .bind(r.birthday_enc.as_deref())
                .bind(r.notes_enc.as_deref())
                .bind(r.anniversaries_enc.as_deref())
                .bind(r.gender.as_deref())
                .bind(r.birth_month)
                .bind(r.birth_day)
                .bind(r.age_group.as_deref())
                .bind(r.city.as_deref())
                .bind(r.home_store_code.as_deref())
                .bind(r.source_channel.as_str())
                .bind(r.referral_code.as_str())
                .bind(r.referrer_id.as_deref())
                .bind(r.taste_json.as_str())
                .bind(r.created_at)
                .bind(r.created_at)
                .bind(m.tier)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO member_consents (member_id, channel, granted, source, changed_at)",
            "(?,?,?,?,?)",
            5,
            batch.consents.len(),
        ),
        &batch.consents,
        |q, c| {
            q.bind(member_id(c.member))
                .bind(c.channel)
                .bind(i64::from(c.granted))
                .bind(source)
                .bind(c.at)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO consent_events (member_id, channel, granted, source, actor, at)",
            "(?,?,?,?,?,?)",
            6,
            batch.consents.len(),
        ),
        &batch.consents,
        |q, c| {
            q.bind(member_id(c.member))
                .bind(c.channel)
                .bind(i64::from(c.granted))
                .bind(source)
                .bind(actor)
                .bind(c.at)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO member_tags (member_id, tag, added_by, created_at)",
            "(?,?,?,?)",
            4,
            batch.tags.len(),
        ),
        &batch.tags,
        |q, t| {
            q.bind(member_id(t.member))
                .bind(t.tag.as_str())
                .bind(actor)
                .bind(t.at)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO orders (id, store_code, pos_order_id, member_id, channel, occurred_at, paid_fen, \
             eligible_fen, qualifying_fen, refunded_fen, points_earned, points_reversed, party_size, \
             receipt_code, request_hash, response_json, created_at, imported)",
            "(?,?,?,?,?,?,?,?,?,?,0,0,?,?,'generated','',?,1)",
            13,
            batch.orders.len(),
        ),
        &batch.orders,
        |q, o| {
            q.bind(o.id.as_str())
                .bind(o.store_code.as_ref())
                .bind(o.pos_order_id.as_str())
                .bind(o.member.map(member_id))
                .bind(o.channel)
                .bind(o.occurred_at)
                .bind(o.paid_fen)
                .bind(o.eligible_fen)
                .bind(o.qualifying_fen)
                .bind(o.refunded_fen)
                .bind(o.party_size)
                .bind(o.receipt_code.as_str())
                .bind(o.created_at)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO order_items (order_id, line, sku, name, category, quantity, unit_price_fen, \
             discount_fen, voided, comped, staff_meal)",
            "(?,?,?,?,?,?,?,?,?,?,?)",
            11,
            batch.items.len(),
        ),
        &batch.items,
        |q, i| {
            q.bind(batch.orders[i.order].id.as_str())
                .bind(i.line)
                .bind(i.sku.as_ref())
                .bind(i.name.as_ref())
                .bind(i.category.as_ref())
                .bind(i.quantity)
                .bind(i.unit_price_fen)
                .bind(i.discount_fen)
                .bind(i64::from(i.voided))
                .bind(i64::from(i.comped))
                .bind(i64::from(i.staff_meal))
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO refunds (store_code, refund_id, order_id, amount_fen, points_reversed, shortfall, \
             request_hash, response_json, created_at)",
            "(?,?,?,?,0,0,'generated','',?)",
            5,
            batch.refunds.len(),
        ),
        &batch.refunds,
        |q, r| {
            let o = &batch.orders[r.order];
            q.bind(o.store_code.as_ref())
                .bind(r.refund_id.as_str())
                .bind(o.id.as_str())
                .bind(r.amount_fen)
                .bind(r.created_at)
        },
    )
    .await?;
    sqlite_insert(
        &mut tx,
        &statements(
            "INSERT INTO tier_history (member_id, from_tier, to_tier, reason, qualifying_spend_fen, actor, at)",
            "(?,?,?,?,?,?,?)",
            7,
            batch.tier_changes.len(),
        ),
        &batch.tier_changes,
        |q, t| {
            q.bind(member_id(t.member))
                .bind(t.from)
                .bind(t.to)
                .bind(t.reason.as_str())
                .bind(t.qualifying_spend_fen)
                .bind(actor)
                .bind(t.at)
        },
    )
    .await?;
    tx.commit().await.store()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_ids_sort_in_insertion_order_and_look_like_uuids() {
        let a = sortable_id(1_700_000_000_000, 2, 5);
        let b = sortable_id(1_700_000_000_000, 2, 6);
        let c = sortable_id(1_700_000_000_000, 2, (1 << 40) + 1);
        let d = sortable_id(1_700_000_000_001, 1, 0);
        assert!(a < b && b < c && c < d);
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn copy_text_escapes() {
        let mut r = CopyRows::with_capacity(16);
        r.text("a\tb\\c\nd").int(-42).null().bytes(&[0, 255]).end();
        assert_eq!(
            String::from_utf8(r.buf).unwrap(),
            "a\\tb\\\\c\\nd\t-42\t\\N\t\\\\x00ff\n"
        );
    }
}
