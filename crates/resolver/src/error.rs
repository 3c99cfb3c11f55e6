//! The error type of `tollgate-resolver`.

/// What can go wrong while resolving or planning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolverError {
    /// The client's model name broke a limit of behaviour.md 1.1 step 1; never cached.
    #[error("{reason}: `{name}`")]
    InvalidName {
        /// The offending name, shortened to 40 characters and without control characters.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The cache could not be built (invalid cache configuration).
    #[error("cache setup failed: {0}")]
    Cache(#[from] tollgate_cache::CacheError),
    /// The catalogue (database) could not answer.
    #[error("catalogue query failed: {source}")]
    Catalogue {
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ResolverError {
    /// Wraps a catalogue failure (for [`crate::Catalogue`] implementations).
    pub fn catalogue(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Catalogue {
            source: Box::new(source),
        }
    }
}
