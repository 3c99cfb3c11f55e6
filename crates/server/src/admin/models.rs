//! Global models and providers' models: CRUD with validation and the invalidation rows of
//! behaviour.md section 3.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use tollgate_catalogue::{self as catalogue, GlobalModelFields, ModelFields, Target};
use tollgate_entities::{
    GlobalModelConfig, JsonObject, ModelAlias, TieredPricing, global_models, models, providers,
};

use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminIds, AdminJson, all_rows, find_or_404};
use crate::app::AppState;

fn default_true() -> bool {
    true
}

/// `POST /api/admin/models/global`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobalModelCreate {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    default_tiered_pricing: TieredPricing,
    #[serde(default)]
    default_price_per_request: Option<f64>,
    #[serde(default)]
    supported_capabilities: Option<Vec<String>>,
    #[serde(default)]
    config: Option<GlobalModelConfig>,
    #[serde(default = "default_true")]
    is_active: bool,
}

impl From<GlobalModelCreate> for GlobalModelFields {
    fn from(body: GlobalModelCreate) -> Self {
        Self {
            name: Some(body.name),
            display_name: body.display_name,
            default_tiered_pricing: Some(body.default_tiered_pricing),
            default_price_per_request: Some(body.default_price_per_request),
            supported_capabilities: body.supported_capabilities,
            config: body.config,
            is_active: Some(body.is_active),
        }
    }
}

async fn find_global(state: &AppState, id: &str) -> Result<global_models::Model, AdminError> {
    find_or_404::<global_models::Entity>(state, "global model", id).await
}

/// `GET /api/admin/models/global`.
pub(crate) async fn list_global(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<global_models::Model>>, AdminError> {
    all_rows(
        &state,
        global_models::Entity::find().order_by_asc(global_models::Column::Name),
    )
    .await
}

/// `GET /api/admin/models/global/{id}`.
pub(crate) async fn get_global(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<Json<global_models::Model>, AdminError> {
    Ok(Json(find_global(&state, &id).await?))
}

/// `POST /api/admin/models/global`.
pub(crate) async fn create_global(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<GlobalModelCreate>,
) -> Result<Response, AdminError> {
    let stored = catalogue::write_global_model(&state, Target::New(()), body.into()).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/models/global/{id}`.
pub(crate) async fn update_global(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<GlobalModelFields>,
) -> Result<Json<global_models::Model>, AdminError> {
    let before = find_global(&state, &id).await?;
    let after = catalogue::write_global_model(&state, Target::Stored(before), body).await?;
    Ok(Json(after))
}

/// `DELETE /api/admin/models/global/{id}`: cascades to the providers' models of it.
pub(crate) async fn delete_global(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    let before = find_global(&state, &id).await?;
    catalogue::delete_global_model(&state, before).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/providers/{id}/models`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelCreate {
    global_model_id: String,
    provider_model_name: String,
    #[serde(default)]
    provider_model_aliases: Option<Vec<ModelAlias>>,
    #[serde(default)]
    price_per_request: Option<f64>,
    #[serde(default)]
    tiered_pricing: Option<TieredPricing>,
    #[serde(default)]
    supports_vision: Option<bool>,
    #[serde(default)]
    supports_function_calling: Option<bool>,
    #[serde(default)]
    supports_streaming: Option<bool>,
    #[serde(default)]
    supports_extended_thinking: Option<bool>,
    #[serde(default)]
    supports_image_generation: Option<bool>,
    #[serde(default = "default_true")]
    is_active: bool,
    #[serde(default = "default_true")]
    is_available: bool,
    #[serde(default)]
    config: Option<JsonObject>,
}

impl From<ModelCreate> for ModelFields {
    fn from(body: ModelCreate) -> Self {
        Self {
            global_model_id: Some(body.global_model_id),
            provider_model_name: Some(body.provider_model_name),
            provider_model_aliases: Some(body.provider_model_aliases),
            price_per_request: Some(body.price_per_request),
            tiered_pricing: Some(body.tiered_pricing),
            supports_vision: Some(body.supports_vision),
            supports_function_calling: Some(body.supports_function_calling),
            supports_streaming: Some(body.supports_streaming),
            supports_extended_thinking: Some(body.supports_extended_thinking),
            supports_image_generation: Some(body.supports_image_generation),
            is_active: Some(body.is_active),
            is_available: Some(body.is_available),
            config: Some(body.config),
        }
    }
}

async fn find_model(
    state: &AppState,
    provider_id: &str,
    id: &str,
) -> Result<models::Model, AdminError> {
    models::Entity::find_by_id(id.to_owned())
        .filter(models::Column::ProviderId.eq(provider_id))
        .one(state.conn())
        .await?
        .ok_or_else(|| AdminError::not_found("model", id))
}

async fn ensure_provider(state: &AppState, id: &str) -> Result<(), AdminError> {
    find_or_404::<providers::Entity>(state, "provider", id)
        .await
        .map(|_| ())
}

/// `GET /api/admin/providers/{id}/models`.
pub(crate) async fn list_models(
    _: Admin,
    State(state): State<AppState>,
    AdminId(provider_id): AdminId,
) -> Result<Json<Vec<models::Model>>, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    all_rows(
        &state,
        models::Entity::find()
            .filter(models::Column::ProviderId.eq(provider_id))
            .order_by_asc(models::Column::ProviderModelName),
    )
    .await
}

/// `GET /api/admin/providers/{pid}/models/{mid}`.
pub(crate) async fn get_model(
    _: Admin,
    State(state): State<AppState>,
    AdminIds(provider_id, id): AdminIds,
) -> Result<Json<models::Model>, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    Ok(Json(find_model(&state, &provider_id, &id).await?))
}

/// `POST /api/admin/providers/{id}/models`.
pub(crate) async fn create_model(
    _: Admin,
    State(state): State<AppState>,
    AdminId(provider_id): AdminId,
    AdminJson(body): AdminJson<ModelCreate>,
) -> Result<Response, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let target = Target::New(provider_id.as_str());
    let stored = catalogue::write_model(&state, target, body.into()).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/providers/{pid}/models/{mid}`.
pub(crate) async fn update_model(
    _: Admin,
    State(state): State<AppState>,
    AdminIds(provider_id, id): AdminIds,
    AdminJson(body): AdminJson<ModelFields>,
) -> Result<Json<models::Model>, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let before = find_model(&state, &provider_id, &id).await?;
    Ok(Json(
        catalogue::write_model(&state, Target::Stored(before), body).await?,
    ))
}

/// `DELETE /api/admin/providers/{pid}/models/{mid}`.
pub(crate) async fn delete_model(
    _: Admin,
    State(state): State<AppState>,
    AdminIds(provider_id, id): AdminIds,
) -> Result<StatusCode, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let before = find_model(&state, &provider_id, &id).await?;
    catalogue::delete_model(&state, before).await?;
    Ok(StatusCode::NO_CONTENT)
}
