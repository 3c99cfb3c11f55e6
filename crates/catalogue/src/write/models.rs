//! Global models and providers' models: one upsert and one delete each.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel};
use serde::Deserialize;
use tollgate_entities::{
    GlobalModelConfig, JsonObject, ModelAlias, TieredPricing, global_models, models, new_id,
    now_utc,
};

use super::common::sealed::{Doomed, Upsert};
use super::common::{
    Fields, Slot, Stale, Target, Written, check, ensure_unique, inserted, models_where, required,
    set_given, updated,
};
use crate::error::CatalogError;
use crate::rules::{self, Invalid};
use crate::secret_box::SecretBox;

/// A global model's fields, also the body of `PATCH /api/admin/models/global/{id}`. Absent
/// fields keep their value; a new global model needs `name` and `default_tiered_pricing` and
/// defaults to its name as `display_name`, no capabilities, an empty config and active.
/// `null` clears `default_price_per_request`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalModelFields {
    /// The canonical name clients ask for, at most 100 bytes.
    pub name: Option<String>,
    /// Display name, at most 255 bytes.
    pub display_name: Option<String>,
    /// Default prices.
    pub default_tiered_pricing: Option<TieredPricing>,
    /// Default price per request, 0 to 1000 USD.
    #[serde(deserialize_with = "super::common::nullable")]
    pub default_price_per_request: Option<Option<f64>>,
    /// Capability names.
    pub supported_capabilities: Option<Vec<String>>,
    /// Configuration object.
    pub config: Option<GlobalModelConfig>,
    /// Active.
    pub is_active: Option<bool>,
}

/// A global model is deleted with the providers' models of it (the database cascades); its
/// entries and theirs, read before the cascade, are invalidated.
impl Doomed for global_models::Model {
    type Active = global_models::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, conn: &C) -> Result<Stale, DbErr> {
        let models = models_where(conn, models::Column::GlobalModelId.eq(&self.id)).await?;
        Ok(Stale::GlobalModel {
            before: self.clone(),
            after: None,
            models: Some(models),
        })
    }
}

async fn unique_global_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    ensure_unique::<global_models::Entity, _>(
        conn,
        global_models::Column::Id,
        global_models::Column::Name.eq(name),
        except,
        || format!("a global model named `{name}` already exists"),
    )
    .await
}

/// The global model upsert: [`Target::Named`] goes by `name`. Its entries are invalidated (a
/// new one clears a cached "missing" for its name).
impl Fields for GlobalModelFields {
    type Row = global_models::Model;
    type Parent = ();
}

impl Upsert for GlobalModelFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<global_models::Model>,
    ) -> Result<Written<global_models::Model>, CatalogError> {
        let GlobalModelFields {
            name,
            display_name,
            default_tiered_pricing,
            default_price_per_request,
            supported_capabilities,
            config,
            is_active,
        } = self;
        let name = check(name, |name| rules::model_name("name", &name, 100))?;
        if let Some(pricing) = &default_tiered_pricing {
            rules::pricing("default_tiered_pricing", pricing)?;
        }
        if let Some(config) = &config {
            rules::json("config", config)?;
        }
        let display_name = check(display_name, |display| {
            rules::name("display_name", &display, 255)
        })?;
        let default_price_per_request = check(default_price_per_request, |price| {
            rules::PRICE_PER_REQUEST.check_optional("default_price_per_request", price)
        })?;
        let supported_capabilities = check(supported_capabilities, |values| {
            rules::capabilities("supported_capabilities", &values)
        })?;
        let named =
            |(): &()| Ok(global_models::Column::Name.eq(required("name", name.as_deref())?));
        let slot = target
            .slot::<global_models::Entity, _, _>(conn, named)
            .await?;
        if let Some(name) = &name {
            let except = slot.stored().map(|row| row.id.as_str());
            unique_global_name(conn, name, except).await?;
        }
        match slot {
            Slot::Insert(()) => {
                let name = required("name", name)?;
                let default_tiered_pricing =
                    required("default_tiered_pricing", default_tiered_pricing)?;
                let now = now_utc();
                let row = global_models::Model {
                    id: new_id(),
                    display_name: display_name.unwrap_or_else(|| name.clone()),
                    name,
                    default_price_per_request: default_price_per_request.flatten(),
                    default_tiered_pricing,
                    supported_capabilities: supported_capabilities.unwrap_or_default(),
                    config: config.unwrap_or_default(),
                    is_active: is_active.unwrap_or(true),
                    usage_count: 0,
                    created_at: now,
                    updated_at: now,
                };
                inserted(conn, row, |stored| {
                    Stale::GlobalModelCreated(stored.clone())
                })
                .await
            }
            Slot::Update(before) => {
                let mut row = before.clone().into_active_model();
                set_given!(
                    row: name,
                    display_name,
                    default_tiered_pricing,
                    default_price_per_request,
                    supported_capabilities,
                    config,
                    is_active,
                );
                let stale = |after: &global_models::Model| Stale::GlobalModel {
                    before,
                    after: Some(after.clone()),
                    models: None,
                };
                updated(conn, row, global_models::Column::UpdatedAt, stale).await
            }
        }
    }
}

/// A provider's model's fields, also the body of
/// `PATCH /api/admin/providers/{pid}/models/{mid}`. Absent fields keep their value; a new
/// model needs `global_model_id` and `provider_model_name` and defaults to no aliases, the
/// global model's prices, unknown capabilities, active and available. `null` clears a
/// nullable field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelFields {
    /// The global model it implements; it must exist.
    pub global_model_id: Option<String>,
    /// The name the provider's API expects, unique per provider, at most 200 bytes.
    pub provider_model_name: Option<String>,
    /// Alternative upstream names.
    #[serde(deserialize_with = "super::common::nullable")]
    pub provider_model_aliases: Option<Option<Vec<ModelAlias>>>,
    /// Own price per request, 0 to 1000 USD.
    #[serde(deserialize_with = "super::common::nullable")]
    pub price_per_request: Option<Option<f64>>,
    /// Own prices.
    #[serde(deserialize_with = "super::common::nullable")]
    pub tiered_pricing: Option<Option<TieredPricing>>,
    /// Accepts images.
    #[serde(deserialize_with = "super::common::nullable")]
    pub supports_vision: Option<Option<bool>>,
    /// Supports tool calls.
    #[serde(deserialize_with = "super::common::nullable")]
    pub supports_function_calling: Option<Option<bool>>,
    /// Can stream.
    #[serde(deserialize_with = "super::common::nullable")]
    pub supports_streaming: Option<Option<bool>>,
    /// Supports extended thinking.
    #[serde(deserialize_with = "super::common::nullable")]
    pub supports_extended_thinking: Option<Option<bool>>,
    /// Generates images.
    #[serde(deserialize_with = "super::common::nullable")]
    pub supports_image_generation: Option<Option<bool>>,
    /// Active.
    pub is_active: Option<bool>,
    /// Available.
    pub is_available: Option<bool>,
    /// Free-form configuration object.
    #[serde(deserialize_with = "super::common::nullable")]
    pub config: Option<Option<JsonObject>>,
}

/// A model's delete invalidates its entries.
impl Doomed for models::Model {
    type Active = models::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, _: &C) -> Result<Stale, DbErr> {
        Ok(Stale::Model {
            before: self.clone(),
            after: None,
        })
    }
}

async fn unique_model_name<C: ConnectionTrait>(
    conn: &C,
    provider_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    ensure_unique::<models::Entity, _>(
        conn,
        models::Column::Id,
        sea_orm::Condition::all()
            .add(models::Column::ProviderId.eq(provider_id))
            .add(models::Column::ProviderModelName.eq(name)),
        except,
        || format!("provider `{provider_id}` already has a model named `{name}`"),
    )
    .await
}

/// The model upsert under a provider id: [`Target::Named`] goes by provider and
/// `provider_model_name`. Its entries are invalidated (for an update, under the old and the
/// new names).
impl Fields for ModelFields {
    type Row = models::Model;
    type Parent = String;
}

impl Upsert for ModelFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<models::Model, String>,
    ) -> Result<Written<models::Model>, CatalogError> {
        let fields = self;
        let name = check(fields.provider_model_name, |name| {
            rules::model_name("provider_model_name", &name, 200)
        })?;
        let global_model_id = check(fields.global_model_id, |id| {
            rules::id("global_model_id", &id)
        })?;
        let aliases = check(fields.provider_model_aliases, |aliases| {
            check(aliases, |aliases| {
                rules::aliases("provider_model_aliases", aliases)
            })
        })?;
        let price_per_request = check(fields.price_per_request, |price| {
            rules::PRICE_PER_REQUEST.check_optional("price_per_request", price)
        })?;
        if let Some(Some(pricing)) = &fields.tiered_pricing {
            rules::pricing("tiered_pricing", pricing)?;
        }
        if let Some(Some(config)) = &fields.config {
            rules::json("config", config)?;
        }
        if let Some(id) = &global_model_id
            && global_models::Entity::find_by_id(id.clone())
                .one(conn)
                .await?
                .is_none()
        {
            let reason = format!("global model `{id}` does not exist");
            return Err(Invalid::new("global_model_id", reason).into());
        }
        let named = |provider_id: &String| {
            let name = required("provider_model_name", name.as_deref())?;
            Ok(sea_orm::Condition::all()
                .add(models::Column::ProviderId.eq(provider_id))
                .add(models::Column::ProviderModelName.eq(name)))
        };
        match target.slot::<models::Entity, _, _>(conn, named).await? {
            Slot::Insert(provider_id) => {
                let name = required("provider_model_name", name)?;
                unique_model_name(conn, &provider_id, &name, None).await?;
                let now = now_utc();
                let row = models::Model {
                    id: new_id(),
                    provider_id,
                    global_model_id: required("global_model_id", global_model_id)?,
                    provider_model_name: name,
                    provider_model_aliases: aliases.flatten(),
                    price_per_request: price_per_request.flatten(),
                    tiered_pricing: fields.tiered_pricing.flatten(),
                    supports_vision: fields.supports_vision.flatten(),
                    supports_function_calling: fields.supports_function_calling.flatten(),
                    supports_streaming: fields.supports_streaming.flatten(),
                    supports_extended_thinking: fields.supports_extended_thinking.flatten(),
                    supports_image_generation: fields.supports_image_generation.flatten(),
                    is_active: fields.is_active.unwrap_or(true),
                    is_available: fields.is_available.unwrap_or(true),
                    config: fields.config.flatten(),
                    created_at: now,
                    updated_at: now,
                };
                inserted(conn, row, |stored| Stale::ModelCreated(stored.clone())).await
            }
            Slot::Update(before) => {
                if let Some(name) = &name {
                    unique_model_name(conn, &before.provider_id, name, Some(&before.id)).await?;
                }
                let mut row = before.clone().into_active_model();
                set_given!(
                    row: global_model_id,
                    provider_model_name = name,
                    provider_model_aliases = aliases,
                    price_per_request,
                    tiered_pricing = fields.tiered_pricing,
                    supports_vision = fields.supports_vision,
                    supports_function_calling = fields.supports_function_calling,
                    supports_streaming = fields.supports_streaming,
                    supports_extended_thinking = fields.supports_extended_thinking,
                    supports_image_generation = fields.supports_image_generation,
                    is_active = fields.is_active,
                    is_available = fields.is_available,
                    config = fields.config,
                );
                let stale = |after: &models::Model| Stale::Model {
                    before,
                    after: Some(after.clone()),
                };
                updated(conn, row, models::Column::UpdatedAt, stale).await
            }
        }
    }
}
