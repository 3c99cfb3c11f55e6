//! Typed cache keys with TTLs and negative caching over in-process, Redis and tiered stores,
//! plus the cross-replica invalidation bus (behaviour.md section 2).
//!
//! - A key family is a type implementing [`Key`] and [`CacheKey`] (or [`CounterKey`]): it
//!   renders its key under the namespace and fixes the type of its value, so putting a wrong
//!   value under a key does not compile. The six families of the spec are here
//!   ([`ModelById`], [`GlobalModelById`], [`GlobalModelByName`], [`Resolve`],
//!   [`ProviderGlobal`], [`ProviderGlobalHits`]); other crates add their own.
//! - A cached value is an [`Entry`]: `Found(value)` or `Missing`.
//! - [`Cache`] is the handle: [`Cache::in_process`], [`Cache::redis`] or [`Cache::tiered`].
//!
//! ```no_run
//! # async fn example(model: tollgate_entities::models::Model) -> Result<(), tollgate_cache::CacheError> {
//! use tollgate_cache::{Cache, CacheError, Config, Entry, ModelById, Tier};
//!
//! let cache = Cache::tiered(Config::default(), "redis://127.0.0.1:6379").await?;
//! let key = ModelById(model.id.clone());
//! // The loader's error type is the caller's; here it happens to be `CacheError`.
//! let lookup = cache
//!     .get_or_load(&key, || async { Ok::<_, CacheError>(Some(model.clone())) })
//!     .await?;
//! assert!(matches!(lookup.tier, Tier::Loader | Tier::Redis));
//! cache.set(&key, Entry::Found(model)).await?;
//! cache.delete(&key).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The value type is checked at compile time:
//!
//! ```compile_fail
//! # async fn wrong(cache: tollgate_cache::Cache, global: tollgate_entities::global_models::Model) {
//! use tollgate_cache::{Entry, ModelById};
//! // `ModelById` holds `models::Model`, not a global model.
//! let _ = cache.set(&ModelById("m".to_owned()), Entry::Found(global)).await;
//! # }
//! ```

mod breaker;
mod bus;
mod cache;
mod config;
mod entry;
mod error;
mod flight;
mod key;
mod local;
mod remote;
mod telemetry;

pub use cache::Cache;
pub use config::Config;
pub use entry::{Entry, Lookup, Tier};
pub use error::CacheError;
pub use key::{
    CacheKey, CounterKey, GlobalModelById, GlobalModelByName, Key, ModelById, ProviderGlobal,
    ProviderGlobalHits, Resolution, ResolutionMethod, Resolve,
};
