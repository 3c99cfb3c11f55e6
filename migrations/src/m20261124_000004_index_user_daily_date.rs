//! An index on `stats_user_daily(date)`. Re-aggregating a day removes that day's leftover
//! per-user rows (`DELETE … WHERE date = $1 AND updated_at <> $2`); the unique index leads
//! with `user_id`, so without this one each aggregated day scanned the whole table.

/// The index this migration adds.
pub(crate) const INDEXES: [(&str, &[&str]); 1] = [("stats_user_daily", &["date"])];

crate::columns::index_migration!(
    /// Adds `idx_stats_user_daily_date`.
);
