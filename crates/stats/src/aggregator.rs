//! [`Aggregator`]: aggregates and stores business days and the summary, and reads today's
//! live numbers and the combined view.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use time::OffsetDateTime;
use tollgate_entities::stats_daily;

use crate::hourly;
use crate::memo::Memo;
use crate::read::ClosedHours;
use crate::rows::daily_rows;
use crate::sql;
use crate::write::{reads_inside_transaction, write_day, write_summary};
use crate::{
    BusinessCalendar, BusinessDay, Clock, DayAggregate, DayStats, ModelStats, StatsError,
    SummaryReport, SystemClock, Totals,
};

/// Computes, stores and reads usage statistics on one database, in one business calendar.
///
/// Cheap to clone: the connection is a pool handle.
#[derive(Clone, Debug)]
pub struct Aggregator {
    pub(crate) db: DatabaseConnection,
    pub(crate) calendar: BusinessCalendar,
    pub(crate) clock: Arc<dyn Clock>,
    /// Today's closed hours with their per-model and per-provider rows.
    pub(crate) today_hours: Memo<ClosedHours>,
    /// The per-model rows of the complete days of a daily series.
    pub(crate) day_models: Memo<BTreeMap<OffsetDateTime, Vec<ModelStats>>>,
}

impl Aggregator {
    /// An aggregator on `db` counting days in `calendar`, with the system clock.
    pub fn new(db: DatabaseConnection, calendar: BusinessCalendar) -> Self {
        Self {
            db,
            calendar,
            clock: Arc::new(SystemClock),
            today_hours: Memo::default(),
            day_models: Memo::default(),
        }
    }

    /// The same aggregator reading "now" from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The business calendar.
    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    /// The database connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// "Now" by the aggregator's clock, in UTC, truncated to microseconds.
    pub fn now(&self) -> OffsetDateTime {
        tollgate_entities::truncate_to_micros(self.clock.now())
    }

    /// The business day containing "now".
    pub fn today(&self) -> Result<BusinessDay, StatsError> {
        self.calendar.day_containing(self.now())
    }

    /// The business day before today: what a nightly run aggregates.
    pub fn yesterday(&self) -> Result<BusinessDay, StatsError> {
        self.calendar.previous(&self.today()?)
    }

    /// Computes `day` from `usage` and `request_candidates` without writing anything.
    pub async fn compute_day(&self, day: &BusinessDay) -> Result<DayAggregate, StatsError> {
        self.day_aggregate(day, false, None).await
    }

    /// Today's numbers so far, with the per-model breakdown (no per-user rows), all
    /// computed from `usage` (what `tollgate-aggregator today` prints).
    pub async fn today_live(&self) -> Result<DayAggregate, StatsError> {
        let today = self.today()?;
        hourly::compute_range(&self.db, &today, today.start(), today.end()).await
    }

    /// Aggregates `day` and stores its `stats_daily`, `stats_daily_model` and
    /// `stats_user_daily` rows in one transaction; on PostgreSQL under the aggregators'
    /// advisory lock. Idempotent: running it again, or from two processes at once, leaves
    /// the same rows. A day aggregated before it has ended is stored but counts as
    /// incomplete, so backfill and the read views compute it again once it has ended.
    ///
    /// Fails with [`StatsError::Pruned`] for a day whose raw rows were pruned and whose
    /// rollups are therefore final (see [`prune`](Self::prune)).
    pub async fn aggregate_day(&self, day: &BusinessDay) -> Result<DayAggregate, StatsError> {
        self.store_day(day, false).await
    }

    /// Closes `day` as the closing loop and backfill do: like
    /// [`aggregate_day`](Self::aggregate_day), but the hours already closed (from the first
    /// hour on, up to the first that is not) are kept as stored instead of recomputed, and
    /// the day is summed from them (behaviour.md 9: days close from their hours). A day
    /// whose hours the loop closed costs one whole-day pass (distinct names, fallbacks,
    /// client keys) and no hourly rewrite; the result equals `aggregate_day`'s.
    pub async fn close_day(&self, day: &BusinessDay) -> Result<DayAggregate, StatsError> {
        self.store_day(day, true).await
    }

    async fn store_day(&self, day: &BusinessDay, reuse: bool) -> Result<DayAggregate, StatsError> {
        self.refuse_pruned(day).await?;
        let started = std::time::Instant::now();
        // On PostgreSQL the reads run under the advisory lock, held by the transaction that
        // then writes; SQLite reads first and then opens a transaction that writes at once.
        let locked = if reads_inside_transaction(self.db.get_database_backend()) {
            let txn = self.db.begin().await?;
            sql::lock(&txn).await?;
            Some(txn)
        } else {
            None
        };
        let now = self.now();
        let early = locked.as_ref().map(|txn| (txn, now));
        let aggregate = self.day_aggregate(day, reuse, early).await?;
        let dimensions_written = locked.is_some();
        let txn = match locked {
            Some(txn) => txn,
            None => self.db.begin().await?,
        };
        write_day(&txn, &aggregate, now, dimensions_written).await?;
        txn.commit().await?;
        tracing::info!(
            day = %day,
            requests = aggregate.stats.total_requests,
            models = aggregate.models.len(),
            users = aggregate.users.len(),
            hours_recomputed = aggregate.hours.len(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "aggregated business day"
        );
        Ok(aggregate)
    }

    /// Recomputes the single `stats_summary` row: sums of the complete `stats_daily` rows
    /// of days before today (or before the first incomplete day, whichever is earlier) and
    /// the user and key counts.
    pub async fn refresh_summary(&self) -> Result<SummaryReport, StatsError> {
        let today = self.today()?;
        let report = if reads_inside_transaction(self.db.get_database_backend()) {
            let txn = self.db.begin().await?;
            sql::lock(&txn).await?;
            let report = self.compute_summary(&txn, &today).await?;
            write_summary(&txn, &report, self.now()).await?;
            txn.commit().await?;
            report
        } else {
            let report = self.compute_summary(&self.db, &today).await?;
            let txn = self.db.begin().await?;
            write_summary(&txn, &report, self.now()).await?;
            txn.commit().await?;
            report
        };
        tracing::info!(
            cutoff = %report.cutoff,
            requests = report.totals.requests,
            users = report.accounts.total_users,
            "refreshed summary"
        );
        Ok(report)
    }

    async fn compute_summary<C: ConnectionTrait>(
        &self,
        conn: &C,
        today: &BusinessDay,
    ) -> Result<SummaryReport, StatsError> {
        let rows = daily_rows(conn, None, today.start()).await?;
        let mut cutoff = today.start();
        let mut complete = Vec::new();
        for row in &rows {
            match self.row_state(row) {
                RowState::Complete => complete.push(row),
                RowState::Incomplete(day) => cutoff = cutoff.min(day.start()),
                RowState::Foreign => {}
            }
        }
        let mut totals = Totals::default();
        for row in complete.into_iter().filter(|row| row.date < cutoff) {
            totals.add(&Totals::from(&DayStats::from(row)));
        }
        let accounts = sql::account_counts(conn).await?;
        Ok(SummaryReport {
            cutoff,
            totals,
            accounts,
        })
    }

    /// Classifies a stored day row against this calendar.
    pub(crate) fn row_state(&self, row: &stats_daily::Model) -> RowState {
        match self.calendar.day_containing(row.date) {
            Ok(day) if day.start() == row.date => {
                if row.updated_at >= day.end() {
                    RowState::Complete
                } else {
                    RowState::Incomplete(day)
                }
            }
            _ => RowState::Foreign,
        }
    }

    /// The complete rows of `rows`, keyed by day start.
    pub(crate) fn complete_rows<'a>(
        &self,
        rows: &'a [stats_daily::Model],
    ) -> BTreeMap<OffsetDateTime, &'a stats_daily::Model> {
        rows.iter()
            .filter(|row| self.row_state(row) == RowState::Complete)
            .map(|row| (row.date, row))
            .collect()
    }

    /// `count` business days ending the day before `day`, oldest first.
    pub(crate) fn days_before(
        &self,
        day: &BusinessDay,
        count: u32,
    ) -> Result<Vec<BusinessDay>, StatsError> {
        let mut days = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut current = *day;
        for _ in 0..count {
            current = self.calendar.previous(&current)?;
            days.push(current);
        }
        days.reverse();
        Ok(days)
    }
}

/// How a stored `stats_daily` row relates to the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowState {
    /// A day of this calendar, aggregated after the day ended.
    Complete,
    /// A day of this calendar aggregated before it ended (a refresh of "today").
    Incomplete(BusinessDay),
    /// Not the start of a day of this calendar (written under another time zone).
    Foreign,
}
