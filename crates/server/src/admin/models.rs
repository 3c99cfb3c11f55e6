//! Global models and providers' models: CRUD with validation and the invalidation rows of
//! behaviour.md section 3.

use axum::Json;
use axum::extract::State;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use tollgate_catalogue::{GlobalModelFields, ModelFields};
use tollgate_entities::{
    GlobalModelConfig, JsonObject, ModelAlias, TieredPricing, global_models, models,
};

use super::crud::{Created, Edited, created_top, edited_by_id};
use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminIds, all_rows};
use super::providers::find_provider;
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

// `/api/admin/models/global/{id}`: a delete cascades to the providers' models of it.
edited_by_id!(GlobalModelFields, global_models, "global model");

// `POST /api/admin/models/global`.
created_top!(GlobalModelCreate => GlobalModelFields);

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

/// `/api/admin/providers/{pid}/models/{mid}`: the provider must exist, and the model be
/// one of its own.
impl Edited for ModelFields {
    type Path = AdminIds;
    type View = models::Model;

    async fn find(
        state: &AppState,
        AdminIds(provider_id, id): AdminIds,
    ) -> Result<models::Model, AdminError> {
        find_provider(state, &provider_id).await?;
        models::Entity::find_by_id(id.clone())
            .filter(models::Column::ProviderId.eq(provider_id))
            .one(state.conn())
            .await?
            .ok_or_else(|| AdminError::not_found("model", &id))
    }

    fn view(_: &AppState, row: models::Model) -> models::Model {
        row
    }
}

/// `POST /api/admin/providers/{id}/models`.
impl Created for ModelCreate {
    type Fields = ModelFields;
    type Path = AdminId;

    async fn parent(&self, state: &AppState, AdminId(id): AdminId) -> Result<String, AdminError> {
        find_provider(state, &id).await?;
        Ok(id)
    }
}

/// `GET /api/admin/providers/{id}/models`.
pub(crate) async fn list_models(
    _: Admin,
    State(state): State<AppState>,
    AdminId(provider_id): AdminId,
) -> Result<Json<Vec<models::Model>>, AdminError> {
    find_provider(&state, &provider_id).await?;
    all_rows(
        &state,
        models::Entity::find()
            .filter(models::Column::ProviderId.eq(provider_id))
            .order_by_asc(models::Column::ProviderModelName),
    )
    .await
}
