//! Per-provider and per-client-key breakdowns over the last days, and one client key's
//! daily series (behaviour.md 9), read from the rollups like every other dashboard answer.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use tollgate_entities::{stats_daily_api_key, stats_daily_provider};

use crate::hourly::compute_one;
use crate::read::slices_by_time;
use crate::rollup::{Acc, Dimension};
use crate::{Aggregator, BusinessDay, DaySource, SliceStats, StatsError};

/// What a breakdown groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakdownBy {
    /// Provider name (`usage.provider`).
    Provider,
    /// Client key id (`usage.api_key_id`).
    ApiKey,
}

/// Totals per provider or client key over a window of business days.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    /// What the rows are keyed by.
    pub by: BreakdownBy,
    /// The first day of the window.
    pub from: BusinessDay,
    /// One row per provider or key with traffic, most requests first.
    pub rows: Vec<SliceStats>,
    /// Whether today is included: per provider from closed hours and a live tail; per key
    /// never (this answer does not read `stats_hourly_api_key` yet, and today is not
    /// scanned).
    pub today_included: bool,
    /// Past days of the window that could not be counted (no complete day row and, per
    /// provider, not all hours closed).
    pub days_not_aggregated: Vec<BusinessDay>,
}

/// One day of a client key's series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyDailyEntry {
    /// The day.
    pub day: BusinessDay,
    /// Where the numbers came from (`hours` never: this series does not read
    /// `stats_hourly_api_key` yet).
    pub source: DaySource,
    /// The key's numbers (zeros without traffic or when not aggregated).
    pub stats: SliceStats,
}

impl Aggregator {
    /// Totals per provider or client key over the last `days` business days, today
    /// included where it can be read without a scan (see [`Breakdown::today_included`]).
    pub async fn breakdown(&self, by: BreakdownBy, days: u32) -> Result<Breakdown, StatsError> {
        let today = self.today()?;
        let past = self.days_before(&today, days.saturating_sub(1))?;
        let from = past.first().copied().unwrap_or(today);
        let rows = crate::rows::daily_rows(&self.db, Some(from.start()), today.start()).await?;
        let complete = self.complete_rows(&rows);
        let mut sums: BTreeMap<String, Acc> = BTreeMap::new();
        let mut add = |slice: &SliceStats| {
            sums.entry(slice.key.clone())
                .or_default()
                .merge(&Acc::of_slice(slice));
        };
        let stored = self
            .daily_slices(by, from.start(), today.start(), None)
            .await?;
        for (date, slices) in &stored {
            if complete.contains_key(date) {
                slices.iter().for_each(&mut add);
            }
        }
        let mut days_not_aggregated = Vec::new();
        let missing: Vec<BusinessDay> = past
            .iter()
            .filter(|day| !complete.contains_key(&day.start()))
            .copied()
            .collect();
        let today_included = by == BreakdownBy::Provider;
        if today_included {
            if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
                let closed = self.closed_hours(first.start(), last.end(), true).await?;
                for day in &missing {
                    let (sum, all_closed) = self.day_from_hours(day, &closed);
                    sum.providers.iter().for_each(&mut add);
                    if !all_closed {
                        days_not_aggregated.push(*day);
                    }
                }
            }
            for slice in &self.today_view().await?.today.providers {
                add(slice);
            }
        } else {
            days_not_aggregated = missing;
        }
        let mut rows: Vec<SliceStats> = sums.iter().map(|(key, acc)| acc.slice(key)).collect();
        rows.sort_by(|a, b| {
            b.total_requests
                .cmp(&a.total_requests)
                .then_with(|| a.key.cmp(&b.key))
        });
        Ok(Breakdown {
            by,
            from,
            rows,
            today_included,
            days_not_aggregated,
        })
    }

    /// One client key's last `days` business days including today, oldest first: complete
    /// days from `stats_daily_api_key`, other past days reported `not_aggregated`, today
    /// computed from that key's rows only (an index range, not a scan of the day).
    pub async fn api_key_daily_series(
        &self,
        api_key_id: &str,
        days: u32,
    ) -> Result<Vec<KeyDailyEntry>, StatsError> {
        let Some(before_today) = days.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let today = self.today()?;
        let past = self.days_before(&today, before_today)?;
        let from = past.first().map_or(today.start(), BusinessDay::start);
        let rows = crate::rows::daily_rows(&self.db, Some(from), today.start()).await?;
        let complete = self.complete_rows(&rows);
        let stored = self
            .daily_slices(BreakdownBy::ApiKey, from, today.start(), Some(api_key_id))
            .await?;
        let zero = || SliceStats {
            key: api_key_id.to_owned(),
            ..SliceStats::default()
        };
        let mut entries: Vec<KeyDailyEntry> = past
            .into_iter()
            .map(|day| {
                if complete.contains_key(&day.start()) {
                    let stats = stored
                        .get(&day.start())
                        .and_then(|slices| slices.first().cloned())
                        .unwrap_or_else(zero);
                    KeyDailyEntry {
                        day,
                        source: DaySource::Aggregated,
                        stats,
                    }
                } else {
                    KeyDailyEntry {
                        day,
                        source: DaySource::NotAggregated,
                        stats: zero(),
                    }
                }
            })
            .collect();
        let live = compute_one(
            &self.db,
            today.start(),
            today.end(),
            Dimension::ApiKey(Some(api_key_id)),
        )
        .await?;
        entries.push(KeyDailyEntry {
            day: today,
            source: DaySource::Today,
            stats: live.slice(api_key_id),
        });
        Ok(entries)
    }

    /// Stored per-provider or per-key day rows in `[from, to)`, by date.
    async fn daily_slices(
        &self,
        by: BreakdownBy,
        from: OffsetDateTime,
        to: OffsetDateTime,
        api_key_id: Option<&str>,
    ) -> Result<BTreeMap<OffsetDateTime, Vec<SliceStats>>, StatsError> {
        let range = (from, to);
        match by {
            BreakdownBy::Provider => {
                slices_by_time::<stats_daily_provider::Entity, _>(
                    &self.db,
                    "date",
                    range,
                    None,
                    |row| row.date,
                )
                .await
            }
            BreakdownBy::ApiKey => {
                slices_by_time::<stats_daily_api_key::Entity, _>(
                    &self.db,
                    "date",
                    range,
                    api_key_id.map(|id| ("api_key_id", id)),
                    |row| row.date,
                )
                .await
            }
        }
    }
}
