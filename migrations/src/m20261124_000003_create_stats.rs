//! Statistics tables, written only by the aggregator: `stats_daily`, `stats_daily_model`,
//! `stats_user_daily` and the single-row `stats_summary`.

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, Expr, ExprTrait, MigrationTrait, SchemaManager, Table, async_trait,
};
use sea_orm_migration::schema::{
    big_integer, double, integer, string_len, timestamp_with_time_zone,
};

use crate::columns::{
    DAY_COUNTS, DAY_FLOATS, REQUEST_COUNTS, cascade, created_at, doubles, drop_tables, id, id_ref,
    integers, tokens, unique, updated_at,
};

/// Creates the statistics tables.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The fixed id of the one `stats_summary` row (mirrors `tollgate_entities::stats_summary`).
const SUMMARY_ID: &str = "00000000-0000-0000-0000-000000000001";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut daily = Table::create();
        daily
            .table("stats_daily")
            .col(id())
            .col(timestamp_with_time_zone("date"));
        integers(&mut daily, &REQUEST_COUNTS);
        tokens(&mut daily);
        doubles(&mut daily, &DAY_FLOATS);
        integers(&mut daily, &DAY_COUNTS);
        daily
            .col(created_at())
            .col(updated_at())
            .index(&mut unique("stats_daily", &["date"]));
        manager.create_table(daily.take()).await?;

        let mut per_model = Table::create();
        per_model
            .table("stats_daily_model")
            .col(id())
            .col(timestamp_with_time_zone("date"))
            .col(string_len("model", 200))
            .col(integer("total_requests").default(0));
        tokens(&mut per_model);
        per_model
            .col(double("total_cost").default(0.0))
            .col(double("avg_response_time_ms").default(0.0))
            .col(created_at())
            .col(updated_at())
            .index(&mut unique("stats_daily_model", &["date", "model"]));
        manager.create_table(per_model.take()).await?;

        let mut per_user = Table::create();
        per_user
            .table("stats_user_daily")
            .col(id())
            .col(id_ref("user_id"))
            .col(timestamp_with_time_zone("date"));
        integers(&mut per_user, &REQUEST_COUNTS);
        tokens(&mut per_user);
        per_user
            .col(double("total_cost").default(0.0))
            .col(created_at())
            .col(updated_at())
            .index(&mut unique("stats_user_daily", &["user_id", "date"]))
            .foreign_key(&mut cascade("stats_user_daily", "user_id", "users"));
        manager.create_table(per_user.take()).await?;

        let mut summary = Table::create();
        summary
            .table("stats_summary")
            .col(
                string_len("id", 36)
                    .primary_key()
                    .check(Expr::col("id").eq(SUMMARY_ID))
                    .take(),
            )
            .col(timestamp_with_time_zone("cutoff_date"));
        for column in [
            "all_time_requests",
            "all_time_success_requests",
            "all_time_error_requests",
            "all_time_input_tokens",
            "all_time_output_tokens",
            "all_time_cache_creation_tokens",
            "all_time_cache_read_tokens",
        ] {
            summary.col(big_integer(column).default(0));
        }
        summary
            .col(double("all_time_cost").default(0.0))
            .col(double("all_time_actual_cost").default(0.0));
        for column in [
            "total_users",
            "active_users",
            "total_api_keys",
            "active_api_keys",
        ] {
            summary.col(integer(column).default(0));
        }
        summary.col(created_at()).col(updated_at());
        manager.create_table(summary.take()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            &[
                "stats_summary",
                "stats_user_daily",
                "stats_daily_model",
                "stats_daily",
            ],
        )
        .await
    }
}
