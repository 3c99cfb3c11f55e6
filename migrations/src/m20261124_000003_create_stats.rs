//! Statistics tables, written only by the aggregator: `stats_daily`, `stats_daily_model`,
//! `stats_user_daily` and the single-row `stats_summary`.

use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, Expr, ExprTrait, MigrationTrait, SchemaManager, Table, async_trait,
};
use sea_orm_migration::schema::{
    big_integer, double, integer, string_len, timestamp_with_time_zone,
};

use crate::columns::{
    REQUEST_COUNTS, TableExt, cascade, day_numbers, drop_tables, id_ref, integers, table_with_id,
    tokens, unique,
};

/// Creates the statistics tables.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The fixed id of the one `stats_summary` row (mirrors `tollgate_entities::stats_summary`).
const SUMMARY_ID: &str = "00000000-0000-0000-0000-000000000001";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut daily = table_with_id("stats_daily");
        daily.col(timestamp_with_time_zone("date"));
        day_numbers(&mut daily);
        daily
            .timestamps()
            .index(&mut unique("stats_daily", &["date"]));
        manager.create_table(daily.take()).await?;

        let mut per_model = table_with_id("stats_daily_model");
        per_model
            .col(timestamp_with_time_zone("date"))
            .col(string_len("model", 200))
            .col(integer("total_requests").default(0));
        tokens(&mut per_model);
        per_model
            .col(double("total_cost").default(0.0))
            .col(double("avg_response_time_ms").default(0.0))
            .timestamps()
            .index(&mut unique("stats_daily_model", &["date", "model"]));
        manager.create_table(per_model.take()).await?;

        let mut per_user = table_with_id("stats_user_daily");
        per_user
            .col(id_ref("user_id"))
            .col(timestamp_with_time_zone("date"));
        integers(&mut per_user, &REQUEST_COUNTS);
        tokens(&mut per_user);
        per_user
            .col(double("total_cost").default(0.0))
            .timestamps()
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
        summary.timestamps();
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
