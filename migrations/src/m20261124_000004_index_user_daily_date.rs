//! An index on `stats_user_daily(date)`. Re-aggregating a day removes that day's leftover
//! per-user rows (`DELETE … WHERE date = $1 AND updated_at <> $2`); the unique index leads
//! with `user_id`, so without this one each aggregated day scanned the whole table.

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, Index, MigrationTrait, SchemaManager, async_trait,
};

use crate::columns::index;

/// Adds `idx_stats_user_daily_date`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("stats_user_daily", &["date"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_stats_user_daily_date")
                    .table("stats_user_daily")
                    .to_owned(),
            )
            .await
    }
}
