//! The same field rules with the same messages at both doors: one table of bad values drives
//! the admin API (the message of its 422) and the catalogue document (the reason of its
//! `CatalogError`), and both must say the same thing about the same value, naming the field
//! as each door spells it.

use axum::http::Method;
use serde_json::{Value, json};
use tollgate_catalogue::rules::{self, Invalid};
use tollgate_catalogue::{CatalogError, CatalogFile, SecretBox, apply_catalog};
use tollgate_testkit::db_test;

use crate::admin_support::{Session, admin, call, global_body};
use crate::gateway_support::gateway;

/// The kind of row a bad value is written to.
#[derive(Debug, Clone, Copy)]
enum Entity {
    GlobalModel,
    Provider,
    Endpoint,
    ProviderKey,
    Model,
    User,
}

impl Entity {
    /// The entry of the document [`document`] that holds this kind of row.
    fn entry(self) -> (&'static str, &'static str) {
        match self {
            Self::GlobalModel => ("/global_models/0", "global_models[0]"),
            Self::Provider => ("/providers/0", "providers[0]"),
            Self::Endpoint => ("/providers/0/endpoints/0", "providers[0].endpoints[0]"),
            Self::ProviderKey => (
                "/providers/0/endpoints/0/keys/0",
                "providers[0].endpoints[0].keys[0]",
            ),
            Self::Model => ("/providers/0/models/0", "providers[0].models[0]"),
            Self::User => ("/users/0", "users[0]"),
        }
    }
}

/// The two field names the document spells differently from the admin API.
const DOCUMENT_SPELLING: [(&str, &str); 2] = [
    ("provider_priority", "priority"),
    ("provider_model_aliases", "aliases"),
];

/// `field` (a path such as `provider_model_aliases[0].name`) as the document spells it.
fn document_field(field: &str) -> String {
    DOCUMENT_SPELLING
        .iter()
        .find_map(|(api, document)| {
            let rest = field.strip_prefix(api)?;
            (rest.is_empty() || rest.starts_with(['.', '['])).then(|| format!("{document}{rest}"))
        })
        .unwrap_or_else(|| field.to_owned())
}

/// One bad value: where it goes (the admin API's field name), the value, and a fragment the
/// shared message must contain.
#[rustfmt::skip]
fn cases() -> Vec<(Entity, &'static str, Value, &'static str)> {
    use Entity::{Endpoint, GlobalModel, Model, Provider, ProviderKey, User};
    let pricing = |tiers: Value| json!({ "tiers": tiers });
    vec![
        // Names: control characters and NUL, lengths.
        (Provider, "name", json!("bad\u{1}name"), "must not contain control characters"),
        (Provider, "name", json!("nul\u{0}"), "must not contain control characters"),
        (User, "username", json!("tab\tname"), "must not contain control characters"),
        (ProviderKey, "name", json!("k".repeat(256)), "must be at most 255 bytes"),
        (GlobalModel, "supported_capabilities", json!(["chat", "\u{1}"]), "must not contain control characters"),
        // Model names clients could not ask for (the resolver's rules).
        (GlobalModel, "name", json!("  "), "model name is empty"),
        (GlobalModel, "name", json!("g\u{7}"), "model name contains control characters"),
        (GlobalModel, "name", json!("g".repeat(101)), "must be at most 100 bytes"),
        (Model, "provider_model_name", json!("m".repeat(201)), "model name is longer than 200 bytes"),
        (ProviderKey, "allowed_models", json!(["ok", "bad\u{0}"]), "model name contains control characters"),
        // Upstream URLs and headers.
        (Endpoint, "base_url", json!("ftp://files.test"), "is not an http(s) URL"),
        (Endpoint, "base_url", json!("https://"), "is not an http(s) URL"),
        (Endpoint, "base_url", json!("mailto:ops@example.test"), "is not an http(s) URL"),
        (Endpoint, "base_url", json!("https://x.test/\u{0}"), "must not contain control characters"),
        (Endpoint, "headers", json!({"x org": "1"}), "is not an HTTP header name"),
        (Endpoint, "headers", json!({"x-org": "a\r\nb"}), "is not an HTTP header value"),
        // Integer bounds.
        (Endpoint, "timeout", json!(0), "0 is out of range 1..=3600"),
        (Endpoint, "timeout", json!(3601), "3601 is out of range 1..=3600"),
        (Endpoint, "max_retries", json!(11), "11 is out of range 0..=10"),
        (Provider, "provider_priority", json!(2_000_000), "2000000 is out of range -1000000..=1000000"),
        // Prices and multipliers: negative, huge (NaN and infinities: the next test).
        (Model, "price_per_request", json!(-1.0), "-1.0 is not a finite number in 0..=1000"),
        (GlobalModel, "default_price_per_request", json!(1e300), "1e300 is not a finite number in 0..=1000"),
        (ProviderKey, "rate_multiplier", json!(100.5), "100.5 is not a finite number in 0..=100"),
        // Pricing tiers.
        (GlobalModel, "default_tiered_pricing", pricing(json!([])), "invalid tiered pricing"),
        (GlobalModel, "default_tiered_pricing", pricing(json!([{"input_price_per_1m": -1, "output_price_per_1m": 1}])), "tier 0 field `input_price_per_1m`"),
        (Model, "tiered_pricing", pricing(json!([
            {"up_to": 20, "input_price_per_1m": 1, "output_price_per_1m": 1},
            {"up_to": 10, "input_price_per_1m": 1, "output_price_per_1m": 1},
            {"up_to": null, "input_price_per_1m": 1, "output_price_per_1m": 1}
        ])), "tier 1 field `up_to`"),
        (Model, "tiered_pricing", pricing(json!([{"input_price_per_1m": 1, "output_price_per_1m": 1e300}])), "tier 0 field `output_price_per_1m`"),
        (Model, "provider_model_aliases", json!([{"name": "a", "api_formats": ["GRPC"]}]), "unknown api format `GRPC`"),
        // Free-form JSON the database would refuse.
        (GlobalModel, "config", json!({"family": "f\u{0}"}), "must not contain a NUL character"),
        // Secrets.
        (ProviderKey, "api_key", json!(" "), "must be 1 to 4096 printable bytes"),
        // Users: e-mail and quota bounds.
        (User, "email", json!("not-an-email"), "is not an e-mail address"),
        (User, "email", json!("a b@example.test"), "is not an e-mail address"),
        (User, "quota_usd", json!(-1.0), "-1.0 is not a finite number in 0..=1000000000"),
        (User, "quota_usd", json!(2e9), "2000000000.0 is not a finite number in 0..=1000000000"),
    ]
}

/// A valid document with one row of every kind.
fn document() -> Value {
    json!({
        "global_models": [{"name": "doc-global", "default_tiered_pricing": {"tiers": [{"input_price_per_1m": 1, "output_price_per_1m": 2}]}}],
        "providers": [{"name": "doc-provider",
            "endpoints": [{"api_format": "OPENAI", "base_url": "https://doc.test/v1",
                "keys": [{"name": "doc-key", "api_key": "sk-doc"}]}],
            "models": [{"global_model": "doc-global", "provider_model_name": "doc-model"}]}],
        "users": [{"username": "doc-user", "email": "doc@example.test"}],
    })
}

/// What applying `document` refused: the entry and field, and the reason.
async fn refused(conn: &sea_orm::DatabaseConnection, document: Value) -> (String, String) {
    let file: CatalogFile = serde_json::from_value(document.clone()).unwrap();
    match apply_catalog(conn, &file, &SecretBox::default()).await {
        Err(CatalogError::Invalid { at, reason }) => (at, reason),
        other => panic!("{document}: expected a broken rule, got {other:?}"),
    }
}

db_test!(async fn both_doors_refuse_the_same_values_with_the_same_message(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "rules-root").await;
    let global = api.create("/api/admin/models/global", global_body("rules-global")).await;
    let parent = api.create("/api/admin/providers", json!({"name": "rules-parent"})).await;
    let parent = parent["id"].as_str().unwrap();
    let keyed = api.create("/api/admin/providers", json!({"name": "rules-keyed"})).await;
    let endpoint = api.create(&format!("/api/admin/providers/{}/endpoints", keyed["id"].as_str().unwrap()), json!({"api_format": "OPENAI", "base_url": "https://keyed.test/v1"})).await;
    let before = api.get("/api/admin/catalog").await.json();

    for (entity, field, value, fragment) in cases() {
        let (path, mut body) = match entity {
            Entity::GlobalModel => ("/api/admin/models/global".to_owned(), global_body("new-global")),
            Entity::Provider => ("/api/admin/providers".to_owned(), json!({"name": "new-provider"})),
            Entity::Endpoint => (format!("/api/admin/providers/{parent}/endpoints"), json!({"api_format": "CLAUDE", "base_url": "https://new.test"})),
            Entity::ProviderKey => (format!("/api/admin/endpoints/{}/keys", endpoint["id"].as_str().unwrap()), json!({"name": "new-key", "api_key": "sk-new"})),
            Entity::Model => (format!("/api/admin/providers/{parent}/models"), json!({"global_model_id": global["id"], "provider_model_name": "new-model"})),
            Entity::User => ("/api/admin/users".to_owned(), json!({"username": "new-user", "email": "new@example.test"})),
        };
        body[field] = value.clone();
        let what = format!("{entity:?}.{field} = {value}");
        let answer = call(&gw, Method::POST, &path, Some(&api.key), Some(body.to_string())).await;
        assert_eq!(answer.status.as_u16(), 422, "{what}: {}", answer.text());
        let error = answer.json()["error"].clone();
        let api_field = error["field"].as_str().unwrap_or_default().to_owned();
        let api_message = error["message"].as_str().unwrap_or_default().to_owned();
        assert!(api_field.starts_with(field), "{what}: the API names `{api_field}`");

        let (pointer, entry) = entity.entry();
        let mut doc = document();
        doc.pointer_mut(pointer).unwrap()[document_field(field)] = value;
        let (at, reason) = refused(&db.conn, doc).await;
        assert_eq!(at, format!("{entry}.{}", document_field(&api_field)), "{what}: the document names the same field");
        assert!(reason.contains(fragment), "{what}: `{reason}` lacks `{fragment}`");
        assert_eq!(api_message, format!("{api_field}: {reason}"), "{what}: the same message at both doors");
    }
    assert_eq!(api.get("/api/admin/catalog").await.json(), before, "nothing refused was written");
});

db_test!(async fn non_finite_amounts_only_a_document_can_spell_break_the_same_rules(db) {
    // TOML spells `nan` and `inf`; JSON cannot, so the admin API's parser refuses them first.
    let gw = gateway(&db.conn);
    let root = admin(&db.conn, "rules-root").await;
    let raw = r#"{"username": "u", "email": "u@example.test", "quota_usd": NaN}"#;
    let answer = call(&gw, Method::POST, "/api/admin/users", Some(&root.key), Some(raw.to_owned())).await;
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.text());

    type Edit = fn(&mut CatalogFile, f64);
    type Rule = fn(f64) -> Invalid;
    let cases: [(Edit, &str, Rule); 4] = [
        (|file, value| file.users[0].quota_usd = Some(value), "users[0].quota_usd",
            |value| rules::USER_USD.check("quota_usd", value).unwrap_err()),
        (|file, value| file.providers[0].models[0].price_per_request = Some(value), "providers[0].models[0].price_per_request",
            |value| rules::PRICE_PER_REQUEST.check("price_per_request", value).unwrap_err()),
        (|file, value| file.providers[0].endpoints[0].keys[0].rate_multiplier = value, "providers[0].endpoints[0].keys[0].rate_multiplier",
            |value| rules::RATE_MULTIPLIER.check("rate_multiplier", value).unwrap_err()),
        (|file, value| file.global_models[0].default_tiered_pricing.tiers[0].input_price_per_1m = value,
            "global_models[0].default_tiered_pricing.tiers[0].input_price_per_1m",
            |value| {
                let mut pricing: tollgate_entities::TieredPricing = serde_json::from_value(json!({"tiers": [{"input_price_per_1m": 1, "output_price_per_1m": 2}]})).unwrap();
                pricing.tiers[0].input_price_per_1m = value;
                rules::pricing("default_tiered_pricing", &pricing).unwrap_err()
            }),
    ];
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for (edit, expected_at, rule) in cases {
            let mut file: CatalogFile = serde_json::from_value(document()).unwrap();
            edit(&mut file, value);
            let error = apply_catalog(&db.conn, &file, &SecretBox::default()).await.unwrap_err();
            let CatalogError::Invalid { at, reason } = error else { panic!("{expected_at}: {error}") };
            assert_eq!(at, expected_at);
            assert_eq!(reason, rule(value).reason, "{at} = {value}: the rule's own message");
        }
    }
});
