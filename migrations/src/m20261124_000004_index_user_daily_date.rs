//! An index on `stats_user_daily(date)`. Re-aggregating a day removes that day's leftover
//! per-user rows (`DELETE … WHERE date = $1 AND updated_at <> $2`); the unique index leads
//! with `user_id`, so without this one each aggregated day scanned the whole table.

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, Index, MigrationTrait, SchemaManager, async_trait,
};

use crate::columns::{create_indexes, indexes};

/// Adds `idx_stats_user_daily_date`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The index this migration adds.
pub(crate) const INDEXES: [(&str, &[&str]); 1] = [("stats_user_daily", &["date"])];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_indexes(manager, indexes(&INDEXES)).await
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
