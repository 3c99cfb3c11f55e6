//! The `Resolver`: cached model resolution, look-ups, routing plans and invalidation.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tollgate_cache::{Cache, CacheKey, Entry, Tier};
use tollgate_entities::{ApiFormat, global_models, models};

use crate::ResolverError;
use crate::catalogue::{Catalogue, NameMatch, RouteSnapshot, SeaOrmCatalogue};
use crate::health::{KeyHealth, KeyHealthConfig};
use crate::keys::{
    GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, Resolution, ResolutionMethod,
    Resolve,
};
use crate::name::normalize_model_name;
use crate::plan::{Plan, PlanInput, build_plan};

/// Which of behaviour.md 1.1 steps 3 and 4 runs first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionOrder {
    /// Provider model names first (the original service's order): a provider's model name
    /// shadows a same-named global model, and that counts as a conflict.
    #[default]
    ProviderNameFirst,
    /// Global model names first: a canonical name always resolves to itself.
    DirectFirst,
}

impl ResolutionOrder {
    /// The snake_case spelling used in configuration and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProviderNameFirst => "provider_name_first",
            Self::DirectFirst => "direct_first",
        }
    }
}

impl std::str::FromStr for ResolutionOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "provider_name_first" => Ok(Self::ProviderNameFirst),
            "direct_first" => Ok(Self::DirectFirst),
            other => Err(format!(
                "unknown resolution order `{other}` (expected provider_name_first or direct_first)"
            )),
        }
    }
}

/// Resolver settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Order of the provider-name and direct steps.
    pub resolution_order: ResolutionOrder,
    /// Circuit breakers of upstream keys.
    pub key_health: KeyHealthConfig,
}

/// A resolved client model name.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The canonical global model.
    pub global_model: global_models::Model,
    /// How the name reached it (the original method, also on a cache hit).
    pub method: ResolutionMethod,
    /// Which cache tier answered; [`Tier::Loader`] when the catalogue was queried.
    pub tier: Tier,
    /// The resolution order in force.
    pub order: ResolutionOrder,
}

tollgate_cache::string_key! {
    /// `routes:global:{id}`: the route snapshot of a global model (a tollgate family; Aether had
    /// none and paged providers from the database on every request).
    pub(crate) struct RoutesByGlobalModel(pub(crate) String);
    family = "routes", prefix = "routes:global:", value = Arc<RouteSnapshot>;
}

struct Inner {
    catalogue: Arc<dyn Catalogue>,
    cache: Cache,
    config: ResolverConfig,
    health: KeyHealth,
}

/// Resolves client model names and plans routes, caching through `tollgate-cache`.
///
/// Cheap to clone: clones share the catalogue, the cache and the key health registry.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Resolver`].
pub struct ResolverBuilder {
    catalogue: Arc<dyn Catalogue>,
    cache: Option<Cache>,
    config: ResolverConfig,
}

impl ResolverBuilder {
    /// The cache to use (default: a fresh in-process cache with default settings).
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Resolver settings.
    pub fn config(mut self, config: ResolverConfig) -> Self {
        self.config = config;
        self
    }

    /// The resolver; fails only when the default in-process cache cannot be built.
    pub fn build(self) -> Result<Resolver, ResolverError> {
        let cache = match self.cache {
            Some(cache) => cache,
            None => Cache::in_process(tollgate_cache::Config::default())?,
        };
        Ok(Resolver {
            inner: Arc::new(Inner {
                catalogue: self.catalogue,
                cache,
                health: KeyHealth::new(self.config.key_health),
                config: self.config,
            }),
        })
    }
}

impl Resolver {
    /// A builder over any catalogue.
    pub fn builder(catalogue: impl Catalogue) -> ResolverBuilder {
        ResolverBuilder {
            catalogue: Arc::new(catalogue),
            cache: None,
            config: ResolverConfig::default(),
        }
    }

    /// A builder over a tollgate database.
    pub fn for_database(conn: sea_orm::DatabaseConnection) -> ResolverBuilder {
        Self::builder(SeaOrmCatalogue::new(conn))
    }

    /// The cache this resolver reads and invalidates.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// The upstream keys' circuit breakers; the caller reports attempt outcomes here.
    pub fn key_health(&self) -> &KeyHealth {
        &self.inner.health
    }

    /// The settings in force.
    pub fn config(&self) -> ResolverConfig {
        self.inner.config
    }

    /// Resolves a client model name to an active global model (behaviour.md 1.1).
    ///
    /// `Ok(None)` means not found (and is cached as such). An invalid name is an error and
    /// leaves no cache entry.
    pub async fn resolve_global_model(
        &self,
        raw_name: &str,
    ) -> Result<Option<Resolved>, ResolverError> {
        let name = normalize_model_name(raw_name)?;
        let started = Instant::now();
        let loaded = self
            .inner
            .cache
            .get_or_load(&Resolve(name.to_owned()), || self.resolve_uncached(name))
            .await?;
        let tier = loaded.tier;
        let resolved = match loaded.entry {
            Entry::Found(resolution) => Some(Resolved {
                global_model: resolution.global_model,
                method: resolution.method,
                tier,
                order: self.inner.config.resolution_order,
            }),
            Entry::Missing => None,
        };
        let method = resolved.as_ref().map_or("not_found", |r| r.method.as_str());
        let cache_hit = if tier == Tier::Loader {
            "false"
        } else {
            "true"
        };
        metrics::counter!("model_mapping_resolution_total", "method" => method, "cache_hit" => cache_hit)
            .increment(1);
        metrics::histogram!("model_mapping_resolution_duration_seconds", "method" => method)
            .record(started.elapsed().as_secs_f64());
        Ok(resolved)
    }

    async fn resolve_uncached(&self, name: &str) -> Result<Option<Resolution>, ResolverError> {
        let catalogue = &self.inner.catalogue;
        match self.inner.config.resolution_order {
            ResolutionOrder::ProviderNameFirst => {
                let matches = catalogue.provider_name_matches(name).await?;
                if let Some(winner) = pick_winner(&matches) {
                    let mut conflict = count_distinct(&matches) > 1;
                    if !conflict {
                        // A provider's model name shadowing a different global model's own
                        // name is a conflict too.
                        conflict = catalogue
                            .active_global_model_named(name)
                            .await?
                            .is_some_and(|direct| direct.id != winner.id);
                    }
                    if conflict {
                        metrics::counter!("model_mapping_conflict_total").increment(1);
                    }
                    return Ok(Some(Resolution {
                        global_model: winner.clone(),
                        method: ResolutionMethod::ProviderModelName,
                    }));
                }
                Ok(catalogue
                    .active_global_model_named(name)
                    .await?
                    .map(|global_model| Resolution {
                        global_model,
                        method: ResolutionMethod::DirectMatch,
                    }))
            }
            ResolutionOrder::DirectFirst => {
                if let Some(global_model) = catalogue.active_global_model_named(name).await? {
                    return Ok(Some(Resolution {
                        global_model,
                        method: ResolutionMethod::DirectMatch,
                    }));
                }
                let matches = catalogue.provider_name_matches(name).await?;
                if count_distinct(&matches) > 1 {
                    metrics::counter!("model_mapping_conflict_total").increment(1);
                }
                Ok(pick_winner(&matches).map(|winner| Resolution {
                    global_model: winner.clone(),
                    method: ResolutionMethod::ProviderModelName,
                }))
            }
        }
    }

    /// A model by id, active or not; misses are cached too.
    pub async fn model_by_id(&self, id: &str) -> Result<Option<models::Model>, ResolverError> {
        let catalogue = &self.inner.catalogue;
        self.found(ModelById(id.to_owned()), || catalogue.model_by_id(id))
            .await
    }

    /// A global model by id, active or not; misses are cached too.
    pub async fn global_model_by_id(
        &self,
        id: &str,
    ) -> Result<Option<global_models::Model>, ResolverError> {
        let catalogue = &self.inner.catalogue;
        self.found(GlobalModelById(id.to_owned()), || {
            catalogue.global_model_by_id(id)
        })
        .await
    }

    /// A global model by exact name, active or not; misses are cached too.
    pub async fn global_model_by_name(
        &self,
        name: &str,
    ) -> Result<Option<global_models::Model>, ResolverError> {
        let name = normalize_model_name(name)?;
        let catalogue = &self.inner.catalogue;
        self.found(GlobalModelByName(name.to_owned()), || {
            catalogue.global_model_by_name(name)
        })
        .await
    }

    /// The value under `key`, from the cache or, on a miss, from `load`; a miss is cached
    /// too.
    async fn found<K, F, Fut>(&self, key: K, load: F) -> Result<Option<K::Value>, ResolverError>
    where
        K: CacheKey,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<K::Value>, ResolverError>>,
    {
        let loaded = self.inner.cache.get_or_load(&key, load).await?;
        Ok(loaded.entry.found())
    }

    /// The active model of a provider for a global model; counts hits (behaviour.md 2.5).
    pub async fn model_for_provider(
        &self,
        provider_id: &str,
        global_model_id: &str,
    ) -> Result<Option<models::Model>, ResolverError> {
        let key = ProviderGlobal {
            provider_id: provider_id.to_owned(),
            global_model_id: global_model_id.to_owned(),
        };
        let catalogue = &self.inner.catalogue;
        let loaded = self
            .inner
            .cache
            .get_or_load(&key, || {
                catalogue.model_for_provider(provider_id, global_model_id)
            })
            .await?;
        if matches!(loaded.entry, Entry::Found(_)) {
            let hits = key.hits();
            if loaded.tier == Tier::Loader {
                self.inner.cache.init_hits(&hits).await;
            } else {
                self.inner.cache.incr_hits(&hits).await;
            }
        }
        Ok(loaded.entry.found())
    }

    /// The hit counter of `model_for_provider(provider_id, global_model_id)`, if alive.
    pub async fn model_for_provider_hits(
        &self,
        provider_id: &str,
        global_model_id: &str,
    ) -> Option<i64> {
        let key = ProviderGlobal {
            provider_id: provider_id.to_owned(),
            global_model_id: global_model_id.to_owned(),
        };
        self.inner.cache.hits(&key.hits()).await
    }

    /// The routing plan for a request (behaviour.md 1.4): `Ok(None)` when the name resolves
    /// to no global model. On a cache hit this makes no database query.
    pub async fn plan(
        &self,
        name: &str,
        api_format: ApiFormat,
        client_key_id: Option<&str>,
    ) -> Result<Option<(Resolved, Plan)>, ResolverError> {
        let Some(resolved) = self.resolve_global_model(name).await? else {
            return Ok(None);
        };
        let snapshot = self.routes(&resolved.global_model).await?;
        let plan = build_plan(
            snapshot,
            PlanInput {
                requested_name: name.trim(),
                api_format,
                client_key_id,
            },
            &self.inner.health,
        );
        Ok(Some((resolved, plan)))
    }

    async fn routes(
        &self,
        global_model: &global_models::Model,
    ) -> Result<Arc<RouteSnapshot>, ResolverError> {
        let catalogue = &self.inner.catalogue;
        let id = global_model.id.as_str();
        let loaded = self
            .inner
            .cache
            .get_or_load(&RoutesByGlobalModel(id.to_owned()), || async move {
                Ok::<_, ResolverError>(catalogue.routes(id).await?.map(Arc::new))
            })
            .await?;
        Ok(match loaded.entry {
            Entry::Found(snapshot) => snapshot,
            // Deactivated between resolution and planning: an empty plan.
            Entry::Missing => Arc::new(RouteSnapshot {
                global_model: global_model.clone(),
                providers: Vec::new(),
            }),
        })
    }
}

/// The winning global model among provider-name matches: lowest provider priority, then
/// global model name ascending. Deterministic whatever order the database returned.
fn pick_winner(matches: &[NameMatch]) -> Option<&global_models::Model> {
    matches
        .iter()
        .min_by(|a, b| {
            a.provider_priority
                .cmp(&b.provider_priority)
                .then_with(|| a.global_model.name.cmp(&b.global_model.name))
        })
        .map(|m| &m.global_model)
}

fn count_distinct(matches: &[NameMatch]) -> usize {
    let mut ids: Vec<&str> = matches.iter().map(|m| m.global_model.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}
