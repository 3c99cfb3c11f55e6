//! Statistics at production scale (behaviour.md 9): `stats_hourly` and the hourly and daily
//! slice tables (per model, provider, user and client key), and `unpriced_requests` and
//! `response_time_histogram` on the daily tables that existed before.

use sea_orm_migration::prelude::{
    ColumnDef, DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, Table,
    TableCreateStatement, async_trait,
};
use sea_orm_migration::schema::{integer, json_binary_null, string_len, timestamp_with_time_zone};

use crate::columns::{
    REQUEST_COUNTS, TableExt, cascade, day_numbers, doubles, drop_tables, id_ref, integers,
    table_with_id, tokens, unique,
};

/// Creates the hourly and slice tables and extends the daily ones.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The slice tables: name, time column, dimension column and its length, and whether the
/// dimension is a user (whose rows go with the user, as in `stats_user_daily`).
const SLICES: [(&str, &str, &str, u32); 5] = [
    ("stats_hourly_model", "hour", "model", 200),
    ("stats_hourly_provider", "hour", "provider", 100),
    ("stats_hourly_user", "hour", "user_id", 36),
    ("stats_daily_provider", "date", "provider", 100),
    ("stats_daily_api_key", "date", "api_key_id", 36),
];

/// The daily tables of migration 3 that gain the two new columns.
pub(crate) const EXTENDED: [&str; 3] = ["stats_daily", "stats_daily_model", "stats_user_daily"];

/// `unpriced_requests` and `response_time_histogram`, last before the timestamps.
pub(crate) fn coverage_columns() -> [ColumnDef; 2] {
    [
        integer("unpriced_requests").default(0).take(),
        json_binary_null("response_time_histogram"),
    ]
}

fn finish(table: &mut TableCreateStatement) {
    for column in coverage_columns() {
        table.col(column);
    }
    table.timestamps();
}

/// `stats_hourly`: the columns of `stats_daily`, keyed by `hour`.
fn hourly() -> TableCreateStatement {
    let mut table = table_with_id("stats_hourly");
    table.col(timestamp_with_time_zone("hour"));
    day_numbers(&mut table);
    finish(&mut table);
    table.index(&mut unique("stats_hourly", &["hour"]));
    table.take()
}

/// One slice table (see `tollgate_entities::slices`).
pub(crate) fn slice(
    name: &'static str,
    time: &'static str,
    key: &'static str,
    len: u32,
) -> TableCreateStatement {
    let mut table = table_with_id(name);
    table.col(timestamp_with_time_zone(time));
    if key == "user_id" {
        table.col(id_ref(key));
    } else {
        table.col(string_len(key, len));
    }
    integers(&mut table, &REQUEST_COUNTS);
    tokens(&mut table);
    doubles(
        &mut table,
        &["total_cost", "actual_total_cost", "avg_response_time_ms"],
    );
    finish(&mut table);
    table.index(&mut unique(name, &[time, key]));
    if key == "user_id" {
        table.foreign_key(&mut cascade(name, key, "users"));
    }
    table.take()
}

/// `stats_hourly` and the slice tables, by name, in creation order.
pub(crate) fn tables() -> Vec<(&'static str, TableCreateStatement)> {
    let mut tables = vec![("stats_hourly", hourly())];
    for (name, time, key, len) in SLICES {
        tables.push((name, slice(name, time, key, len)));
    }
    tables
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, table) in tables() {
            manager.create_table(table).await?;
        }
        // One column per ALTER: SQLite takes no more.
        for table in EXTENDED {
            for column in coverage_columns() {
                manager
                    .alter_table(Table::alter().table(table).add_column(column).take())
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in EXTENDED {
            for column in ["response_time_histogram", "unpriced_requests"] {
                manager
                    .alter_table(Table::alter().table(table).drop_column(column).take())
                    .await?;
            }
        }
        let mut tables: Vec<&str> = SLICES.iter().rev().map(|slice| slice.0).collect();
        tables.push("stats_hourly");
        drop_tables(manager, &tables).await
    }
}
