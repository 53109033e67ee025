//! Brands, regions and stores.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct StoreRow {
    pub code: String,
    pub name: String,
    pub brand_code: String,
    pub brand_name: String,
    pub region_code: String,
    pub region_name: String,
    pub city: String,
    pub address: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT_STORE: &str = "SELECT s.code, s.name, s.brand_code, b.name AS brand_name, \
     s.region_code, r.name AS region_name, s.city, s.address, s.status, s.created_at, s.updated_at \
     FROM stores s JOIN brands b ON b.code = s.brand_code JOIN regions r ON r.code = s.region_code";

/// Create the brand if it does not exist yet.
pub async fn ensure_brand(
    conn: &mut AnyConnection,
    code: &str,
    name: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO brands (code, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(name)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Create the region (named within its brand) if needed; returns its code.
pub async fn ensure_region(
    conn: &mut AnyConnection,
    code: &str,
    brand_code: &str,
    name: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO regions (code, brand_code, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(brand_code)
    .bind(name)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub struct NewStore<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub brand_code: &'a str,
    pub region_code: &'a str,
    pub city: &'a str,
    pub address: Option<&'a str>,
}

/// Insert a store; `Conflict` on `stores…` when the code exists.
pub async fn insert_store(conn: &mut AnyConnection, s: NewStore<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO stores (code, name, brand_code, region_code, city, address, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7)",
    )
    .bind(s.code)
    .bind(s.name)
    .bind(s.brand_code)
    .bind(s.region_code)
    .bind(s.city)
    .bind(s.address)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_store(conn: &mut AnyConnection, code: &str) -> StoreResult<Option<StoreRow>> {
    sqlx::query_as::<_, StoreRow>(&format!("{SELECT_STORE} WHERE s.code = $1"))
        .bind(code)
        .fetch_optional(conn)
        .await
        .store()
}

/// All stores, or only `only` when the caller is store-scoped.
pub async fn list_stores(
    conn: &mut AnyConnection,
    only: Option<&str>,
) -> StoreResult<Vec<StoreRow>> {
    match only {
        Some(code) => Ok(get_store(conn, code).await?.into_iter().collect()),
        None => sqlx::query_as::<_, StoreRow>(&format!("{SELECT_STORE} ORDER BY s.code"))
            .fetch_all(conn)
            .await
            .store(),
    }
}

pub async fn count_stores(conn: &mut AnyConnection) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM stores")
        .fetch_one(conn)
        .await
        .store()
}

pub struct MenuItem<'a> {
    pub sku: &'a str,
    pub brand_code: &'a str,
    pub name: &'a str,
    pub category: &'a str,
    pub spice_level: i64,
    pub price_fen: i64,
    pub is_new: bool,
}

/// Add a dish, or update it when the SKU exists.
pub async fn upsert_menu_item(
    conn: &mut AnyConnection,
    item: &MenuItem<'_>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO menu_items (sku, brand_code, name, category, spice_level, price_fen, is_new, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sku) DO UPDATE SET name = excluded.name, \
         category = excluded.category, spice_level = excluded.spice_level, price_fen = excluded.price_fen, \
         is_new = excluded.is_new",
    )
    .bind(item.sku)
    .bind(item.brand_code)
    .bind(item.name)
    .bind(item.category)
    .bind(item.spice_level)
    .bind(item.price_fen)
    .bind(i64::from(item.is_new))
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}
