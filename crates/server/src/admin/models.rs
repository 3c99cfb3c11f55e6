//! Global models and providers' models: CRUD with validation and the invalidation rows of
//! behaviour.md section 3.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use tollgate_catalogue::{GlobalModelFields, ModelFields, ProviderFields};
use tollgate_entities::{
    GlobalModelConfig, JsonObject, ModelAlias, TieredPricing, global_models, models,
};

use super::crud::{Edited, created, edited_by_id, listed};
use super::error::AdminError;
use super::extract::AdminIds;
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

// `/api/admin/models/global`, by name.
listed!(GlobalModelFields, global_models, [Name]);
created!(GlobalModelCreate => GlobalModelFields);

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

// `/api/admin/providers/{id}/models`, by name: the provider must exist.
listed!(ModelFields, models under ProviderFields, by ProviderId, [ProviderModelName]);
created!(ModelCreate => ModelFields);
