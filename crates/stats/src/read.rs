//! The read path of behaviour.md 9: closed hours and days come from the rollups, only what
//! is newer than the last closed hour of today is computed from `usage`, and days that were
//! never aggregated are reported as such instead of being scanned.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, EntityTrait};
use time::OffsetDateTime;
use tollgate_entities::{stats_hourly, stats_hourly_model, stats_hourly_provider, stats_summary};

use crate::hourly::{day_of_parts, range_parts};
use crate::memo;
use crate::rollup::{Acc, BucketParts, Buckets, Dimension, Passes, compute};
use crate::rows::{daily_rows, range_rows};
use crate::sql;
use crate::{
    Aggregator, BusinessDay, BusinessHour, CombinedStats, DayAggregate, DayStats, HourEntry,
    HourSource, SliceStats, StatsError, TodayView, Totals,
};

/// Rows of an hourly table in `[from, to)` by their `hour`, optionally for one user.
pub(crate) async fn hourly_slices<E, C>(
    conn: &C,
    from: OffsetDateTime,
    to: OffsetDateTime,
    user_id: Option<&str>,
) -> Result<Vec<E::Model>, StatsError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    range_rows::<E, _>(
        conn,
        "hour",
        Some(from),
        to,
        user_id.map(|id| ("user_id", id)),
    )
    .await
}

/// The per-model and per-provider rows of the hours in `range`, by hour.
pub(crate) async fn hour_slices<C: ConnectionTrait>(
    conn: &C,
    range: (OffsetDateTime, OffsetDateTime),
) -> Result<[BTreeMap<OffsetDateTime, Vec<SliceStats>>; 2], StatsError> {
    Ok([
        slices_by_time::<stats_hourly_model::Entity, _>(conn, "hour", range, None, |row| row.hour)
            .await?,
        slices_by_time::<stats_hourly_provider::Entity, _>(conn, "hour", range, None, |row| {
            row.hour
        })
        .await?,
    ])
}

/// Rows of slice table `E` whose time `column` (`hour` or `date`) lies in
/// `[from, to)`, optionally for one value of a key column, by bucket start.
pub(crate) async fn slices_by_time<E, C>(
    conn: &C,
    column: &str,
    range: (OffsetDateTime, OffsetDateTime),
    key: Option<(&str, &str)>,
    time_of: fn(&E::Model) -> OffsetDateTime,
) -> Result<BTreeMap<OffsetDateTime, Vec<SliceStats>>, StatsError>
where
    E: EntityTrait,
    C: ConnectionTrait,
    for<'a> SliceStats: From<&'a E::Model>,
{
    let mut out: BTreeMap<OffsetDateTime, Vec<SliceStats>> = BTreeMap::new();
    if range.0 >= range.1 {
        return Ok(out);
    }
    for row in range_rows::<E, _>(conn, column, Some(range.0), range.1, key).await? {
        out.entry(time_of(&row))
            .or_default()
            .push(SliceStats::from(&row));
    }
    Ok(out)
}

/// The complete (aggregated after they ended) hours of a range, with their per-model and
/// per-provider rows when asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClosedHours {
    pub(crate) stats: BTreeMap<OffsetDateTime, DayStats>,
    pub(crate) models: BTreeMap<OffsetDateTime, Vec<SliceStats>>,
    pub(crate) providers: BTreeMap<OffsetDateTime, Vec<SliceStats>>,
}

impl ClosedHours {
    /// The sums of the closed hours starting in `[from, to)`; model and provider names
    /// stand for the distinct counts, and fallbacks add up per hour.
    pub(crate) fn parts(&self, from: OffsetDateTime, to: OffsetDateTime) -> BucketParts {
        let mut parts = BucketParts::default();
        for (_, stats) in self.stats.range(from..to) {
            parts.total.merge(&Acc::of_day(stats));
            parts.fallback_count += stats.fallback_count;
        }
        for (target, names, source) in [
            (&mut parts.models, &mut parts.model_names, &self.models),
            (
                &mut parts.providers,
                &mut parts.provider_names,
                &self.providers,
            ),
        ] {
            for (_, rows) in source.range(from..to) {
                for row in rows {
                    target
                        .entry(row.key.clone())
                        .or_default()
                        .merge(&Acc::of_slice(row));
                    names.insert(row.key.clone());
                }
            }
        }
        parts
    }
}

impl Aggregator {
    /// Whether a stored hour row starting at `hour` and written at `updated_at` is a closed
    /// hour of this calendar: an hour start, aggregated after the hour ended.
    fn closed_hour(&self, hour: OffsetDateTime, updated_at: OffsetDateTime) -> bool {
        matches!(self.calendar.hour_containing(hour),
            Ok(bucket) if bucket.start() == hour && updated_at >= bucket.end())
    }

    /// The closed hours starting in `[from, to)`.
    pub(crate) async fn closed_hours(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        with_slices: bool,
    ) -> Result<ClosedHours, StatsError> {
        self.closed_hours_on(&self.db, from, to, with_slices).await
    }

    /// [`closed_hours`](Self::closed_hours) on `conn` (a transaction, when writing).
    pub(crate) async fn closed_hours_on<C: ConnectionTrait>(
        &self,
        conn: &C,
        from: OffsetDateTime,
        to: OffsetDateTime,
        with_slices: bool,
    ) -> Result<ClosedHours, StatsError> {
        let mut closed = ClosedHours::default();
        if from >= to {
            return Ok(closed);
        }
        for row in hourly_slices::<stats_hourly::Entity, _>(conn, from, to, None).await? {
            if self.closed_hour(row.hour, row.updated_at) {
                closed.stats.insert(row.hour, DayStats::from(&row));
            }
        }
        if with_slices && !closed.stats.is_empty() {
            [closed.models, closed.providers] = hour_slices(conn, (from, to)).await?;
            let open = |hour: &OffsetDateTime| !closed.stats.contains_key(hour);
            closed.models.retain(|hour, _| !open(hour));
            closed.providers.retain(|hour, _| !open(hour));
        }
        Ok(closed)
    }

    /// Today's closed hours (those before `current`) with their per-model and per-provider
    /// rows. They change once an hour, so they are memoised and read again only when the
    /// range's version changed.
    pub(crate) async fn today_closed(
        &self,
        today: &BusinessDay,
        current: &BusinessHour,
    ) -> Result<Arc<ClosedHours>, StatsError> {
        let version = memo::version(
            &self.db,
            "stats_hourly",
            "hour",
            today.start(),
            current.start(),
        )
        .await?;
        if let Some(closed) = self.today_hours.get(&version) {
            return Ok(closed);
        }
        let closed = self
            .closed_hours(today.start(), current.start(), true)
            .await?;
        Ok(self.today_hours.put(version, closed))
    }

    /// The end of the last of `closed`'s hours, or `otherwise` when there is none.
    pub(crate) fn end_of_closed(
        &self,
        closed: &ClosedHours,
        otherwise: OffsetDateTime,
    ) -> Result<OffsetDateTime, StatsError> {
        match closed.stats.keys().next_back() {
            Some(last) => Ok(self.calendar.hour_containing(*last)?.end()),
            None => Ok(otherwise),
        }
    }

    /// Today so far: the closed hours of today from `stats_hourly`, and only what is newer
    /// than the last of them computed from `usage` (up to the day's end: no row is dated in
    /// the future).
    ///
    /// While no hour of today is closed, the whole of today is computed live and every
    /// number is exact. Once hours are closed, `unique_models` counts the distinct
    /// `COALESCE(global_model, model)` names and `fallback_count` adds up per hour, until
    /// the day itself is aggregated.
    pub async fn today_view(&self) -> Result<TodayView, StatsError> {
        let now = self.now();
        let today = self.calendar.day_containing(now)?;
        let current = self.calendar.hour_containing(now)?;
        let closed = self.today_closed(&today, &current).await?;
        let live_from = self.end_of_closed(&closed, today.start())?;
        let hours_not_aggregated = self
            .calendar
            .hours_of(&today)
            .iter()
            .filter(|hour| hour.end() <= live_from && !closed.stats.contains_key(&hour.start()))
            .count();
        let mut parts = closed.parts(today.start(), live_from);
        // The loop's snapshot of the current hour, when every hour before it is closed.
        let mut live_from = live_from;
        let mut snapshot = false;
        if live_from == current.start()
            && let Some((open, until)) = self.open_hour(&current).await?
        {
            parts.merge(&open);
            parts.fallback_count += open.fallback_count;
            live_from = until;
            snapshot = true;
        }
        let mut live = range_parts(&self.db, live_from, today.end()).await?;
        let aggregate = if closed.stats.is_empty() && !snapshot {
            day_of_parts(&today, &live)
        } else {
            live.model_names = live.models.keys().cloned().collect();
            parts.merge(&live);
            parts.fallback_count += live.fallback_count;
            day_of_parts(&today, &parts)
        };
        Ok(TodayView {
            today: aggregate,
            hours_closed: closed.stats.len(),
            hours_not_aggregated,
            live_from,
        })
    }

    /// The dashboard's combined view: the summary, plus every day between its cutoff and
    /// today (the stored row when complete, else the sum of its closed hours), plus today
    /// (see [`today_view`](Self::today_view)). Just after midnight, before the day is
    /// closed, yesterday is the sum of its hours: no hole. No past day is read from `usage`:
    /// a day with neither a complete row nor all of its hours closed is listed in
    /// `days_not_aggregated` (with what closed hours it has counted).
    pub async fn combined(&self) -> Result<CombinedStats, StatsError> {
        let now = self.now();
        let today = self.calendar.day_containing(now)?;
        let summary = stats_summary::Entity::find_by_id(stats_summary::SINGLETON_ID)
            .one(&self.db)
            .await?
            .filter(|row| {
                row.cutoff_date <= today.start() && self.calendar.is_day_start(row.cutoff_date)
            });
        let from = summary.as_ref().map(|row| row.cutoff_date);
        let mut all_time = summary.as_ref().map(Totals::from).unwrap_or_default();

        let rows = daily_rows(&self.db, from, today.start()).await?;
        let complete = self.complete_rows(&rows);
        for row in complete.values() {
            all_time.add(&Totals::from(&DayStats::from(*row)));
        }

        // Days from the cutoff (or the first usage, without a summary) up to today that have
        // no complete row: the sum of their closed hours.
        let first = match from {
            Some(cutoff) => Some(cutoff),
            None => sql::first_usage(&self.db).await?,
        };
        let mut missing = Vec::new();
        if let Some(first) = first {
            let mut day = self.calendar.day_containing(first)?;
            while day.start() < today.start() {
                if !complete.contains_key(&day.start()) {
                    missing.push(day);
                }
                day = self.calendar.next(&day)?;
            }
        }
        let mut days_from_hours = 0_u32;
        let mut days_not_aggregated = Vec::new();
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            let closed = self.closed_hours(first.start(), last.end(), false).await?;
            for day in missing {
                let hours = closed.stats.range(day.start()..day.end());
                let mut closed_count = 0;
                for (_, stats) in hours {
                    all_time.add(&Totals::from(stats));
                    closed_count += 1;
                }
                if closed_count == self.calendar.hours_of(&day).len() {
                    days_from_hours += 1;
                } else {
                    days_not_aggregated.push(day);
                }
            }
        }

        let today = self.today_view().await?;
        all_time.add(&Totals::from(&today.today.stats));
        let accounts = sql::account_counts(&self.db).await?;
        Ok(CombinedStats {
            all_time,
            today: today.today,
            today_hours_closed: today.hours_closed,
            today_hours_not_aggregated: today.hours_not_aggregated,
            today_live_from: today.live_from,
            accounts,
            summary_cutoff: from,
            days_from_hours,
            days_not_aggregated,
            as_of: now,
        })
    }

    /// The last `hours` hours, the current one included, oldest first: closed hours from
    /// `stats_hourly`; today's hours newer than the last closed one computed from `usage`;
    /// any other hour that was never closed reported as `not_aggregated` with zeros.
    pub async fn hourly_series(&self, hours: u32) -> Result<Vec<HourEntry>, StatsError> {
        let now = self.now();
        let current = self.calendar.hour_containing(now)?;
        let mut window = self.calendar.hours_before(now, hours.saturating_sub(1))?;
        if hours > 0 {
            window.push(current);
        }
        let Some(first) = window.first().copied() else {
            return Ok(Vec::new());
        };
        let today = self.calendar.day_containing(now)?;
        let closed = self
            .closed_hours(first.start(), current.start(), false)
            .await?;
        let live_from = self
            .end_of_closed(&closed, first.start())?
            .max(today.start());
        // The current hour from the loop's snapshot and the rows after it, when it has one.
        let open = if hours > 0 {
            self.open_hour(&current).await?
        } else {
            None
        };
        let live_hours: Vec<BusinessHour> = window
            .iter()
            .filter(|hour| hour.start() >= live_from)
            .filter(|hour| open.is_none() || hour.start() < current.start())
            .copied()
            .collect();
        let mut live = self.live_hours(&live_hours).await?;
        if let Some((mut parts, until)) = open {
            let mut tail = range_parts(&self.db, until, current.end()).await?;
            tail.model_names = tail.models.keys().cloned().collect();
            parts.merge(&tail);
            parts.fallback_count += tail.fallback_count;
            live.insert(current.start(), parts);
        }
        Ok(window
            .into_iter()
            .map(|hour| {
                if let Some(stats) = closed.stats.get(&hour.start()) {
                    HourEntry {
                        hour,
                        source: HourSource::Aggregated,
                        stats: stats.clone(),
                    }
                } else if hour.start() >= live_from {
                    HourEntry {
                        hour,
                        source: HourSource::Live,
                        stats: live
                            .get(&hour.start())
                            .map(BucketParts::stats)
                            .unwrap_or_default(),
                    }
                } else {
                    HourEntry {
                        hour,
                        source: HourSource::NotAggregated,
                        stats: DayStats::default(),
                    }
                }
            })
            .collect())
    }

    /// `hours` (consecutive) computed from `usage`, keyed by start.
    async fn live_hours(
        &self,
        hours: &[BusinessHour],
    ) -> Result<BTreeMap<OffsetDateTime, BucketParts>, StatsError> {
        let Some(last) = hours.last() else {
            return Ok(BTreeMap::new());
        };
        let buckets = Buckets::new(
            self.db.get_database_backend(),
            hours.iter().map(BusinessHour::start).collect(),
            last.end(),
        )?;
        let passes = Passes {
            models: true,
            names: false,
            dimension: Dimension::Skip,
            fallbacks: true,
        };
        compute(&self.db, &buckets, passes).await
    }

    /// The sums of `day` from its closed hours, and whether every hour of it is closed.
    pub(crate) fn day_from_hours(
        &self,
        day: &BusinessDay,
        closed: &ClosedHours,
    ) -> (DayAggregate, bool) {
        let parts = closed.parts(day.start(), day.end());
        let count = closed.stats.range(day.start()..day.end()).count();
        (
            day_of_parts(day, &parts),
            count == self.calendar.hours_of(day).len(),
        )
    }
}
