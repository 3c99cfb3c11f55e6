//! The closing loop of behaviour.md 9, shared by the aggregator daemon and the gateway:
//! shortly after each hour ends, re-aggregate the last few hours; once a business day has
//! ended, aggregate it (from its hours) and refresh the summary; at start, catch up on the
//! days since the first usage row that were never aggregated.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Aggregator, BusinessDay, BusinessHour, StatsError};

/// Settings of the closing loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosingConfig {
    /// How long after an hour ends it is closed (default 2 minutes).
    pub delay: Duration,
    /// How many ended hours every cycle re-aggregates (default 3): usage rows are written
    /// when their request ends but dated when it began.
    pub hours: u32,
    /// How many days back each cycle looks for days without a complete row (never before
    /// the first usage row).
    pub catch_up_days: u32,
}

impl Default for ClosingConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(120),
            hours: 3,
            catch_up_days: 31,
        }
    }
}

/// What one cycle did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CycleReport {
    /// Hours re-aggregated.
    pub hours: usize,
    /// Requests in them.
    pub requests: i64,
    /// The (last) past day aggregated in this cycle.
    pub day_closed: Option<BusinessDay>,
}

impl Aggregator {
    /// One cycle: re-aggregate the last `config.hours` ended hours; then aggregate every
    /// past day those hours belong to (from its hours, so the day row stays equal to their
    /// sum even when a late row changed one of them after the day was first closed), and
    /// every day of the catch-up window without a complete row (yesterday after midnight,
    /// or the days the process was down); refresh the summary after a day changed.
    pub async fn closing_cycle(&self, config: &ClosingConfig) -> Result<CycleReport, StatsError> {
        let closed = self.close(self.hours_to_close(config.hours).await?).await?;
        let today = self.today()?;
        let mut days: Vec<BusinessDay> = self
            .days_of(&closed.hours)?
            .into_iter()
            .filter(|day| day.start() < today.start())
            .collect();
        // Every day of the catch-up window without a complete row (yesterday, or days the
        // process was down for), never before the first usage row.
        let window = self.catch_up_window(config.catch_up_days).await?;
        for day in self.missing_days(window).await? {
            if !days.contains(&day) {
                days.push(day);
            }
        }
        days.sort();
        for day in &days {
            self.close_day(day).await?;
        }
        if !days.is_empty() {
            self.refresh_summary().await?;
        }
        let day_closed = days.last().copied();
        Ok(CycleReport {
            hours: closed.hours.len(),
            requests: closed.requests,
            day_closed,
        })
    }

    /// The last `count` ended hours, extended back to the first ended hour of today that
    /// was never closed (the loop was not running then), so no hour of today is left out.
    async fn hours_to_close(&self, count: u32) -> Result<Vec<BusinessHour>, StatsError> {
        let now = self.now();
        let window = self.calendar.hours_before(now, count)?;
        let today = self.calendar.day_containing(now)?;
        let current = self.calendar.hour_containing(now)?;
        let closed = self
            .closed_hours(today.start(), current.start(), false)
            .await?;
        let ended: Vec<BusinessHour> = self
            .calendar
            .hours_of(&today)
            .into_iter()
            .filter(|hour| hour.end() <= current.start())
            .collect();
        let first_gap = ended
            .iter()
            .position(|hour| !closed.stats.contains_key(&hour.start()));
        match (first_gap, window.first()) {
            (Some(gap), Some(first)) if ended[gap].start() < first.start() => {
                Ok(ended[gap..].to_vec())
            }
            _ => Ok(window),
        }
    }

    /// Days to look back at start: `catch_up_days`, but not before the first usage row.
    pub async fn catch_up_window(&self, catch_up_days: u32) -> Result<u32, StatsError> {
        let Some(first) = crate::sql::first_usage(&self.db).await? else {
            return Ok(0);
        };
        let first_day = self.calendar.day_containing(first)?;
        let today = self.today()?;
        let span = (today.date() - first_day.date()).whole_days();
        Ok(u32::try_from(span).unwrap_or(u32::MAX).min(catch_up_days))
    }

    /// When the next cycle is due: `delay` after the end of the current hour.
    pub fn next_cycle_at(&self, delay: Duration) -> Result<OffsetDateTime, StatsError> {
        let now = self.now();
        let current = self.calendar.hour_containing(now)?;
        let due = current.end() + delay;
        // Just after an hour ends, the previous hour's cycle may still be ahead.
        let previous_due = current.start() + delay;
        Ok(if previous_due > now {
            previous_due
        } else {
            due
        })
    }

    /// Runs the closing loop until `shutdown` resolves: one cycle at once (which catches up
    /// on missed days and hours), then one shortly after each hour ends, and a snapshot of
    /// the open hour at every wake (at least once a minute). A failed cycle is logged and
    /// retried a minute later; the transactions it began roll back, so stopping at any point
    /// leaves consistent rows.
    pub async fn run_closing_loop(
        &self,
        config: ClosingConfig,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut due = self.now();
        loop {
            let mut wait = Duration::from_secs(60);
            if self.now() >= due {
                let cycle = tokio::select! {
                    cycle = self.closing_cycle(&config) => cycle,
                    // Dropping the cycle rolls back its open transaction.
                    () = &mut shutdown => return,
                };
                match cycle {
                    Ok(report) => {
                        tracing::debug!(
                            hours = report.hours,
                            requests = report.requests,
                            "closing cycle done"
                        );
                        due = self.next_cycle_at(config.delay).unwrap_or(due);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "closing cycle failed; retrying in a minute");
                    }
                }
            }
            if due > self.now() {
                wait = (due - self.now()).try_into().unwrap_or(wait);
            }
            // Every wake (at least once a minute): a fresh snapshot of the current hour, so
            // dashboards read at most about a minute of raw rows.
            let refreshed = tokio::select! {
                refreshed = self.refresh_open_hour() => refreshed,
                () = &mut shutdown => return,
            };
            if let Err(error) = refreshed {
                tracing::warn!(%error, "refreshing the open hour failed");
            }
            // Sleep at most a minute at a time, so a wall-clock jump is noticed soon.
            let wait = wait
                .min(Duration::from_secs(60))
                .max(Duration::from_millis(100));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }
}
