//! Typed key families: each knows its rendered key, its value type and its TTL.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tollgate_entities::{global_models, models};

use crate::Config;

/// A key family: a type whose values name cache keys.
///
/// [`Key::render`] gives the key after the namespace (`model:id:42`); the cache adds the
/// namespace itself. Implement [`CacheKey`] (a typed value) or [`CounterKey`] (a hit counter)
/// on top of it to use the key with a [`Cache`](crate::Cache). Crates that build on this one
/// define their own families the same way:
///
/// ```
/// use tollgate_cache::{CacheKey, Key};
///
/// /// The provider ids that serve a global model.
/// struct Providers(String);
///
/// impl Key for Providers {
///     const FAMILY: &'static str = "providers";
///     fn render(&self) -> String {
///         format!("providers:{}", self.0)
///     }
/// }
///
/// impl CacheKey for Providers {
///     type Value = Vec<String>;
/// }
/// ```
pub trait Key: Send + Sync {
    /// The family's name: the `family` label of the cache metrics, so it must be a fixed,
    /// bounded string.
    const FAMILY: &'static str;

    /// The key under the namespace, e.g. `model:id:42`. Distinct families must render
    /// distinct prefixes.
    fn render(&self) -> String;
}

/// A key family whose entries are [`Entry`](crate::Entry)`<Self::Value>` envelopes.
///
/// The value type is fixed by the family, so putting another type under such a key does not
/// compile.
pub trait CacheKey: Key {
    /// What the family stores.
    type Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    /// Life of a `Found` entry of this family; the configured [`Config::ttl`] unless the
    /// family overrides it.
    fn ttl(config: &Config) -> Duration {
        config.ttl
    }

    /// Life of a `Missing` entry of this family; the configured [`Config::negative_ttl`]
    /// unless the family overrides it.
    fn negative_ttl(config: &Config) -> Duration {
        config.negative_ttl
    }
}

/// A key family whose entries are integer counters (behaviour.md 2.5).
pub trait CounterKey: Key {
    /// Life of the counter, refreshed on every increment; [`Config::ttl`] unless the family
    /// overrides it.
    fn ttl(config: &Config) -> Duration {
        config.ttl
    }
}

/// How a client model name reached its global model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionMethod {
    /// Through a model whose `provider_model_name` equals the name.
    ProviderModelName,
    /// The name is a global model's own name.
    DirectMatch,
}

impl ResolutionMethod {
    /// The snake_case name used in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProviderModelName => "provider_model_name",
            Self::DirectMatch => "direct_match",
        }
    }
}

/// A cached answer of `resolve_global_model`: the global model and how it was reached, so a
/// cache hit reports the original method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The global model the name resolved to.
    pub global_model: global_models::Model,
    /// How it was reached.
    pub method: ResolutionMethod,
}

/// `model:id:{id}`: a model snapshot by its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelById(pub String);

/// `global_model:id:{id}`: a global model snapshot by its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalModelById(pub String);

/// `global_model:name:{name}`: a global model snapshot by its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalModelByName(pub String);

/// `global_model:resolve:{name}`: the resolution of a client model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolve(pub String);

/// `model:provider_global:{provider_id}:{global_model_id}`: a provider's active model for a
/// global model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderGlobal {
    /// The provider.
    pub provider_id: String,
    /// The global model.
    pub global_model_id: String,
}

impl ProviderGlobal {
    /// The hit counter that goes with this entry.
    pub fn hits(&self) -> ProviderGlobalHits {
        ProviderGlobalHits {
            provider_id: self.provider_id.clone(),
            global_model_id: self.global_model_id.clone(),
        }
    }
}

/// `model:provider_global:hits:{provider_id}:{global_model_id}`: how often the
/// provider+global entry was hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderGlobalHits {
    /// The provider.
    pub provider_id: String,
    /// The global model.
    pub global_model_id: String,
}

impl Key for ModelById {
    const FAMILY: &'static str = "model_by_id";
    fn render(&self) -> String {
        format!("model:id:{}", self.0)
    }
}

impl CacheKey for ModelById {
    type Value = models::Model;
}

impl Key for GlobalModelById {
    const FAMILY: &'static str = "global_model_by_id";
    fn render(&self) -> String {
        format!("global_model:id:{}", self.0)
    }
}

impl CacheKey for GlobalModelById {
    type Value = global_models::Model;
}

impl Key for GlobalModelByName {
    const FAMILY: &'static str = "global_model_by_name";
    fn render(&self) -> String {
        format!("global_model:name:{}", self.0)
    }
}

impl CacheKey for GlobalModelByName {
    type Value = global_models::Model;
}

impl Key for Resolve {
    const FAMILY: &'static str = "resolve";
    fn render(&self) -> String {
        format!("global_model:resolve:{}", self.0)
    }
}

impl CacheKey for Resolve {
    type Value = Resolution;
}

impl Key for ProviderGlobal {
    const FAMILY: &'static str = "provider_global";
    fn render(&self) -> String {
        format!(
            "model:provider_global:{}:{}",
            self.provider_id, self.global_model_id
        )
    }
}

impl CacheKey for ProviderGlobal {
    type Value = models::Model;
}

impl Key for ProviderGlobalHits {
    const FAMILY: &'static str = "provider_global_hits";
    fn render(&self) -> String {
        format!(
            "model:provider_global:hits:{}:{}",
            self.provider_id, self.global_model_id
        )
    }
}

impl CounterKey for ProviderGlobalHits {}

#[cfg(test)]
mod tests {
    use super::{
        GlobalModelById, GlobalModelByName, Key, ModelById, ProviderGlobal, ResolutionMethod,
        Resolve,
    };

    #[test]
    fn keys_render_as_in_the_spec() {
        let pg = ProviderGlobal {
            provider_id: "p".to_owned(),
            global_model_id: "g".to_owned(),
        };
        assert_eq!(ModelById("1".to_owned()).render(), "model:id:1");
        assert_eq!(
            GlobalModelById("2".to_owned()).render(),
            "global_model:id:2"
        );
        assert_eq!(
            GlobalModelByName("gpt-4o".to_owned()).render(),
            "global_model:name:gpt-4o"
        );
        assert_eq!(
            Resolve("gpt-4o".to_owned()).render(),
            "global_model:resolve:gpt-4o"
        );
        assert_eq!(pg.render(), "model:provider_global:p:g");
        assert_eq!(pg.hits().render(), "model:provider_global:hits:p:g");
    }

    #[test]
    fn resolution_method_is_snake_case() {
        for method in [
            ResolutionMethod::ProviderModelName,
            ResolutionMethod::DirectMatch,
        ] {
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.as_str()));
        }
    }
}
