//! `tollgate-catalogue`: how the catalogue (providers, endpoints, upstream keys, models,
//! global models, users and client keys) is written, whichever door it comes through.
//!
//! - [`rules`]: the field rules; each error ([`Invalid`]) names the field and the offending
//!   value.
//! - The write path: one upsert per table ([`write()`] of its [`Fields`], keyed by a
//!   [`Target`]) and one delete ([`delete`] of a [`Stored`] row), the rules applied inside
//!   and the cache invalidation each change needs run after the commit, through a [`Store`]. The admin API, the catalogue document and the
//!   bootstrap all write through it.
//! - [`CatalogFile`]: the declarative catalogue document (JSON or TOML), applied in one
//!   transaction as an upsert keyed by names ([`apply_catalog`]) and written by
//!   [`export_catalog`]; one type for both directions.
//! - [`CatalogError`]: why a document could not be read or a write was refused.
//! - [`SecretBox`] encrypts upstream keys at rest; [`Secret`] keeps a value out of logs.
//! - Client keys: [`generate_client_key`], [`hash_client_key`] (only the hash is stored), and
//!   [`bootstrap_admin`], the admin user a first start creates.
//!
//! The crate takes sea-orm without a database driver; the binary chooses it.

mod apply;
mod bootstrap;
mod document;
mod error;
mod export;
mod keys;
pub mod rules;
mod secret;
mod secret_box;
mod write;

pub use apply::{CatalogSummary, apply_catalog};
pub use bootstrap::bootstrap_admin;
pub use document::{
    CatalogFile, ClientKeySpec, EndpointSpec, GlobalModelSpec, ModelSpec, ProviderKeySpec,
    ProviderSpec, UserSpec,
};
pub use error::CatalogError;
pub use export::export_catalog;
pub use keys::{generate_client_key, hash_client_key};
pub use rules::Invalid;
pub use secret::{Secret, redact_url};
pub use secret_box::SecretBox;
pub use write::{
    ClientKeyFields, EndpointFields, Fields, GlobalModelFields, ModelFields, ProviderFields,
    ProviderKeyFields, Store, Stored, Target, UserFields, delete, write,
};
