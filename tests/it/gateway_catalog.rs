//! The declarative catalogue file: applied as an upsert keyed by names (applying twice
//! changes nothing, changed values update rows in place), and a gateway serves from it.

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
