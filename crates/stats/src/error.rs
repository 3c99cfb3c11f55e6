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
    /// A computed value has no stored form (a non-finite float, or a type the writer does
    /// not know).
    #[error("value of column {column} cannot be stored: {detail}")]
    Unstorable {
        /// The column being written.
        column: &'static str,
        /// The value, as debug text.
        detail: String,
    },
    /// The business day ends at or before the retention watermark and has complete rollups:
    /// its raw rows may have been deleted, so aggregating it again would overwrite its
    /// rollups with what is left of them.
    #[error(
        "business day {day} was pruned: its rollups are final and it cannot be aggregated again"
    )]
    Pruned {
        /// The day, `YYYY-MM-DD`.
        day: String,
    },
    /// A retention setting is out of range.
    #[error("{option} must be at least 1, got {value}")]
    InvalidPruneOption {
        /// The setting (`keep_days` or `batch_rows`).
        option: &'static str,
        /// The value given.
        value: u32,
    },
    /// A database statement failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}
