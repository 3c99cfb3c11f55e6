//! The error type of `tollgate-entities`.

/// What can go wrong when validating typed column values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EntityError {
    /// A tiered pricing document broke one of its rules; names the tier (0-based) and field.
    #[error("invalid tiered pricing: tier {tier} field `{field}`: {reason}")]
    InvalidPricing {
        /// Index of the offending tier (0-based); 0 when the document has no tiers at all.
        tier: usize,
        /// Name of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An enum column held a value this version does not know.
    #[error("unknown {kind} `{value}`")]
    UnknownVariant {
        /// Which enum (for example `api_format`).
        kind: &'static str,
        /// The value that was read.
        value: String,
    },
}
