//! Range selects of stored statistics rows, shared by the writers and the read path.

use sea_orm::{ConnectionTrait, EntityTrait, Value};
use time::OffsetDateTime;
use tollgate_entities::stats_daily;

use crate::StatsError;
use crate::sql::{bound, statement};

/// `SELECT * FROM stats_daily WHERE [date >= from AND] date < to ORDER BY date`.
pub(crate) async fn daily_rows<C: ConnectionTrait>(
    conn: &C,
    from: Option<OffsetDateTime>,
    to: OffsetDateTime,
) -> Result<Vec<stats_daily::Model>, StatsError> {
    range_rows::<stats_daily::Entity, _>(conn, "date", from, to, None).await
}

/// The rows of table `E` by [`range_select`].
pub(crate) async fn range_rows<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    column: &str,
    from: Option<OffsetDateTime>,
    to: OffsetDateTime,
    key: Option<(&str, &str)>,
) -> Result<Vec<E::Model>, StatsError> {
    let stmt = range_select(conn, E::default().table_name(), column, from, to, key)?;
    Ok(E::find().from_raw_sql(stmt).all(conn).await?)
}

/// A `SELECT *` of a statistics table by a range of its time `column` (`date` or `hour`),
/// optionally for one value of a key column (`("user_id", id)`).
pub(crate) fn range_select<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    column: &str,
    from: Option<OffsetDateTime>,
    to: OffsetDateTime,
    key: Option<(&str, &str)>,
) -> Result<sea_orm::Statement, StatsError> {
    let backend = conn.get_database_backend();
    let mut sql = format!("SELECT * FROM {table} WHERE {column} < $1");
    let mut values = vec![bound(backend, to)?];
    if let Some(from) = from {
        values.push(bound(backend, from)?);
        sql.push_str(&format!(" AND {column} >= ${}", values.len()));
    }
    if let Some((key, value)) = key {
        values.push(Value::from(value.to_owned()));
        sql.push_str(&format!(" AND {key} = ${}", values.len()));
    }
    sql.push_str(&format!(" ORDER BY {column}"));
    Ok(statement(backend, &sql, values))
}
