//! The migrated schema matches shared/spec/schema.md on SQLite and PostgreSQL, and every
//! migration's `down` works.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_testkit::{Backend, TestDb, db_test};

/// Every table of schema.md with its columns; a trailing `?` marks a nullable column.
const SCHEMA: &[(&str, &str)] = &[
    (
        "users",
        "id email username role is_active quota_usd? used_usd total_usd created_at updated_at",
    ),
    (
        "api_keys",
        "id user_id key_hash name is_active expires_at? total_requests total_cost_usd last_used_at? created_at updated_at",
    ),
    (
        "providers",
        "id name display_name billing_type provider_priority is_active config? created_at updated_at",
    ),
    (
        "provider_endpoints",
        "id provider_id api_format base_url headers? timeout max_retries is_active created_at updated_at",
    ),
    (
        "provider_api_keys",
        "id endpoint_id api_key name rate_multiplier internal_priority allowed_models? is_active created_at updated_at",
    ),
    (
        "global_models",
        "id name display_name default_price_per_request? default_tiered_pricing supported_capabilities config is_active usage_count created_at updated_at",
    ),
    (
        "models",
        "id provider_id global_model_id provider_model_name provider_model_aliases? price_per_request? tiered_pricing? supports_vision? supports_function_calling? supports_streaming? supports_extended_thinking? supports_image_generation? is_active is_available config? created_at updated_at",
    ),
    (
        "usage",
        "id user_id? api_key_id? request_id provider model global_model? target_model? provider_id? provider_endpoint_id? provider_api_key_id? \
      input_tokens output_tokens total_tokens cache_creation_input_tokens cache_read_input_tokens \
      input_cost_usd output_cost_usd cache_creation_cost_usd cache_read_cost_usd cache_cost_usd request_cost_usd total_cost_usd \
      actual_input_cost_usd actual_output_cost_usd actual_cache_creation_cost_usd actual_cache_read_cost_usd actual_request_cost_usd actual_total_cost_usd \
      rate_multiplier input_price_per_1m output_price_per_1m cache_creation_price_per_1m cache_read_price_per_1m price_per_request? \
      request_type api_format is_stream status_code? error_message? response_time_ms? first_byte_time_ms? status request_metadata? created_at",
    ),
    (
        "request_candidates",
        "id request_id user_id? api_key_id? candidate_index retry_index provider_id? endpoint_id? key_id? status skip_reason? is_cached status_code? error_type? error_message? latency_ms? extra_data? created_at started_at? finished_at?",
    ),
    (
        "usage_dead_letters",
        "id request_id payload error replayed_at? created_at",
    ),
    (
        "stats_daily",
        "id date total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost input_cost output_cost cache_creation_cost cache_read_cost avg_response_time_ms fallback_count unique_models unique_providers unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_daily_model",
        "id date model total_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_user_daily",
        "id user_id date total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_hourly",
        "id hour total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost input_cost output_cost cache_creation_cost cache_read_cost avg_response_time_ms fallback_count unique_models unique_providers unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_hourly_model",
        "id hour model total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_hourly_provider",
        "id hour provider total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_hourly_user",
        "id hour user_id total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_hourly_api_key",
        "id hour api_key_id total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_daily_provider",
        "id date provider total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_daily_api_key",
        "id date api_key_id total_requests success_requests error_requests input_tokens output_tokens cache_creation_tokens cache_read_tokens total_cost actual_total_cost avg_response_time_ms unpriced_requests response_time_histogram? created_at updated_at",
    ),
    (
        "stats_summary",
        "id cutoff_date all_time_requests all_time_success_requests all_time_error_requests all_time_input_tokens all_time_output_tokens all_time_cache_creation_tokens all_time_cache_read_tokens all_time_cost all_time_actual_cost total_users active_users total_api_keys active_api_keys created_at updated_at",
    ),
];

/// Unique constraints of schema.md, as column lists.
const UNIQUES: &[(&str, &[&str])] = &[
    ("users", &["email"]),
    ("users", &["username"]),
    ("api_keys", &["key_hash"]),
    ("providers", &["name"]),
    ("provider_endpoints", &["provider_id", "api_format"]),
    ("global_models", &["name"]),
    ("models", &["provider_id", "provider_model_name"]),
    ("usage", &["request_id"]),
    (
        "request_candidates",
        &["request_id", "candidate_index", "retry_index"],
    ),
    ("stats_daily", &["date"]),
    ("stats_daily_model", &["date", "model"]),
    ("stats_user_daily", &["user_id", "date"]),
    ("stats_hourly", &["hour"]),
    ("stats_hourly_model", &["hour", "model"]),
    ("stats_hourly_provider", &["hour", "provider"]),
    ("stats_hourly_user", &["hour", "user_id"]),
    ("stats_daily_provider", &["date", "provider"]),
    ("stats_hourly_api_key", &["hour", "api_key_id"]),
    ("stats_daily_api_key", &["date", "api_key_id"]),
];

/// Plain indexes of schema.md.
const INDEXES: &[(&str, &[&str])] = &[
    ("api_keys", &["user_id"]),
    ("provider_api_keys", &["endpoint_id"]),
    ("models", &["global_model_id"]),
    ("models", &["provider_model_name"]),
    ("usage", &["created_at"]),
    ("usage", &["user_id", "created_at"]),
    ("usage", &["api_key_id", "created_at"]),
    ("usage", &["provider", "model", "created_at"]),
    ("request_candidates", &["request_id"]),
    ("request_candidates", &["created_at"]),
    ("usage_dead_letters", &["request_id"]),
    // Not in schema.md: the aggregator's per-day cleanup filters on it.
    ("stats_user_daily", &["date"]),
    // Not in schema.md: deleting a user cascades to its hourly rows by `user_id`.
    ("stats_hourly_user", &["user_id"]),
];

fn expected_columns(spec: &str) -> BTreeMap<String, bool> {
    spec.split_whitespace()
        .map(|column| match column.strip_suffix('?') {
            Some(name) => (name.to_owned(), true),
            None => (column.to_owned(), false),
        })
        .collect()
}

async fn strings(
    db: &TestDb,
    sql: &str,
    values: Vec<sea_orm::Value>,
    columns: &[&str],
) -> Vec<Vec<String>> {
    let backend = db.db_backend();
    let rows = db
        .conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    rows.iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    row.try_get::<String>("", column)
                        .unwrap_or_else(|e| panic!("{column}: {e}"))
                })
                .collect()
        })
        .collect()
}

async fn pg_columns(db: &TestDb, table: &str) -> BTreeMap<String, bool> {
    strings(
        db,
        "SELECT column_name::text AS column_name, is_nullable::text AS is_nullable \
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
        vec![table.into()],
        &["column_name", "is_nullable"],
    )
    .await
    .into_iter()
    .map(|row| (row[0].clone(), row[1] == "YES"))
    .collect()
}

async fn pg_uniques(db: &TestDb) -> BTreeSet<(String, Vec<String>)> {
    let rows = strings(
        db,
        "SELECT tc.table_name::text AS table_name, tc.constraint_name::text AS constraint_name, \
                kcu.column_name::text AS column_name \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema \
         WHERE tc.table_schema = 'public' AND tc.constraint_type = 'UNIQUE' \
         ORDER BY tc.constraint_name, kcu.ordinal_position",
        vec![],
        &["table_name", "constraint_name", "column_name"],
    )
    .await;
    let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        grouped
            .entry((row[0].clone(), row[1].clone()))
            .or_default()
            .push(row[2].clone());
    }
    grouped
        .into_iter()
        .map(|((table, _), columns)| (table, columns))
        .collect()
}

async fn sqlite_columns(db: &TestDb, table: &str) -> BTreeMap<String, bool> {
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("PRAGMA table_info(\"{table}\")"),
        ))
        .await
        .expect("table_info");
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("", "name").expect("name");
            let not_null: i32 = row.try_get("", "notnull").expect("notnull");
            let primary_key: i32 = row.try_get("", "pk").expect("pk");
            (name, not_null == 0 && primary_key == 0)
        })
        .collect()
}

async fn tables(db: &TestDb) -> BTreeSet<String> {
    let sql = match db.backend() {
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    strings(db, sql, vec![], &["name"])
        .await
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect()
}

async fn assert_schema(db: &TestDb) {
    let present = tables(db).await;
    for (table, spec) in SCHEMA {
        assert!(
            present.contains(*table),
            "table {table} is missing on {:?}",
            db.backend()
        );
        let actual = match db.backend() {
            Backend::Postgres => pg_columns(db, table).await,
            Backend::Sqlite => sqlite_columns(db, table).await,
        };
        assert_eq!(
            actual,
            expected_columns(spec),
            "columns and nullability of {table} on {:?}",
            db.backend()
        );
    }
}

db_test!(async fn migrations_go_up_down_and_up_again(db) {
    assert_schema(db).await;
    Migrator::down(&db.conn, None).await.expect("down");
    let left: Vec<String> = tables(db)
        .await
        .into_iter()
        .filter(|table| SCHEMA.iter().any(|(name, _)| name == table))
        .collect();
    assert!(left.is_empty(), "tables left after down: {left:?}");
    Migrator::up(&db.conn, None).await.expect("up again");
    assert_schema(db).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalogue_has_every_unique_constraint() {
    let db = TestDb::postgres().await;
    let actual = pg_uniques(&db).await;
    let expected: BTreeSet<(String, Vec<String>)> = UNIQUES
        .iter()
        .map(|(table, columns)| {
            (
                (*table).to_owned(),
                columns.iter().map(|c| (*c).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(actual, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_has_every_index() {
    let db = TestDb::postgres().await;
    let definitions: Vec<(String, String)> = strings(
        &db,
        "SELECT tablename::text AS tablename, indexdef::text AS indexdef FROM pg_indexes WHERE schemaname = 'public'",
        vec![],
        &["tablename", "indexdef"],
    )
    .await
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone()))
    .collect();
    for (table, columns) in INDEXES {
        let wanted = format!("({})", columns.join(", "));
        assert!(
            definitions
                .iter()
                .any(|(t, def)| t == table && def.ends_with(&wanted)),
            "no index on {table}{wanted}; have {definitions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_table_holds_at_most_one_row() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let insert = |id: &str| {
            format!(
                "INSERT INTO stats_summary (id, cutoff_date, created_at, updated_at) \
                 VALUES ('{id}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
            )
        };
        db.conn
            .execute_unprepared(&insert(tollgate_entities::stats_summary::SINGLETON_ID))
            .await
            .expect("the singleton row");
        assert!(
            db.conn
                .execute_unprepared(&insert("00000000-0000-0000-0000-000000000002"))
                .await
                .is_err(),
            "a second summary row was accepted on {backend:?}"
        );
    }
}
