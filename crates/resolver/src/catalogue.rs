//! The catalogue the resolver reads: a trait, so an embedder or a unit test can supply its
//! own, and the sea-orm implementation over tollgate's schema.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select};
use serde::{Deserialize, Serialize};
use tollgate_entities::{global_models, models, provider_api_keys, provider_endpoints, providers};

use crate::ResolverError;

/// A global model reached through a model whose `provider_model_name` matched, with the
/// priority of the provider that offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NameMatch {
    /// The matched global model (active).
    pub global_model: global_models::Model,
    /// `provider_priority` of the provider whose model matched.
    pub provider_priority: i32,
}

/// An endpoint with its active upstream keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRoute {
    /// The endpoint (active).
    pub endpoint: provider_endpoints::Model,
    /// Its active keys, in no particular order.
    pub keys: Vec<provider_api_keys::Model>,
}

/// A provider that serves a global model, with its model and active endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRoute {
    /// The provider (active).
    pub provider: providers::Model,
    /// The provider's active model for the global model.
    pub model: models::Model,
    /// The provider's active endpoints.
    pub endpoints: Vec<EndpointRoute>,
}

/// Everything needed to plan requests for one global model, loaded in a handful of queries
/// and cached as one snapshot: a cache hit plans without touching the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSnapshot {
    /// The global model the routes serve.
    pub global_model: global_models::Model,
    /// Providers ordered by `provider_priority`, then `name`.
    pub providers: Vec<ProviderRoute>,
}

/// Read access to the catalogue. Every method answers from the source of truth (no
/// caching: the resolver caches).
#[async_trait::async_trait]
pub trait Catalogue: Send + Sync + 'static {
    /// Active global models reachable through an active model of an active provider whose
    /// `provider_model_name` equals `name`.
    async fn provider_name_matches(&self, name: &str) -> Result<Vec<NameMatch>, ResolverError>;
    /// The active global model called `name`.
    async fn active_global_model_named(
        &self,
        name: &str,
    ) -> Result<Option<global_models::Model>, ResolverError>;
    /// A model by id, active or not.
    async fn model_by_id(&self, id: &str) -> Result<Option<models::Model>, ResolverError>;
    /// A global model by id, active or not.
    async fn global_model_by_id(
        &self,
        id: &str,
    ) -> Result<Option<global_models::Model>, ResolverError>;
    /// A global model by name, active or not.
    async fn global_model_by_name(
        &self,
        name: &str,
    ) -> Result<Option<global_models::Model>, ResolverError>;
    /// The active model of `provider_id` for `global_model_id`.
    async fn model_for_provider(
        &self,
        provider_id: &str,
        global_model_id: &str,
    ) -> Result<Option<models::Model>, ResolverError>;
    /// The routes of an active global model; `None` when it does not exist or is inactive.
    async fn routes(&self, global_model_id: &str) -> Result<Option<RouteSnapshot>, ResolverError>;
}

/// The catalogue in a tollgate (or Aether-shaped) database, through sea-orm.
#[derive(Debug, Clone)]
pub struct SeaOrmCatalogue {
    conn: DatabaseConnection,
}

impl SeaOrmCatalogue {
    /// Reads the catalogue through `conn`.
    pub fn new(conn: DatabaseConnection) -> Self {
        Self { conn }
    }

    /// The first row `select` finds.
    async fn first<E: EntityTrait>(
        &self,
        select: Select<E>,
    ) -> Result<Option<E::Model>, ResolverError> {
        select
            .one(&self.conn)
            .await
            .map_err(ResolverError::catalogue)
    }
}

#[async_trait::async_trait]
impl Catalogue for SeaOrmCatalogue {
    async fn provider_name_matches(&self, name: &str) -> Result<Vec<NameMatch>, ResolverError> {
        let matched = models::Entity::find()
            .filter(models::Column::ProviderModelName.eq(name))
            .filter(models::Column::IsActive.eq(true))
            .find_also_related(providers::Entity)
            .filter(providers::Column::IsActive.eq(true))
            .all(&self.conn)
            .await
            .map_err(ResolverError::catalogue)?;
        // Best provider priority per global model.
        let mut priorities: HashMap<String, i32> = HashMap::new();
        for (model, provider) in matched {
            let Some(provider) = provider else { continue };
            priorities
                .entry(model.global_model_id)
                .and_modify(|p| *p = (*p).min(provider.provider_priority))
                .or_insert(provider.provider_priority);
        }
        if priorities.is_empty() {
            return Ok(Vec::new());
        }
        let globals = global_models::Entity::find()
            .filter(global_models::Column::Id.is_in(priorities.keys().cloned()))
            .filter(global_models::Column::IsActive.eq(true))
            .all(&self.conn)
            .await
            .map_err(ResolverError::catalogue)?;
        Ok(globals
            .into_iter()
            .filter_map(|global_model| {
                let provider_priority = *priorities.get(&global_model.id)?;
                Some(NameMatch {
                    global_model,
                    provider_priority,
                })
            })
            .collect())
    }

    async fn active_global_model_named(
        &self,
        name: &str,
    ) -> Result<Option<global_models::Model>, ResolverError> {
        self.first(
            global_models::Entity::find()
                .filter(global_models::Column::Name.eq(name))
                .filter(global_models::Column::IsActive.eq(true)),
        )
        .await
    }

    async fn model_by_id(&self, id: &str) -> Result<Option<models::Model>, ResolverError> {
        self.first(models::Entity::find_by_id(id.to_owned())).await
    }

    async fn global_model_by_id(
        &self,
        id: &str,
    ) -> Result<Option<global_models::Model>, ResolverError> {
        self.first(global_models::Entity::find_by_id(id.to_owned()))
            .await
    }

    async fn global_model_by_name(
        &self,
        name: &str,
    ) -> Result<Option<global_models::Model>, ResolverError> {
        self.first(global_models::Entity::find().filter(global_models::Column::Name.eq(name)))
            .await
    }

    async fn model_for_provider(
        &self,
        provider_id: &str,
        global_model_id: &str,
    ) -> Result<Option<models::Model>, ResolverError> {
        self.first(
            models::Entity::find()
                .filter(models::Column::ProviderId.eq(provider_id))
                .filter(models::Column::GlobalModelId.eq(global_model_id))
                .filter(models::Column::IsActive.eq(true))
                .order_by_asc(models::Column::ProviderModelName),
        )
        .await
    }

    async fn routes(&self, global_model_id: &str) -> Result<Option<RouteSnapshot>, ResolverError> {
        let active = global_models::Entity::find_by_id(global_model_id.to_owned())
            .filter(global_models::Column::IsActive.eq(true));
        let Some(global_model) = self.first(active).await? else {
            return Ok(None);
        };
        // Every provider, in one query: no paging that could drop a provider.
        let pairs = models::Entity::find()
            .filter(models::Column::GlobalModelId.eq(global_model_id))
            .filter(models::Column::IsActive.eq(true))
            .order_by_asc(models::Column::ProviderModelName)
            .find_also_related(providers::Entity)
            .filter(providers::Column::IsActive.eq(true))
            .all(&self.conn)
            .await
            .map_err(ResolverError::catalogue)?;
        let mut routes: Vec<ProviderRoute> = Vec::new();
        for (model, provider) in pairs {
            let Some(provider) = provider else { continue };
            // One model per provider: the first by name when a provider lists several.
            if routes.iter().any(|r| r.provider.id == provider.id) {
                continue;
            }
            routes.push(ProviderRoute {
                provider,
                model,
                endpoints: Vec::new(),
            });
        }
        if !routes.is_empty() {
            let endpoints = provider_endpoints::Entity::find()
                .filter(
                    provider_endpoints::Column::ProviderId
                        .is_in(routes.iter().map(|r| r.provider.id.clone())),
                )
                .filter(provider_endpoints::Column::IsActive.eq(true))
                .all(&self.conn)
                .await
                .map_err(ResolverError::catalogue)?;
            let keys = if endpoints.is_empty() {
                Vec::new()
            } else {
                provider_api_keys::Entity::find()
                    .filter(
                        provider_api_keys::Column::EndpointId
                            .is_in(endpoints.iter().map(|e| e.id.clone())),
                    )
                    .filter(provider_api_keys::Column::IsActive.eq(true))
                    .all(&self.conn)
                    .await
                    .map_err(ResolverError::catalogue)?
            };
            let mut keys_by_endpoint: HashMap<String, Vec<provider_api_keys::Model>> =
                HashMap::new();
            for key in keys {
                keys_by_endpoint
                    .entry(key.endpoint_id.clone())
                    .or_default()
                    .push(key);
            }
            for endpoint in endpoints {
                let keys = keys_by_endpoint.remove(&endpoint.id).unwrap_or_default();
                if let Some(route) = routes
                    .iter_mut()
                    .find(|r| r.provider.id == endpoint.provider_id)
                {
                    route.endpoints.push(EndpointRoute { endpoint, keys });
                }
            }
        }
        routes.sort_by(|a, b| {
            a.provider
                .provider_priority
                .cmp(&b.provider.provider_priority)
                .then_with(|| a.provider.name.cmp(&b.provider.name))
        });
        Ok(Some(RouteSnapshot {
            global_model,
            providers: routes,
        }))
    }
}
