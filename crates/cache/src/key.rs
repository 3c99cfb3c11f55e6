//! The key traits: a key family knows its rendered key, its value type and its TTL.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Config;

/// A key family: a type whose values name cache keys.
///
/// [`Key::render`] gives the key after the namespace (`providers:gpt-4o`); the cache adds the
/// namespace itself. Implement [`CacheKey`] (a typed value) or [`CounterKey`] (a hit counter)
/// on top of it to use the key with a [`Cache`](crate::Cache). The cache has no families of
/// its own: the crates that use it define theirs (the resolver's `model:id:{id}`, …) like this:
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

    /// The key under the namespace, e.g. `providers:gpt-4o`. Distinct families must render
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
