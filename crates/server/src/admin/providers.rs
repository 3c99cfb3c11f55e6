//! Providers, their endpoints and upstream keys: CRUD with validation and invalidation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use tollgate_entities::insert_row;
use tollgate_entities::{
    AllowedModels, ApiFormat, BillingType, Headers, JsonObject, new_id, now_utc, provider_api_keys,
    provider_endpoints, providers,
};

use tollgate_catalogue::rules as validate;

use super::extract::{Admin, AdminId, AdminJson, nullable};
use super::{AdminError, ensure_unique, find_or_404, provider_models, routes_changed_for_provider};
use crate::app::AppState;

fn default_true() -> bool {
    true
}

/// `POST /api/admin/providers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderCreate {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    billing_type: Option<BillingType>,
    #[serde(default)]
    provider_priority: Option<i32>,
    #[serde(default = "default_true")]
    is_active: bool,
    #[serde(default)]
    config: Option<JsonObject>,
}

/// `PATCH /api/admin/providers/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    billing_type: Option<BillingType>,
    #[serde(default)]
    provider_priority: Option<i32>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    config: Option<Option<JsonObject>>,
}

async fn find_provider(state: &AppState, id: &str) -> Result<providers::Model, AdminError> {
    find_or_404::<providers::Entity>(state, "provider", id).await
}

async fn ensure_unique_provider_name(
    state: &AppState,
    name: &str,
    except: Option<&str>,
) -> Result<(), AdminError> {
    let condition = Condition::all().add(providers::Column::Name.eq(name));
    ensure_unique::<providers::Entity>(state, providers::Column::Id, condition, except, || {
        format!("a provider named `{name}` already exists")
    })
    .await
}

/// `GET /api/admin/providers`: every provider by priority, then name.
pub(crate) async fn list(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<providers::Model>>, AdminError> {
    let rows = providers::Entity::find()
        .order_by_asc(providers::Column::ProviderPriority)
        .order_by_asc(providers::Column::Name)
        .all(state.conn())
        .await?;
    Ok(Json(rows))
}

/// `GET /api/admin/providers/{id}`.
pub(crate) async fn get(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<Json<providers::Model>, AdminError> {
    Ok(Json(find_provider(&state, &id).await?))
}

/// `POST /api/admin/providers`.
pub(crate) async fn create(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<ProviderCreate>,
) -> Result<Response, AdminError> {
    let name = validate::name("name", &body.name, 100)?;
    let priority =
        validate::PRIORITY.check("provider_priority", body.provider_priority.unwrap_or(100))?;
    let config = body
        .config
        .map(|config| validate::json("config", &config).map(|()| config))
        .transpose()?;
    ensure_unique_provider_name(&state, &name, None).await?;
    let now = now_utc();
    let row = providers::Model {
        id: new_id(),
        display_name: match body.display_name {
            Some(display) => validate::name("display_name", &display, 255)?,
            None => name.clone(),
        },
        name,
        billing_type: body.billing_type.unwrap_or(BillingType::PayAsYouGo),
        provider_priority: priority,
        is_active: body.is_active,
        config,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    // A new provider has no models yet: nothing cached can depend on it.
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/providers/{id}`.
pub(crate) async fn update(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<ProviderUpdate>,
) -> Result<Json<providers::Model>, AdminError> {
    let before = find_provider(&state, &id).await?;
    let mut active = before.clone().into_active_model();
    if let Some(name) = body.name {
        let name = validate::name("name", &name, 100)?;
        ensure_unique_provider_name(&state, &name, Some(&id)).await?;
        active.name = Set(name);
    }
    if let Some(display) = body.display_name {
        active.display_name = Set(validate::name("display_name", &display, 255)?);
    }
    if let Some(billing) = body.billing_type {
        active.billing_type = Set(billing);
    }
    if let Some(priority) = body.provider_priority {
        active.provider_priority = Set(validate::PRIORITY.check("provider_priority", priority)?);
    }
    if let Some(is_active) = body.is_active {
        active.is_active = Set(is_active);
    }
    if let Some(config) = body.config {
        if let Some(object) = &config {
            validate::json("config", object)?;
        }
        active.config = Set(config);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    let models = provider_models(&state, &id).await?;
    state.resolver().provider_changed(&models).await;
    Ok(Json(after))
}

/// `DELETE /api/admin/providers/{id}`: cascades to its endpoints, keys and models.
pub(crate) async fn delete(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    find_provider(&state, &id).await?;
    // Read what the cascade removes before it happens: those are the keys to invalidate.
    let models = provider_models(&state, &id).await?;
    providers::Entity::delete_by_id(id)
        .exec(state.conn())
        .await?;
    state.resolver().provider_changed(&models).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/providers/{id}/endpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointCreate {
    api_format: ApiFormat,
    base_url: String,
    #[serde(default)]
    headers: Option<Headers>,
    #[serde(default)]
    timeout: Option<i32>,
    #[serde(default)]
    max_retries: Option<i32>,
    #[serde(default = "default_true")]
    is_active: bool,
}

/// `PATCH /api/admin/endpoints/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointUpdate {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    headers: Option<Option<Headers>>,
    #[serde(default)]
    timeout: Option<i32>,
    #[serde(default)]
    max_retries: Option<i32>,
    #[serde(default)]
    is_active: Option<bool>,
}

fn checked_headers(headers: Headers) -> Result<Headers, AdminError> {
    validate::headers("headers", &headers.0)?;
    Ok(headers)
}

async fn find_endpoint(
    state: &AppState,
    id: &str,
) -> Result<provider_endpoints::Model, AdminError> {
    find_or_404::<provider_endpoints::Entity>(state, "endpoint", id).await
}

/// `GET /api/admin/providers/{id}/endpoints`.
pub(crate) async fn list_endpoints(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<Json<Vec<provider_endpoints::Model>>, AdminError> {
    find_provider(&state, &id).await?;
    let rows = provider_endpoints::Entity::find()
        .filter(provider_endpoints::Column::ProviderId.eq(id))
        .order_by_asc(provider_endpoints::Column::ApiFormat)
        .all(state.conn())
        .await?;
    Ok(Json(rows))
}

/// `POST /api/admin/providers/{id}/endpoints`.
pub(crate) async fn create_endpoint(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<EndpointCreate>,
) -> Result<Response, AdminError> {
    find_provider(&state, &id).await?;
    let clash = provider_endpoints::Entity::find()
        .filter(provider_endpoints::Column::ProviderId.eq(id.as_str()))
        .filter(provider_endpoints::Column::ApiFormat.eq(body.api_format))
        .one(state.conn())
        .await?;
    if clash.is_some() {
        return Err(AdminError::conflict(format!(
            "provider `{id}` already has a {} endpoint",
            body.api_format
        )));
    }
    let now = now_utc();
    let row = provider_endpoints::Model {
        id: new_id(),
        provider_id: id.clone(),
        api_format: body.api_format,
        base_url: validate::base_url("base_url", &body.base_url)?,
        headers: body.headers.map(checked_headers).transpose()?,
        timeout: validate::TIMEOUT_SECS.check("timeout", body.timeout.unwrap_or(300))?,
        max_retries: validate::MAX_RETRIES.check("max_retries", body.max_retries.unwrap_or(1))?,
        is_active: body.is_active,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    routes_changed_for_provider(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/endpoints/{id}`.
pub(crate) async fn update_endpoint(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<EndpointUpdate>,
) -> Result<Json<provider_endpoints::Model>, AdminError> {
    let before = find_endpoint(&state, &id).await?;
    let provider_id = before.provider_id.clone();
    let mut active = before.into_active_model();
    if let Some(url) = body.base_url {
        active.base_url = Set(validate::base_url("base_url", &url)?);
    }
    if let Some(headers) = body.headers {
        active.headers = Set(headers.map(checked_headers).transpose()?);
    }
    if let Some(timeout) = body.timeout {
        active.timeout = Set(validate::TIMEOUT_SECS.check("timeout", timeout)?);
    }
    if let Some(retries) = body.max_retries {
        active.max_retries = Set(validate::MAX_RETRIES.check("max_retries", retries)?);
    }
    if let Some(is_active) = body.is_active {
        active.is_active = Set(is_active);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    routes_changed_for_provider(&state, &provider_id).await?;
    Ok(Json(after))
}

/// `DELETE /api/admin/endpoints/{id}`: cascades to its keys.
pub(crate) async fn delete_endpoint(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    let before = find_endpoint(&state, &id).await?;
    provider_endpoints::Entity::delete_by_id(id)
        .exec(state.conn())
        .await?;
    routes_changed_for_provider(&state, &before.provider_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An upstream key as the API shows it: the secret is write-only.
#[derive(Debug, Serialize)]
pub(crate) struct ProviderKeyView {
    id: String,
    endpoint_id: String,
    name: String,
    /// A masked form of the secret (`sk-…wxyz`).
    api_key_masked: String,
    rate_multiplier: f64,
    internal_priority: i32,
    allowed_models: Option<AllowedModels>,
    is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
}

/// `sk-…wxyz`: enough to tell keys apart, never enough to use one.
pub(crate) fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 10 {
        return "…****".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl ProviderKeyView {
    pub(crate) fn new(state: &AppState, row: provider_api_keys::Model) -> Self {
        let plaintext = state.secrets().open(&row.api_key);
        Self {
            api_key_masked: mask(plaintext.as_deref().unwrap_or("")),
            id: row.id,
            endpoint_id: row.endpoint_id,
            name: row.name,
            rate_multiplier: row.rate_multiplier,
            internal_priority: row.internal_priority,
            allowed_models: row.allowed_models,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `POST /api/admin/endpoints/{id}/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderKeyCreate {
    api_key: String,
    name: String,
    #[serde(default)]
    rate_multiplier: Option<f64>,
    #[serde(default)]
    internal_priority: Option<i32>,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default = "default_true")]
    is_active: bool,
}

/// `PATCH /api/admin/provider-keys/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderKeyUpdate {
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rate_multiplier: Option<f64>,
    #[serde(default)]
    internal_priority: Option<i32>,
    #[serde(default, deserialize_with = "nullable")]
    allowed_models: Option<Option<Vec<String>>>,
    #[serde(default)]
    is_active: Option<bool>,
}

async fn provider_of_endpoint(state: &AppState, endpoint_id: &str) -> Result<String, AdminError> {
    Ok(find_endpoint(state, endpoint_id).await?.provider_id)
}

/// `GET /api/admin/endpoints/{id}/keys`.
pub(crate) async fn list_keys(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<Json<Vec<ProviderKeyView>>, AdminError> {
    find_endpoint(&state, &id).await?;
    let rows = provider_api_keys::Entity::find()
        .filter(provider_api_keys::Column::EndpointId.eq(id))
        .order_by_asc(provider_api_keys::Column::InternalPriority)
        .order_by_asc(provider_api_keys::Column::Name)
        .all(state.conn())
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| ProviderKeyView::new(&state, row))
            .collect(),
    ))
}

/// `POST /api/admin/endpoints/{id}/keys`.
pub(crate) async fn create_key(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<ProviderKeyCreate>,
) -> Result<Response, AdminError> {
    let provider_id = provider_of_endpoint(&state, &id).await?;
    let now = now_utc();
    let row = provider_api_keys::Model {
        id: new_id(),
        endpoint_id: id,
        api_key: state
            .secrets()
            .seal(validate::secret("api_key", &body.api_key)?),
        name: validate::name("name", &body.name, 255)?,
        rate_multiplier: validate::RATE_MULTIPLIER
            .check("rate_multiplier", body.rate_multiplier.unwrap_or(1.0))?,
        internal_priority: validate::PRIORITY
            .check("internal_priority", body.internal_priority.unwrap_or(50))?,
        allowed_models: body
            .allowed_models
            .map(|models| validate::allowed_models("allowed_models", &models))
            .transpose()?,
        is_active: body.is_active,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    routes_changed_for_provider(&state, &provider_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProviderKeyView::new(&state, stored)),
    )
        .into_response())
}

/// `PATCH /api/admin/provider-keys/{id}`.
pub(crate) async fn update_key(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<ProviderKeyUpdate>,
) -> Result<Json<ProviderKeyView>, AdminError> {
    let before = provider_api_keys::Entity::find_by_id(id.clone())
        .one(state.conn())
        .await?
        .ok_or_else(|| AdminError::not_found("provider key", &id))?;
    let provider_id = provider_of_endpoint(&state, &before.endpoint_id).await?;
    let mut active = before.into_active_model();
    if let Some(key) = body.api_key {
        active.api_key = Set(state.secrets().seal(validate::secret("api_key", &key)?));
    }
    if let Some(name) = body.name {
        active.name = Set(validate::name("name", &name, 255)?);
    }
    if let Some(multiplier) = body.rate_multiplier {
        active.rate_multiplier =
            Set(validate::RATE_MULTIPLIER.check("rate_multiplier", multiplier)?);
    }
    if let Some(priority) = body.internal_priority {
        active.internal_priority = Set(validate::PRIORITY.check("internal_priority", priority)?);
    }
    if let Some(models) = body.allowed_models {
        active.allowed_models = Set(models
            .map(|models| validate::allowed_models("allowed_models", &models))
            .transpose()?);
    }
    if let Some(is_active) = body.is_active {
        active.is_active = Set(is_active);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    routes_changed_for_provider(&state, &provider_id).await?;
    Ok(Json(ProviderKeyView::new(&state, after)))
}

/// `DELETE /api/admin/provider-keys/{id}`.
pub(crate) async fn delete_key(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    let before = provider_api_keys::Entity::find_by_id(id.clone())
        .one(state.conn())
        .await?
        .ok_or_else(|| AdminError::not_found("provider key", &id))?;
    let provider_id = provider_of_endpoint(&state, &before.endpoint_id).await?;
    provider_api_keys::Entity::delete_by_id(id)
        .exec(state.conn())
        .await?;
    routes_changed_for_provider(&state, &provider_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask("sk-abcdefghijklmnop"), "sk-…mnop");
        assert_eq!(mask("short"), "…****");
        assert!(!mask("sk-live-0123456789abcdef").contains("0123456789"));
    }
}
