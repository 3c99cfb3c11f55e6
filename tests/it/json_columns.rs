//! Every JSON column survives a write and a read on SQLite and PostgreSQL: tiers with
//! `up_to: null`, prices of 0.0 and `null`, aliases with and without `api_formats`.

use std::collections::BTreeMap;

use sea_orm::EntityTrait;
use tollgate_entities::{
    AllowedModels, ApiFormat, Capabilities, GlobalModelConfig, Headers, JsonObject, ModelAlias,
    ModelAliases, PriceTier, TieredPricing, global_models, models, provider_api_keys,
    provider_endpoints, providers, request_candidates, usage,
};
use tollgate_testkit::{db_test, fixtures};

fn tiered() -> TieredPricing {
    TieredPricing {
        tiers: vec![
            PriceTier {
                up_to: Some(200_000),
                input_price_per_1m: 0.0,
                output_price_per_1m: 15.0,
                cache_creation_price_per_1m: Some(0.0),
                cache_read_price_per_1m: None,
            },
            PriceTier {
                up_to: None,
                input_price_per_1m: 6.0,
                output_price_per_1m: 22.5,
                cache_creation_price_per_1m: None,
                cache_read_price_per_1m: Some(0.6),
            },
        ],
    }
}

fn object(value: serde_json::Value) -> JsonObject {
    match value {
        serde_json::Value::Object(map) => JsonObject(map),
        other => panic!("not an object: {other}"),
    }
}

db_test!(async fn catalogue_json_columns_round_trip(db) {
    let mut provider = fixtures::provider("json-provider", 10);
    provider.config = Some(object(serde_json::json!({"region": "eu", "nested": {"n": 1.5, "none": null}})));
    let provider = fixtures::insert(&db.conn, provider).await;

    let mut endpoint = fixtures::endpoint(&provider.id, ApiFormat::Claude, "https://api.example.test");
    endpoint.headers = Some(Headers(BTreeMap::from([("x-extra".to_owned(), "1".to_owned())])));
    let endpoint = fixtures::insert(&db.conn, endpoint).await;

    let mut key = fixtures::provider_key(&endpoint.id, "sk-secret");
    key.allowed_models = Some(AllowedModels(vec!["m-a".into(), "m-b".into()]));
    key.rate_multiplier = 0.0;
    let key = fixtures::insert(&db.conn, key).await;
    let mut open_key = fixtures::provider_key(&endpoint.id, "sk-other");
    open_key.allowed_models = None;
    let open_key = fixtures::insert(&db.conn, open_key).await;

    let mut global = fixtures::global_model("json-global");
    global.default_tiered_pricing = tiered();
    global.default_price_per_request = Some(0.0);
    global.supported_capabilities = Capabilities(vec!["vision".into(), "tools".into()]);
    global.config = GlobalModelConfig {
        streaming: Some(true),
        context_limit: Some(200_000),
        description: Some("d".into()),
        extra: serde_json::Map::from_iter([("custom".to_owned(), serde_json::json!([1, 2]))]),
        ..GlobalModelConfig::default()
    };
    let global = fixtures::insert(&db.conn, global).await;

    let mut with_aliases = fixtures::model(&provider.id, &global.id, "upstream-a");
    with_aliases.provider_model_aliases = Some(ModelAliases(vec![
        ModelAlias { name: "alias-1".into(), priority: Some(2), api_formats: Some(vec!["OPENAI".into()]) },
        ModelAlias { name: "alias-2".into(), priority: None, api_formats: None },
    ]));
    with_aliases.tiered_pricing = Some(TieredPricing::fixed(0.0, 0.0));
    with_aliases.price_per_request = Some(0.0);
    let with_aliases = fixtures::insert(&db.conn, with_aliases).await;

    let mut inheriting = fixtures::model(&provider.id, &global.id, "upstream-b");
    inheriting.provider_model_aliases = Some(ModelAliases(vec![]));
    inheriting.tiered_pricing = None;
    inheriting.price_per_request = None;
    let inheriting = fixtures::insert(&db.conn, inheriting).await;

    assert_eq!(providers::Entity::find_by_id(provider.id.clone()).one(&db.conn).await.unwrap(), Some(provider));
    assert_eq!(provider_endpoints::Entity::find_by_id(endpoint.id.clone()).one(&db.conn).await.unwrap(), Some(endpoint));
    assert_eq!(provider_api_keys::Entity::find_by_id(key.id.clone()).one(&db.conn).await.unwrap(), Some(key));
    assert_eq!(provider_api_keys::Entity::find_by_id(open_key.id.clone()).one(&db.conn).await.unwrap(), Some(open_key));

    let stored_global = global_models::Entity::find_by_id(global.id.clone()).one(&db.conn).await.unwrap().unwrap();
    assert_eq!(stored_global, global);
    assert_eq!(stored_global.default_tiered_pricing.tiers[1].up_to, None);
    assert_eq!(stored_global.default_tiered_pricing.tiers[0].cache_creation_price_per_1m, Some(0.0));
    assert_eq!(stored_global.default_tiered_pricing.tiers[0].cache_read_price_per_1m, None);
    assert_eq!(stored_global.default_price_per_request, Some(0.0));

    let stored = models::Entity::find_by_id(with_aliases.id.clone()).one(&db.conn).await.unwrap().unwrap();
    assert_eq!(stored, with_aliases);
    assert_eq!(stored.price_per_request, Some(0.0));
    let stored = models::Entity::find_by_id(inheriting.id.clone()).one(&db.conn).await.unwrap().unwrap();
    assert_eq!(stored, inheriting);
    assert_eq!(stored.price_per_request, None);
    assert_eq!(stored.tiered_pricing, None);
});

db_test!(async fn traffic_json_columns_round_trip(db) {
    let mut row = fixtures::usage_row("gpt-x", tollgate_entities::now_utc());
    row.request_metadata = Some(object(serde_json::json!({"client": "curl", "tags": ["a"]})));
    row.price_per_request = Some(0.0);
    let row = fixtures::insert(&db.conn, row).await;
    assert_eq!(usage::Entity::find_by_id(row.id.clone()).one(&db.conn).await.unwrap(), Some(row));

    let now = tollgate_entities::now_utc();
    let mut candidate =
        fixtures::candidate_row("req-1", tollgate_entities::CandidateStatus::Skipped, now);
    candidate.skip_reason = Some("model not allowed".into());
    candidate.is_cached = true;
    candidate.extra_data = Some(object(serde_json::json!({"why": null, "n": 0.0})));
    candidate.finished_at = Some(now);
    let candidate = fixtures::insert(&db.conn, candidate).await;
    assert_eq!(
        request_candidates::Entity::find_by_id(candidate.id.clone()).one(&db.conn).await.unwrap(),
        Some(candidate)
    );
});
