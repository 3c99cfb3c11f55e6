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

/// Declares a key family named by one string: a newtype over `String` (deriving `Debug`,
/// `Clone`, `PartialEq`, `Eq` and `Hash`) whose [`Key::render`] is `prefix` followed by the
/// string, and, given a `value`, whose [`CacheKey::Value`] it is with the configured TTLs.
/// Without a `value` the caller implements [`CacheKey`] (to bound the TTLs, say) or
/// [`CounterKey`] itself.
///
/// ```
/// tollgate_cache::string_key! {
///     /// `providers:{name}`: the provider ids that serve a global model.
///     pub struct Providers(pub String);
///     family = "providers", prefix = "providers:", value = Vec<String>;
/// }
///
/// use tollgate_cache::Key;
/// assert_eq!(Providers("gpt-4o".to_owned()).render(), "providers:gpt-4o");
/// ```
#[macro_export]
macro_rules! string_key {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident($field_vis:vis String);
        family = $family:literal, prefix = $prefix:literal $(, value = $value:ty)?;
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis struct $name($field_vis String);

        impl $crate::Key for $name {
            const FAMILY: &'static str = $family;
            fn render(&self) -> String {
                format!(concat!($prefix, "{}"), self.0)
            }
        }

        $(
            impl $crate::CacheKey for $name {
                type Value = $value;
            }
        )?
    };
}
