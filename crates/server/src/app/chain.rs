//! Brands, regions and stores.

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::chain::{parse_code, parse_name, region_code, DEFAULT_BRAND};
use regulars_store::chain::{self as repo, NewStore, StoreRow};
use regulars_store::{now_ms, staff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/stores`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStore {
    /// Stable code POS systems use, e.g. `CD001`.
    pub code: String,
    pub name: String,
    /// Region name within the brand, e.g. `西南`.
    pub region: String,
    pub city: String,
    /// Brand code; the default brand when absent.
    pub brand: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreView {
    pub code: String,
    pub name: String,
    pub brand: String,
    pub brand_name: String,
    pub region: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub status: String,
}

impl From<StoreRow> for StoreView {
    fn from(r: StoreRow) -> StoreView {
        StoreView {
            code: r.code,
            name: r.name,
            brand: r.brand_code,
            brand_name: r.brand_name,
            region: r.region_name,
            city: r.city,
            address: r.address,
            status: r.status,
        }
    }
}

pub async fn create_store(
    app: &Regulars,
    caller: &Principal,
    input: CreateStore,
) -> AppResult<StoreView> {
    caller.check(Action::StoreWrite, None)?;
    let code = parse_code("code", &input.code)?;
    let name = parse_name("name", &input.name)?;
    let region = parse_name("region", &input.region)?;
    let city = parse_name("city", &input.city)?;
    let brand = match &input.brand {
        Some(b) => parse_code("brand", b)?,
        None => DEFAULT_BRAND.to_string(),
    };
    let address = match &input.address {
        Some(a) => Some(parse_name("address", a)?),
        None => None,
    };
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let brand_name = if brand == DEFAULT_BRAND {
        "Default brand"
    } else {
        brand.as_str()
    };
    repo::ensure_brand(&mut tx, &brand, brand_name, now).await?;
    let region_code = region_code(&brand, &region);
    repo::ensure_region(&mut tx, &region_code, &brand, &region, now).await?;
    let inserted = repo::insert_store(
        &mut tx,
        NewStore {
            code: &code,
            name: &name,
            brand_code: &brand,
            region_code: &region_code,
            city: &city,
            address: address.as_deref(),
        },
        now,
    )
    .await;
    match inserted {
        Err(e) if e.is_conflict_on("stores") => {
            return Err(AppError::Conflict {
                code: "store_exists",
                message: format!("a store with code {code} already exists"),
            })
        }
        other => other?,
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "store.create",
        &format!("store:{code}"),
        "",
        now,
    )
    .await?;
    let row = repo::get_store(&mut tx, &code)
        .await?
        .ok_or(AppError::NotFound { what: "store" })?;
    regulars_store::commit(tx).await?;
    Ok(row.into())
}

pub async fn get_store(app: &Regulars, caller: &Principal, code: &str) -> AppResult<StoreView> {
    caller.check(Action::StoreRead, Some(code))?;
    let mut conn = app.db.reader().await?;
    repo::get_store(&mut conn, code)
        .await?
        .map(StoreView::from)
        .ok_or(AppError::NotFound { what: "store" })
}

pub async fn list_stores(app: &Regulars, caller: &Principal) -> AppResult<Vec<StoreView>> {
    caller.check(Action::StoreRead, None)?;
    let mut conn = app.db.reader().await?;
    let rows = repo::list_stores(&mut conn, caller.store_scope()).await?;
    Ok(rows.into_iter().map(StoreView::from).collect())
}

/// Fail with 422 `unknown_store` unless the store exists.
pub async fn require_store(app: &Regulars, code: &str) -> AppResult<()> {
    let mut conn = app.db.reader().await?;
    match repo::get_store(&mut conn, code).await? {
        Some(_) => Ok(()),
        None => Err(AppError::unprocessable(
            "unknown_store",
            format!("no store with code {code}"),
        )),
    }
}
