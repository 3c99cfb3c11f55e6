//! Per-process memos of rollup rows the dashboards read on every request, each checked
//! against the database before use: a range's row count and latest `updated_at` change
//! whenever any of its rows (or the slice rows written in the same transaction) is written,
//! so a memo is reused only while what it was read from is unchanged, in any process.

use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, Value};
use time::OffsetDateTime;

use crate::StatsError;
use crate::sql::{bound, statement};

/// What a range of a rollup table looked like: its bounds, row count, latest write and
/// total requests (which also catch a rewrite stamped with an equal clock reading).
pub(crate) type Version = (
    OffsetDateTime,
    OffsetDateTime,
    i64,
    Option<OffsetDateTime>,
    i64,
);

/// The version of `table`'s rows whose `column` lies in `[from, to)`: one index range read.
pub(crate) async fn version<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    column: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Version, StatsError> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT COUNT(*), MAX(updated_at), CAST(COALESCE(SUM(total_requests), 0) AS BIGINT) \
         FROM {table} WHERE {column} >= $1 AND {column} < $2"
    );
    let values: Vec<Value> = vec![bound(backend, from)?, bound(backend, to)?];
    let row = conn.query_one_raw(statement(backend, &sql, values)).await?;
    let (count, latest, requests) = match row {
        Some(row) => (
            row.try_get_by_index::<i64>(0)?,
            row.try_get_by_index::<Option<OffsetDateTime>>(1)?,
            row.try_get_by_index::<i64>(2)?,
        ),
        None => (0, None, 0),
    };
    Ok((from, to, count, latest, requests))
}

/// A memoised value and the version it was read at.
type Entry<T> = Option<(Version, Arc<T>)>;

/// One memoised value with the version it was read at; shared by the clones of an
/// [`Aggregator`](crate::Aggregator).
#[derive(Debug)]
pub(crate) struct Memo<T> {
    slot: Arc<Mutex<Entry<T>>>,
}

impl<T> Clone for Memo<T> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

impl<T> Memo<T> {
    /// The value read at `version`, if that is what is memoised.
    pub(crate) fn get(&self, version: &Version) -> Option<Arc<T>> {
        let slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*slot {
            Some((stored, value)) if stored == version => Some(Arc::clone(value)),
            _ => None,
        }
    }

    /// Memoises `value` as read at `version`.
    pub(crate) fn put(&self, version: Version, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some((version, Arc::clone(&value)));
        value
    }
}
