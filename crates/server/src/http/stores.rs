//! `/api/v1/stores`

use super::error::{ErrorBody, Result};
use super::extract::{Caller, Json, Path};
use super::ApiState;
use crate::app::chain::{self, CreateStore, StoreView};
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_store, list_stores))
        .routes(routes!(get_store))
}

/// Open a store (hq_admin). Brand and region are created when new.
#[utoipa::path(post, path = "/api/v1/stores", tag = "stores", request_body = CreateStore,
    responses((status = 201, body = StoreView), (status = 409, description = "store_exists", body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_store(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<CreateStore>,
) -> Result<(StatusCode, Json<StoreView>)> {
    let store = chain::create_store(&state.regulars, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(store)))
}

/// Every store the caller may see (a store-scoped key sees its own).
#[utoipa::path(get, path = "/api/v1/stores", tag = "stores",
    responses((status = 200, body = Vec<StoreView>), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_stores(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<StoreView>>> {
    Ok(Json(chain::list_stores(&state.regulars, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/stores/{code}", tag = "stores",
    params(("code" = String, Path, description = "store code")),
    responses((status = 200, body = StoreView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_store(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(code): Path<String>,
) -> Result<Json<StoreView>> {
    Ok(Json(
        chain::get_store(&state.regulars, &caller, &code).await?,
    ))
}
