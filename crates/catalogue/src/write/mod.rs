//! The one write path of the catalogue: one upsert per table, the field rules of
//! [`crate::rules`] applied inside, and the cache invalidation each change needs (behaviour.md
//! section 3) run by the write itself, after the commit and before it returns. The admin API,
//! the catalogue document (and so the demo) and the bootstrap all write through here.
//!
//! The public `write_*` and `delete_*` functions take a [`Store`] and commit on its
//! connection, so no caller can invalidate before the commit or forget to. The crate's own
//! in-transaction callers (the document) use the upserts underneath, which return the
//! invalidation as a [`Written`] value, and drop every cached model entry after the commit.

mod common;
mod models;
mod providers;
#[cfg(test)]
mod tests;
mod users;

pub(crate) use common::Written;
pub use common::{Store, Target};
pub use models::{
    GlobalModelFields, ModelFields, delete_global_model, delete_model, write_global_model,
    write_model,
};
pub(crate) use models::{upsert_global_model, upsert_model};
pub use providers::{
    EndpointFields, ProviderFields, ProviderKeyFields, delete_endpoint, delete_provider,
    delete_provider_key, write_endpoint, write_provider, write_provider_key,
};
pub(crate) use providers::{upsert_endpoint, upsert_provider, upsert_provider_key};
pub use users::{ClientKeyFields, UserFields, delete_user, write_client_key, write_user};
pub(crate) use users::{upsert_client_key, upsert_user};
