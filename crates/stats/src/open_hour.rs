//! The open hour (behaviour.md 9, read path at scale): the closing loop writes a snapshot of
//! the current hour up to the last whole second every minute, so a dashboard reads from
//! `usage` only what is newer than that snapshot — about a minute of rows, not an hour.
//!
//! A snapshot is a `stats_hourly` row (with its per-model and per-provider rows; no per-user
//! rows) written before its hour ended, so it never counts as closed; the hour's close
//! overwrites it. It covers the rows dated before the second it was taken: a request dated
//! earlier but recorded later is missed until the next snapshot or the close.

use sea_orm::TransactionTrait;
use time::OffsetDateTime;
use tollgate_entities::stats_hourly;

use crate::hourly::{HourAggregate, range_parts};
use crate::read::{hour_slices, hourly_slices};
use crate::rollup::{Acc, BucketParts};
use crate::sql;
use crate::write::{reads_inside_transaction, write_open_hour};
use crate::{Aggregator, BusinessHour, DayStats, StatsError};

/// `instant` truncated to the whole second.
fn whole_second(instant: OffsetDateTime) -> OffsetDateTime {
    instant.replace_nanosecond(0).unwrap_or(instant)
}

impl Aggregator {
    /// Writes a snapshot of the current hour up to the last whole second and returns that
    /// second (`None` in the hour's first second).
    pub async fn refresh_open_hour(&self) -> Result<Option<OffsetDateTime>, StatsError> {
        let now = self.now();
        let current = self.calendar.hour_containing(now)?;
        let until = whole_second(now);
        if until <= current.start() {
            return Ok(None);
        }
        let snapshot = |parts: &BucketParts| HourAggregate::new(current, Some(parts));
        if reads_inside_transaction(self.db.get_database_backend()) {
            let txn = self.db.begin().await?;
            sql::lock(&txn).await?;
            let parts = range_parts(&txn, current.start(), until).await?;
            write_open_hour(&txn, &snapshot(&parts), now).await?;
            txn.commit().await?;
        } else {
            let parts = range_parts(&self.db, current.start(), until).await?;
            let txn = self.db.begin().await?;
            write_open_hour(&txn, &snapshot(&parts), now).await?;
            txn.commit().await?;
        }
        Ok(Some(until))
    }

    /// The snapshot of `current` (the hour containing now), if one was written this hour:
    /// its sums, and the second up to which it covers.
    pub(crate) async fn open_hour(
        &self,
        current: &BusinessHour,
    ) -> Result<Option<(BucketParts, OffsetDateTime)>, StatsError> {
        let range = (current.start(), current.end());
        let rows =
            hourly_slices::<stats_hourly::Entity, _>(&self.db, range.0, range.1, None).await?;
        let Some(row) = rows.into_iter().find(|row| {
            row.hour == current.start()
                && row.updated_at > current.start()
                && row.updated_at < current.end()
        }) else {
            return Ok(None);
        };
        let until = whole_second(row.updated_at);
        let stats = DayStats::from(&row);
        let mut parts = BucketParts {
            total: Acc::of_day(&stats),
            fallback_count: stats.fallback_count,
            ..BucketParts::default()
        };
        let [models, providers] = hour_slices(&self.db, range).await?;
        for slice in models.values().flatten() {
            parts.models.insert(slice.key.clone(), Acc::of_slice(slice));
            parts.model_names.insert(slice.key.clone());
        }
        for slice in providers.values().flatten() {
            parts
                .providers
                .insert(slice.key.clone(), Acc::of_slice(slice));
            parts.provider_names.insert(slice.key.clone());
        }
        Ok(Some((parts, until)))
    }
}
