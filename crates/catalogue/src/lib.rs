//! `tollgate-catalogue`: how the catalogue (providers, endpoints, upstream keys, models,
//! global models, users and client keys) is written, whichever door it comes through.
//!
//! - [`rules`]: the field rules, written once for the admin API and the catalogue file; each
//!   error ([`Invalid`]) names the field and the offending value.
//! - [`CatalogFile`]: the declarative catalogue document (JSON or TOML), applied in one
//!   transaction as an upsert keyed by names ([`apply_catalog`]); its errors
//!   ([`CatalogError`]) name the entry and the field.
//! - [`SecretBox`] encrypts upstream keys at rest; [`Secret`] keeps a value out of logs.
//! - Client keys: [`generate_client_key`], [`hash_client_key`] (only the hash is stored), and
//!   [`bootstrap_admin`], the admin user a first start creates.
//!
//! The crate takes sea-orm without a database driver; the binary chooses it.

mod bootstrap;
mod file;
mod keys;
pub mod rules;
mod secret;
mod secret_box;

pub use bootstrap::bootstrap_admin;
pub use file::{
    CatalogError, CatalogFile, CatalogSummary, ClientKeySpec, EndpointSpec, GlobalModelSpec,
    ModelSpec, ProviderKeySpec, ProviderSpec, UserSpec, apply_catalog,
};
pub use keys::{generate_client_key, hash_client_key};
pub use rules::Invalid;
pub use secret::{Secret, redact_url};
pub use secret_box::SecretBox;
