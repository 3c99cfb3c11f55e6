//! Typed cache keys with TTLs and negative caching over in-process, Redis and tiered stores,
//! plus the cross-replica invalidation bus (behaviour.md section 2).
//!
//! - A key family is a type implementing [`Key`] and [`CacheKey`] (or [`CounterKey`]): it
//!   renders its key under the namespace and fixes the type of its value, so putting a wrong
//!   value under a key does not compile. The cache is generic over its families and defines
//!   none: the crates that use it own theirs (`tollgate-resolver` the six of behaviour.md 2.1,
//!   the gateway `client_key`).
//! - A cached value is an [`Entry`]: `Found(value)` or `Missing`.
//! - [`Cache`] is the handle: [`Cache::in_process`], [`Cache::redis`] or [`Cache::tiered`].
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use tollgate_cache::{Cache, CacheError, CacheKey, Config, Entry, Key, Tier};
//!
//! /// Any serde value can be cached.
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Widget {
//!     id: String,
//!     price: Option<f64>,
//! }
//!
//! /// `widget:id:{id}`: a widget by its id.
//! struct WidgetById(String);
//!
//! impl Key for WidgetById {
//!     const FAMILY: &'static str = "widget_by_id";
//!     fn render(&self) -> String {
//!         format!("widget:id:{}", self.0)
//!     }
//! }
//!
//! impl CacheKey for WidgetById {
//!     type Value = Widget;
//! }
//!
//! # async fn example(widget: Widget) -> Result<(), CacheError> {
//! let cache = Cache::tiered(Config::default(), "redis://127.0.0.1:6379").await?;
//! let key = WidgetById(widget.id.clone());
//! // The loader's error type is the caller's; here it happens to be `CacheError`.
//! let lookup = cache
//!     .get_or_load(&key, || async { Ok::<_, CacheError>(Some(widget.clone())) })
//!     .await?;
//! assert!(matches!(lookup.tier, Tier::Loader | Tier::Redis));
//! cache.set(&key, Entry::Found(widget)).await?;
//! cache.delete(&key).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The value type is checked at compile time:
//!
//! ```compile_fail
//! # use tollgate_cache::{Cache, CacheKey, Entry, Key};
//! # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! # struct Widget {
//! #     id: String,
//! # }
//! # struct WidgetById(String);
//! # impl Key for WidgetById {
//! #     const FAMILY: &'static str = "widget_by_id";
//! #     fn render(&self) -> String {
//! #         format!("widget:id:{}", self.0)
//! #     }
//! # }
//! # impl CacheKey for WidgetById {
//! #     type Value = Widget;
//! # }
//! # async fn wrong(cache: Cache) {
//! // `WidgetById` holds a `Widget`, not its name.
//! let name = "a widget".to_owned();
//! let _ = cache.set(&WidgetById("w".to_owned()), Entry::Found(name)).await;
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
pub use key::{CacheKey, CounterKey, Key};
