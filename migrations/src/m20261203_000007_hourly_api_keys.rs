//! `stats_hourly_api_key`: the per-client-key numbers of each hour, so a business day's
//! per-key rows are the sum of its hours like every other dimension, and closing a day
//! needs no per-key pass over the day's raw rows.

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, TableCreateStatement, async_trait,
};

use crate::columns::drop_tables;
use crate::m20261203_000006_hourly_stats::slice;

/// Creates `stats_hourly_api_key`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The table this migration creates, by name (adoption creates it the same way).
pub(crate) fn tables() -> Vec<(&'static str, TableCreateStatement)> {
    vec![(
        "stats_hourly_api_key",
        slice("stats_hourly_api_key", "hour", "api_key_id", 36),
    )]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, table) in tables() {
            manager.create_table(table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &["stats_hourly_api_key"]).await
    }
}
