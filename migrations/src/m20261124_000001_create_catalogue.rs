//! Catalogue tables: users, client keys, providers, endpoints, upstream keys, global models
//! and models.

use sea_orm_migration::prelude::{
    ColumnDef, DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, TableCreateStatement,
    async_trait,
};
use sea_orm_migration::schema::{
    boolean, boolean_null, double, double_null, integer, json_binary, json_binary_null, string,
    string_len, text, timestamp_with_time_zone_null,
};

use crate::columns::{
    TableExt, cascade, create_indexes, drop_tables, id_ref, indexes, table_with_id, unique,
};

/// Creates the catalogue.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const TABLES: [&str; 7] = [
    "models",
    "global_models",
    "provider_api_keys",
    "provider_endpoints",
    "providers",
    "api_keys",
    "users",
];

/// The capability flags of `models` (`NULL` inherits the global model's).
const CAPABILITIES: [&str; 5] = [
    "supports_vision",
    "supports_function_calling",
    "supports_streaming",
    "supports_extended_thinking",
    "supports_image_generation",
];

/// The plain indexes of the catalogue, created after its tables.
pub(crate) const INDEXES: [(&str, &[&str]); 4] = [
    ("api_keys", &["user_id"]),
    ("provider_api_keys", &["endpoint_id"]),
    ("models", &["global_model_id"]),
    ("models", &["provider_model_name"]),
];

/// `models.provider_model_aliases` (Aether keeps its aliases elsewhere, so adoption adds it).
pub(crate) fn provider_model_aliases() -> ColumnDef {
    json_binary_null("provider_model_aliases")
}

/// The catalogue's tables, in creation order (a referenced table before its references).
fn tables() -> [TableCreateStatement; 7] {
    [
        table_with_id("users")
            .col(string_len("email", 255))
            .col(string_len("username", 100))
            .col(string_len("role", 20).default("user"))
            .col(boolean("is_active").default(true))
            .col(double_null("quota_usd"))
            .col(double("used_usd").default(0.0))
            .col(double("total_usd").default(0.0))
            .timestamps()
            .index(&mut unique("users", &["email"]))
            .index(&mut unique("users", &["username"]))
            .take(),
        table_with_id("api_keys")
            .col(id_ref("user_id"))
            .col(string_len("key_hash", 64))
            .col(string("name"))
            .col(boolean("is_active").default(true))
            .col(timestamp_with_time_zone_null("expires_at"))
            .col(integer("total_requests").default(0))
            .col(double("total_cost_usd").default(0.0))
            .col(timestamp_with_time_zone_null("last_used_at"))
            .timestamps()
            .index(&mut unique("api_keys", &["key_hash"]))
            .foreign_key(&mut cascade("api_keys", "user_id", "users"))
            .take(),
        table_with_id("providers")
            .col(string_len("name", 100))
            .col(string("display_name"))
            .col(string_len("billing_type", 20).default("pay_as_you_go"))
            .col(integer("provider_priority").default(100))
            .col(boolean("is_active").default(true))
            .col(json_binary_null("config"))
            .timestamps()
            .index(&mut unique("providers", &["name"]))
            .take(),
        table_with_id("provider_endpoints")
            .col(id_ref("provider_id"))
            .col(string_len("api_format", 20))
            .col(string_len("base_url", 500))
            .col(json_binary_null("headers"))
            .col(integer("timeout").default(300))
            .col(integer("max_retries").default(1))
            .col(boolean("is_active").default(true))
            .timestamps()
            .index(&mut unique(
                "provider_endpoints",
                &["provider_id", "api_format"],
            ))
            .foreign_key(&mut cascade(
                "provider_endpoints",
                "provider_id",
                "providers",
            ))
            .take(),
        table_with_id("provider_api_keys")
            .col(id_ref("endpoint_id"))
            .col(text("api_key"))
            .col(string("name"))
            .col(double("rate_multiplier").default(1.0))
            .col(integer("internal_priority").default(50))
            .col(json_binary_null("allowed_models"))
            .col(boolean("is_active").default(true))
            .timestamps()
            .foreign_key(&mut cascade(
                "provider_api_keys",
                "endpoint_id",
                "provider_endpoints",
            ))
            .take(),
        table_with_id("global_models")
            .col(string_len("name", 100))
            .col(string("display_name"))
            .col(double_null("default_price_per_request"))
            .col(json_binary("default_tiered_pricing"))
            .col(json_binary("supported_capabilities"))
            .col(json_binary("config"))
            .col(boolean("is_active").default(true))
            .col(integer("usage_count").default(0))
            .timestamps()
            .index(&mut unique("global_models", &["name"]))
            .take(),
        table_with_id("models")
            .col(id_ref("provider_id"))
            .col(id_ref("global_model_id"))
            .col(string_len("provider_model_name", 200))
            .col(provider_model_aliases())
            .col(double_null("price_per_request"))
            .col(json_binary_null("tiered_pricing"))
            .columns(&CAPABILITIES, boolean_null)
            .col(boolean("is_active").default(true))
            .col(boolean("is_available").default(true))
            .col(json_binary_null("config"))
            .timestamps()
            .index(&mut unique(
                "models",
                &["provider_id", "provider_model_name"],
            ))
            .foreign_key(&mut cascade("models", "provider_id", "providers"))
            .foreign_key(&mut cascade("models", "global_model_id", "global_models"))
            .take(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        create_indexes(manager, indexes(&INDEXES)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &TABLES).await
    }
}
