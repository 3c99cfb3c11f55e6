//! An index on `stats_hourly_user(user_id)`. The table's rows go with their user (`ON DELETE
//! CASCADE`) and its unique index leads with `hour`, so without this one deleting a user
//! scanned every hourly per-user row (about 24 rows per active user and day).

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, Index, MigrationTrait, SchemaManager, async_trait,
};

use crate::columns::{create_indexes, indexes};

/// Adds `idx_stats_hourly_user_user_id`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The index this migration adds.
pub(crate) const INDEXES: [(&str, &[&str]); 1] = [("stats_hourly_user", &["user_id"])];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_indexes(manager, indexes(&INDEXES)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_stats_hourly_user_user_id")
                    .table("stats_hourly_user")
                    .to_owned(),
            )
            .await
    }
}
