//! The declarative catalogue file: applied as an upsert keyed by names (applying twice
//! changes nothing, changed values update rows in place), a gateway serves from it, and on
//! SQLite it applies while other connections keep writing.

use axum::http::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use tollgate_catalogue::{CatalogFile, SecretBox, apply_catalog};
use tollgate_entities::{
    ApiFormat, api_keys, global_models, models, provider_api_keys, provider_endpoints, providers,
    users,
};
use tollgate_server::mock::MockUpstream;
use tollgate_testkit::db_test;

use crate::gateway_support::{chat, gateway, request, send};

fn document(base_url: &str, priority: i32) -> String {
    format!(
        r#"
[[global_models]]
name = "gpt-4o"
default_tiered_pricing = {{ tiers = [{{ input_price_per_1m = 2.5, output_price_per_1m = 10.0 }}] }}

[[providers]]
name = "openai"
priority = {priority}
[[providers.endpoints]]
api_format = "OPENAI"
base_url = "{base_url}"
[[providers.endpoints.keys]]
name = "main"
api_key = "sk-catalogue"
[[providers.models]]
global_model = "gpt-4o"
provider_model_name = "gpt-4o-2024-08-06"

[[users]]
username = "alice"
[[users.api_keys]]
name = "laptop"
key = "tg-alice-from-file"
"#
    )
}

async fn counts(conn: &sea_orm::DatabaseConnection) -> [u64; 7] {
    [
        global_models::Entity::find().count(conn).await.unwrap(),
        providers::Entity::find().count(conn).await.unwrap(),
        provider_endpoints::Entity::find()
            .count(conn)
            .await
            .unwrap(),
        provider_api_keys::Entity::find().count(conn).await.unwrap(),
        models::Entity::find().count(conn).await.unwrap(),
        users::Entity::find().count(conn).await.unwrap(),
        api_keys::Entity::find().count(conn).await.unwrap(),
    ]
}

db_test!(async fn catalogue_file_is_an_idempotent_upsert_keyed_by_names(db) {
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-catalog-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("catalog.toml");
    std::fs::write(&path, document(&mock.openai_base_url(), 10)).unwrap();

    let file = CatalogFile::load(&path).unwrap();
    let first = apply_catalog(conn, &file, &SecretBox::default()).await.unwrap();
    assert!(first.created >= 6, "{first:?}");
    assert_eq!(counts(conn).await, [1, 1, 1, 1, 1, 1, 1]);
    apply_catalog(conn, &file, &SecretBox::default()).await.unwrap();
    assert_eq!(counts(conn).await, [1, 1, 1, 1, 1, 1, 1], "applying twice creates nothing");

    std::fs::write(&path, document(&mock.openai_base_url(), 42)).unwrap();
    apply_catalog(conn, &CatalogFile::load(&path).unwrap(), &SecretBox::default()).await.unwrap();
    let provider = providers::Entity::find().one(conn).await.unwrap().unwrap();
    assert_eq!(provider.provider_priority, 42, "a changed value updates the row in place");
    assert_eq!(counts(conn).await, [1, 1, 1, 1, 1, 1, 1]);

    let gateway = gateway(conn);
    let answer = send(&gateway, request(ApiFormat::OpenAi, Some("tg-alice-from-file"), chat("gpt-4o", false))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("x-tollgate-model"), "gpt-4o-2024-08-06");
    assert_eq!(mock.requests()[0].header("authorization"), Some("Bearer sk-catalogue"));
    let _ = std::fs::remove_dir_all(&dir);
});

#[test]
fn catalogue_errors_name_the_entry_and_field() {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-catalog-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"providers": [{"name": "p", "endpoints": [{"api_format": "GRPC", "base_url": "x"}]}]}"#,
    )
    .unwrap();
    let error = CatalogFile::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("bad.json") && error.contains("GRPC"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On an SQLite file in WAL mode (the gateway's own settings), the catalogue's transaction
/// reads before it writes; while another connection keeps committing (the closing loop, the
/// usage writer) every apply still succeeds instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_applies_while_another_connection_keeps_writing_to_sqlite() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = std::env::temp_dir().join(format!("tollgate-busy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("gateway.db").display());
    let conn = tollgate_server::connect_database(&tollgate_catalogue::Secret::new(url))
        .await
        .unwrap();
    let options = tollgate_migrations::StartOptions {
        migrate: true,
        accept_aether: false,
    };
    tollgate_migrations::prepare_database(&conn, options)
        .await
        .unwrap();
    let path = dir.join("catalog.toml");
    let load = |priority: i32| {
        std::fs::write(&path, document("http://127.0.0.1:9/v1", priority)).unwrap();
        CatalogFile::load(&path).unwrap()
    };
    apply_catalog(&conn, &load(100), &SecretBox::default())
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (conn, stop, commits) = (conn.clone(), stop.clone(), commits.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let sql = format!(
                    "INSERT INTO usage_dead_letters (id, request_id, payload, error, created_at) \
                     VALUES ('{}', 'r', '{{}}', 'e', '2026-01-01T00:00:00Z')",
                    uuid::Uuid::new_v4()
                );
                conn.execute_raw(Statement::from_string(DbBackend::Sqlite, sql))
                    .await
                    .unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut failures = Vec::new();
    let mut seen = 0;
    for priority in 0..40 {
        // Each apply starts after another commit of the writer, so the two interleave.
        while commits.load(Ordering::Relaxed) == seen {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        seen = commits.load(Ordering::Relaxed);
        if let Err(error) = apply_catalog(&conn, &load(priority), &SecretBox::default()).await {
            failures.push(error.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(failures, Vec::<String>::new(), "every apply succeeds");
    let provider = providers::Entity::find().one(&conn).await.unwrap().unwrap();
    assert_eq!(provider.provider_priority, 39, "the last apply is stored");
    conn.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
