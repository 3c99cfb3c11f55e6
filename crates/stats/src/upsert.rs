//! The one way statistics rows are written: a bucket's rows of one table are upserted
//! (`INSERT … ON CONFLICT … DO UPDATE SET col = excluded.col`) and the bucket's rows of
//! keys this run did not write (a model, provider, user or key whose traffic has since
//! gone) are deleted.
//!
//! Slice rows whose numbers did not change are left as they are (the `DO UPDATE` has a
//! `WHERE` that some column differs), so re-closing an hour rewrites only what a late row
//! changed; the totals row of a bucket is always rewritten, because its `updated_at` says
//! whether the bucket is closed. On PostgreSQL a batch travels as one array literal per
//! column expanded by `unnest`: a bound value per column instead of one per cell (binding
//! ~140,000 values was most of an hour's per-user upsert).

use sea_orm::sea_query::{ColumnType, Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, IntoActiveModel, Iterable,
    ModelTrait, Value,
};
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StatsError;
use crate::sql::{instant, statement};
use crate::types::StoredAs;

/// Rows per statement on SQLite (13 bound values a row stays well below its 32 766
/// parameters) and per `unnest` batch on PostgreSQL.
const BATCH_ROWS: usize = 1_000;
const ARRAY_BATCH_ROWS: usize = 10_000;

/// The columns an upsert overwrites: every column of `E` but `id`, `created_at` and the
/// `keys`. The list follows the entity, so a new rollup column needs only the entity and
/// the SQL that computes it.
pub(crate) fn updated_columns<E: EntityTrait>(keys: &[E::Column]) -> Vec<E::Column> {
    E::Column::iter()
        .filter(|column| {
            let name = column.as_str();
            name != "id" && name != "created_at" && !keys.iter().any(|key| key.as_str() == name)
        })
        .collect()
}

/// `ON CONFLICT (keys) DO UPDATE SET col = excluded.col` over [`updated_columns`].
pub(crate) fn upsert_on<E: EntityTrait>(keys: &[E::Column]) -> OnConflict {
    OnConflict::columns(keys.iter().copied())
        .update_columns(updated_columns::<E>(keys))
        .to_owned()
}

/// `table.col IS DISTINCT FROM excluded.col OR …` over the overwritten columns but
/// `updated_at`: the row's numbers changed.
fn changed<E: EntityTrait>(backend: DbBackend, keys: &[E::Column]) -> String {
    let table = E::default().table_name().to_owned();
    let differs = match backend {
        DbBackend::Postgres => "IS DISTINCT FROM",
        _ => "IS NOT",
    };
    updated_columns::<E>(keys)
        .iter()
        .map(IdenStatic::as_str)
        .filter(|name| *name != "updated_at")
        .map(|name| format!("{table}.{name} {differs} excluded.{name}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The bucket `[start, end)` a run writes, stored at `start`, and the table's columns for
/// it: the time column and, for a slice table, the dimension column.
pub(crate) struct Bucket<E: EntityTrait> {
    pub(crate) start: OffsetDateTime,
    pub(crate) end: OffsetDateTime,
    pub(crate) time: E::Column,
    pub(crate) key: Option<E::Column>,
}

/// Writes `items` as the rows of `E` for `bucket`, stamped `now`: upserts them (a slice row
/// only when its numbers changed) and, for a slice table, deletes the bucket's rows of
/// other keys.
pub(crate) async fn write_bucket<E, T, C>(
    conn: &C,
    items: &[T],
    bucket: &Bucket<E>,
    now: OffsetDateTime,
) -> Result<(), StatsError>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    T: StoredAs<E::Model>,
    C: ConnectionTrait,
{
    let backend = conn.get_database_backend();
    let keys: Vec<E::Column> = std::iter::once(bucket.time).chain(bucket.key).collect();
    let rows = items
        .iter()
        .map(|item| item.to_row(bucket.start, now))
        .collect::<Result<Vec<E::Model>, StatsError>>()?;
    let only_changed = bucket.key.map(|_| changed::<E>(backend, &keys));
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(ARRAY_BATCH_ROWS) {
            upsert_unnest::<E, C>(conn, chunk, &keys, only_changed.as_deref()).await?;
        }
    } else {
        let mut on_conflict = upsert_on::<E>(&keys);
        if let Some(condition) = &only_changed {
            on_conflict.action_and_where(Expr::cust(condition.clone()));
        }
        for chunk in rows.chunks(BATCH_ROWS) {
            let models = chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model);
            E::insert_many(models)
                .on_conflict(on_conflict.clone())
                .exec_without_returning(conn)
                .await?;
        }
    }
    if let Some(key) = bucket.key {
        let written = rows
            .iter()
            .map(|row| json_of(key.as_str(), row.get(key)))
            .collect::<Result<Vec<Json>, StatsError>>()?;
        delete_others::<E, C>(conn, bucket, key, &Json::Array(written)).await?;
    }
    Ok(())
}

/// One PostgreSQL upsert of `rows`, sent as one array literal per column and expanded by
/// `unnest`.
async fn upsert_unnest<E, C>(
    conn: &C,
    rows: &[E::Model],
    keys: &[E::Column],
    only_changed: Option<&str>,
) -> Result<(), StatsError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let table = E::default().table_name().to_owned();
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let mut arrays = Vec::with_capacity(columns.len());
    let mut typed = Vec::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let name = column.as_str();
        let mut literal = String::from("{");
        for (position, row) in rows.iter().enumerate() {
            if position > 0 {
                literal.push(',');
            }
            push_element(&mut literal, &json_of(name, row.get(*column))?);
        }
        literal.push('}');
        arrays.push(Value::from(literal));
        typed.push(format!(
            "${}::{}[]",
            index + 1,
            sql_type(name, column.def().get_column_type())?
        ));
    }
    let names = columns
        .iter()
        .map(IdenStatic::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let conflict = keys
        .iter()
        .map(IdenStatic::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let set = updated_columns::<E>(keys)
        .iter()
        .map(|column| format!("{0} = excluded.{0}", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let condition =
        only_changed.map_or_else(String::new, |condition| format!(" WHERE {condition}"));
    let sql = format!(
        "INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) \
         ON CONFLICT ({conflict}) DO UPDATE SET {set}{condition}",
        arrays = typed.join(", "),
    );
    conn.execute_raw(statement(DbBackend::Postgres, &sql, arrays))
        .await?;
    Ok(())
}

/// The PostgreSQL element type of a column of `column_type`.
fn sql_type(column: &'static str, column_type: &ColumnType) -> Result<&'static str, StatsError> {
    Ok(match column_type {
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => "text",
        ColumnType::Integer => "integer",
        ColumnType::BigInteger => "bigint",
        ColumnType::Double => "double precision",
        ColumnType::JsonBinary => "jsonb",
        ColumnType::Json => "json",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        other => {
            return Err(StatsError::Unstorable {
                column,
                detail: format!("column type {other:?}"),
            });
        }
    })
}

/// Appends `value` as an element of a PostgreSQL array literal: numbers bare, `NULL`, and
/// everything else (text, instants, JSON documents) double-quoted with `\` and `"`
/// escaped.
fn push_element(literal: &mut String, value: &Json) {
    let text = match value {
        Json::Null => {
            literal.push_str("NULL");
            return;
        }
        Json::Number(number) => {
            literal.push_str(&number.to_string());
            return;
        }
        Json::String(text) => text.clone(),
        other => other.to_string(),
    };
    literal.push('"');
    for character in text.chars() {
        if character == '\\' || character == '"' {
            literal.push('\\');
        }
        literal.push(character);
    }
    literal.push('"');
}

/// Deletes the rows of `bucket` whose `key` is not in `written` (a JSON array).
async fn delete_others<E, C>(
    conn: &C,
    bucket: &Bucket<E>,
    key: E::Column,
    written: &Json,
) -> Result<(), StatsError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let backend = conn.get_database_backend();
    let table = E::default().table_name().to_owned();
    let elements = match backend {
        DbBackend::Postgres => "SELECT json_array_elements_text($3::json)",
        _ => "SELECT value FROM json_each($3)",
    };
    let sql = format!(
        "DELETE FROM {table} WHERE {time} >= $1 AND {time} < $2 AND {key} NOT IN ({elements})",
        time = bucket.time.as_str(),
        key = key.as_str(),
    );
    conn.execute_raw(statement(
        backend,
        &sql,
        vec![
            instant(bucket.start),
            instant(bucket.end),
            Value::from(written.to_string()),
        ],
    ))
    .await?;
    Ok(())
}

/// A cell as JSON: instants in RFC 3339, numbers exact (serde_json writes the shortest
/// text that reads back as the same `f64`).
fn json_of(column: &'static str, value: Value) -> Result<Json, StatsError> {
    let unstorable = |detail: String| StatsError::Unstorable { column, detail };
    Ok(match value {
        Value::String(text) => text.map_or(Json::Null, Json::String),
        Value::Int(number) => number.map_or(Json::Null, Json::from),
        Value::BigInt(number) => number.map_or(Json::Null, Json::from),
        Value::Double(number) => match number {
            None => Json::Null,
            Some(number) => serde_json::Number::from_f64(number)
                .map(Json::Number)
                .ok_or_else(|| unstorable(number.to_string()))?,
        },
        Value::Json(json) => json.map_or(Json::Null, |json| *json),
        Value::TimeDateTimeWithTimeZone(at) => match at {
            None => Json::Null,
            Some(at) => Json::String(
                at.format(&Rfc3339)
                    .map_err(|error| unstorable(error.to_string()))?,
            ),
        },
        other => return Err(unstorable(format!("{other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IdenStatic, Iterable};
    use tollgate_entities::{
        stats_daily, stats_daily_api_key, stats_daily_model, stats_daily_provider, stats_hourly,
        stats_hourly_api_key, stats_hourly_model, stats_hourly_provider, stats_hourly_user,
        stats_summary, stats_user_daily,
    };

    use super::updated_columns;

    /// `updated_columns` of `E` with `keys` is every column of the entity, in its order,
    /// but `id`, `created_at` and the keys; `updated_at` is always among them.
    fn overwrites_all_but_identity<E: EntityTrait>(keys: &[E::Column]) {
        let keys: Vec<&str> = keys.iter().map(IdenStatic::as_str).collect();
        let actual: Vec<&str> = updated_columns::<E>(
            &E::Column::iter()
                .filter(|column| keys.contains(&column.as_str()))
                .collect::<Vec<_>>(),
        )
        .iter()
        .map(IdenStatic::as_str)
        .collect();
        let mut identity = keys.clone();
        identity.extend(["id", "created_at"]);
        for column in E::Column::iter() {
            let name = column.as_str();
            assert_eq!(
                actual.contains(&name),
                !identity.contains(&name),
                "column {name} with keys {keys:?}"
            );
        }
        assert!(actual.contains(&"updated_at"));
        assert!(actual.is_sorted_by_key(|name| {
            E::Column::iter().position(|column| column.as_str() == *name)
        }));
    }

    /// [`overwrites_all_but_identity`] for each `table: [key columns]`.
    macro_rules! check {
        ($($table:ident: [$($key:ident),+];)+) => {$(
            overwrites_all_but_identity::<$table::Entity>(&[$($table::Column::$key),+]);
        )+};
    }

    #[test]
    fn upserts_overwrite_every_column_but_the_keys_id_and_created_at() {
        check! {
            stats_daily: [Date];
            stats_hourly: [Hour];
            stats_daily_model: [Date, Model];
            stats_user_daily: [UserId, Date];
            stats_hourly_model: [Hour, Model];
            stats_hourly_provider: [Hour, Provider];
            stats_hourly_user: [Hour, UserId];
            stats_hourly_api_key: [Hour, ApiKeyId];
            stats_daily_provider: [Date, Provider];
            stats_daily_api_key: [Date, ApiKeyId];
            stats_summary: [Id];
        }
    }
}
