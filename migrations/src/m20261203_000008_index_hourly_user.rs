//! An index on `stats_hourly_user(user_id)`. The table's rows go with their user (`ON DELETE
//! CASCADE`) and its unique index leads with `hour`, so without this one deleting a user
//! scanned every hourly per-user row (about 24 rows per active user and day).

/// The index this migration adds.
pub(crate) const INDEXES: [(&str, &[&str]); 1] = [("stats_hourly_user", &["user_id"])];

crate::columns::index_migration!(
    /// Adds `idx_stats_hourly_user_user_id`.
);
