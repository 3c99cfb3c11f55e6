//! Model resolution, provider-scoped upstream names and routing plans for LLM gateways,
//! cached through `tollgate-cache` and embeddable in any Rust service.
//!
//! # Quick start
//!
//! ```no_run
//! # async fn demo(conn: sea_orm::DatabaseConnection) -> Result<(), tollgate_resolver::ResolverError> {
//! use tollgate_resolver::{ApiFormat, Resolver};
//!
//! // In-process cache by default; pass `.cache(tollgate_cache::Cache::tiered(..))` to share
//! // Redis between replicas.
//! let resolver = Resolver::for_database(conn).build()?;
//! if let Some((resolved, plan)) = resolver.plan("gpt-4o", ApiFormat::OpenAi, Some("client-key-id")).await? {
//!     println!("{} via {}", resolved.global_model.name, resolved.method.as_str());
//!     for candidate in plan.usable() {
//!         println!("try {} as {}", candidate.provider.name, candidate.upstream_model_name);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! After changing the catalogue, call the matching invalidation method
//! ([`Resolver::model_changed`], [`Resolver::global_model_changed`], …) after the commit and
//! before answering, so no replica serves the old answer.
//!
//! The resolver owns its cache key families (behaviour.md 2.1: [`Resolve`], [`ModelById`],
//! [`GlobalModelById`], [`GlobalModelByName`], [`ProviderGlobal`], [`ProviderGlobalHits`]);
//! they are public so an embedder can read or delete one entry through its own `Cache` handle.

mod catalogue;
mod error;
mod health;
mod invalidate;
mod keys;
mod name;
mod plan;
mod resolver;
mod select;

pub use catalogue::{
    Catalogue, EndpointRoute, NameMatch, ProviderRoute, RouteSnapshot, SeaOrmCatalogue,
};
pub use error::ResolverError;
pub use health::{KeyHealth, KeyHealthConfig};
pub use keys::{
    GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, ProviderGlobalHits, Resolution,
    ResolutionMethod, Resolve,
};
pub use name::{MAX_NAME_BYTES, normalize_model_name};
pub use plan::{Candidate, Plan, SkipReason};
pub use resolver::{ResolutionOrder, Resolved, Resolver, ResolverBuilder, ResolverConfig};
pub use select::select_provider_model_name;
pub use tollgate_cache::Tier;
pub use tollgate_entities::ApiFormat;
