//! Retention (behaviour.md 9): deletes the raw `usage` and `request_candidates` rows of
//! business days whose rollups are complete, in bounded batches, behind a watermark that
//! keeps those days from being aggregated again from what is left of their rows.
//!
//! "Older than N days" means: every business day that ends at or before the start of the
//! business day N days before today. With `keep_days = 1` the raw rows of today and of
//! yesterday are kept and the day before yesterday is the newest day pruned.

use std::ops::ControlFlow;

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, TransactionTrait, Value};
use serde::Serialize;
use time::OffsetDateTime;
use tollgate_entities::{stats_daily, tollgate_meta};

use crate::sql::{self, bound, instant, statement};
use crate::{Aggregator, BusinessDay, StatsError};

/// What one [`Aggregator::prune`] run keeps and how it deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Raw rows of today and of the `keep_days` business days before it are kept; at
    /// least 1.
    pub keep_days: u32,
    /// The most rows one DELETE statement removes; at least 1. Each batch is its own
    /// short statement, so no lock is held for long.
    pub batch_rows: u32,
}

impl PruneOptions {
    /// Rows per DELETE statement unless told otherwise.
    pub const DEFAULT_BATCH_ROWS: u32 = 5_000;

    /// Keep today and the `keep_days` business days before it, deleting in batches of
    /// [`DEFAULT_BATCH_ROWS`](Self::DEFAULT_BATCH_ROWS).
    pub fn keep_days(keep_days: u32) -> Self {
        Self {
            keep_days,
            batch_rows: Self::DEFAULT_BATCH_ROWS,
        }
    }

    /// The same options deleting at most `batch_rows` rows per statement.
    #[must_use]
    pub fn with_batch_rows(mut self, batch_rows: u32) -> Self {
        self.batch_rows = batch_rows;
        self
    }

    fn validate(self) -> Result<Self, StatsError> {
        for (option, value) in [
            ("keep_days", self.keep_days),
            ("batch_rows", self.batch_rows),
        ] {
            if value == 0 {
                return Err(StatsError::InvalidPruneOption { option, value });
            }
        }
        Ok(self)
    }
}

/// Progress of a prune, reported before the first day and after each pruned day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneProgress {
    /// Days pruned so far.
    pub done: usize,
    /// Aggregated days older than the cutoff when the prune started.
    pub total: usize,
    /// The day just pruned (`None` in the first report).
    pub last: Option<BusinessDay>,
    /// `usage` rows deleted so far.
    pub usage_rows_deleted: u64,
    /// `request_candidates` rows deleted so far.
    pub candidate_rows_deleted: u64,
}

/// What a prune did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Raw rows of days that end at or before this instant (the start of the business day
    /// `keep_days` days before today) were candidates for deletion.
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    /// Days with complete rollups whose raw rows were deleted, oldest first.
    pub pruned: Vec<BusinessDay>,
    /// Days before the cutoff without a complete `stats_daily` row, oldest first: their raw
    /// rows were kept (aggregate them, then prune again).
    pub skipped: Vec<BusinessDay>,
    /// `usage` rows deleted.
    pub usage_rows_deleted: u64,
    /// `request_candidates` rows deleted.
    pub candidate_rows_deleted: u64,
    /// DELETE statements run, each removing at most `batch_rows` rows.
    pub batches: u64,
    /// Whether the caller stopped it before every aggregated day was pruned.
    pub stopped: bool,
}

impl Aggregator {
    /// Deletes the raw `usage` and `request_candidates` rows of every business day that
    /// ends at or before the start of the day `keep_days` days before today, but only for
    /// days with a complete `stats_daily` row; other days are reported in
    /// [`PruneReport::skipped`] and keep their rows. Rows go in DELETE statements of at most
    /// `batch_rows` rows, each its own short transaction (on PostgreSQL under the
    /// aggregators' advisory lock, so a batch waits for an aggregation in progress).
    ///
    /// Before the first delete the cutoff is stored as the retention watermark
    /// (`tollgate_meta` key [`STATS_PRUNED_BEFORE`](tollgate_entities::tollgate_meta::STATS_PRUNED_BEFORE),
    /// which only moves forward): from then on [`aggregate_day`](Self::aggregate_day)
    /// refuses, with [`StatsError::Pruned`], a day that ends at or before it and has a
    /// complete row. The rollups, and so the summary, the combined view and the series,
    /// read the same numbers before and after.
    ///
    /// `on_progress` is called before the first day and after each pruned day; returning
    /// `ControlFlow::Break(())` stops after the day in progress. Running it again resumes.
    pub async fn prune<F>(
        &self,
        options: PruneOptions,
        mut on_progress: F,
    ) -> Result<PruneReport, StatsError>
    where
        F: FnMut(PruneProgress) -> ControlFlow<()> + Send,
    {
        let options = options.validate()?;
        let today = self.today()?;
        let cutoff = self
            .days_before(&today, options.keep_days)?
            .first()
            .map_or(today.start(), BusinessDay::start);

        // Every day from the oldest raw row up to the cutoff.
        let mut days = Vec::new();
        if let Some(first) = first_raw_row(&self.db).await? {
            let mut day = self.calendar.day_containing(first)?;
            while day.start() < cutoff {
                days.push(day);
                day = self.calendar.next(&day)?;
            }
        }
        let rows = match days.first() {
            Some(first) => daily_rows_between(&self.db, first.start(), cutoff).await?,
            None => Vec::new(),
        };
        let complete = self.complete_rows(&rows);
        let (to_prune, skipped): (Vec<BusinessDay>, Vec<BusinessDay>) = days
            .into_iter()
            .partition(|day| complete.contains_key(&day.start()));

        let total = to_prune.len();
        let mut report = PruneReport {
            cutoff,
            pruned: Vec::with_capacity(total),
            skipped,
            usage_rows_deleted: 0,
            candidate_rows_deleted: 0,
            batches: 0,
            stopped: false,
        };
        if !to_prune.is_empty() {
            record_watermark(&self.db, cutoff, self.now()).await?;
        }
        let first = PruneProgress {
            done: 0,
            total,
            last: None,
            usage_rows_deleted: 0,
            candidate_rows_deleted: 0,
        };
        if on_progress(first).is_break() {
            report.stopped = total > 0;
            return Ok(report);
        }
        for day in to_prune {
            report.usage_rows_deleted += self
                .delete_day("usage", &day, options.batch_rows, &mut report.batches)
                .await?;
            report.candidate_rows_deleted += self
                .delete_day(
                    "request_candidates",
                    &day,
                    options.batch_rows,
                    &mut report.batches,
                )
                .await?;
            report.pruned.push(day);
            let progress = PruneProgress {
                done: report.pruned.len(),
                total,
                last: Some(day),
                usage_rows_deleted: report.usage_rows_deleted,
                candidate_rows_deleted: report.candidate_rows_deleted,
            };
            if on_progress(progress).is_break() {
                report.stopped = report.pruned.len() < total;
                break;
            }
        }
        tracing::info!(
            cutoff = %cutoff,
            pruned = report.pruned.len(),
            skipped = report.skipped.len(),
            usage_rows = report.usage_rows_deleted,
            candidate_rows = report.candidate_rows_deleted,
            batches = report.batches,
            stopped = report.stopped,
            "prune finished"
        );
        Ok(report)
    }

    /// Fails with [`StatsError::Pruned`] when `day` ends at or before the retention
    /// watermark and has a complete `stats_daily` row: its raw rows may be gone, and
    /// aggregating it again would overwrite its rollups with what is left.
    ///
    /// The check runs before the aggregation takes the advisory lock: an aggregation of a
    /// complete old day that passed it just before a prune recorded its watermark could
    /// still read the day half deleted. Only an explicit re-aggregation of a complete day
    /// (`daily --date`) can do that; backfill and the daemon aggregate incomplete days only.
    pub(crate) async fn refuse_pruned(&self, day: &BusinessDay) -> Result<(), StatsError> {
        let Some(watermark) = pruned_before(&self.db).await? else {
            return Ok(());
        };
        if day.end() > watermark {
            return Ok(());
        }
        let rows = daily_rows_between(&self.db, day.start(), day.end()).await?;
        if self.complete_rows(&rows).contains_key(&day.start()) {
            return Err(StatsError::Pruned {
                day: day.to_string(),
            });
        }
        Ok(())
    }

    /// Deletes the rows of `table` created in `day`, at most `batch_rows` per statement,
    /// until a statement deletes fewer; counts the statements in `batches`.
    async fn delete_day(
        &self,
        table: &str,
        day: &BusinessDay,
        batch_rows: u32,
        batches: &mut u64,
    ) -> Result<u64, StatsError> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
             WHERE created_at >= $1 AND created_at < $2 LIMIT $3)"
        );
        let values = vec![
            bound(backend, day.start())?,
            bound(backend, day.end())?,
            Value::from(i64::from(batch_rows)),
        ];
        let mut deleted = 0;
        loop {
            let batch = statement(backend, &sql, values.clone());
            let affected = if backend == DbBackend::Postgres {
                let txn = self.db.begin().await?;
                let result = async {
                    sql::lock(&txn).await?;
                    Ok::<_, StatsError>(txn.execute_raw(batch).await?.rows_affected())
                }
                .await;
                match result {
                    Ok(affected) => {
                        txn.commit().await?;
                        affected
                    }
                    Err(error) => {
                        // Release the lock now rather than whenever the drop gets to it.
                        let _ = txn.rollback().await;
                        return Err(error);
                    }
                }
            } else {
                self.db.execute_raw(batch).await?.rows_affected()
            };
            *batches += 1;
            deleted += affected;
            if affected < u64::from(batch_rows) {
                break;
            }
        }
        tracing::debug!(table, day = %day, rows = deleted, "pruned raw rows");
        Ok(deleted)
    }
}

/// The retention watermark: raw rows of complete days that end at or before it may have
/// been deleted. `None` when nothing was ever pruned.
pub(crate) async fn pruned_before<C: ConnectionTrait>(
    conn: &C,
) -> Result<Option<OffsetDateTime>, StatsError> {
    let Some(row) =
        tollgate_meta::Entity::find_by_id(tollgate_meta::STATS_PRUNED_BEFORE.to_owned())
            .one(conn)
            .await?
    else {
        return Ok(None);
    };
    let watermark =
        OffsetDateTime::parse(&row.value, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                StatsError::Database(sea_orm::DbErr::Type(format!(
                    "tollgate_meta `{}` holds `{}`, not an RFC 3339 instant",
                    tollgate_meta::STATS_PRUNED_BEFORE,
                    row.value
                )))
            },
        )?;
    Ok(Some(watermark))
}

/// Stores `cutoff` as the retention watermark unless a later one is stored already. The
/// value is always written as `YYYY-MM-DDTHH:MM:SSZ`, so comparing the text compares the
/// instants.
async fn record_watermark<C: ConnectionTrait>(
    conn: &C,
    cutoff: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let text = cutoff
        .to_offset(time::UtcOffset::UTC)
        .format(format)
        .map_err(|error| StatsError::DateOutOfRange {
            detail: error.to_string(),
        })?;
    let backend = conn.get_database_backend();
    conn.execute_raw(statement(
        backend,
        "INSERT INTO tollgate_meta (\"key\", \"value\", created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (\"key\") DO UPDATE SET \"value\" = excluded.\"value\" \
         WHERE tollgate_meta.\"value\" < excluded.\"value\"",
        vec![
            Value::from(tollgate_meta::STATS_PRUNED_BEFORE.to_owned()),
            Value::from(text),
            instant(now),
        ],
    ))
    .await?;
    Ok(())
}

/// The earliest `created_at` of `usage` and `request_candidates` (two index look-ups).
async fn first_raw_row<C: ConnectionTrait>(conn: &C) -> Result<Option<OffsetDateTime>, StatsError> {
    use tollgate_entities::request_candidates;

    let usage = sql::first_usage(conn).await?;
    let candidate = sql::first_created::<request_candidates::Entity, _>(
        conn,
        request_candidates::Column::CreatedAt,
    )
    .await?;
    Ok(usage.into_iter().chain(candidate).min())
}

/// The `stats_daily` rows dated in `[from, to)`, oldest first.
async fn daily_rows_between<C: ConnectionTrait>(
    conn: &C,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<stats_daily::Model>, StatsError> {
    let backend = conn.get_database_backend();
    let stmt = statement(
        backend,
        "SELECT * FROM stats_daily WHERE date >= $1 AND date < $2 ORDER BY date",
        vec![bound(backend, from)?, bound(backend, to)?],
    );
    Ok(stats_daily::Entity::find()
        .from_raw_sql(stmt)
        .all(conn)
        .await?)
}
