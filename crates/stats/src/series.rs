//! Gap detection and backfill, and the dashboard's daily series (per day with per-model
//! breakdown, and per user), which read days never aggregated from their closed hours.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use time::OffsetDateTime;
use tollgate_entities::{stats_daily, stats_daily_model, stats_hourly_user, stats_user_daily};

use crate::hourly::compute_one;
use crate::memo;
use crate::read::{ClosedHours, hourly_slices};
use crate::rollup::{Acc, Dimension};
use crate::rows::{daily_rows, range_rows};
use crate::{
    Aggregator, BackfillProgress, BackfillReport, BusinessDay, DailyEntry, DaySource, DayStats,
    ModelStats, SliceStats, StatsError, UserDailyEntry, UserStats,
};

/// The days a series covers, and the stored day rows among them.
struct Window {
    /// The past days, oldest first.
    past: Vec<BusinessDay>,
    today: BusinessDay,
    /// The start of the first day.
    from: OffsetDateTime,
    /// The `stats_daily` rows from `from` to today's start.
    rows: Vec<stats_daily::Model>,
}

impl Aggregator {
    /// The last `days` business days including today; `None` for zero days.
    async fn window(&self, days: u32) -> Result<Option<Window>, StatsError> {
        let Some(before_today) = days.checked_sub(1) else {
            return Ok(None);
        };
        let today = self.today()?;
        let past = self.days_before(&today, before_today)?;
        let from = past.first().map_or(today.start(), BusinessDay::start);
        let rows = daily_rows(&self.db, Some(from), today.start()).await?;
        Ok(Some(Window {
            past,
            today,
            from,
            rows,
        }))
    }

    /// The days of the last `days` days before today (yesterday included, today not) that
    /// have no complete `stats_daily` row, oldest first. Rows are matched to days by
    /// instant, never by their text.
    pub async fn missing_days(&self, days: u32) -> Result<Vec<BusinessDay>, StatsError> {
        let today = self.today()?;
        let window = self.days_before(&today, days)?;
        let Some(first) = window.first() else {
            return Ok(Vec::new());
        };
        let rows = daily_rows(&self.db, Some(first.start()), today.start()).await?;
        let complete = self.complete_rows(&rows);
        Ok(window
            .into_iter()
            .filter(|day| !complete.contains_key(&day.start()))
            .collect())
    }

    /// Aggregates every missing day of the last `days` days, oldest first, one transaction
    /// per day, so a run that is stopped or killed resumes where it stopped.
    ///
    /// `on_progress` is called before the first day and after each filled day; returning
    /// `ControlFlow::Break(())` stops the backfill after the day in progress (how a caller
    /// honours SIGINT, or a test simulates a crash half-way).
    pub async fn backfill<F>(
        &self,
        days: u32,
        mut on_progress: F,
    ) -> Result<BackfillReport, StatsError>
    where
        F: FnMut(BackfillProgress) -> ControlFlow<()> + Send,
    {
        let missing = self.missing_days(days).await?;
        let total = missing.len();
        let mut report = BackfillReport {
            missing: total,
            filled: Vec::with_capacity(total),
            stopped: false,
        };
        let first = BackfillProgress {
            done: 0,
            total,
            last: None,
        };
        if on_progress(first).is_break() {
            report.stopped = total > 0;
            return Ok(report);
        }
        for day in missing {
            self.close_day(&day).await?;
            report.filled.push(day);
            let progress = BackfillProgress {
                done: report.filled.len(),
                total,
                last: Some(day),
            };
            if on_progress(progress).is_break() {
                report.stopped = report.filled.len() < total;
                break;
            }
        }
        tracing::info!(
            missing = report.missing,
            filled = report.filled.len(),
            stopped = report.stopped,
            "backfill finished"
        );
        Ok(report)
    }

    /// The last `days` business days including today, oldest first: one entry per day,
    /// zero days included, each with its per-model breakdown. Complete aggregated days come
    /// from the daily tables, other past days from their closed hours (never from `usage`),
    /// today from [`today_view`](Self::today_view).
    pub async fn daily_series(&self, days: u32) -> Result<Vec<DailyEntry>, StatsError> {
        let Some(window) = self.window(days).await? else {
            return Ok(Vec::new());
        };
        let complete = self.complete_rows(&window.rows);
        // The day rows of the window change once a day: read the per-model rows again only
        // when they did.
        let version = memo::version(
            &self.db,
            "stats_daily",
            "date",
            window.from,
            window.today.start(),
        )
        .await?;
        let models = match self.day_models.get(&version) {
            Some(models) => models,
            None => {
                let models = self.day_model_rows(&window).await?;
                self.day_models.put(version, models)
            }
        };
        let closed = self
            .unaggregated_hours(&window.past, &complete, true)
            .await?;

        let mut entries = Vec::with_capacity(window.past.len() + 1);
        for day in window.past {
            let entry = match complete.get(&day.start()) {
                Some(row) => {
                    let mut day_models = models.get(&day.start()).cloned().unwrap_or_default();
                    day_models.sort_by(|a, b| a.model.cmp(&b.model));
                    DailyEntry {
                        day,
                        source: DaySource::Aggregated,
                        stats: DayStats::from(*row),
                        models: day_models,
                    }
                }
                None => {
                    let (sum, all_closed) = self.day_from_hours(&day, &closed);
                    DailyEntry {
                        day,
                        source: if all_closed {
                            DaySource::Hours
                        } else {
                            DaySource::NotAggregated
                        },
                        stats: sum.stats,
                        models: sum.models,
                    }
                }
            };
            entries.push(entry);
        }
        let today = self.today_view().await?.today;
        entries.push(DailyEntry {
            day: window.today,
            source: DaySource::Today,
            stats: today.stats,
            models: today.models,
        });
        Ok(entries)
    }

    /// The `stats_daily_model` rows of `window`'s past days, by date.
    async fn day_model_rows(
        &self,
        window: &Window,
    ) -> Result<BTreeMap<OffsetDateTime, Vec<ModelStats>>, StatsError> {
        let mut models: BTreeMap<OffsetDateTime, Vec<ModelStats>> = BTreeMap::new();
        let range = (Some(window.from), window.today.start());
        for row in
            range_rows::<stats_daily_model::Entity, _>(&self.db, "date", range.0, range.1, None)
                .await?
        {
            models
                .entry(row.date)
                .or_default()
                .push(ModelStats::from(&row));
        }
        Ok(models)
    }

    /// The closed hours of the `days` without a `complete` day row (one read over their
    /// span).
    async fn unaggregated_hours<T>(
        &self,
        days: &[BusinessDay],
        complete: &BTreeMap<OffsetDateTime, T>,
        with_slices: bool,
    ) -> Result<ClosedHours, StatsError> {
        let mut picked = days
            .iter()
            .filter(|day| !complete.contains_key(&day.start()));
        let Some(first) = picked.next() else {
            return Ok(ClosedHours::default());
        };
        let last = picked.next_back().unwrap_or(first);
        self.closed_hours(first.start(), last.end(), with_slices)
            .await
    }

    /// One user's last `days` business days including today, oldest first, zero days
    /// included: complete days from `stats_user_daily`, other past days from the user's
    /// closed hours, today from its closed hours and a live tail for this user only.
    pub async fn user_daily_series(
        &self,
        user_id: &str,
        days: u32,
    ) -> Result<Vec<UserDailyEntry>, StatsError> {
        let Some(window) = self.window(days).await? else {
            return Ok(Vec::new());
        };
        let complete = self.complete_rows(&window.rows);
        let key = Some(("user_id", user_id));
        let range = (Some(window.from), window.today.start());
        let stored: BTreeMap<OffsetDateTime, UserStats> =
            range_rows::<stats_user_daily::Entity, _>(&self.db, "date", range.0, range.1, key)
                .await?
                .iter()
                .map(|row| (row.date, UserStats::from(row)))
                .collect();
        let zero = || UserStats {
            user_id: user_id.to_owned(),
            ..UserStats::default()
        };
        let closed = self
            .unaggregated_hours(&window.past, &complete, false)
            .await?;
        let user_hours = self.user_hours(user_id, &closed).await?;

        let mut entries = Vec::with_capacity(window.past.len() + 1);
        for day in window.past {
            let entry = if complete.contains_key(&day.start()) {
                UserDailyEntry {
                    day,
                    source: DaySource::Aggregated,
                    stats: stored.get(&day.start()).cloned().unwrap_or_else(zero),
                }
            } else {
                let mut sum = Acc::default();
                for (_, acc) in user_hours.range(day.start()..day.end()) {
                    sum.merge(acc);
                }
                let closed_count = closed.stats.range(day.start()..day.end()).count();
                UserDailyEntry {
                    day,
                    source: if closed_count == self.calendar.hours_of(&day).len() {
                        DaySource::Hours
                    } else {
                        DaySource::NotAggregated
                    },
                    stats: sum.user(user_id),
                }
            };
            entries.push(entry);
        }
        entries.push(UserDailyEntry {
            day: window.today,
            source: DaySource::Today,
            stats: self.user_today(user_id).await?,
        });
        Ok(entries)
    }

    /// The user's rows of the closed hours in `closed`, keyed by hour.
    async fn user_hours(
        &self,
        user_id: &str,
        closed: &ClosedHours,
    ) -> Result<BTreeMap<OffsetDateTime, Acc>, StatsError> {
        let (Some(first), Some(last)) = (closed.stats.keys().next(), closed.stats.keys().last())
        else {
            return Ok(BTreeMap::new());
        };
        let end = self.calendar.hour_containing(*last)?.end();
        Ok(
            hourly_slices::<stats_hourly_user::Entity, _>(&self.db, *first, end, Some(user_id))
                .await?
                .iter()
                .filter(|row| closed.stats.contains_key(&row.hour))
                .map(|row| (row.hour, Acc::of_slice(&SliceStats::from(row))))
                .collect(),
        )
    }

    /// One user's numbers today: closed hours of today, and a live tail for the user only.
    async fn user_today(&self, user_id: &str) -> Result<UserStats, StatsError> {
        let now = self.now();
        let today = self.calendar.day_containing(now)?;
        let current = self.calendar.hour_containing(now)?;
        let closed = self.today_closed(&today, &current).await?;
        let live_from = self.end_of_closed(&closed, today.start())?;
        let mut sum = Acc::default();
        for acc in self.user_hours(user_id, &closed).await?.values() {
            sum.merge(acc);
        }
        let live = compute_one(
            &self.db,
            live_from,
            today.end(),
            Dimension::User(Some(user_id)),
        )
        .await?;
        sum.merge(&live);
        Ok(sum.user(user_id))
    }
}
