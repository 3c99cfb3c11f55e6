//! Column and constraint helpers shared by the migrations, so every table spells ids,
//! timestamps, foreign keys and the rollup column groups the same way.

use sea_orm_migration::prelude::{
    ColumnDef, DbErr, ForeignKey, ForeignKeyAction, ForeignKeyCreateStatement, Index,
    IndexCreateStatement, SchemaManager, Table, TableCreateStatement,
};
use sea_orm_migration::schema::{
    big_integer, double, integer, string_len, string_len_null, timestamp_with_time_zone,
};

/// `id varchar(36) primary key`.
pub(crate) fn id() -> ColumnDef {
    string_len("id", 36).primary_key().take()
}

/// Column groups as steps of a `CREATE TABLE` builder chain.
pub(crate) trait TableExt {
    /// Appends `created_at` and `updated_at`, the last columns of most tables.
    fn timestamps(&mut self) -> &mut Self;
    /// Appends one column per name, each made by `column`.
    fn columns(
        &mut self,
        names: &[&'static str],
        column: fn(&'static str) -> ColumnDef,
    ) -> &mut Self;
}

impl TableExt for TableCreateStatement {
    fn timestamps(&mut self) -> &mut Self {
        self.col(created_at()).col(updated_at())
    }

    fn columns(
        &mut self,
        names: &[&'static str],
        column: fn(&'static str) -> ColumnDef,
    ) -> &mut Self {
        for name in names {
            self.col(column(name));
        }
        self
    }
}

/// `CREATE TABLE name` with the [`id`] primary key as its first column.
pub(crate) fn table_with_id(name: &'static str) -> TableCreateStatement {
    Table::create().table(name).col(id()).take()
}

/// Appends the numbers of `stats_daily` and `stats_hourly` (all but the key and timestamps).
pub(crate) fn day_numbers(table: &mut TableCreateStatement) {
    integers(table, &REQUEST_COUNTS);
    tokens(table);
    doubles(table, &DAY_FLOATS);
    integers(table, &DAY_COUNTS);
}

/// A non-null `varchar(36)` reference.
pub(crate) fn id_ref(name: &'static str) -> ColumnDef {
    string_len(name, 36)
}

/// A nullable `varchar(36)` reference.
pub(crate) fn id_ref_null(name: &'static str) -> ColumnDef {
    string_len_null(name, 36)
}

/// `created_at timestamptz not null`.
pub(crate) fn created_at() -> ColumnDef {
    timestamp_with_time_zone("created_at")
}

/// `updated_at timestamptz not null`.
pub(crate) fn updated_at() -> ColumnDef {
    timestamp_with_time_zone("updated_at")
}

/// A foreign key `table.column -> target.id` whose rows go with the target row.
pub(crate) fn cascade(
    table: &'static str,
    column: &'static str,
    target: &'static str,
) -> ForeignKeyCreateStatement {
    fk(table, column, target, ForeignKeyAction::Cascade)
}

/// A foreign key `table.column -> target.id` that is cleared when the target row goes.
pub(crate) fn set_null(
    table: &'static str,
    column: &'static str,
    target: &'static str,
) -> ForeignKeyCreateStatement {
    fk(table, column, target, ForeignKeyAction::SetNull)
}

/// A foreign key `table.column -> target.id` with the given delete action.
fn fk(
    table: &'static str,
    column: &'static str,
    target: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(on_delete)
        .take()
}

/// A named unique constraint declared inside `CREATE TABLE`, so PostgreSQL lists it in
/// `information_schema.table_constraints` (a unique index would not appear there).
pub(crate) fn unique(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(format!("uq_{table}_{}", columns.join("_")))
        .unique();
    for column in columns {
        index.col(*column);
    }
    index.take()
}

/// A plain index created after the table.
pub(crate) fn index(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(format!("idx_{table}_{}", columns.join("_")))
        .table(table);
    for column in columns {
        index.col(*column);
    }
    index.take()
}

/// A plain index per `(table, columns)` of `list`.
pub(crate) fn indexes(
    list: &[(&'static str, &'static [&'static str])],
) -> Vec<IndexCreateStatement> {
    list.iter()
        .map(|&(table, columns)| index(table, columns))
        .collect()
}

/// Creates each of `indexes` (plain indexes, after their tables), in order.
pub(crate) async fn create_indexes(
    manager: &SchemaManager<'_>,
    indexes: impl IntoIterator<Item = IndexCreateStatement>,
) -> Result<(), DbErr> {
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

/// Drops the plain index of each `(table, columns)` of `list` (named as [`index`] names it).
pub(crate) async fn drop_indexes(
    manager: &SchemaManager<'_>,
    list: &[(&'static str, &[&'static str])],
) -> Result<(), DbErr> {
    for (table, columns) in list {
        let name = index(table, columns)
            .get_index_spec()
            .get_name()
            .unwrap_or_default()
            .to_owned();
        manager
            .drop_index(Index::drop().name(name).table(*table).to_owned())
            .await?;
    }
    Ok(())
}

/// Drops each of `tables`, in order (dependent tables first).
pub(crate) async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: &[&'static str],
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(*table).take())
            .await?;
    }
    Ok(())
}

/// The request counts every rollup table starts with.
pub(crate) const REQUEST_COUNTS: [&str; 3] =
    ["total_requests", "success_requests", "error_requests"];

/// The token sums of every rollup table.
pub(crate) const TOKENS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
];

/// The cost sums and mean response time of `stats_daily` and `stats_hourly`.
pub(crate) const DAY_FLOATS: [&str; 7] = [
    "total_cost",
    "actual_total_cost",
    "input_cost",
    "output_cost",
    "cache_creation_cost",
    "cache_read_cost",
    "avg_response_time_ms",
];

/// The counts only `stats_daily` and `stats_hourly` have.
pub(crate) const DAY_COUNTS: [&str; 3] = ["fallback_count", "unique_models", "unique_providers"];

/// Appends `integer` columns defaulting to 0.
pub(crate) fn integers(table: &mut TableCreateStatement, names: &[&'static str]) {
    for column in names {
        table.col(integer(*column).default(0));
    }
}

/// Appends the [`TOKENS`] as `bigint` columns defaulting to 0.
pub(crate) fn tokens(table: &mut TableCreateStatement) {
    for column in TOKENS {
        table.col(big_integer(column).default(0));
    }
}

/// Appends `double` columns defaulting to 0.
pub(crate) fn doubles(table: &mut TableCreateStatement, names: &[&'static str]) {
    for column in names {
        table.col(double(*column).default(0.0));
    }
}

/// Declares the `Migration` of a file that only adds the plain indexes of its `INDEXES`
/// (and drops them again on `down`).
macro_rules! index_migration {
    ($(#[$doc:meta])*) => {
        use sea_orm_migration::prelude::{
            DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, async_trait,
        };

        $(#[$doc])*
        #[derive(DeriveMigrationName)]
        pub(crate) struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::columns::create_indexes(manager, crate::columns::indexes(&INDEXES)).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::columns::drop_indexes(manager, &INDEXES).await
            }
        }
    };
}

pub(crate) use index_migration;
