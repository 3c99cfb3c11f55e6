//! [`SchemaError`]: why a database could not be made ready for tollgate. Every message is
//! one line that names what is missing or why the database is refused.

use sea_orm_migration::sea_orm::DbErr;

/// Why [`prepare_database`](crate::prepare_database) or an adoption stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The database lacks something and `--no-migrate` forbids creating it.
    #[error("--no-migrate: the database lacks {missing}; nothing was changed")]
    Lacking {
        /// What is missing, first items first.
        missing: String,
    },
    /// The gateway was pointed at an Aether database.
    #[error(
        "the gateway cannot use an Aether database as its store (its catalogue differs: \
         users.role and providers.billing_type are enum types, model aliases live in \
         provider_model_mappings, upstream keys are encrypted by Aether); give the gateway \
         a database of its own and run tollgate-aggregator against this one"
    )]
    AetherStore,
    /// Tables exist but neither tollgate's history nor Aether's `alembic_version`.
    #[error(
        "the database holds tables ({tables}) but neither tollgate's migration history \
         (seaql_migrations) nor Aether's alembic_version; refusing to change it"
    )]
    Unrecognised {
        /// The first tables found.
        tables: String,
    },
    /// An Aether database that tollgate cannot adopt.
    #[error("cannot adopt this Aether database: {reason}")]
    NotAdoptable {
        /// What stands in the way.
        reason: String,
    },
    /// A command that applies to Aether databases only.
    #[error("not an Aether database (it has no alembic_version table)")]
    NotAether,
    /// The database failed.
    #[error("{0}")]
    Database(#[from] DbErr),
}
