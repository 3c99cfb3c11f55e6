//! `GET /api/admin/catalog` (export) and `PUT /api/admin/catalog` (import): the catalogue as
//! one document in the `--catalog` file's shape. Exports carry no upstream secrets and no
//! plaintext client keys (hashes only); an import must supply the secrets again.

use axum::Json;
use axum::extract::State;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};
use tollgate_entities::{
    api_keys, global_models, models, provider_api_keys, provider_endpoints, providers, users,
};

use super::AdminError;
use super::extract::{Admin, AdminJson};
use crate::app::AppState;
use tollgate_catalogue::{CatalogError, CatalogFile, apply_catalog};

fn rfc3339(at: time::OffsetDateTime) -> Value {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_or(Value::Null, Value::String)
}

/// `GET /api/admin/catalog`.
pub(crate) async fn export(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Value>, AdminError> {
    let conn = state.conn();
    let globals = global_models::Entity::find()
        .order_by_asc(global_models::Column::Name)
        .all(conn)
        .await?;
    let provider_rows = providers::Entity::find()
        .order_by_asc(providers::Column::Name)
        .all(conn)
        .await?;
    let endpoints = provider_endpoints::Entity::find()
        .order_by_asc(provider_endpoints::Column::ApiFormat)
        .all(conn)
        .await?;
    let keys = provider_api_keys::Entity::find()
        .order_by_asc(provider_api_keys::Column::Name)
        .all(conn)
        .await?;
    let model_rows = models::Entity::find()
        .order_by_asc(models::Column::ProviderModelName)
        .all(conn)
        .await?;
    let user_rows = users::Entity::find()
        .order_by_asc(users::Column::Username)
        .all(conn)
        .await?;
    let client_keys = api_keys::Entity::find()
        .order_by_asc(api_keys::Column::Name)
        .all(conn)
        .await?;

    let global_name = |id: &str| globals.iter().find(|g| g.id == id).map(|g| g.name.clone());
    let document = json!({
        "global_models": globals.iter().map(|g| json!({
            "name": g.name,
            "display_name": g.display_name,
            "default_tiered_pricing": g.default_tiered_pricing,
            "default_price_per_request": g.default_price_per_request,
            "supported_capabilities": g.supported_capabilities,
            "config": g.config,
            "is_active": g.is_active,
        })).collect::<Vec<_>>(),
        "providers": provider_rows.iter().map(|p| json!({
            "name": p.name,
            "display_name": p.display_name,
            "billing_type": p.billing_type,
            "priority": p.provider_priority,
            "is_active": p.is_active,
            "endpoints": endpoints.iter().filter(|e| e.provider_id == p.id).map(|e| json!({
                "api_format": e.api_format,
                "base_url": e.base_url,
                "headers": e.headers,
                "timeout": e.timeout,
                "max_retries": e.max_retries,
                "is_active": e.is_active,
                "keys": keys.iter().filter(|k| k.endpoint_id == e.id).map(|k| json!({
                    "name": k.name,
                    "rate_multiplier": k.rate_multiplier,
                    "internal_priority": k.internal_priority,
                    "allowed_models": k.allowed_models,
                    "is_active": k.is_active,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "models": model_rows.iter().filter(|m| m.provider_id == p.id).map(|m| json!({
                "global_model": global_name(&m.global_model_id),
                "provider_model_name": m.provider_model_name,
                "aliases": m.provider_model_aliases,
                "tiered_pricing": m.tiered_pricing,
                "price_per_request": m.price_per_request,
                "is_active": m.is_active,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "users": user_rows.iter().map(|u| json!({
            "username": u.username,
            "email": u.email,
            "role": u.role,
            "is_active": u.is_active,
            "quota_usd": u.quota_usd,
            "api_keys": client_keys.iter().filter(|k| k.user_id == u.id).map(|k| json!({
                "name": k.name,
                "key_hash": k.key_hash,
                "expires_at": k.expires_at.map_or(Value::Null, rfc3339),
                "is_active": k.is_active,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    Ok(Json(document))
}

/// `PUT /api/admin/catalog`: upserts the document (rows it does not mention are kept), then
/// drops every cached model entry in every replica.
pub(crate) async fn import(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(document): AdminJson<CatalogFile>,
) -> Result<Json<Value>, AdminError> {
    let summary = apply_catalog(state.conn(), &document, state.secrets())
        .await
        .map_err(|error| match error {
            CatalogError::Invalid { at, reason } => AdminError::invalid_field(at, reason),
            CatalogError::Database(db) => AdminError::from(db),
            other => AdminError::bad_request(other.to_string()),
        })?;
    if let Err(error) = state.resolver().flush().await {
        tracing::warn!(%error, "cache flush after catalogue import did not reach redis");
    }
    Ok(Json(
        json!({ "created": summary.created, "updated": summary.updated }),
    ))
}
