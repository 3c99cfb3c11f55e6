//! The one error type of `tollgate-stats`.

/// Everything that can go wrong while computing, storing or reading statistics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The configured business time zone is not in the bundled tz database.
    #[error("unknown time zone `{zone}`")]
    UnknownTimeZone {
        /// The name as given.
        zone: String,
    },
    /// A date or instant falls outside the range the calendar can represent.
    #[error("date out of range: {detail}")]
    DateOutOfRange {
        /// What could not be represented.
        detail: String,
    },
    /// A range bound with a sub-second part was about to be compared with SQLite's text
    /// timestamps, which only compare correctly against whole-second bounds.
    #[error("range bound {instant} has a sub-second part and cannot be compared on SQLite")]
    SubsecondBound {
        /// The offending bound.
        instant: time::OffsetDateTime,
    },
    /// A computed count does not fit its statistics column.
    #[error("value {value} does not fit column {column}")]
    ValueOutOfRange {
        /// The column being written.
        column: &'static str,
        /// The value that did not fit.
        value: i64,
    },
    /// A database statement failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}
