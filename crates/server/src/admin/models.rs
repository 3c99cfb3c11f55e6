//! Global models and providers' models: CRUD with validation and the invalidation rows of
//! behaviour.md section 3.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel,
    ModelTrait, QueryFilter, QueryOrder,
};
use serde::Deserialize;
use tollgate_entities::insert_row;
use tollgate_entities::{
    GlobalModelConfig, JsonObject, ModelAlias, ModelAliases, TieredPricing, global_models, models,
    new_id, now_utc, providers,
};

use super::extract::{Admin, AdminId, AdminIds, AdminJson, nullable};
use super::{AdminError, ensure_unique, find_or_404};
use crate::app::AppState;
use tollgate_catalogue::rules as validate;

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

/// `PATCH /api/admin/models/global/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobalModelUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    default_tiered_pricing: Option<TieredPricing>,
    #[serde(default, deserialize_with = "nullable")]
    default_price_per_request: Option<Option<f64>>,
    #[serde(default)]
    supported_capabilities: Option<Vec<String>>,
    #[serde(default)]
    config: Option<GlobalModelConfig>,
    #[serde(default)]
    is_active: Option<bool>,
}

async fn find_global(state: &AppState, id: &str) -> Result<global_models::Model, AdminError> {
    find_or_404::<global_models::Entity>(state, "global model", id).await
}

async fn ensure_unique_global_name(
    state: &AppState,
    name: &str,
    except: Option<&str>,
) -> Result<(), AdminError> {
    let condition = Condition::all().add(global_models::Column::Name.eq(name));
    ensure_unique::<global_models::Entity>(
        state,
        global_models::Column::Id,
        condition,
        except,
        || format!("a global model named `{name}` already exists"),
    )
    .await
}

/// `GET /api/admin/models/global`.
pub(crate) async fn list_global(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<global_models::Model>>, AdminError> {
    let rows = global_models::Entity::find()
        .order_by_asc(global_models::Column::Name)
        .all(state.conn())
        .await?;
    Ok(Json(rows))
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
    let name = validate::model_name("name", &body.name, 100)?;
    validate::pricing("default_tiered_pricing", &body.default_tiered_pricing)?;
    let config = body.config.unwrap_or_default();
    validate::json("config", &config)?;
    ensure_unique_global_name(&state, &name, None).await?;
    let now = now_utc();
    let row = global_models::Model {
        id: new_id(),
        display_name: match body.display_name {
            Some(display) => validate::name("display_name", &display, 255)?,
            None => name.clone(),
        },
        name,
        default_price_per_request: validate::PRICE_PER_REQUEST
            .check_optional("default_price_per_request", body.default_price_per_request)?,
        default_tiered_pricing: body.default_tiered_pricing,
        supported_capabilities: validate::capabilities(
            "supported_capabilities",
            &body.supported_capabilities.unwrap_or_default(),
        )?,
        config,
        is_active: body.is_active,
        usage_count: 0,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    state.resolver().global_model_created(&stored).await;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/models/global/{id}`.
pub(crate) async fn update_global(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<GlobalModelUpdate>,
) -> Result<Json<global_models::Model>, AdminError> {
    let before = find_global(&state, &id).await?;
    let mut active = before.clone().into_active_model();
    if let Some(name) = body.name {
        let name = validate::model_name("name", &name, 100)?;
        ensure_unique_global_name(&state, &name, Some(&id)).await?;
        active.name = Set(name);
    }
    if let Some(display) = body.display_name {
        active.display_name = Set(validate::name("display_name", &display, 255)?);
    }
    if let Some(pricing) = body.default_tiered_pricing {
        validate::pricing("default_tiered_pricing", &pricing)?;
        active.default_tiered_pricing = Set(pricing);
    }
    if let Some(price) = body.default_price_per_request {
        active.default_price_per_request =
            Set(validate::PRICE_PER_REQUEST.check_optional("default_price_per_request", price)?);
    }
    if let Some(values) = body.supported_capabilities {
        active.supported_capabilities =
            Set(validate::capabilities("supported_capabilities", &values)?);
    }
    if let Some(config) = body.config {
        validate::json("config", &config)?;
        active.config = Set(config);
    }
    if let Some(is_active) = body.is_active {
        active.is_active = Set(is_active);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    let models = before
        .find_related(models::Entity)
        .all(state.conn())
        .await?;
    state
        .resolver()
        .global_model_changed(&before, Some(&after), &models)
        .await;
    Ok(Json(after))
}

/// `DELETE /api/admin/models/global/{id}`: cascades to the providers' models of it.
pub(crate) async fn delete_global(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    let before = find_global(&state, &id).await?;
    let models = before
        .find_related(models::Entity)
        .all(state.conn())
        .await?;
    global_models::Entity::delete_by_id(id)
        .exec(state.conn())
        .await?;
    state
        .resolver()
        .global_model_changed(&before, None, &models)
        .await;
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

/// `PATCH /api/admin/providers/{pid}/models/{mid}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelUpdate {
    #[serde(default)]
    global_model_id: Option<String>,
    #[serde(default)]
    provider_model_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    provider_model_aliases: Option<Option<Vec<ModelAlias>>>,
    #[serde(default, deserialize_with = "nullable")]
    price_per_request: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    tiered_pricing: Option<Option<TieredPricing>>,
    #[serde(default, deserialize_with = "nullable")]
    supports_vision: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    supports_function_calling: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    supports_streaming: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    supports_extended_thinking: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    supports_image_generation: Option<Option<bool>>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    is_available: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    config: Option<Option<JsonObject>>,
}

fn own_pricing(pricing: Option<TieredPricing>) -> Result<Option<TieredPricing>, AdminError> {
    if let Some(pricing) = &pricing {
        validate::pricing("tiered_pricing", pricing)?;
    }
    Ok(pricing)
}

fn own_config(config: Option<JsonObject>) -> Result<Option<JsonObject>, AdminError> {
    if let Some(config) = &config {
        validate::json("config", config)?;
    }
    Ok(config)
}

fn aliases(values: Option<Vec<ModelAlias>>) -> Result<Option<ModelAliases>, AdminError> {
    Ok(values
        .map(|values| validate::aliases("provider_model_aliases", values))
        .transpose()?)
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

/// The global model `id` refers to must exist; the id is checked before any query sees it.
async fn ensure_global_reference(state: &AppState, id: &str) -> Result<(), AdminError> {
    let id = validate::id("global_model_id", id)?;
    match global_models::Entity::find_by_id(id.clone())
        .one(state.conn())
        .await?
    {
        Some(_) => Ok(()),
        None => Err(AdminError::invalid_field(
            "global_model_id",
            format!("global model `{id}` does not exist"),
        )),
    }
}

async fn ensure_unique_model_name(
    state: &AppState,
    provider_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), AdminError> {
    let condition = Condition::all()
        .add(models::Column::ProviderId.eq(provider_id))
        .add(models::Column::ProviderModelName.eq(name));
    ensure_unique::<models::Entity>(state, models::Column::Id, condition, except, || {
        format!("provider `{provider_id}` already has a model named `{name}`")
    })
    .await
}

/// `GET /api/admin/providers/{id}/models`.
pub(crate) async fn list_models(
    _: Admin,
    State(state): State<AppState>,
    AdminId(provider_id): AdminId,
) -> Result<Json<Vec<models::Model>>, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let rows = models::Entity::find()
        .filter(models::Column::ProviderId.eq(provider_id))
        .order_by_asc(models::Column::ProviderModelName)
        .all(state.conn())
        .await?;
    Ok(Json(rows))
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
    let name = validate::model_name("provider_model_name", &body.provider_model_name, 200)?;
    ensure_global_reference(&state, &body.global_model_id).await?;
    ensure_unique_model_name(&state, &provider_id, &name, None).await?;
    let now = now_utc();
    let row = models::Model {
        id: new_id(),
        provider_id,
        global_model_id: body.global_model_id,
        provider_model_name: name,
        provider_model_aliases: aliases(body.provider_model_aliases)?,
        price_per_request: validate::PRICE_PER_REQUEST
            .check_optional("price_per_request", body.price_per_request)?,
        tiered_pricing: own_pricing(body.tiered_pricing)?,
        supports_vision: body.supports_vision,
        supports_function_calling: body.supports_function_calling,
        supports_streaming: body.supports_streaming,
        supports_extended_thinking: body.supports_extended_thinking,
        supports_image_generation: body.supports_image_generation,
        is_active: body.is_active,
        is_available: body.is_available,
        config: own_config(body.config)?,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    state.resolver().model_created(&stored).await;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/providers/{pid}/models/{mid}`.
pub(crate) async fn update_model(
    _: Admin,
    State(state): State<AppState>,
    AdminIds(provider_id, id): AdminIds,
    AdminJson(body): AdminJson<ModelUpdate>,
) -> Result<Json<models::Model>, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let before = find_model(&state, &provider_id, &id).await?;
    let mut active = before.clone().into_active_model();
    if let Some(global) = body.global_model_id {
        ensure_global_reference(&state, &global).await?;
        active.global_model_id = Set(global);
    }
    if let Some(name) = body.provider_model_name {
        let name = validate::model_name("provider_model_name", &name, 200)?;
        ensure_unique_model_name(&state, &provider_id, &name, Some(&id)).await?;
        active.provider_model_name = Set(name);
    }
    if let Some(values) = body.provider_model_aliases {
        active.provider_model_aliases = Set(aliases(values)?);
    }
    if let Some(price) = body.price_per_request {
        active.price_per_request =
            Set(validate::PRICE_PER_REQUEST.check_optional("price_per_request", price)?);
    }
    if let Some(pricing) = body.tiered_pricing {
        active.tiered_pricing = Set(own_pricing(pricing)?);
    }
    if let Some(value) = body.supports_vision {
        active.supports_vision = Set(value);
    }
    if let Some(value) = body.supports_function_calling {
        active.supports_function_calling = Set(value);
    }
    if let Some(value) = body.supports_streaming {
        active.supports_streaming = Set(value);
    }
    if let Some(value) = body.supports_extended_thinking {
        active.supports_extended_thinking = Set(value);
    }
    if let Some(value) = body.supports_image_generation {
        active.supports_image_generation = Set(value);
    }
    if let Some(value) = body.is_active {
        active.is_active = Set(value);
    }
    if let Some(value) = body.is_available {
        active.is_available = Set(value);
    }
    if let Some(config) = body.config {
        active.config = Set(own_config(config)?);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    state.resolver().model_changed(&before, Some(&after)).await;
    Ok(Json(after))
}

/// `DELETE /api/admin/providers/{pid}/models/{mid}`.
pub(crate) async fn delete_model(
    _: Admin,
    State(state): State<AppState>,
    AdminIds(provider_id, id): AdminIds,
) -> Result<StatusCode, AdminError> {
    ensure_provider(&state, &provider_id).await?;
    let before = find_model(&state, &provider_id, &id).await?;
    models::Entity::delete_by_id(id).exec(state.conn()).await?;
    state.resolver().model_changed(&before, None).await;
    Ok(StatusCode::NO_CONTENT)
}
