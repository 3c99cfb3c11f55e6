//! Replaying dead letters after a fix: import the fallback file, then write each record
//! through the writer's own path (reference nulling, counters), at most once per request id.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use tollgate_entities::{now_utc, usage_dead_letters};

use super::classify::is_transient;
use super::dead_letter::{DeadLetterFile, ImportError};
use super::insert::InsertTexts;
use super::record::UsageRecord;
use super::settle::{Fate, settle};

/// Most dead letters one replay handles.
pub const REPLAY_LIMIT: usize = 1000;

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Rows moved from the fallback file into the table first.
    pub imported: u64,
    /// Dead letters whose record was written now.
    pub replayed: u64,
    /// Dead letters whose request id was already in `usage` (or that were replayed before):
    /// marked replayed, nothing written.
    pub already_present: u64,
    /// Dead letters that still fail, with the reason (`id` null: an unreadable file line).
    pub failed: Vec<ReplayFailure>,
}

/// A dead letter a replay could not write.
#[derive(Debug, Serialize)]
pub struct ReplayFailure {
    /// The dead letter's id.
    pub id: Option<String>,
    /// Why, in the database's words.
    pub error: String,
}

/// Why a replay stopped before deciding every dead letter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The database is unavailable; a later replay picks up where this one stopped.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// The fallback file could not be read or renamed.
    #[error("{0}")]
    Import(ImportError),
    /// The database answered with an error that is not about one record.
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for ReplayError {
    fn from(error: DbErr) -> Self {
        if is_transient(&error) {
            Self::Unavailable(error)
        } else {
            Self::Database(error)
        }
    }
}

/// Imports the fallback file, then replays the dead letters `ids` (default: the oldest
/// unreplayed ones, at most [`REPLAY_LIMIT`]).
pub(crate) async fn replay(
    conn: &DatabaseConnection,
    file: &DeadLetterFile,
    ids: Option<&[String]>,
) -> Result<ReplayReport, ReplayError> {
    let mut report = ReplayReport::default();
    let imported = file.import(conn).await.map_err(|error| match error {
        ImportError::Database(error) => ReplayError::from(error),
        other @ ImportError::File { .. } => ReplayError::Import(other),
    })?;
    report.imported = imported.rows;
    report.failed.extend(
        imported
            .unreadable
            .into_iter()
            .map(|error| ReplayFailure { id: None, error }),
    );
    let letters = match ids {
        Some(ids) => {
            let mut letters = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                letters.extend(
                    usage_dead_letters::Entity::find()
                        .filter(usage_dead_letters::Column::Id.is_in(chunk.iter().cloned()))
                        .all(conn)
                        .await?,
                );
            }
            for id in ids {
                if !letters.iter().any(|letter| &letter.id == id) {
                    report.failed.push(ReplayFailure {
                        id: Some(id.clone()),
                        error: format!("dead letter `{id}` not found"),
                    });
                }
            }
            letters
        }
        None => {
            usage_dead_letters::Entity::find()
                .filter(usage_dead_letters::Column::ReplayedAt.is_null())
                .order_by_asc(usage_dead_letters::Column::CreatedAt)
                .order_by_asc(usage_dead_letters::Column::Id)
                .limit(REPLAY_LIMIT as u64)
                .all(conn)
                .await?
        }
    };
    // One record per request id; every dead letter of it shares its fate.
    let mut records: Vec<UsageRecord> = Vec::new();
    let mut letters_of: Vec<Vec<String>> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for letter in letters {
        if letter.replayed_at.is_some() {
            report.already_present += 1;
            continue;
        }
        match serde_json::from_value::<UsageRecord>(letter.payload) {
            Ok(record) => {
                let request_id = record.usage.request_id.clone();
                match index_of.get(&request_id) {
                    Some(&index) => letters_of[index].push(letter.id),
                    None => {
                        index_of.insert(request_id, records.len());
                        records.push(record);
                        letters_of.push(vec![letter.id]);
                    }
                }
            }
            Err(error) => report.failed.push(ReplayFailure {
                id: Some(letter.id),
                error: format!("payload is not a usage record: {error}"),
            }),
        }
    }
    let settlement = settle(conn, &mut InsertTexts::default(), &mut records).await;
    let mut done: Vec<String> = Vec::new();
    for (fate, ids) in settlement.fates.into_iter().zip(letters_of) {
        match fate {
            Fate::Pending => {}
            Fate::Inserted => {
                report.replayed += 1;
                report.already_present += ids.len() as u64 - 1;
                done.extend(ids);
            }
            Fate::Present => {
                report.already_present += ids.len() as u64;
                done.extend(ids);
            }
            Fate::Rejected(error) => {
                report
                    .failed
                    .extend(ids.into_iter().map(|id| ReplayFailure {
                        id: Some(id),
                        error: error.to_string(),
                    }))
            }
        }
    }
    // What was written stays written even when marking it fails: the next replay finds the
    // request id in `usage` and only marks it.
    let now = now_utc();
    for chunk in done.chunks(500) {
        usage_dead_letters::Entity::update_many()
            .col_expr(usage_dead_letters::Column::ReplayedAt, Expr::value(now))
            .filter(usage_dead_letters::Column::Id.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    if let Some(error) = settlement.transient {
        return Err(ReplayError::Unavailable(error));
    }
    tracing::info!(
        imported = report.imported,
        replayed = report.replayed,
        already_present = report.already_present,
        failed = report.failed.len(),
        "usage dead letters replayed"
    );
    Ok(report)
}
