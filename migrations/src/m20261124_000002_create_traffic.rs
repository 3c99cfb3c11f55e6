//! Traffic tables: `usage` (one row per request) and `request_candidates` (one row per
//! routing candidate and attempt).

use sea_orm_migration::prelude::{
    ColumnDef, DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, async_trait,
};
use sea_orm_migration::schema::{
    boolean, double, double_null, integer, integer_null, json_binary_null, string_len,
    string_len_null, text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use crate::columns::{
    create_indexes, drop_tables, id_ref_null, indexes, set_null, table_with_id, unique,
};

/// Creates `usage` and `request_candidates`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const TOKEN_COLUMNS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

const COST_COLUMNS: [&str; 18] = [
    "input_cost_usd",
    "output_cost_usd",
    "cache_creation_cost_usd",
    "cache_read_cost_usd",
    "cache_cost_usd",
    "request_cost_usd",
    "total_cost_usd",
    "actual_input_cost_usd",
    "actual_output_cost_usd",
    "actual_cache_creation_cost_usd",
    "actual_cache_read_cost_usd",
    "actual_request_cost_usd",
    "actual_total_cost_usd",
    "rate_multiplier",
    "input_price_per_1m",
    "output_price_per_1m",
    "cache_creation_price_per_1m",
    "cache_read_price_per_1m",
];

/// The plain indexes of `usage` (the first four) and `request_candidates`.
pub(crate) const INDEXES: [(&str, &[&str]); 6] = [
    ("usage", &["created_at"]),
    ("usage", &["user_id", "created_at"]),
    ("usage", &["api_key_id", "created_at"]),
    ("usage", &["provider", "model", "created_at"]),
    ("request_candidates", &["request_id"]),
    ("request_candidates", &["created_at"]),
];

/// `usage.global_model`, the canonical name (an addition to Aether's schema).
pub(crate) fn global_model() -> ColumnDef {
    string_len_null("global_model", 100)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut usage = table_with_id("usage");
        usage
            .col(id_ref_null("user_id"))
            .col(id_ref_null("api_key_id"))
            .col(string_len("request_id", 100))
            .col(string_len("provider", 100))
            .col(string_len("model", 200))
            .col(global_model())
            .col(string_len_null("target_model", 200))
            .col(id_ref_null("provider_id"))
            .col(id_ref_null("provider_endpoint_id"))
            .col(id_ref_null("provider_api_key_id"));
        for column in TOKEN_COLUMNS {
            usage.col(integer(column).default(0));
        }
        for column in COST_COLUMNS {
            usage.col(double(column).default(0.0));
        }
        usage
            .col(double_null("price_per_request"))
            .col(string_len("request_type", 50).default("chat"))
            .col(string_len("api_format", 20))
            .col(boolean("is_stream").default(false))
            .col(integer_null("status_code"))
            .col(text_null("error_message"))
            .col(integer_null("response_time_ms"))
            .col(integer_null("first_byte_time_ms"))
            .col(string_len("status", 20).default("pending"))
            .col(json_binary_null("request_metadata"))
            .col(timestamp_with_time_zone("created_at"))
            .index(&mut unique("usage", &["request_id"]))
            .foreign_key(&mut set_null("usage", "user_id", "users"))
            .foreign_key(&mut set_null("usage", "api_key_id", "api_keys"))
            .foreign_key(&mut set_null("usage", "provider_id", "providers"))
            .foreign_key(&mut set_null(
                "usage",
                "provider_endpoint_id",
                "provider_endpoints",
            ))
            .foreign_key(&mut set_null(
                "usage",
                "provider_api_key_id",
                "provider_api_keys",
            ));
        manager.create_table(usage.take()).await?;
        create_indexes(manager, indexes(&INDEXES[..4])).await?;

        manager
            .create_table(
                table_with_id("request_candidates")
                    .col(string_len("request_id", 100))
                    .col(id_ref_null("user_id"))
                    .col(id_ref_null("api_key_id"))
                    .col(integer("candidate_index"))
                    .col(integer("retry_index").default(0))
                    .col(id_ref_null("provider_id"))
                    .col(id_ref_null("endpoint_id"))
                    .col(id_ref_null("key_id"))
                    .col(string_len("status", 20))
                    .col(string_len_null("skip_reason", 200))
                    .col(boolean("is_cached").default(false))
                    .col(integer_null("status_code"))
                    .col(string_len_null("error_type", 50))
                    .col(text_null("error_message"))
                    .col(integer_null("latency_ms"))
                    .col(json_binary_null("extra_data"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .index(&mut unique(
                        "request_candidates",
                        &["request_id", "candidate_index", "retry_index"],
                    ))
                    .take(),
            )
            .await?;
        create_indexes(manager, indexes(&INDEXES[4..])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &["request_candidates", "usage"]).await
    }
}
