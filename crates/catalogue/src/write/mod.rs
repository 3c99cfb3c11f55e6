//! The one write path of the catalogue: one upsert per table, the field rules of
//! [`crate::rules`] applied inside, and the cache invalidation each change needs (behaviour.md
//! section 3) run by the write itself, after the commit and before it returns. The admin API,
//! the catalogue document (and so the demo) and the bootstrap all write through here.
//!
//! The public [`write()`] and [`delete`] take a [`Store`] and commit on its connection, so no
//! caller can invalidate before the commit or forget to. The crate's own in-transaction
//! callers (the document, the bootstrap) use the upserts underneath ([`Upsert`], one impl per
//! table's [`Fields`]), which return the invalidation as a [`Written`] value, and drop every
//! cached model entry after the commit.

mod common;
mod models;
mod providers;
#[cfg(test)]
mod tests;
mod users;

pub(crate) use common::sealed::Upsert;
pub use common::{Fields, Store, Stored, Target, delete, write};
pub use models::{GlobalModelFields, ModelFields};
pub use providers::{EndpointFields, ProviderFields, ProviderKeyFields};
pub use users::{ClientKeyFields, UserFields};
