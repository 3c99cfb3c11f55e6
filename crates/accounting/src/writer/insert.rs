//! The fast path of the usage writer: one batch in one transaction, as multi-row `INSERT`s
//! whose texts are built once and reused, then the key and user counters.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryFilter, QueryTrait,
    Statement, TransactionTrait,
};
use tollgate_entities::{api_keys, request_candidates, usage, users};

use super::record::UsageRecord;

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
pub(crate) struct InsertTexts(HashMap<(&'static str, usize, bool), String>);

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

/// Writes one batch in one transaction and returns the request ids it inserted (the others
/// were already stored). Idempotent: a retry after a commit whose answer was lost inserts
/// nothing twice (`ON CONFLICT DO NOTHING` on the unique request id) and adds counters only
/// for the rows this attempt inserted.
pub(crate) async fn write_batch(
    conn: &DatabaseConnection,
    texts: &mut InsertTexts,
    batch: &[UsageRecord],
) -> Result<HashSet<String>, DbErr> {
    let txn = conn.begin().await?;
    match write_rows(&txn, conn.get_database_backend(), texts, batch).await {
        Ok(inserted) => {
            txn.commit().await?;
            Ok(inserted)
        }
        Err(error) => {
            // Roll back now rather than when the dropped transaction gets to it: until then
            // the connection keeps SQLite's write lock, and the split that follows a refused
            // batch would find the database locked.
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a refused usage batch failed");
            }
            Err(error)
        }
    }
}

/// The statements of [`write_batch`], inside its transaction.
async fn write_rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    texts: &mut InsertTexts,
    batch: &[UsageRecord],
) -> Result<HashSet<String>, DbErr> {
    let mut inserted: HashSet<String> = HashSet::new();
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
            .exec(txn)
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
            .exec(txn)
            .await?;
    }
    Ok(inserted)
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
