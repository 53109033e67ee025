//! Campaigns: definitions (checked by `regulars_core::campaign`), the
//! approval step for campaigns whose audience is above HQ's line, pause,
//! resume and end; and HQ's campaign settings (delivery rules, the line).
//! Every change is audited. Sending builds on these rows (docs/campaigns.md).

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::{
    next_status, CampaignSpec, CampaignStatus, DeliveryPolicy, StatusChange,
};
use regulars_store::campaigns::{self as repo, CampaignRow, StatusUpdate};
use regulars_store::{commit, members, now_ms, segments, staff, Conn};
use serde::{Deserialize, Serialize};

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub status: CampaignStatus,
    pub spec: CampaignSpec,
    /// Members in the audience when it was submitted.
    pub audience_estimate: i64,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub approved_by: Option<String>,
    /// Unix ms.
    pub approved_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn corrupt(row: &CampaignRow, what: &str) -> AppError {
    AppError::Store(regulars_store::StoreError::Corrupt(format!(
        "campaign {}: {what}",
        row.id
    )))
}

/// The campaign's definition as stored (checked when it was written).
pub(crate) fn spec_of(row: &CampaignRow) -> AppResult<CampaignSpec> {
    serde_json::from_str(&row.spec_json).map_err(|_| corrupt(row, "unreadable definition"))
}

fn view(row: CampaignRow) -> AppResult<CampaignView> {
    Ok(CampaignView {
        status: CampaignStatus::parse(&row.status)
            .ok_or_else(|| corrupt(&row, "unknown status"))?,
        spec: spec_of(&row)?,
        id: row.id,
        audience_estimate: row.audience_estimate,
        created_by: row.created_by,
        submitted_by: row.submitted_by,
        approved_by: row.approved_by,
        approved_at: row.approved_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// HQ's campaign settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    #[schema(value_type = Object)]
    pub delivery: DeliveryPolicy,
    /// A campaign whose audience is larger than this needs an approval by
    /// someone other than who submitted it.
    pub approval_above: i64,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            delivery: DeliveryPolicy::default(),
            approval_above: 5_000,
        }
    }
}

pub const SETTINGS_KEY: &str = "campaigns.settings";

pub async fn settings(app: &Regulars, caller: &Principal) -> AppResult<CampaignSettings> {
    caller.check(Action::CampaignRead, None)?;
    let mut conn = app.db.reader().await?;
    stored_settings(&mut conn).await
}

/// HQ's delivery rules as stored (the sender reads them at send time).
pub(crate) async fn delivery_policy(conn: &mut Conn) -> AppResult<DeliveryPolicy> {
    Ok(stored_settings(conn).await?.delivery)
}

async fn stored_settings(conn: &mut Conn) -> AppResult<CampaignSettings> {
    match staff::get_setting(conn, SETTINGS_KEY).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            AppError::Store(regulars_store::StoreError::Corrupt(format!(
                "{SETTINGS_KEY}: {e}"
            )))
        }),
        None => Ok(CampaignSettings::default()),
    }
}

pub async fn set_settings(
    app: &Regulars,
    caller: &Principal,
    input: CampaignSettings,
) -> AppResult<CampaignSettings> {
    caller.check(Action::CampaignApprove, None)?;
    input.delivery.validate()?;
    if input.approval_above < 0 {
        return Err(
            regulars_core::DomainError::invalid("approval_above", "must not be negative").into(),
        );
    }
    let json = serde_json::to_string(&input)
        .map_err(|e| AppError::unprocessable("invalid_settings", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    staff::put_setting(&mut tx, SETTINGS_KEY, &json).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.settings",
        SETTINGS_KEY,
        &json,
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    Ok(input)
}

/// The definition checked, and its segment (if any) saved.
async fn checked(conn: &mut Conn, spec: &CampaignSpec) -> AppResult<String> {
    spec.validate()?;
    if let Some(id) = &spec.segment_id {
        if segments::get_saved(conn, id).await?.is_none() {
            return Err(AppError::unprocessable(
                "unknown_segment",
                format!("no saved segment {id}"),
            ));
        }
    }
    serde_json::to_string(spec)
        .map_err(|e| AppError::unprocessable("invalid_campaign", e.to_string()))
}

pub async fn create(
    app: &Regulars,
    caller: &Principal,
    spec: CampaignSpec,
) -> AppResult<CampaignView> {
    caller.check(Action::CampaignManage, None)?;
    let mut tx = app.db.begin().await?;
    let spec_json = checked(&mut tx, &spec).await?;
    let at = now_ms();
    let row = CampaignRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: spec.name.trim().to_string(),
        trigger_kind: spec.trigger.kind().to_string(),
        spec_json,
        status: CampaignStatus::Draft.as_str().to_string(),
        audience_estimate: 0,
        created_by: caller.actor.clone(),
        submitted_by: None,
        approved_by: None,
        approved_at: None,
        created_at: at,
        updated_at: at,
    };
    repo::insert(&mut tx, &row).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.create",
        &format!("campaign:{}", row.id),
        &row.name,
        at,
    )
    .await?;
    commit(tx).await?;
    view(row)
}

/// Change a draft (what was submitted or approved is what runs).
pub async fn change(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    spec: CampaignSpec,
) -> AppResult<CampaignView> {
    caller.check(Action::CampaignManage, None)?;
    let mut tx = app.db.begin().await?;
    let spec_json = checked(&mut tx, &spec).await?;
    let at = now_ms();
    let changed = repo::update_draft(
        &mut tx,
        id,
        spec.name.trim(),
        spec.trigger.kind(),
        &spec_json,
        at,
    )
    .await?;
    if !changed {
        return Err(match repo::get(&mut tx, id).await? {
            None => AppError::NotFound { what: "campaign" },
            Some(row) => AppError::Conflict {
                code: "campaign_not_draft",
                message: format!(
                    "the campaign is {}; only a draft can be changed",
                    row.status
                ),
            },
        });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.change",
        &format!("campaign:{id}"),
        &spec.name,
        at,
    )
    .await?;
    let row = stored(&mut tx, id).await?;
    commit(tx).await?;
    view(row)
}

pub async fn get(app: &Regulars, caller: &Principal, id: &str) -> AppResult<CampaignView> {
    caller.check(Action::CampaignRead, None)?;
    let mut conn = app.db.reader().await?;
    view(stored(&mut conn, id).await?)
}

pub async fn list(
    app: &Regulars,
    caller: &Principal,
    status: Option<CampaignStatus>,
) -> AppResult<Vec<CampaignView>> {
    caller.check(Action::CampaignRead, None)?;
    let mut conn = app.db.reader().await?;
    repo::list(&mut conn, status.map(CampaignStatus::as_str))
        .await?
        .into_iter()
        .map(view)
        .collect()
}

/// The campaign `id`, or 404.
async fn stored(conn: &mut Conn, id: &str) -> AppResult<CampaignRow> {
    repo::get(conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "campaign" })
}

/// Members the campaign's audience holds now: its segment, or every member.
async fn audience_size(conn: &mut Conn, spec: &CampaignSpec) -> AppResult<i64> {
    match &spec.segment_id {
        Some(id) => {
            let saved = segments::get_saved(conn, id).await?.ok_or_else(|| {
                AppError::unprocessable("unknown_segment", format!("no saved segment {id}"))
            })?;
            let expr = regulars_core::segment::parse(&saved.expression)?;
            let compiled = segments::compile(&expr, now_ms(), None);
            Ok(segments::count(conn, &compiled).await?)
        }
        None => Ok(members::count_members(conn, None).await?),
    }
}

/// What a status change request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusRequest {
    Submit,
    Approve,
    Reject,
    Pause,
    Resume,
    End,
}

/// Move a campaign along its life. Submitting measures the audience: above
/// HQ's line the campaign waits for an approval, which its submitter cannot
/// give. Two callers acting at once: one wins, the other gets a 409.
pub async fn change_status(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    request: StatusRequest,
    note: Option<&str>,
) -> AppResult<CampaignView> {
    let action = match request {
        StatusRequest::Approve | StatusRequest::Reject => Action::CampaignApprove,
        _ => Action::CampaignManage,
    };
    caller.check(action, None)?;
    if note.is_some_and(|n| n.chars().count() > 500) {
        return Err(regulars_core::DomainError::invalid("note", "at most 500 characters").into());
    }
    let mut tx = app.db.begin().await?;
    let current = view(stored(&mut tx, id).await?)?;
    let mut estimate = None;
    let change = match request {
        StatusRequest::Submit => {
            let size = audience_size(&mut tx, &current.spec).await?;
            let line = stored_settings(&mut tx).await?.approval_above;
            estimate = Some(size);
            StatusChange::Submit {
                needs_approval: size > line,
            }
        }
        StatusRequest::Approve | StatusRequest::Reject => {
            if current.submitted_by.as_deref() == Some(caller.actor.as_str()) {
                return Err(AppError::unprocessable(
                    "own_campaign",
                    "a campaign is approved or rejected by someone other than who submitted it",
                ));
            }
            if request == StatusRequest::Approve {
                StatusChange::Approve
            } else {
                StatusChange::Reject
            }
        }
        StatusRequest::Pause => StatusChange::Pause,
        StatusRequest::Resume => StatusChange::Resume,
        StatusRequest::End => StatusChange::End,
    };
    let next = next_status(current.status, change).map_err(|e| AppError::Conflict {
        code: "campaign_status",
        message: e.to_string(),
    })?;
    let at = now_ms();
    let moved = repo::set_status(
        &mut tx,
        &StatusUpdate {
            id,
            from: current.status.as_str(),
            to: next.as_str(),
            submitted_by: (request == StatusRequest::Submit).then_some(caller.actor.as_str()),
            approved_by: (request == StatusRequest::Approve).then_some(caller.actor.as_str()),
            audience_estimate: estimate,
            at,
        },
    )
    .await?;
    if !moved {
        return Err(AppError::Conflict {
            code: "campaign_status",
            message: "the campaign changed meanwhile; read it again".into(),
        });
    }
    let detail = format!(
        "{} → {}{}",
        current.status.as_str(),
        next.as_str(),
        note.map(|n| format!(": {n}")).unwrap_or_default()
    );
    staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.status",
        &format!("campaign:{id}"),
        &detail,
        at,
    )
    .await?;
    let row = stored(&mut tx, id).await?;
    commit(tx).await?;
    view(row)
}
