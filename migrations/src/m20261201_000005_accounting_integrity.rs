//! Accounting integrity (behaviour.md 7 and 8b): `usage_dead_letters`, where the usage
//! writer keeps records the database rejected, and `tollgate_meta`, which holds the
//! deployment's random identity (part of every cache key).

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, Table, TableCreateStatement,
    async_trait,
};
use sea_orm_migration::schema::{json_binary, string_len, text, timestamp_with_time_zone_null};

use crate::columns::{create_indexes, created_at, drop_tables, indexes, table_with_id};

/// Creates `usage_dead_letters` and `tollgate_meta`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The plain index of `usage_dead_letters`.
pub(crate) const INDEXES: [(&str, &[&str]); 1] = [("usage_dead_letters", &["request_id"])];

/// The two tables, by name.
pub(crate) fn tables() -> [(&'static str, TableCreateStatement); 2] {
    [
        (
            "usage_dead_letters",
            table_with_id("usage_dead_letters")
                .col(string_len("request_id", 100))
                .col(json_binary("payload"))
                .col(text("error"))
                .col(timestamp_with_time_zone_null("replayed_at"))
                .col(created_at())
                .take(),
        ),
        (
            "tollgate_meta",
            Table::create()
                .table("tollgate_meta")
                .col(string_len("key", 64).primary_key())
                .col(text("value"))
                .col(created_at())
                .take(),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, table) in tables() {
            manager.create_table(table).await?;
        }
        create_indexes(manager, indexes(&INDEXES)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &["tollgate_meta", "usage_dead_letters"]).await
    }
}
