//! The slow path after a data error: references to rows deleted meanwhile are set to null,
//! then the batch is split in halves, each in its own transaction, until every good record
//! is written and every offending record stands alone with the database's error.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tollgate_entities::usage;

use super::classify::is_transient;
use super::insert::{InsertTexts, write_batch};
use super::record::UsageRecord;

/// What became of one record.
#[derive(Debug, Clone)]
pub(crate) enum Fate {
    /// Not decided: a transient failure stopped the work first.
    Pending,
    /// Written now.
    Inserted,
    /// Its request id was already stored; nothing was written.
    Present,
    /// The database refuses it, even with its dangling references set to null.
    Rejected(DbErr),
}

/// The fate of each record of a batch, in order, and the transient failure that left some
/// of them pending.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub fates: Vec<Fate>,
    pub transient: Option<DbErr>,
}

/// The field of a `usage` row that holds one reference.
type Reference = fn(&mut usage::Model) -> &mut Option<String>;

/// The nullable references of a `usage` row to catalogue and user rows (all `ON DELETE SET
/// NULL`). `request_candidates` has no foreign keys, so its copies of these ids stay as they
/// were, as they do on rows stored before the deletion.
const REFERENCES: [(&str, Reference); 5] = [
    ("users", |row| &mut row.user_id),
    ("api_keys", |row| &mut row.api_key_id),
    ("providers", |row| &mut row.provider_id),
    ("provider_endpoints", |row| &mut row.provider_endpoint_id),
    ("provider_api_keys", |row| &mut row.provider_api_key_id),
];

/// Most ids per `IN (…)` list.
const IDS_PER_QUERY: usize = 500;

/// Writes `records`, isolating the ones the database refuses. Fast path: one transaction for
/// all. After a data error: null the references to deleted rows and retry once, then split.
/// A transient failure stops the work: records not decided by then stay [`Fate::Pending`].
pub(crate) async fn settle(
    conn: &DatabaseConnection,
    texts: &mut InsertTexts,
    records: &mut [UsageRecord],
) -> Settlement {
    let mut settlement = Settlement {
        fates: vec![Fate::Pending; records.len()],
        transient: None,
    };
    if records.is_empty() {
        return settlement;
    }
    let mut refused = match whole_batch(conn, texts, records, &mut settlement).await {
        ControlFlow::Break(()) => return settlement,
        ControlFlow::Continue(error) => error,
    };
    tracing::warn!(error = %refused, rows = records.len(), "usage batch refused by the database; isolating the records it refuses");
    // Deleted users, keys and providers are the common cause: one look-up per table fixes
    // the whole batch without splitting it.
    match null_dangling(conn, records).await {
        Ok(false) => {}
        Ok(true) => match whole_batch(conn, texts, records, &mut settlement).await {
            ControlFlow::Break(()) => return settlement,
            ControlFlow::Continue(error) => refused = error,
        },
        Err(error) => {
            settlement.transient = Some(error);
            return settlement;
        }
    }
    let mut alone: Vec<(usize, DbErr)> = Vec::new();
    if records.len() == 1 {
        alone.push((0, refused));
    } else {
        // Ranges of two or more records that hold at least one refused record, taken depth
        // first and left half first, so records are written in about their queue order.
        let mut ranges = vec![(0, records.len())];
        while let Some((start, end)) = ranges.pop() {
            let mid = start + (end - start) / 2;
            let mut failed = Vec::with_capacity(2);
            for (lo, hi) in [(start, mid), (mid, end)] {
                match write_batch(conn, texts, &records[lo..hi]).await {
                    Ok(inserted) => mark(&mut settlement, lo, &records[lo..hi], &inserted),
                    Err(error) if is_transient(&error) => {
                        settlement.transient = Some(error);
                        return settlement;
                    }
                    Err(error) if hi - lo == 1 => alone.push((lo, error)),
                    Err(_) => failed.push((lo, hi)),
                }
            }
            ranges.extend(failed.into_iter().rev());
        }
    }
    // Each record alone: its references may have been deleted since the look-up above.
    for (index, error) in alone {
        let record = std::slice::from_mut(&mut records[index]);
        let error = match null_dangling(conn, record).await {
            Ok(false) => error,
            Ok(true) => match write_batch(conn, texts, record).await {
                Ok(inserted) => {
                    mark(&mut settlement, index, record, &inserted);
                    continue;
                }
                Err(error) if is_transient(&error) => {
                    settlement.transient = Some(error);
                    return settlement;
                }
                Err(error) => error,
            },
            Err(error) => {
                settlement.transient = Some(error);
                return settlement;
            }
        };
        settlement.fates[index] = Fate::Rejected(error);
    }
    settlement
}

/// Writes the whole batch in one statement: `Break` when that settled it (every record
/// marked, or a transient failure that stops the work), else the database's refusal.
async fn whole_batch(
    conn: &DatabaseConnection,
    texts: &mut InsertTexts,
    records: &[UsageRecord],
    settlement: &mut Settlement,
) -> ControlFlow<(), DbErr> {
    match write_batch(conn, texts, records).await {
        Ok(inserted) => {
            mark(settlement, 0, records, &inserted);
            ControlFlow::Break(())
        }
        Err(error) if is_transient(&error) => {
            settlement.transient = Some(error);
            ControlFlow::Break(())
        }
        Err(error) => ControlFlow::Continue(error),
    }
}

/// Marks `records` (which start at `offset` in the batch) inserted or present.
fn mark(
    settlement: &mut Settlement,
    offset: usize,
    records: &[UsageRecord],
    inserted: &HashSet<String>,
) {
    for (index, record) in records.iter().enumerate() {
        settlement.fates[offset + index] = if inserted.contains(&record.usage.request_id) {
            Fate::Inserted
        } else {
            Fate::Present
        };
    }
}

/// Sets every reference of `records` to a row that no longer exists to null; whether any
/// changed. A failing look-up is returned as is (the caller treats it as transient: a
/// `SELECT` of ids has no data to refuse).
pub(crate) async fn null_dangling(
    conn: &DatabaseConnection,
    records: &mut [UsageRecord],
) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let mut changed = false;
    for (table, field) in REFERENCES {
        let ids: Vec<String> = records
            .iter_mut()
            .filter_map(|record| field(&mut record.usage).clone())
            .collect::<HashSet<String>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut existing: HashSet<String> = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let select = Query::select()
                .column(Alias::new("id"))
                .from(Alias::new(table))
                .and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().cloned()))
                .to_owned();
            for row in conn.query_all_raw(backend.build(&select)).await? {
                existing.insert(row.try_get::<String>("", "id")?);
            }
        }
        for record in records.iter_mut() {
            let reference = field(&mut record.usage);
            if reference.as_ref().is_some_and(|id| !existing.contains(id)) {
                tracing::info!(
                    request_id = %record.usage.request_id,
                    table,
                    "usage record refers to a deleted row; writing the reference as null"
                );
                *field(&mut record.usage) = None;
                changed = true;
            }
        }
    }
    Ok(changed)
}
