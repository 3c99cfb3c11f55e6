//! `CatalogError`: why a catalogue document could not be read, or a write through this crate
//! (by the admin API, the catalogue document or the bootstrap) was refused.

use sea_orm::DbErr;

use crate::rules::Invalid;

/// Why a catalogue document could not be read or applied, or a catalogue write was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalogue file `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid catalogue document.
    #[error("catalogue file `{path}` is invalid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message (names the field and position).
        reason: String,
    },
    /// A value breaks a rule of [`crate::rules`].
    #[error("catalogue entry {at} is invalid: {reason}")]
    Invalid {
        /// Where: the field of a write (`provider_priority`), or the entry and field of a
        /// document (`providers[0].endpoints[1].timeout`).
        at: String,
        /// What is wrong, naming the value.
        reason: String,
    },
    /// The write would give a second row a unique name (or endpoint format) already taken.
    #[error("{0}")]
    Conflict(String),
    /// The database refused the change.
    #[error("applying the catalogue failed: {0}")]
    Database(#[from] DbErr),
}

impl From<Invalid> for CatalogError {
    fn from(error: Invalid) -> Self {
        Self::Invalid {
            at: error.field,
            reason: error.reason,
        }
    }
}
