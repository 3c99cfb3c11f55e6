//! Invalidation entry points, one per row of behaviour.md section 3. Call them after the
//! database commit and before answering the admin request; each deletes the keys from every
//! tier of this process and publishes them to every other replica.

use std::collections::BTreeSet;

use tollgate_cache::{Cache, Key};
use tollgate_entities::{global_models, models};

use crate::ResolverError;
use crate::keys::{GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, Resolve};
use crate::resolver::{Resolver, RoutesByGlobalModel};

/// The set of keys one change invalidates, deduplicated.
#[derive(Debug, Default)]
struct Keys {
    resolve: BTreeSet<String>,
    global_by_id: BTreeSet<String>,
    global_by_name: BTreeSet<String>,
    model_by_id: BTreeSet<String>,
    provider_global: BTreeSet<(String, String)>,
    routes: BTreeSet<String>,
}

impl Keys {
    fn model(&mut self, model: &models::Model) {
        self.resolve
            .insert(model.provider_model_name.trim().to_owned());
        self.provider_global
            .insert((model.provider_id.clone(), model.global_model_id.clone()));
        self.routes.insert(model.global_model_id.clone());
    }

    fn global_model(&mut self, global_model: &global_models::Model) {
        self.global_by_id.insert(global_model.id.clone());
        self.global_by_name.insert(global_model.name.clone());
        self.resolve.insert(global_model.name.trim().to_owned());
        self.routes.insert(global_model.id.clone());
    }
}

/// Deletes one key; a Redis failure is logged (the cache already counted it): the local
/// tier is cleared regardless and the shared entry expires with its TTL.
async fn delete<K: Key>(cache: &Cache, key: &K) {
    if let Err(error) = cache.delete(key).await {
        tracing::warn!(%error, family = K::FAMILY, "invalidation did not reach redis");
    }
}

impl Resolver {
    async fn invalidate(&self, keys: Keys) {
        let cache = self.cache();
        for name in keys.resolve {
            delete(cache, &Resolve(name)).await;
        }
        for id in keys.global_by_id {
            delete(cache, &GlobalModelById(id)).await;
        }
        for name in keys.global_by_name {
            delete(cache, &GlobalModelByName(name)).await;
        }
        for id in keys.model_by_id {
            delete(cache, &ModelById(id)).await;
        }
        for (provider_id, global_model_id) in keys.provider_global {
            let key = ProviderGlobal {
                provider_id,
                global_model_id,
            };
            delete(cache, &key.hits()).await;
            delete(cache, &key).await;
        }
        for id in keys.routes {
            delete(cache, &RoutesByGlobalModel(id)).await;
        }
    }

    /// A global model was created: clears a cached `Missing` for its name.
    pub async fn global_model_created(&self, created: &global_models::Model) {
        let mut keys = Keys::default();
        keys.resolve.insert(created.name.trim().to_owned());
        keys.global_by_name.insert(created.name.clone());
        self.invalidate(keys).await;
    }

    /// A global model was updated, (de)activated or deleted. `models` are its models (read
    /// before a delete, which cascades to them).
    pub async fn global_model_changed(
        &self,
        before: &global_models::Model,
        after: Option<&global_models::Model>,
        models: &[models::Model],
    ) {
        let mut keys = Keys::default();
        keys.global_model(before);
        if let Some(after) = after {
            keys.global_model(after);
        }
        for model in models {
            keys.model(model);
        }
        self.invalidate(keys).await;
    }

    /// A model was created.
    pub async fn model_created(&self, created: &models::Model) {
        let mut keys = Keys::default();
        keys.model(created);
        self.invalidate(keys).await;
    }

    /// A model was updated, (de)activated (`after` is the new row) or deleted (`after` is
    /// `None`): both the old and the new names, provider and global model are invalidated.
    pub async fn model_changed(&self, before: &models::Model, after: Option<&models::Model>) {
        let mut keys = Keys::default();
        keys.model(before);
        keys.model_by_id.insert(before.id.clone());
        if let Some(after) = after {
            keys.model(after);
            keys.model_by_id.insert(after.id.clone());
        }
        self.invalidate(keys).await;
    }

    /// A provider was updated, (de)activated or deleted. `models` are its models (read before
    /// a delete).
    pub async fn provider_changed(&self, models: &[models::Model]) {
        let mut keys = Keys::default();
        for model in models {
            keys.model(model);
        }
        self.invalidate(keys).await;
    }

    /// An endpoint or upstream key changed: the routes of these global models are replanned.
    pub async fn routes_changed<'a>(&self, global_model_ids: impl IntoIterator<Item = &'a str>) {
        let mut keys = Keys::default();
        keys.routes
            .extend(global_model_ids.into_iter().map(str::to_owned));
        self.invalidate(keys).await;
    }

    /// Drops every cached entry of the model families in every tier and replica
    /// (`DELETE /api/admin/cache/model-mapping`).
    pub async fn flush(&self) -> Result<u64, ResolverError> {
        Ok(self.cache().flush().await?)
    }
}
