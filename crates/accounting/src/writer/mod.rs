//! The usage writer: a bounded queue drained by one background task that writes `usage` and
//! `request_candidates` rows and the key and user counters in batches, one transaction per
//! batch. A transient database failure keeps the batch and retries with back-off while the
//! queue buffers; a data failure isolates the records the database refuses and moves them to
//! the dead-letter store, so one bad record never stops the ledger. What cannot be queued is
//! dropped and counted. Shutdown drains the queue; what still cannot be written by the
//! deadline goes to the dead-letter file.

mod classify;
mod dead_letter;
mod health;
mod insert;
mod record;
mod replay;
mod settle;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{mpsc, oneshot};

pub use health::WriterHealth;
pub use record::UsageRecord;
pub use replay::{REPLAY_LIMIT, ReplayError, ReplayReport};

use classify::is_transient;
use dead_letter::{DeadLetterFile, dead_letter, insert_rows};
use health::Shared;
use insert::InsertTexts;
use settle::{Fate, settle};

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
    /// Directory of `usage-dead-letters.ndjson`, where records go when even the
    /// `usage_dead_letters` table refuses them, or when a shutdown's deadline passes while
    /// the database fails. Default: the working directory.
    pub dead_letter_dir: PathBuf,
    /// How long records may wait with nothing written before `/ready` answers 503.
    /// Default 60 s.
    pub stall_after: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_size: 500,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            linger: Duration::from_millis(20),
            dead_letter_dir: PathBuf::from("."),
            stall_after: Duration::from_secs(60),
        }
    }
}

/// A queued record and when it was queued.
struct Queued {
    record: UsageRecord,
    at: Instant,
}

enum Message {
    Record(Box<Queued>),
    Flush(oneshot::Sender<()>),
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records committed to the database (or found already there).
    pub written: u64,
    /// Records lost: the queue was full, or neither the dead-letter table nor the
    /// dead-letter file took them.
    pub dropped: u64,
    /// Records moved to the dead-letter table or file.
    pub dead_lettered: u64,
}

/// The request path's end of the queue: never waits.
#[derive(Clone)]
pub struct UsageSender {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

impl UsageSender {
    /// Queues a record; when the queue is full (or closed) drops it and counts the drop.
    pub fn send(&self, record: UsageRecord) {
        let queued = Box::new(Queued {
            record,
            at: Instant::now(),
        });
        // Counted before the send, so the writer never settles a record not yet counted.
        self.shared.accepted();
        if self.tx.try_send(Message::Record(queued)).is_err() {
            self.shared.settled(1);
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("usage_writer_dropped_total").increment(1);
            // Logged at 1, 2, 4, 8, … drops: a full queue must not flood the log too.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "usage queue full or closed; usage records dropped");
            }
        }
    }

    /// Waits until every record queued before this call has been written, dead-lettered or
    /// dropped.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Written, dropped and dead-lettered counts.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            dead_lettered: self.shared.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Records waiting, the oldest one's age, and how long nothing was written (atomics
    /// only; cheap enough for every `/ready`).
    pub fn health(&self) -> WriterHealth {
        self.shared.health()
    }

    /// Imports the dead-letter file, then writes the dead letters `ids` (default: the oldest
    /// unreplayed ones, at most [`REPLAY_LIMIT`]) through the writer's own path, at most once
    /// per request id.
    pub async fn replay(
        &self,
        conn: &DatabaseConnection,
        ids: Option<&[String]>,
    ) -> Result<ReplayReport, ReplayError> {
        replay::replay(conn, &self.shared.file, ids).await
    }
}

/// Stops the writer after draining the queue.
pub struct WriterHandle {
    shutdown: Option<oneshot::Sender<Duration>>,
    join: tokio::task::JoinHandle<()>,
}

impl WriterHandle {
    /// Closes the queue, writes what it holds (retrying for at most `timeout` while the
    /// database fails; then the rest goes to the dead-letter file), then returns.
    pub async fn shutdown(mut self, timeout: Duration) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(timeout);
        }
        if let Err(error) = self.join.await {
            tracing::error!(%error, "usage writer task failed");
        }
    }
}

/// Starts the writer task on `conn`.
pub fn spawn(conn: DatabaseConnection, config: WriterConfig) -> (UsageSender, WriterHandle) {
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let file = Arc::new(DeadLetterFile::new(config.dead_letter_dir.clone()));
    let shared = Arc::new(Shared::new(config.stall_after, file));
    shared.progressed();
    tokio::spawn(health::tick_gauge(Arc::downgrade(&shared)));
    let writer = Writer {
        conn,
        config,
        rx,
        shared: shared.clone(),
        texts: InsertTexts::default(),
    };
    let join = tokio::spawn(writer.run(shutdown_rx));
    (
        UsageSender { tx, shared },
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
    shared: Arc<Shared>,
    texts: InsertTexts,
}

/// The records being written and when each was queued (parallel, in queue order).
#[derive(Default)]
struct Batch {
    records: Vec<UsageRecord>,
    queued_at: Vec<Instant>,
}

impl Batch {
    fn push(&mut self, queued: Queued) {
        self.records.push(queued.record);
        self.queued_at.push(queued.at);
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn oldest(&self) -> Option<Instant> {
        self.queued_at.iter().min().copied()
    }

    /// Takes every record out.
    fn take(&mut self) -> Vec<UsageRecord> {
        self.queued_at.clear();
        std::mem::take(&mut self.records)
    }
}

impl Writer {
    async fn run(mut self, mut shutdown: oneshot::Receiver<Duration>) {
        let batch_size = self.config.batch_size.max(1);
        let mut batch = Batch::default();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut backoff = self.config.retry_min;
        let mut deadline: Option<Instant> = None;
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
                    Some(Message::Record(queued)) => batch.push(*queued),
                    Some(Message::Flush(ack)) => waiters.push(ack),
                    None => break,
                }
            }
            // Fill the batch without waiting; stop at a flush so it acknowledges exactly the
            // records queued before it.
            if waiters.is_empty() {
                while batch.len() < batch_size {
                    match self.rx.try_recv() {
                        Ok(Message::Record(queued)) => batch.push(*queued),
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
                            Some(Message::Record(queued)) => batch.push(*queued),
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
                self.shared.set_oldest(batch.oldest());
                match self.write(&mut batch).await {
                    None => {
                        backoff = self.config.retry_min;
                        self.report_depth(0);
                    }
                    Some(error) => {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            tracing::error!(%error, rows = batch.len(), "usage records still failing at shutdown; moving them to the dead-letter file");
                            self.abandon(&mut batch, &error).await;
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

    /// Writes the batch: what is written or dead-lettered leaves it; what a transient
    /// failure left undecided stays, and the failure is returned.
    async fn write(&mut self, batch: &mut Batch) -> Option<DbErr> {
        let settlement = settle(&self.conn, &mut self.texts, &mut batch.records).await;
        let mut written = 0;
        let mut refused = Vec::new();
        let mut kept = Batch::default();
        let queued = std::mem::take(&mut batch.queued_at);
        let records = batch.take();
        for ((record, at), fate) in records.into_iter().zip(queued).zip(settlement.fates) {
            match fate {
                Fate::Inserted | Fate::Present => written += 1,
                Fate::Pending => kept.push(Queued { record, at }),
                Fate::Rejected(error) => refused.push((record, at, error)),
            }
        }
        if written > 0 {
            self.shared
                .written
                .fetch_add(written as u64, Ordering::Relaxed);
            self.shared.settled(written);
            self.shared.progressed();
        }
        let mut transient = settlement.transient;
        for (record, at, error) in refused {
            if let Err(error) = self.bury(record.clone(), &error).await {
                // The table is unreachable right now: keep the record and try it all again.
                kept.push(Queued { record, at });
                transient.get_or_insert(error);
            }
        }
        *batch = kept;
        self.shared.set_oldest(batch.oldest());
        transient
    }

    /// Moves a refused record to the dead-letter table; when the table refuses it too, to the
    /// file; when the file fails, to the log. A transient failure of the table is returned
    /// (the caller keeps the record).
    async fn bury(&self, record: UsageRecord, error: &DbErr) -> Result<(), DbErr> {
        let row = dead_letter(&record, &error.to_string());
        let request_id = &record.usage.request_id;
        match insert_rows(&self.conn, vec![row.clone()]).await {
            Ok(()) => {
                tracing::error!(%request_id, %error, store = "table", "usage record refused by the database; moved to usage_dead_letters");
                self.dead_lettered(1, "table");
                Ok(())
            }
            Err(table_error) if is_transient(&table_error) => Err(table_error),
            Err(table_error) => {
                tracing::error!(%request_id, %error, %table_error, "usage_dead_letters refused a dead letter too; appending it to the dead-letter file");
                self.to_file(vec![row]).await;
                Ok(())
            }
        }
    }

    /// Shutdown's deadline passed with the database still failing: the batch and everything
    /// still queued go to the dead-letter file.
    async fn abandon(&mut self, batch: &mut Batch, error: &DbErr) {
        let mut records = batch.take();
        while let Ok(message) = self.rx.try_recv() {
            match message {
                Message::Record(queued) => records.push(queued.record),
                // Acknowledged by the caller's loop once the queue is empty.
                Message::Flush(ack) => {
                    let _ = ack.send(());
                }
            }
        }
        let error = format!("still failing at shutdown: {error}");
        let rows = records
            .iter()
            .map(|record| dead_letter(record, &error))
            .collect();
        self.to_file(rows).await;
        self.shared.set_oldest(None);
    }

    /// Appends `rows` to the dead-letter file; when that fails, logs each and counts it
    /// dropped.
    async fn to_file(&self, rows: Vec<tollgate_entities::usage_dead_letters::Model>) {
        if rows.is_empty() {
            return;
        }
        match self.shared.file.append(&rows).await {
            Ok(()) => self.dead_lettered(rows.len(), "file"),
            Err(file_error) => {
                for row in &rows {
                    let record = serde_json::to_string(row).unwrap_or_default();
                    tracing::error!(%file_error, path = %self.shared.file.path().display(), record = %record, "usage record lost: the dead-letter file cannot be written");
                }
                self.shared
                    .dropped
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                metrics::counter!("usage_writer_dropped_total").increment(rows.len() as u64);
                self.shared.settled(rows.len());
                self.shared.progressed();
            }
        }
    }

    fn dead_lettered(&self, count: usize, store: &'static str) {
        self.shared
            .dead_lettered
            .fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!("usage_writer_dead_letters_total", "store" => store)
            .increment(count as u64);
        self.shared.settled(count);
        self.shared.progressed();
    }

    fn report_depth(&self, in_flight: usize) {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a queue depth is far below 2^53"
        )]
        let depth = (self.rx.len() + in_flight) as f64;
        metrics::gauge!("usage_writer_queue_depth").set(depth);
        self.shared.health();
    }
}
