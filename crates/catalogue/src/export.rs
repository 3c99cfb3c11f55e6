//! Export: the stored catalogue as a [`CatalogFile`], every list in the order of its unique
//! names, so one catalogue always serialises to the same bytes and an export imported into an
//! empty database exports the same again. Upstream secrets and plaintext client keys are not
//! stored in a form an export could carry; the document has them as hashes or not at all.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryOrder};
use tollgate_entities::{
    api_keys, global_models, models, provider_api_keys, provider_endpoints, providers, users,
};

use crate::document::{
    CatalogFile, ClientKeySpec, EndpointSpec, GlobalModelSpec, ModelSpec, ProviderKeySpec,
    ProviderSpec, UserSpec,
};
use crate::error::CatalogError;

/// The catalogue stored in `conn`, in the document shape the import reads.
pub async fn export_catalog<C: ConnectionTrait>(conn: &C) -> Result<CatalogFile, CatalogError> {
    let globals = ordered(conn, [global_models::Column::Name]).await?;
    let provider_rows = ordered(conn, [providers::Column::Name]).await?;
    let endpoints = ordered(conn, [provider_endpoints::Column::ApiFormat]).await?;
    let keys = ordered(
        conn,
        [
            provider_api_keys::Column::Name,
            provider_api_keys::Column::Id,
        ],
    )
    .await?;
    let model_rows = ordered(conn, [models::Column::ProviderModelName]).await?;
    let user_rows = ordered(conn, [users::Column::Username]).await?;
    // Client key names need not be unique: the hash (the key the import goes by) breaks ties.
    let client_keys = ordered(conn, [api_keys::Column::Name, api_keys::Column::KeyHash]).await?;

    let mut providers = Vec::with_capacity(provider_rows.len());
    for provider in provider_rows {
        let mut specs = Vec::new();
        for model in model_rows.iter().filter(|m| m.provider_id == provider.id) {
            let global = globals
                .iter()
                .find(|g| g.id == model.global_model_id)
                .ok_or_else(|| CatalogError::Invalid {
                    at: format!("model `{}`", model.provider_model_name),
                    reason: format!("global model `{}` is not stored", model.global_model_id),
                })?;
            specs.push(ModelSpec {
                global_model: global.name.clone(),
                provider_model_name: model.provider_model_name.clone(),
                aliases: model.provider_model_aliases.clone(),
                tiered_pricing: model.tiered_pricing.clone(),
                price_per_request: model.price_per_request,
                is_active: model.is_active,
            });
        }
        providers.push(ProviderSpec {
            endpoints: endpoints
                .iter()
                .filter(|e| e.provider_id == provider.id)
                .map(|endpoint| EndpointSpec {
                    api_format: endpoint.api_format,
                    base_url: endpoint.base_url.clone(),
                    headers: endpoint.headers.clone().map(|headers| headers.0),
                    timeout: endpoint.timeout,
                    max_retries: endpoint.max_retries,
                    is_active: endpoint.is_active,
                    keys: keys
                        .iter()
                        .filter(|k| k.endpoint_id == endpoint.id)
                        .map(|key| ProviderKeySpec {
                            name: key.name.clone(),
                            api_key: None,
                            api_key_env: None,
                            rate_multiplier: key.rate_multiplier,
                            internal_priority: key.internal_priority,
                            allowed_models: key.allowed_models.clone().map(|allowed| allowed.0),
                            is_active: key.is_active,
                        })
                        .collect(),
                })
                .collect(),
            models: specs,
            name: provider.name,
            display_name: Some(provider.display_name),
            billing_type: provider.billing_type,
            priority: provider.provider_priority,
            is_active: provider.is_active,
        });
    }

    let mut users = Vec::with_capacity(user_rows.len());
    for user in user_rows {
        let mut api_keys = Vec::new();
        for key in client_keys.iter().filter(|k| k.user_id == user.id) {
            let expires_at = key
                .expires_at
                .map(|at| at.format(&time::format_description::well_known::Rfc3339))
                .transpose()
                .map_err(|error| CatalogError::Invalid {
                    at: format!("client key `{}` of user `{}`", key.name, user.username),
                    reason: format!("its expiry cannot be written as RFC 3339: {error}"),
                })?;
            api_keys.push(ClientKeySpec {
                name: key.name.clone(),
                key: None,
                key_hash: Some(key.key_hash.clone()),
                expires_at,
                is_active: key.is_active,
            });
        }
        users.push(UserSpec {
            username: user.username,
            email: Some(user.email),
            role: user.role,
            is_active: user.is_active,
            quota_usd: user.quota_usd,
            api_keys,
        });
    }

    Ok(CatalogFile {
        global_models: globals
            .into_iter()
            .map(|global| GlobalModelSpec {
                name: global.name,
                display_name: Some(global.display_name),
                default_tiered_pricing: global.default_tiered_pricing,
                default_price_per_request: global.default_price_per_request,
                supported_capabilities: global.supported_capabilities.0,
                config: global.config,
                is_active: global.is_active,
            })
            .collect(),
        providers,
        users,
    })
}

/// Every row of the table the columns `by` belong to, in their order.
async fn ordered<Col, C>(
    conn: &C,
    by: impl IntoIterator<Item = Col>,
) -> Result<Vec<<Col::EntityName as EntityTrait>::Model>, DbErr>
where
    Col: ColumnTrait,
    Col::EntityName: EntityTrait,
    C: ConnectionTrait,
{
    by.into_iter()
        .fold(Col::EntityName::find(), |rows, column| {
            rows.order_by_asc(column)
        })
        .all(conn)
        .await
}
