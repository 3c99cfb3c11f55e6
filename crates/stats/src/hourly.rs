//! Hours and days from the passes of [`crate::rollup`] (behaviour.md 9): a run of hours is
//! computed in one grouped pass per dimension, and a business day is the sum of its hours,
//! plus what does not add up across hours (distinct counts, fallbacks of requests whose
//! attempts straddle an hour).

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde::Serialize;
use time::OffsetDateTime;

use crate::rollup::{Acc, BucketParts, Buckets, Dimension, Passes, compute};
use crate::sql;
use crate::stored::add_hourly_slices;
use crate::write::{reads_inside_transaction, write_day_dimensions, write_hours};
use crate::{
    Aggregator, BusinessDay, BusinessHour, DayAggregate, DayStats, SliceStats, StatsError,
    UserStats,
};

/// One hour's numbers: the `stats_hourly` row and the hour's per-model, per-provider and
/// per-user rows (each sorted by key).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourAggregate {
    /// The hour.
    pub hour: BusinessHour,
    /// The `stats_hourly` numbers.
    pub stats: DayStats,
    /// The `stats_hourly_model` rows.
    pub models: Vec<SliceStats>,
    /// The `stats_hourly_provider` rows.
    pub providers: Vec<SliceStats>,
    /// The `stats_hourly_user` rows.
    pub users: Vec<SliceStats>,
    /// The `stats_hourly_api_key` rows.
    pub api_keys: Vec<SliceStats>,
}

fn slices(map: &BTreeMap<String, Acc>) -> Vec<SliceStats> {
    map.iter().map(|(key, acc)| acc.slice(key)).collect()
}

impl HourAggregate {
    pub(crate) fn new(hour: BusinessHour, parts: Option<&BucketParts>) -> Self {
        let empty = BucketParts::default();
        let parts = parts.unwrap_or(&empty);
        Self {
            hour,
            stats: parts.stats(),
            models: slices(&parts.models),
            providers: slices(&parts.providers),
            users: slices(&parts.dimension),
            api_keys: slices(&parts.keys),
        }
    }
}

/// Buckets for `hours`, which must be consecutive.
fn hour_buckets<C: ConnectionTrait>(
    conn: &C,
    hours: &[BusinessHour],
) -> Result<Buckets, StatsError> {
    let end = hours
        .last()
        .map_or(OffsetDateTime::UNIX_EPOCH, BusinessHour::end);
    Buckets::new(
        conn.get_database_backend(),
        hours.iter().map(BusinessHour::start).collect(),
        end,
    )
}

/// Every pass of `hours` (consecutive, oldest first), keyed by hour start.
async fn hour_parts<C: ConnectionTrait>(
    conn: &C,
    hours: &[BusinessHour],
) -> Result<BTreeMap<OffsetDateTime, BucketParts>, StatsError> {
    if hours.is_empty() {
        return Ok(BTreeMap::new());
    }
    let passes = Passes {
        models: true,
        names: false,
        dimension: Dimension::UserAndKey,
        fallbacks: true,
    };
    compute(conn, &hour_buckets(conn, hours)?, passes).await
}

/// Computes `hours` (consecutive, oldest first), empty hours included.
pub(crate) async fn compute_hours<C: ConnectionTrait>(
    conn: &C,
    hours: &[BusinessHour],
) -> Result<Vec<HourAggregate>, StatsError> {
    let parts = hour_parts(conn, hours).await?;
    Ok(hours
        .iter()
        .map(|hour| HourAggregate::new(*hour, parts.get(&hour.start())))
        .collect())
}

impl Aggregator {
    /// Computes `day`: its hours (those closed from the first on kept as stored when
    /// `reuse`, the rest computed) and the day's rows.
    ///
    /// The day is the sum of its hours, kept and computed, added in hour order (so a day
    /// closed from its stored hours equals one computed in full, to the last bit), plus
    /// whole-day passes for what does not add up across hours: the fallbacks of requests
    /// straddling an hour and, when hours are kept, the distinct model and provider names.
    /// No per-user or per-key row of a kept hour is rewritten.
    ///
    /// The reads are independent, so each runs in a transaction on a pool connection of its
    /// own, side by side (the caller may hold the advisory lock in another): a day close
    /// takes as long as its slowest pass, not their sum. An aggregator therefore needs a
    /// pool of at least two connections. With `early` (the locked writing transaction on
    /// PostgreSQL, and the time to stamp), the day's per-user and per-key rows are written into it as soon as they
    /// are known, while the whole-day passes still run; the caller writes the rest.
    pub(crate) async fn day_aggregate(
        &self,
        day: &BusinessDay,
        reuse: bool,
        early: Option<(&DatabaseTransaction, OffsetDateTime)>,
    ) -> Result<DayAggregate, StatsError> {
        let hours = self.calendar.hours_of(day);
        let count = if reuse {
            self.closed_prefix(&hours).await?
        } else {
            0
        };
        let recompute = hours.get(count..).unwrap_or_default();
        let kept_end = recompute.first().map_or(day.end(), BusinessHour::start);
        let db = &self.db;
        let start = day.start();
        let whole = &Buckets::new(db.get_database_backend(), vec![start], day.end())?;
        let day_pass = |passes: Passes<'static>| async move {
            let txn = sql::read_transaction(db).await?;
            let mut parts = compute(&txn, whole, passes).await?;
            txn.commit().await?;
            Ok::<BucketParts, StatsError>(parts.remove(&start).unwrap_or_default())
        };
        let only = Passes {
            models: false,
            names: false,
            dimension: Dimension::Skip,
            fallbacks: false,
        };
        // The kept hours' totals, models and providers, and their users and keys, each
        // summed in hour order.
        let kept = async {
            if count == 0 {
                return Ok(BucketParts::default());
            }
            let txn = sql::read_transaction(db).await?;
            let closed = self.closed_hours_on(&txn, start, kept_end, true).await?;
            txn.commit().await?;
            Ok(closed.parts(start, kept_end))
        };
        let kept_slices = |table: (&'static str, &'static str)| async move {
            let mut sums = BTreeMap::new();
            if count > 0 {
                let txn = sql::read_transaction(db).await?;
                add_hourly_slices(&txn, table, (start, kept_end), &mut sums).await?;
                txn.commit().await?;
            }
            Ok::<_, StatsError>(sums)
        };
        let recomputed = async {
            if recompute.is_empty() {
                return Ok(BTreeMap::new());
            }
            let txn = sql::read_transaction(db).await?;
            let parts = hour_parts(&txn, recompute).await?;
            txn.commit().await?;
            Ok::<_, StatsError>(parts)
        };
        let names = async {
            if count == 0 {
                return Ok(BucketParts::default());
            }
            day_pass(Passes {
                names: true,
                ..only
            })
            .await
        };
        // Users and keys: the kept hours', then the recomputed ones', in hour order.
        let dimensions = async {
            let (mut users, mut keys, parts) = tokio::try_join!(
                kept_slices(("stats_hourly_user", "user_id")),
                kept_slices(("stats_hourly_api_key", "api_key_id")),
                recomputed,
            )?;
            for part in parts.values() {
                for (target, source) in [(&mut users, &part.dimension), (&mut keys, &part.keys)] {
                    for (key, acc) in source {
                        target.entry(key.clone()).or_default().merge(acc);
                    }
                }
            }
            let users: Vec<UserStats> = users.iter().map(|(key, acc)| acc.user(key)).collect();
            let keys = slices(&keys);
            if let Some((txn, now)) = early {
                write_day_dimensions(txn, day, &users, &keys, now).await?;
            }
            Ok::<_, StatsError>((users, keys, parts))
        };
        let (mut sum, (users, api_keys, parts), names, fallbacks) = tokio::try_join!(
            kept,
            dimensions,
            names,
            day_pass(Passes {
                fallbacks: true,
                ..only
            }),
        )?;
        for part in parts.values() {
            sum.merge(part);
        }
        sum.fallback_count = fallbacks.fallback_count;
        if count > 0 {
            sum.model_names = names.model_names;
            sum.provider_names = names.provider_names;
        }
        let hours = recompute
            .iter()
            .map(|hour| HourAggregate::new(*hour, parts.get(&hour.start())))
            .collect();
        Ok(DayAggregate {
            day: *day,
            stats: sum.stats(),
            models: sum.models.iter().map(|(key, acc)| acc.model(key)).collect(),
            users,
            providers: slices(&sum.providers),
            api_keys,
            hours,
        })
    }

    /// How many of `hours` (a day's), from the first, are closed.
    async fn closed_prefix(&self, hours: &[BusinessHour]) -> Result<usize, StatsError> {
        let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
            return Ok(0);
        };
        let closed = self.closed_hours(first.start(), last.end(), false).await?;
        Ok(hours
            .iter()
            .take_while(|hour| closed.stats.contains_key(&hour.start()))
            .count())
    }
}

/// Computes `[start, end)` as one bucket: the totals, per-model and per-provider sums,
/// distinct names and fallbacks, without per-user or per-key sums.
pub(crate) async fn range_parts<C: ConnectionTrait>(
    conn: &C,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<BucketParts, StatsError> {
    if start >= end {
        return Ok(BucketParts::default());
    }
    let buckets = Buckets::new(conn.get_database_backend(), vec![start], end)?;
    let passes = Passes {
        models: true,
        names: false,
        dimension: Dimension::Skip,
        fallbacks: true,
    };
    let mut parts = compute(conn, &buckets, passes).await?;
    Ok(parts.remove(&start).unwrap_or_default())
}

/// The day-shaped answer for `parts` (no per-user or per-key rows).
pub(crate) fn day_of_parts(day: &BusinessDay, parts: &BucketParts) -> DayAggregate {
    DayAggregate {
        day: *day,
        stats: parts.stats(),
        models: parts
            .models
            .iter()
            .map(|(key, acc)| acc.model(key))
            .collect(),
        users: Vec::new(),
        providers: slices(&parts.providers),
        api_keys: Vec::new(),
        hours: Vec::new(),
    }
}

/// Computes `[start, end)` as one bucket, shaped as a day (see [`range_parts`]).
pub(crate) async fn compute_range<C: ConnectionTrait>(
    conn: &C,
    day: &BusinessDay,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<DayAggregate, StatsError> {
    Ok(day_of_parts(day, &range_parts(conn, start, end).await?))
}

/// One user's (or one client key's) numbers over `[start, end)`.
pub(crate) async fn compute_one<C: ConnectionTrait>(
    conn: &C,
    start: OffsetDateTime,
    end: OffsetDateTime,
    dimension: Dimension<'_>,
) -> Result<Acc, StatsError> {
    let buckets = Buckets::new(conn.get_database_backend(), vec![start], end)?;
    let passes = Passes {
        models: false,
        names: false,
        dimension,
        fallbacks: false,
    };
    let parts = compute(conn, &buckets, passes).await?;
    Ok(parts
        .get(&start)
        .and_then(|part| part.dimension.values().next().cloned())
        .unwrap_or_default())
}

/// What [`Aggregator::close_hours`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HoursReport {
    /// The hours (re-)aggregated, oldest first.
    pub hours: Vec<BusinessHour>,
    /// Requests in them.
    pub requests: i64,
}

impl Aggregator {
    /// Aggregates `hours` (consecutive, oldest first) and stores their hourly rows in one
    /// transaction; on PostgreSQL under the aggregators' advisory lock. Idempotent. An hour
    /// aggregated before it ended is stored but counts as open, like a day.
    pub async fn aggregate_hours(
        &self,
        hours: &[BusinessHour],
    ) -> Result<Vec<HourAggregate>, StatsError> {
        if hours
            .windows(2)
            .any(|pair| pair[0].end() != pair[1].start())
        {
            return Err(StatsError::DateOutOfRange {
                detail: "hours to aggregate must be consecutive".to_owned(),
            });
        }
        // The raw rows of a pruned day are gone: its hours are final, like the day.
        for day in self.days_of(hours)? {
            self.refuse_pruned(&day).await?;
        }
        let aggregates = if reads_inside_transaction(self.db.get_database_backend()) {
            let txn = self.db.begin().await?;
            sql::lock(&txn).await?;
            let aggregates = compute_hours(&txn, hours).await?;
            write_hours(&txn, &aggregates, self.now()).await?;
            txn.commit().await?;
            aggregates
        } else {
            let aggregates = compute_hours(&self.db, hours).await?;
            let txn = self.db.begin().await?;
            write_hours(&txn, &aggregates, self.now()).await?;
            txn.commit().await?;
            aggregates
        };
        Ok(aggregates)
    }

    /// The business days `hours` fall in, in order, each once.
    pub(crate) fn days_of(&self, hours: &[BusinessHour]) -> Result<Vec<BusinessDay>, StatsError> {
        let mut days: Vec<BusinessDay> = Vec::new();
        for hour in hours {
            let day = self.calendar.day_containing(hour.start())?;
            if days.last() != Some(&day) {
                days.push(day);
            }
        }
        Ok(days)
    }

    /// Closes the last `count` hours that have ended (re-aggregating them: usage rows are
    /// written when their request ends but dated when it started, so an hour keeps
    /// receiving rows for a while). `count` 0 does nothing.
    pub async fn close_hours(&self, count: u32) -> Result<HoursReport, StatsError> {
        let hours = self.calendar.hours_before(self.now(), count)?;
        self.close(hours).await
    }

    /// Aggregates `hours` (consecutive) and counts them as closed.
    pub(crate) async fn close(&self, hours: Vec<BusinessHour>) -> Result<HoursReport, StatsError> {
        let aggregates = self.aggregate_hours(&hours).await?;
        let requests = aggregates
            .iter()
            .map(|hour| hour.stats.total_requests)
            .sum();
        metrics::counter!("aggregator_hours_closed_total").increment(hours.len() as u64);
        if let Some(last) = hours.last() {
            #[expect(
                clippy::cast_precision_loss,
                reason = "a Unix timestamp in seconds fits an f64 exactly"
            )]
            metrics::gauge!("aggregator_last_closed_hour_timestamp_seconds")
                .set(last.start().unix_timestamp() as f64);
        }
        tracing::info!(hours = hours.len(), requests, "closed hours");
        Ok(HoursReport { hours, requests })
    }
}
