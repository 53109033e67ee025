//! Segments: "which members match this expression" — count, a page of them,
//! a CSV export with masked phones — and saved segments. The language is in
//! `regulars_core::segment`; where its fields live in the schema is in
//! `regulars_store::segments`.

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::phone::Phone;
use regulars_core::segment::{self, Expr, FieldInfo};
use regulars_store::segments::{self as repo, SavedSegment};
use regulars_store::{commit, staff};
use serde::{Deserialize, Serialize};

/// Longest page of members.
pub const MAX_PAGE: i64 = 500;

/// The fields, their types, values and operators: what a console builder shows.
pub fn fields(caller: &Principal) -> AppResult<Vec<FieldInfo>> {
    caller.check(Action::SegmentRead, None)?;
    Ok(segment::catalogue())
}

fn parse(expression: &str) -> AppResult<Expr> {
    Ok(segment::parse(expression)?)
}

/// The store a store-scoped caller is limited to.
fn scope(caller: &Principal) -> AppResult<Option<String>> {
    caller.check(Action::SegmentRead, caller.store.as_deref())?;
    Ok(if caller.role.is_store_scoped() {
        caller.store.clone()
    } else {
        None
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentCount {
    pub count: i64,
    /// The expression as the server understood it (canonical form).
    pub canonical: String,
}

pub async fn count(
    app: &Regulars,
    caller: &Principal,
    expression: &str,
) -> AppResult<SegmentCount> {
    let store = scope(caller)?;
    let expr = parse(expression)?;
    let compiled = repo::compile(&expr, now(), store.as_deref());
    let mut conn = app.db.reader().await?;
    Ok(SegmentCount {
        count: repo::count(&mut conn, &compiled).await?,
        canonical: expr.to_string(),
    })
}

/// One member of a segment, as a list shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentMemberView {
    pub id: String,
    pub member_code: String,
    pub phone_masked: String,
    pub tier: String,
    pub home_store: Option<String>,
    pub city: Option<String>,
    pub points_balance: i64,
    pub lifecycle: Option<String>,
    pub grade: Option<String>,
    pub last_visit_at: Option<i64>,
    pub spend_12m_fen: Option<i64>,
    pub clv_fen: Option<i64>,
    pub p_alive: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentPage {
    pub members: Vec<SegmentMemberView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

fn masked_phone(app: &Regulars, id: &str, phone_enc: Option<&[u8]>) -> String {
    app.open(id, "phone", phone_enc)
        .ok()
        .flatten()
        .and_then(|p| Phone::parse(&p).ok())
        .map(|p| p.masked())
        .unwrap_or_default()
}

pub async fn members(
    app: &Regulars,
    caller: &Principal,
    expression: &str,
    after: Option<&str>,
    limit: Option<i64>,
) -> AppResult<SegmentPage> {
    let store = scope(caller)?;
    let expr = parse(expression)?;
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::unprocessable(
            "invalid_field",
            format!("limit must be 1–{MAX_PAGE}"),
        ));
    }
    let compiled = repo::compile(&expr, now(), store.as_deref());
    let rows = {
        let mut conn = app.db.reader().await?;
        repo::page(&mut conn, &compiled, after, limit + 1).await?
    };
    let more = rows.len() as i64 > limit;
    let members: Vec<SegmentMemberView> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| SegmentMemberView {
            phone_masked: masked_phone(app, &r.id, r.phone_enc.as_deref()),
            id: r.id,
            member_code: r.member_code,
            tier: r.tier,
            home_store: r.home_store_code,
            city: r.city,
            points_balance: r.points_balance,
            lifecycle: r.lifecycle,
            grade: r.grade,
            last_visit_at: r.last_visit_at,
            spend_12m_fen: r.spend_12m_fen,
            clv_fen: r.clv_fen,
            p_alive: r.p_alive,
        })
        .collect();
    let next_after = more.then(|| members.last().map(|m| m.id.clone())).flatten();
    Ok(SegmentPage {
        members,
        next_after,
    })
}

/// Every matching member as CSV (masked phones), page by page; the export is
/// audited, since it is a list of guests leaving the system.
pub async fn export_csv(app: &Regulars, caller: &Principal, expression: &str) -> AppResult<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "member_id",
        "member_code",
        "phone",
        "tier",
        "home_store",
        "city",
        "points_balance",
        "lifecycle",
        "grade",
        "spend_12m_fen",
        "clv_fen",
        "p_alive",
    ];
    let csv_err = |e: csv::Error| AppError::unprocessable("export_failed", e.to_string());
    out.write_record(header).map_err(csv_err)?;
    let mut after: Option<String> = None;
    let mut rows = 0u64;
    loop {
        let page = members(app, caller, expression, after.as_deref(), Some(MAX_PAGE)).await?;
        for m in &page.members {
            let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
            out.write_record([
                m.id.clone(),
                m.member_code.clone(),
                m.phone_masked.clone(),
                m.tier.clone(),
                m.home_store.clone().unwrap_or_default(),
                m.city.clone().unwrap_or_default(),
                m.points_balance.to_string(),
                m.lifecycle.clone().unwrap_or_default(),
                m.grade.clone().unwrap_or_default(),
                opt(m.spend_12m_fen),
                opt(m.clv_fen),
                m.p_alive.map(|p| format!("{p:.4}")).unwrap_or_default(),
            ])
            .map_err(csv_err)?;
            rows += 1;
        }
        match page.next_after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|e| AppError::unprocessable("export_failed", e.to_string()))?;
    let mut conn = app.db.writer().await?;
    staff::audit(
        &mut conn,
        &caller.actor,
        "segment.export",
        "segment",
        &format!("{rows} members: {expression}"),
        now(),
    )
    .await?;
    String::from_utf8(bytes).map_err(|e| AppError::unprocessable("export_failed", e.to_string()))
}

/// A named segment to save or change.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    pub name: String,
    pub expression: String,
    #[serde(default)]
    pub description: Option<String>,
}

fn checked(input: &SegmentInput) -> AppResult<Expr> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::unprocessable(
            "invalid_field",
            "name: 1–100 characters",
        ));
    }
    if input
        .description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(AppError::unprocessable(
            "invalid_field",
            "description: at most 500 characters",
        ));
    }
    parse(&input.expression)
}

fn conflict(e: regulars_store::StoreError) -> AppError {
    if e.is_conflict_on("segments_name") {
        AppError::Conflict {
            code: "segment_exists",
            message: "a segment with this name exists".into(),
        }
    } else {
        e.into()
    }
}

pub async fn save(
    app: &Regulars,
    caller: &Principal,
    input: SegmentInput,
) -> AppResult<SavedSegment> {
    caller.check(Action::SegmentManage, None)?;
    let expr = checked(&input)?;
    let at = now();
    let saved = SavedSegment {
        id: uuid::Uuid::now_v7().to_string(),
        name: input.name.trim().to_string(),
        expression: expr.to_string(),
        description: input.description,
        created_by: caller.actor.clone(),
        created_at: at,
        updated_at: at,
    };
    let mut tx = app.db.begin().await?;
    repo::insert_saved(&mut tx, &saved)
        .await
        .map_err(conflict)?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "segment.create",
        &format!("segment:{}", saved.id),
        &saved.expression,
        at,
    )
    .await?;
    commit(tx).await?;
    Ok(saved)
}

pub async fn change(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: SegmentInput,
) -> AppResult<SavedSegment> {
    caller.check(Action::SegmentManage, None)?;
    let expr = checked(&input)?;
    let mut tx = app.db.begin().await?;
    let mut saved = repo::get_saved(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "segment" })?;
    saved.name = input.name.trim().to_string();
    saved.expression = expr.to_string();
    saved.description = input.description;
    saved.updated_at = now();
    repo::update_saved(&mut tx, &saved)
        .await
        .map_err(conflict)?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "segment.change",
        &format!("segment:{id}"),
        &saved.expression,
        saved.updated_at,
    )
    .await?;
    commit(tx).await?;
    Ok(saved)
}

pub async fn delete(app: &Regulars, caller: &Principal, id: &str) -> AppResult<()> {
    caller.check(Action::SegmentManage, None)?;
    let mut tx = app.db.begin().await?;
    if !repo::delete_saved(&mut tx, id).await? {
        return Err(AppError::NotFound { what: "segment" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "segment.delete",
        &format!("segment:{id}"),
        "",
        now(),
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

pub async fn get(app: &Regulars, caller: &Principal, id: &str) -> AppResult<SavedSegment> {
    caller.check(Action::SegmentRead, caller.store.as_deref())?;
    let mut conn = app.db.reader().await?;
    repo::get_saved(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "segment" })
}

pub async fn list(app: &Regulars, caller: &Principal) -> AppResult<Vec<SavedSegment>> {
    caller.check(Action::SegmentRead, caller.store.as_deref())?;
    let mut conn = app.db.reader().await?;
    Ok(repo::list_saved(&mut conn).await?)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
