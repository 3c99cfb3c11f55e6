//! The usage writer: a bounded queue drained by one background task that writes `usage` and
//! `request_candidates` rows and the key and user counters in batches, one transaction per
//! batch. A database outage keeps the batch and retries with back-off while the queue
//! buffers; what cannot be queued is dropped and counted. Shutdown drains the queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryFilter, QueryTrait, Statement,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};
use tollgate_entities::{api_keys, request_candidates, usage, users};

/// Rows per multi-row `INSERT`. A batch is split into chunks of these sizes only, so each
/// table sees at most five distinct statements and the drivers' prepared-statement caches
/// stay small (every row count would otherwise be a statement of its own, cached per
/// connection). 256 usage rows of 48 columns stay under both databases' bind limits.
const CHUNK_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// Consecutive chunk lengths covering `n` rows.
fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.iter().copied().find(|size| *size <= n)?;
        n -= size;
        Some(size)
    })
}

/// Usage writer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most records waiting in the queue; beyond it new records are dropped and counted in
    /// `usage_writer_dropped_total`. Default 100 000.
    pub queue_capacity: usize,
    /// Most records per transaction. Default 500.
    pub batch_size: usize,
    /// First delay before retrying a failed batch; doubles up to `retry_max`. Default 50 ms.
    pub retry_min: Duration,
    /// Longest delay between retries. Default 2 s.
    pub retry_max: Duration,
    /// How long a batch that is not full waits for more records before it is written.
    /// Default 20 ms.
    pub linger: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_size: 500,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            linger: Duration::from_millis(20),
        }
    }
}

/// One request's rows.
#[derive(Debug, Clone)]
pub(crate) struct UsageRecord {
    /// The `usage` row.
    pub(crate) usage: usage::Model,
    /// Its `request_candidates` rows.
    pub(crate) candidates: Vec<request_candidates::Model>,
}

enum Message {
    Record(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records committed to the database.
    pub written: u64,
    /// Records dropped (queue full, or still failing when a shutdown's time ran out).
    pub dropped: u64,
}

/// The request path's end of the queue: never waits.
#[derive(Clone)]
pub(crate) struct UsageSender {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

impl UsageSender {
    /// Queues a record; when the queue is full (or closed) drops it and counts the drop.
    pub(crate) fn send(&self, record: UsageRecord) {
        if self.tx.try_send(Message::Record(Box::new(record))).is_err() {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("usage_writer_dropped_total").increment(1);
            // Logged at 1, 2, 4, 8, … drops: a full queue must not flood the log too.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "usage queue full or closed; usage records dropped");
            }
        }
    }

    /// Waits until every record queued before this call has been written (or dropped).
    pub(crate) async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Written and dropped counts.
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Stops the writer after draining the queue.
pub(crate) struct WriterHandle {
    shutdown: Option<oneshot::Sender<Duration>>,
    join: tokio::task::JoinHandle<()>,
}

impl WriterHandle {
    /// Closes the queue, writes what it holds (retrying for at most `timeout` while the
    /// database fails), then returns.
    pub(crate) async fn shutdown(mut self, timeout: Duration) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(timeout);
        }
        if let Err(error) = self.join.await {
            tracing::error!(%error, "usage writer task failed");
        }
    }
}

/// Starts the writer task on `conn`.
pub(crate) fn spawn(conn: DatabaseConnection, config: WriterConfig) -> (UsageSender, WriterHandle) {
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let writer = Writer {
        conn,
        config,
        rx,
        counters: counters.clone(),
    };
    let join = tokio::spawn(writer.run(shutdown_rx));
    (
        UsageSender { tx, counters },
        WriterHandle {
            shutdown: Some(shutdown_tx),
            join,
        },
    )
}

struct Writer {
    conn: DatabaseConnection,
    config: WriterConfig,
    rx: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
}

impl Writer {
    async fn run(mut self, mut shutdown: oneshot::Receiver<Duration>) {
        let batch_size = self.config.batch_size.max(1);
        let mut batch: Vec<UsageRecord> = Vec::with_capacity(batch_size);
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut backoff = self.config.retry_min;
        let mut deadline: Option<Instant> = None;
        let mut texts = InsertTexts::default();
        loop {
            if batch.is_empty() {
                let message = tokio::select! {
                    message = self.rx.recv() => message,
                    timeout = &mut shutdown, if deadline.is_none() => {
                        deadline = Some(Instant::now() + timeout.unwrap_or(Duration::ZERO));
                        self.rx.close();
                        continue;
                    }
                };
                match message {
                    Some(Message::Record(record)) => batch.push(*record),
                    Some(Message::Flush(ack)) => waiters.push(ack),
                    None => break,
                }
            }
            // Fill the batch without waiting; stop at a flush so it acknowledges exactly the
            // records queued before it.
            if waiters.is_empty() {
                while batch.len() < batch_size {
                    match self.rx.try_recv() {
                        Ok(Message::Record(record)) => batch.push(*record),
                        Ok(Message::Flush(ack)) => {
                            waiters.push(ack);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            // Under light load, wait a little for more records: a transaction per record would
            // cost a commit (an fsync) per request.
            let healthy = backoff == self.config.retry_min;
            if healthy && waiters.is_empty() && deadline.is_none() && !batch.is_empty() {
                let until = tokio::time::Instant::now() + self.config.linger;
                while batch.len() < batch_size {
                    tokio::select! {
                        message = self.rx.recv() => match message {
                            Some(Message::Record(record)) => batch.push(*record),
                            Some(Message::Flush(ack)) => {
                                waiters.push(ack);
                                break;
                            }
                            None => break,
                        },
                        () = tokio::time::sleep_until(until) => break,
                        timeout = &mut shutdown, if deadline.is_none() => {
                            deadline = Some(Instant::now() + timeout.unwrap_or(Duration::ZERO));
                            self.rx.close();
                            break;
                        }
                    }
                }
            }
            self.report_depth(batch.len());
            if !batch.is_empty() {
                match write_batch(&self.conn, &mut texts, &batch).await {
                    Ok(()) => {
                        self.counters
                            .written
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.clear();
                        backoff = self.config.retry_min;
                        self.report_depth(0);
                    }
                    Err(error) => {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            tracing::error!(%error, rows = batch.len(), "usage batch dropped at shutdown: database still failing");
                            self.drop_records(batch.len());
                            batch.clear();
                        } else {
                            tracing::warn!(%error, rows = batch.len(), retry_in_ms = backoff.as_millis() as u64, "usage batch failed; will retry");
                            tokio::select! {
                                () = tokio::time::sleep(backoff) => {}
                                timeout = &mut shutdown, if deadline.is_none() => {
                                    deadline = Some(Instant::now() + timeout.unwrap_or(Duration::ZERO));
                                    self.rx.close();
                                }
                            }
                            backoff = (backoff * 2).min(self.config.retry_max);
                            continue;
                        }
                    }
                }
            }
            for ack in waiters.drain(..) {
                let _ = ack.send(());
            }
        }
        for ack in waiters.drain(..) {
            let _ = ack.send(());
        }
        self.report_depth(0);
    }

    fn drop_records(&self, count: usize) {
        self.counters
            .dropped
            .fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!("usage_writer_dropped_total").increment(count as u64);
    }

    fn report_depth(&self, in_flight: usize) {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a queue depth is far below 2^53"
        )]
        let depth = (self.rx.len() + in_flight) as f64;
        metrics::gauge!("usage_writer_queue_depth").set(depth);
    }
}

#[derive(Default)]
struct Totals {
    requests: i32,
    cost: f64,
    last_used: Option<time::OffsetDateTime>,
}

/// Texts of the multi-row `INSERT`s of one writer (so of one backend), built by sea-query
/// once per table, row count and `RETURNING`, then reused with each chunk's values. Building a 256-row statement's
/// expression tree and text for every chunk took more of the gateway's CPU than the insert
/// itself; the values are now read straight off the models, in the column order the text
/// was built with.
#[derive(Debug, Default)]
struct InsertTexts(HashMap<(&'static str, usize, bool), String>);

impl InsertTexts {
    /// `INSERT INTO <E> … VALUES (…), … ON CONFLICT <conflict>` for `rows`, optionally
    /// returning `returning`.
    fn statement<E>(
        &mut self,
        backend: DbBackend,
        rows: &[&E::Model],
        conflict: &OnConflict,
        returning: Option<E::Column>,
    ) -> Statement
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    {
        let table = E::default().table_name();
        let text = self
            .0
            .entry((table, rows.len(), returning.is_some()))
            .or_insert_with(|| {
                let models = rows
                    .iter()
                    .map(|row| (*row).clone().into_active_model().reset_all());
                let mut insert = E::insert_many(models).into_query();
                insert.on_conflict(conflict.clone());
                if let Some(column) = returning {
                    insert.returning_col(column);
                }
                backend.build(&insert).sql
            });
        Statement::from_sql_and_values(backend, text.clone(), row_values::<E>(rows))
    }
}

/// The values of `rows`, row by row in column order: the order of the parameters in a
/// multi-row `INSERT` of complete rows.
fn row_values<E: EntityTrait>(rows: &[&E::Model]) -> Vec<sea_orm::Value> {
    rows.iter()
        .flat_map(|row| E::Column::iter().map(move |column| row.get(column)))
        .collect()
}

/// Writes one batch in one transaction. Idempotent: a retry after a commit whose answer was
/// lost inserts nothing twice (`ON CONFLICT DO NOTHING` on the unique request id) and adds
/// counters only for the rows this attempt inserted.
async fn write_batch(
    conn: &DatabaseConnection,
    texts: &mut InsertTexts,
    batch: &[UsageRecord],
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let txn = conn.begin().await?;
    let mut inserted: std::collections::HashSet<String> = std::collections::HashSet::new();
    let usage_conflict = OnConflict::column(usage::Column::RequestId)
        .do_nothing()
        .to_owned();
    let mut rest = batch;
    for size in chunk_sizes(batch.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let rows: Vec<&usage::Model> = chunk.iter().map(|record| &record.usage).collect();
        let statement = texts.statement::<usage::Entity>(
            backend,
            &rows,
            &usage_conflict,
            Some(usage::Column::RequestId),
        );
        for row in txn.query_all_raw(statement).await? {
            inserted.insert(row.try_get::<String>("", "request_id")?);
        }
    }
    let fresh: Vec<&UsageRecord> = batch
        .iter()
        .filter(|record| inserted.contains(&record.usage.request_id))
        .collect();
    let candidates: Vec<&request_candidates::Model> = fresh
        .iter()
        .flat_map(|record| record.candidates.iter())
        .collect();
    let candidate_conflict = OnConflict::columns([
        request_candidates::Column::RequestId,
        request_candidates::Column::CandidateIndex,
        request_candidates::Column::RetryIndex,
    ])
    .do_nothing()
    .to_owned();
    let mut rest = candidates.as_slice();
    for size in chunk_sizes(rest.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let statement = texts.statement::<request_candidates::Entity>(
            backend,
            chunk,
            &candidate_conflict,
            None,
        );
        txn.execute_raw(statement).await?;
    }
    let mut keys: HashMap<&str, Totals> = HashMap::new();
    let mut owners: HashMap<&str, f64> = HashMap::new();
    for record in &fresh {
        let row = &record.usage;
        if let Some(key) = row.api_key_id.as_deref() {
            let totals = keys.entry(key).or_default();
            totals.requests += 1;
            totals.cost += row.total_cost_usd;
            totals.last_used = Ord::max(totals.last_used, Some(row.created_at));
        }
        if let Some(user) = row.user_id.as_deref() {
            *owners.entry(user).or_default() += row.total_cost_usd;
        }
    }
    for (key, totals) in keys {
        api_keys::Entity::update_many()
            .col_expr(
                api_keys::Column::TotalRequests,
                Expr::col(api_keys::Column::TotalRequests).add(totals.requests),
            )
            .col_expr(
                api_keys::Column::TotalCostUsd,
                Expr::col(api_keys::Column::TotalCostUsd).add(totals.cost),
            )
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(totals.last_used))
            .filter(api_keys::Column::Id.eq(key))
            .exec(&txn)
            .await?;
    }
    for (user, cost) in owners {
        users::Entity::update_many()
            .col_expr(
                users::Column::UsedUsd,
                Expr::col(users::Column::UsedUsd).add(cost),
            )
            .col_expr(
                users::Column::TotalUsd,
                Expr::col(users::Column::TotalUsd).add(cost),
            )
            .filter(users::Column::Id.eq(user))
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{DbBackend, EntityTrait, IntoActiveModel, QueryTrait};
    use tollgate_entities::{CandidateStatus, JsonObject, request_candidates, usage};
    use tollgate_testkit::fixtures::usage_row;

    use super::{InsertTexts, chunk_sizes};

    fn candidate(request_id: &str, index: i32, extra: bool) -> request_candidates::Model {
        let at = tollgate_entities::now_utc();
        request_candidates::Model {
            id: format!("c-{request_id}-{index}"),
            request_id: request_id.to_owned(),
            user_id: Some("u".to_owned()),
            api_key_id: None,
            candidate_index: index,
            retry_index: 0,
            provider_id: Some("p".to_owned()),
            endpoint_id: None,
            key_id: Some("k".to_owned()),
            status: if extra {
                CandidateStatus::Skipped
            } else {
                CandidateStatus::Available
            },
            skip_reason: extra.then(|| "no_active_key".to_owned()),
            is_cached: extra,
            status_code: Some(200 + index),
            error_type: None,
            error_message: extra.then(|| "boom".to_owned()),
            latency_ms: Some(index),
            extra_data: extra.then(|| {
                let mut map = serde_json::Map::new();
                map.insert("attempt".to_owned(), serde_json::json!(index));
                JsonObject(map)
            }),
            created_at: at,
            started_at: Some(at),
            finished_at: None,
        }
    }

    /// The statement sea-query builds from scratch, as the writer did before the texts
    /// were cached.
    fn built<E>(
        backend: DbBackend,
        rows: &[&E::Model],
        conflict: &OnConflict,
        returning: Option<E::Column>,
    ) -> sea_orm::Statement
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    {
        let models = rows
            .iter()
            .map(|row| sea_orm::ActiveModelTrait::reset_all((*row).clone().into_active_model()));
        let mut insert = E::insert_many(models).into_query();
        insert.on_conflict(conflict.clone());
        if let Some(column) = returning {
            insert.returning_col(column);
        }
        backend.build(&insert)
    }

    #[test]
    fn a_cached_insert_text_binds_what_sea_query_would_build() {
        let at = tollgate_entities::now_utc();
        let mut other = usage_row("m2", at);
        other.global_model = Some("g".to_owned());
        other.error_message = Some("upstream said no".to_owned());
        other.price_per_request = Some(0.25);
        other.status = tollgate_entities::UsageStatus::Failed;
        other.request_metadata = Some(JsonObject(serde_json::Map::new()));
        let first = [usage_row("m1", at), usage_row("m1", at)];
        let second = [other, usage_row("m3", at)];
        let conflict = OnConflict::column(usage::Column::RequestId)
            .do_nothing()
            .to_owned();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let mut texts = InsertTexts::default();
            for rows in [&first, &second] {
                let rows: Vec<&usage::Model> = rows.iter().collect();
                let returning = Some(usage::Column::RequestId);
                assert_eq!(
                    texts.statement::<usage::Entity>(backend, &rows, &conflict, returning),
                    built::<usage::Entity>(backend, &rows, &conflict, returning),
                );
            }
            // The second pair reused the first pair's text.
            assert_eq!(texts.0.len(), 1);
            let first = [candidate("r1", 0, false), candidate("r1", 1, true)];
            let second = [candidate("r2", 0, true), candidate("r2", 1, false)];
            let conflict = OnConflict::columns([
                request_candidates::Column::RequestId,
                request_candidates::Column::CandidateIndex,
            ])
            .do_nothing()
            .to_owned();
            for rows in [&first, &second] {
                let rows: Vec<&request_candidates::Model> = rows.iter().collect();
                assert_eq!(
                    texts.statement::<request_candidates::Entity>(backend, &rows, &conflict, None),
                    built::<request_candidates::Entity>(backend, &rows, &conflict, None),
                );
            }
            assert_eq!(texts.0.len(), 2);
        }
    }

    #[test]
    fn chunks_cover_every_row_with_few_sizes() {
        for n in [0, 1, 5, 255, 256, 500, 1000] {
            let sizes: Vec<usize> = chunk_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n);
        }
        assert_eq!(
            chunk_sizes(500).collect::<Vec<_>>(),
            [256, 64, 64, 64, 16, 16, 16, 4]
        );
    }
}
