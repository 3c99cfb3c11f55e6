//! Hostile admin input on SQLite and PostgreSQL: out-of-range prices, multipliers and quotas
//! are 422 naming the field (admin API and catalogue file), ids that cannot be ids are 404 on
//! every id route, and property tests throw arbitrary JSON at every POST, PATCH and PUT route
//! and arbitrary ids at every id route: never a 5xx, never a panic, and the data stored
//! before is unchanged. Also: a deleted user's cached key stops working at once.

use axum::http::Method;
use proptest::collection::vec;
use proptest::strategy::{BoxedStrategy, Just, Strategy};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tollgate_catalogue::{CatalogError, CatalogFile, SecretBox, apply_catalog};
use tollgate_server::Gateway;
use tollgate_testkit::{Backend, TestDb, db_test};

use crate::admin_support::{Session, admin, call, global_body};
use crate::gateway_support::{Answer, UPSTREAM_SECRET, gateway};

/// The message of a 422 that the database produced because validation let a value through:
/// the property tests fail on it, so every gap shows up as a finding.
const DATA_ERROR_MESSAGE: &str = "a value does not fit its column";

/// A catalogue made through the API: one row of every kind.
struct Catalogue {
    global: String,
    global_name: String,
    provider: String,
    endpoint: String,
    key: String,
    model: String,
    user: String,
}

async fn catalogue(api: &Session<'_>, tag: &str) -> Catalogue {
    let global_name = format!("{tag}-global");
    let global = api
        .create("/api/admin/models/global", global_body(&global_name))
        .await;
    let global = global["id"].as_str().unwrap().to_owned();
    let provider = api
        .create(
            "/api/admin/providers",
            json!({"name": format!("{tag}-provider")}),
        )
        .await;
    let provider = provider["id"].as_str().unwrap().to_owned();
    let endpoint = api
        .create(
            &format!("/api/admin/providers/{provider}/endpoints"),
            json!({"api_format": "OPENAI", "base_url": "https://up.test/v1", "headers": {"x-org": "7"}}),
        )
        .await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let key = api
        .create(
            &format!("/api/admin/endpoints/{endpoint}/keys"),
            json!({"name": "k", "api_key": UPSTREAM_SECRET, "rate_multiplier": 0.0}),
        )
        .await;
    let key = key["id"].as_str().unwrap().to_owned();
    let model = api
        .create(
            &format!("/api/admin/providers/{provider}/models"),
            json!({"global_model_id": global, "provider_model_name": format!("{tag}-upstream"), "price_per_request": 0.5}),
        )
        .await;
    let model = model["id"].as_str().unwrap().to_owned();
    let user = api
        .create(
            "/api/admin/users",
            json!({"username": format!("{tag}-user"), "email": format!("{tag}@example.test"), "quota_usd": 10.0}),
        )
        .await;
    let user = user["id"].as_str().unwrap().to_owned();
    Catalogue {
        global,
        global_name,
        provider,
        endpoint,
        key,
        model,
        user,
    }
}

/// Everything the admin API shows about `c`'s rows.
async fn snapshot(api: &Session<'_>, c: &Catalogue) -> Vec<Value> {
    let mut views = Vec::new();
    for path in [
        format!("/api/admin/providers/{}", c.provider),
        format!("/api/admin/providers/{}/endpoints", c.provider),
        format!("/api/admin/endpoints/{}/keys", c.endpoint),
        format!("/api/admin/models/global/{}", c.global),
        format!("/api/admin/providers/{}/models/{}", c.provider, c.model),
        format!("/api/dashboard/users/{}/daily-stats?days=1", c.user),
    ] {
        let answer = api.get(&path).await;
        assert_eq!(answer.status.as_u16(), 200, "GET {path}: {}", answer.text());
        views.push(answer.json());
    }
    views
}

/// [`snapshot`] plus every list: no row was added or removed either.
async fn full_snapshot(api: &Session<'_>, c: &Catalogue) -> Vec<Value> {
    let mut views = snapshot(api, c).await;
    for path in [
        "/api/admin/providers",
        "/api/admin/models/global",
        "/api/admin/users",
        "/api/admin/catalog",
    ] {
        views.push(api.get(path).await.json());
    }
    views
}

/// A raw-text request (bodies such as `1e400` cannot be built as a `serde_json::Value`).
async fn raw(api: &Session<'_>, method: Method, path: &str, body: &str) -> Answer {
    call(
        api.gateway,
        method,
        path,
        Some(&api.key),
        Some(body.to_owned()),
    )
    .await
}

/// Asserts a 422 whose `field` contains `field` and whose message names it too.
fn assert_rejected(answer: &Answer, field: &str, what: &str) {
    assert_eq!(answer.status.as_u16(), 422, "{what}: {}", answer.text());
    let body = answer.json();
    let named = body["error"]["field"].as_str().unwrap_or_default();
    assert!(
        named.contains(field),
        "{what}: field `{named}` does not name {field}: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(field),
        "{what}: message does not name {field}: {body}"
    );
}

const PRICE_FIELDS: [&str; 4] = [
    "input_price_per_1m",
    "output_price_per_1m",
    "cache_creation_price_per_1m",
    "cache_read_price_per_1m",
];

/// Pricing documents each breaking one rule, with the field the error must name.
fn bad_pricings() -> Vec<(String, &'static str)> {
    let mut cases = Vec::new();
    for field in PRICE_FIELDS {
        for value in ["100000.5", "1e300", "-1", "-0.0001", "1e400", "\"1\""] {
            let mut prices: Vec<String> = ["input_price_per_1m", "output_price_per_1m"]
                .into_iter()
                .filter(|other| *other != field)
                .map(|other| format!(r#""{other}": 1"#))
                .collect();
            prices.push(format!(r#""{field}": {value}"#));
            cases.push((
                format!(r#"{{"tiers": [{{{}}}]}}"#, prices.join(", ")),
                field,
            ));
        }
    }
    let tier = |up_to: &str| {
        format!(r#"{{"up_to": {up_to}, "input_price_per_1m": 1, "output_price_per_1m": 2}}"#)
    };
    for tiers in [
        vec![tier("0")],
        vec![tier("-5"), tier("null")],
        vec![tier("10"), tier("10"), tier("null")],
        vec![tier("20"), tier("10")],
        vec![tier("null"), tier("null")],
        vec![tier("null"), tier("5")],
        vec![tier("1.5")],
        vec![tier("1e400")],
        vec![tier("9223372036854775808")],
    ] {
        cases.push((format!(r#"{{"tiers": [{}]}}"#, tiers.join(", ")), "up_to"));
    }
    cases.push((r#"{"tiers": []}"#.to_owned(), "tiers"));
    cases
}

db_test!(async fn out_of_range_amounts_are_422_naming_the_field_on_create_and_patch(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "hostile-root").await;
    let c = catalogue(&api, "kept").await;
    let before = full_snapshot(&api, &c).await;
    let global_path = format!("/api/admin/models/global/{}", c.global);
    let models_path = format!("/api/admin/providers/{}/models", c.provider);
    let model_path = format!("{models_path}/{}", c.model);

    for (pricing, field) in bad_pricings() {
        let create = format!(r#"{{"name": "never-stored", "default_tiered_pricing": {pricing}}}"#);
        assert_rejected(&raw(&api, Method::POST, "/api/admin/models/global", &create).await, field, &create);
        let patch = format!(r#"{{"default_tiered_pricing": {pricing}}}"#);
        assert_rejected(&raw(&api, Method::PATCH, &global_path, &patch).await, field, &patch);
        let create = format!(r#"{{"global_model_id": "{}", "provider_model_name": "never-stored", "tiered_pricing": {pricing}}}"#, c.global);
        assert_rejected(&raw(&api, Method::POST, &models_path, &create).await, field, &create);
        let patch = format!(r#"{{"tiered_pricing": {pricing}}}"#);
        assert_rejected(&raw(&api, Method::PATCH, &model_path, &patch).await, field, &patch);
    }
    // The pricing error names the document, the tier and the field.
    let answer = raw(&api, Method::PATCH, &global_path, r#"{"default_tiered_pricing": {"tiers": [{"up_to": 10, "input_price_per_1m": 1, "output_price_per_1m": 1}, {"input_price_per_1m": 1, "output_price_per_1m": 1e300}]}}"#).await;
    assert_rejected(&answer, "default_tiered_pricing.tiers[1].output_price_per_1m", "tier path");
    assert!(answer.text().contains("1e300"), "the value is named: {}", answer.text());

    let amounts: [(&str, &[&str]); 4] = [
        ("price_per_request", &["1000.5", "1e300", "-0.01", "1e400", "-1e400"]),
        ("rate_multiplier", &["100.5", "1e300", "-1", "1e400"]),
        ("quota_usd", &["1000000000.5", "1e300", "-1", "1e400"]),
        ("used_usd", &["1000000000.5", "1e300", "-1", "1e400"]),
    ];
    for (field, values) in amounts {
        for value in values {
            let cases: Vec<(Method, String, String, &str)> = match field {
                "price_per_request" => vec![
                    (Method::POST, "/api/admin/models/global".to_owned(), format!(r#"{{"name": "never-stored", "default_tiered_pricing": {{"tiers": [{{"input_price_per_1m": 1, "output_price_per_1m": 1}}]}}, "default_price_per_request": {value}}}"#), "default_price_per_request"),
                    (Method::PATCH, global_path.clone(), format!(r#"{{"default_price_per_request": {value}}}"#), "default_price_per_request"),
                    (Method::POST, models_path.clone(), format!(r#"{{"global_model_id": "{}", "provider_model_name": "never-stored", "price_per_request": {value}}}"#, c.global), "price_per_request"),
                    (Method::PATCH, model_path.clone(), format!(r#"{{"price_per_request": {value}}}"#), "price_per_request"),
                ],
                "rate_multiplier" => vec![
                    (Method::POST, format!("/api/admin/endpoints/{}/keys", c.endpoint), format!(r#"{{"name": "never-stored", "api_key": "sk-x", "rate_multiplier": {value}}}"#), field),
                    (Method::PATCH, format!("/api/admin/provider-keys/{}", c.key), format!(r#"{{"rate_multiplier": {value}}}"#), field),
                ],
                "quota_usd" => vec![
                    (Method::POST, "/api/admin/users".to_owned(), format!(r#"{{"username": "never-stored", "email": "n@x.test", "quota_usd": {value}}}"#), field),
                    (Method::PATCH, format!("/api/admin/users/{}", c.user), format!(r#"{{"quota_usd": {value}}}"#), field),
                ],
                _ => vec![(Method::PATCH, format!("/api/admin/users/{}", c.user), format!(r#"{{"used_usd": {value}}}"#), field)],
            };
            for (method, path, body, named) in cases {
                assert_rejected(&raw(&api, method.clone(), &path, &body).await, named, &format!("{method} {path} {body}"));
            }
        }
    }
    // Integer fields: out of range, fractional and beyond i32 are 422 too.
    for (method, path, field, value) in [
        (Method::PATCH, format!("/api/admin/providers/{}", c.provider), "provider_priority", "2147483648"),
        (Method::PATCH, format!("/api/admin/providers/{}", c.provider), "provider_priority", "1000001"),
        (Method::PATCH, format!("/api/admin/endpoints/{}", c.endpoint), "timeout", "3601"),
        (Method::PATCH, format!("/api/admin/endpoints/{}", c.endpoint), "max_retries", "1e400"),
        (Method::PATCH, format!("/api/admin/provider-keys/{}", c.key), "internal_priority", "-1000001"),
        (Method::PATCH, format!("/api/admin/provider-keys/{}", c.key), "internal_priority", "0.5"),
    ] {
        let body = format!(r#"{{"{field}": {value}}}"#);
        assert_rejected(&raw(&api, method, &path, &body).await, field, &body);
    }
    // Strings the database would refuse are refused first, naming the field.
    for (method, path, body, field) in [
        (Method::PATCH, format!("/api/admin/providers/{}", c.provider), json!({"config": {"a": ["ok", "nul\u{0}"]}}), "config.a[1]"),
        (Method::PATCH, format!("/api/admin/endpoints/{}", c.endpoint), json!({"base_url": format!("https://up.test/{}", "a".repeat(600))}), "base_url"),
        (Method::PATCH, format!("/api/admin/endpoints/{}", c.endpoint), json!({"headers": {"x-org": "a\r\nb"}}), "headers"),
        (Method::PATCH, global_path.clone(), json!({"config": {"family": "f\u{0}"}}), "config.family"),
        (Method::PATCH, model_path.clone(), json!({"global_model_id": "g\u{0}"}), "global_model_id"),
        (Method::POST, models_path.clone(), json!({"global_model_id": "x".repeat(40), "provider_model_name": "never-stored"}), "global_model_id"),
        (Method::PATCH, format!("/api/admin/users/{}", c.user), json!({"username": "nul\u{0}"}), "username"),
    ] {
        let text = body.to_string();
        assert_rejected(&raw(&api, method, &path, &text).await, field, &text);
    }

    assert_eq!(full_snapshot(&api, &c).await, before, "rejected writes changed nothing");

    // The bounds themselves are allowed, and a normal request still works.
    let at_bounds = json!({"name": "at-bounds", "default_price_per_request": 1000.0, "default_tiered_pricing": {"tiers": [
        {"up_to": 1000, "input_price_per_1m": 100000.0, "output_price_per_1m": 0.0, "cache_creation_price_per_1m": 100000.0, "cache_read_price_per_1m": 0.0},
        {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 100000.0}
    ]}});
    let created = api.create("/api/admin/models/global", at_bounds).await;
    assert_eq!(created["default_tiered_pricing"]["tiers"][0]["input_price_per_1m"], 100000.0);
    let key = api.create(&format!("/api/admin/endpoints/{}/keys", c.endpoint), json!({"name": "max", "api_key": "sk-max", "rate_multiplier": 100.0})).await;
    assert_eq!(key["rate_multiplier"], 100.0);
    let user = api.create("/api/admin/users", json!({"username": "rich", "email": "rich@x.test", "quota_usd": 1e9})).await;
    let patched = api.patch(&format!("/api/admin/users/{}", user["id"].as_str().unwrap()), json!({"used_usd": 1e9, "quota_usd": 0.0})).await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.text());
    assert_eq!(patched.json()["used_usd"], 1e9);
});

/// A catalogue document with one provider, endpoint, key and model, and one user; `edit`
/// breaks one value.
fn document(edit: impl FnOnce(&mut Value)) -> Value {
    let mut doc = json!({
        "global_models": [{"name": "cat-global", "default_tiered_pricing": {"tiers": [{"input_price_per_1m": 1, "output_price_per_1m": 2}]}}],
        "providers": [{"name": "cat-provider",
            "endpoints": [{"api_format": "OPENAI", "base_url": "https://cat.test/v1",
                "keys": [{"name": "k", "api_key": "sk-catalogue", "rate_multiplier": 1.0}]}],
            "models": [{"global_model": "cat-global", "provider_model_name": "cat-upstream", "price_per_request": 0.1}]}],
        "users": [{"username": "cat-user", "quota_usd": 5.0}],
    });
    edit(&mut doc);
    doc
}

db_test!(async fn out_of_range_catalogue_values_name_the_entry_and_field(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "hostile-root").await;
    let before = api.get("/api/admin/catalog").await.json();

    let cases: Vec<(Value, &str)> = vec![
        (document(|d| d["providers"][0]["endpoints"][0]["keys"][0]["rate_multiplier"] = json!(100.5)), "providers[0].endpoints[0].keys[0].rate_multiplier"),
        (document(|d| d["providers"][0]["endpoints"][0]["keys"][0]["rate_multiplier"] = json!(-1)), "providers[0].endpoints[0].keys[0].rate_multiplier"),
        (document(|d| d["providers"][0]["models"][0]["price_per_request"] = json!(1e300)), "providers[0].models[0].price_per_request"),
        (document(|d| d["providers"][0]["models"][0]["tiered_pricing"] = json!({"tiers": [{"input_price_per_1m": 1e6, "output_price_per_1m": 1}]})), "providers[0].models[0].tiered_pricing.tiers[0].input_price_per_1m"),
        (document(|d| d["global_models"][0]["default_tiered_pricing"] = json!({"tiers": [{"input_price_per_1m": 1, "output_price_per_1m": 1, "cache_read_price_per_1m": 100000.01}]})), "global_models[0].default_tiered_pricing.tiers[0].cache_read_price_per_1m"),
        (document(|d| d["global_models"][0]["default_tiered_pricing"] = json!({"tiers": [{"up_to": null, "input_price_per_1m": 1, "output_price_per_1m": 1}, {"up_to": 10, "input_price_per_1m": 1, "output_price_per_1m": 1}]})), "global_models[0].default_tiered_pricing.tiers[0].up_to"),
        (document(|d| d["global_models"][0]["default_price_per_request"] = json!(1000.01)), "global_models[0].default_price_per_request"),
        (document(|d| d["users"][0]["quota_usd"] = json!(2e9)), "users[0].quota_usd"),
        (document(|d| d["providers"][0]["priority"] = json!(2_000_000)), "providers[0].priority"),
        (document(|d| d["providers"][0]["endpoints"][0]["timeout"] = json!(0)), "providers[0].endpoints[0].timeout"),
        (document(|d| d["providers"][0]["endpoints"][0]["base_url"] = json!("https://cat.test/\u{0}")), "providers[0].endpoints[0].base_url"),
        (document(|d| d["providers"][0]["name"] = json!("p\u{0}")), "providers[0].name"),
        (document(|d| d["users"][0]["username"] = json!("u".repeat(101))), "users[0].username"),
        (document(|d| d["global_models"][0]["config"] = json!({"family": "\u{0}"})), "global_models[0].config.family"),
    ];
    for (doc, field) in cases {
        let answer = api.put("/api/admin/catalog", doc.clone()).await;
        assert_rejected(&answer, field, &doc.to_string());
    }
    let huge = document(|_| {}).to_string().replace("\"rate_multiplier\":1.0", "\"rate_multiplier\":1e400");
    assert!(huge.contains("1e400"), "{huge}");
    let answer = raw(&api, Method::PUT, "/api/admin/catalog", &huge).await;
    assert_rejected(&answer, "rate_multiplier", &huge);
    assert_eq!(api.get("/api/admin/catalog").await.json(), before, "a refused import wrote nothing");

    // The file loader applies the same rules; TOML can even spell inf and nan.
    let dir = std::env::temp_dir().join(format!("tollgate-hostile-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, at) in [
        ("inf.toml", "[[providers]]\nname = \"p\"\n[[providers.endpoints]]\napi_format = \"OPENAI\"\nbase_url = \"https://x.test/v1\"\n[[providers.endpoints.keys]]\nname = \"k\"\napi_key = \"sk-x\"\nrate_multiplier = inf\n", "providers[0].endpoints[0].keys[0].rate_multiplier"),
        ("nan.toml", "[[global_models]]\nname = \"g\"\ndefault_tiered_pricing = { tiers = [{ input_price_per_1m = nan, output_price_per_1m = 1.0 }] }\n", "global_models[0].default_tiered_pricing.tiers[0].input_price_per_1m"),
        ("huge.toml", "[[global_models]]\nname = \"g\"\ndefault_price_per_request = 1e300\ndefault_tiered_pricing = { tiers = [{ input_price_per_1m = 1.0, output_price_per_1m = 1.0 }] }\n", "global_models[0].default_price_per_request"),
        ("quota.json", r#"{"users": [{"username": "u", "quota_usd": -0.5}]}"#, "users[0].quota_usd"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let file = CatalogFile::load(&path).unwrap();
        let error = apply_catalog(&db.conn, &file, &SecretBox::default()).await.unwrap_err();
        assert!(matches!(&error, CatalogError::Invalid { at: found, .. } if found == at), "{name}: {error}");
        assert!(error.to_string().contains(&format!("catalogue entry {at} is invalid")), "{error}");
    }
    let path = dir.join("out-of-range.json");
    std::fs::write(&path, r#"{"users": [{"username": "u", "quota_usd": 1e400}]}"#).unwrap();
    let error = CatalogFile::load(&path).unwrap_err().to_string();
    assert!(error.contains("out-of-range.json") && error.contains("users[0].quota_usd"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(api.get("/api/admin/catalog").await.json(), before, "a refused file wrote nothing");
});

/// Every admin and dashboard route with path ids, each as (method, path, body), with `id`
/// in every id position in turn and `c`'s real ids elsewhere.
fn id_routes(c: &Catalogue, id: &str) -> Vec<(Method, String, Option<String>)> {
    let patch = Some("{}".to_owned());
    let mut routes = vec![
        (Method::GET, format!("/api/admin/providers/{id}"), None),
        (
            Method::PATCH,
            format!("/api/admin/providers/{id}"),
            patch.clone(),
        ),
        (Method::DELETE, format!("/api/admin/providers/{id}"), None),
        (
            Method::GET,
            format!("/api/admin/providers/{id}/endpoints"),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/providers/{id}/endpoints"),
            Some(r#"{"api_format": "CLAUDE", "base_url": "https://x.test"}"#.to_owned()),
        ),
        (
            Method::PATCH,
            format!("/api/admin/endpoints/{id}"),
            patch.clone(),
        ),
        (Method::DELETE, format!("/api/admin/endpoints/{id}"), None),
        (Method::GET, format!("/api/admin/endpoints/{id}/keys"), None),
        (
            Method::POST,
            format!("/api/admin/endpoints/{id}/keys"),
            Some(r#"{"name": "k2", "api_key": "sk-k2"}"#.to_owned()),
        ),
        (
            Method::PATCH,
            format!("/api/admin/provider-keys/{id}"),
            patch.clone(),
        ),
        (
            Method::DELETE,
            format!("/api/admin/provider-keys/{id}"),
            None,
        ),
        (Method::GET, format!("/api/admin/models/global/{id}"), None),
        (
            Method::PATCH,
            format!("/api/admin/models/global/{id}"),
            patch.clone(),
        ),
        (
            Method::DELETE,
            format!("/api/admin/models/global/{id}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/admin/providers/{id}/models"),
            None,
        ),
        (
            Method::POST,
            format!("/api/admin/providers/{id}/models"),
            Some(format!(
                r#"{{"global_model_id": "{}", "provider_model_name": "m2"}}"#,
                c.global
            )),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{id}"),
            patch.clone(),
        ),
        (Method::DELETE, format!("/api/admin/users/{id}"), None),
        (
            Method::POST,
            format!("/api/admin/users/{id}/api-keys"),
            Some(r#"{"name": "k2"}"#.to_owned()),
        ),
        (
            Method::GET,
            format!("/api/dashboard/users/{id}/daily-stats"),
            None,
        ),
    ];
    for (pid, mid) in [(id, c.model.as_str()), (c.provider.as_str(), id)] {
        let path = format!("/api/admin/providers/{pid}/models/{mid}");
        routes.push((Method::GET, path.clone(), None));
        routes.push((Method::PATCH, path.clone(), patch.clone()));
        routes.push((Method::DELETE, path, None));
    }
    routes
}

/// Path segments (already percent-encoded) that cannot be ids.
const HOSTILE_IDS: [&str; 18] = [
    "%00",
    "abc%00",
    "%00abc-0000-0000-0000-000000000000",
    "%01",
    "%0A",
    "%0D%0A",
    "%1B%5B31m",
    "%7F",
    "%C2%85",
    "%C3%A9",
    "%E2%80%AE",
    "%F0%9F%98%80",
    "%FF",
    "%C3%28",
    "%ED%A0%80",
    "a%2Fb",
    "..",
    "0123456789012345678901234567890123456",
];

/// Asserts a 404 (or 400) in the admin error shape.
fn assert_not_an_id(answer: &Answer, what: &str) {
    let status = answer.status.as_u16();
    assert!(
        status == 404 || status == 400,
        "{what}: {status} {}",
        answer.text()
    );
    let body = answer.json();
    assert!(
        body["error"]["code"].is_string(),
        "{what}: not the admin error shape: {body}"
    );
}

db_test!(async fn ids_that_cannot_be_ids_are_404_on_every_id_route(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "hostile-root").await;
    let c = catalogue(&api, "kept").await;
    let before = full_snapshot(&api, &c).await;
    let overlong = "x".repeat(300);
    for id in HOSTILE_IDS.iter().copied().chain([overlong.as_str()]) {
        for (method, path, body) in id_routes(&c, id) {
            let answer = call(&gw, method.clone(), &path, Some(&api.key), body).await;
            assert_not_an_id(&answer, &format!("{method} {path}"));
        }
    }
    let nul = api.get("/api/admin/providers/%00").await;
    assert_eq!(nul.status.as_u16(), 404, "{}", nul.text());
    assert_eq!(nul.json()["error"]["code"], "not_found");
    assert!(nul.text().contains("\\\\0"), "the id is named, escaped: {}", nul.text());
    // A well-formed id that names nothing is still the handler's own 404.
    assert!(api.get("/api/admin/providers/no-such-id").await.text().contains("provider `no-such-id` not found"));

    assert_eq!(full_snapshot(&api, &c).await, before);
    let renamed = api.patch(&format!("/api/admin/providers/{}", c.provider), json!({"display_name": "still works"})).await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.text());
});

db_test!(async fn a_deleted_users_cached_key_is_refused_on_the_next_request(db) {
    // The handler reads the keys, deletes, and only then drops the cached look-ups: dropping
    // them first would let a request in between cache the key again, alive for its TTL.
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "hostile-root").await;
    let user = api.create("/api/admin/users", json!({"username": "leaving", "email": "leaving@x.test"})).await;
    let uid = user["id"].as_str().unwrap();
    let key = api.create(&format!("/api/admin/users/{uid}/api-keys"), json!({"name": "laptop"})).await;
    let key = key["key"].as_str().unwrap();
    let cached = call(&gw, Method::GET, "/v1/models", Some(key), None).await;
    assert_eq!(cached.status.as_u16(), 200, "{}", cached.text());
    assert_eq!(api.delete(&format!("/api/admin/users/{uid}")).await.status.as_u16(), 204);
    let refused = call(&gw, Method::GET, "/v1/models", Some(key), None).await;
    assert_eq!(refused.status.as_u16(), 401, "{}", refused.text());
});

/// Runs `future` to completion from synchronous code inside the test's multi-threaded runtime
/// (proptest's runner takes a plain closure).
fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// Cases per route: enough to find the common gaps, few enough to keep the suite fast.
fn cases(db: &TestDb) -> u32 {
    match db.backend() {
        Backend::Sqlite => 64,
        Backend::Postgres => 16,
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// JSON text: generated as text so that numbers `serde_json::Value` cannot hold (`1e400`)
/// and malformed documents are part of the input.
type Json = BoxedStrategy<String>;

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// Strings with NUL, control characters, bidi overrides, emoji, quotes and long runs.
fn hostile_text() -> BoxedStrategy<String> {
    let chars = proptest::sample::select(vec![
        'a',
        'Z',
        '0',
        '-',
        '_',
        ' ',
        '@',
        '.',
        '\0',
        '\u{1}',
        '\t',
        '\n',
        '\r',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{a0}',
        '\u{200b}',
        '\u{202e}',
        '\u{feff}',
        'é',
        '字',
        '😀',
        '"',
        '\\',
        '/',
        '%',
        '=',
        ':',
        '\u{fffd}',
        '\u{10ffff}',
    ]);
    proptest::prop_oneof![
        4 => vec(chars, 0..24).prop_map(|chars| chars.into_iter().collect::<String>()),
        1 => (1_usize..700).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

fn hostile_string() -> Json {
    hostile_text().prop_map(|text| quoted(&text)).boxed()
}

/// Numbers around every bound, beyond f64 and i64, negative, fractional, tiny and huge; a
/// good part of them ordinary amounts that pass.
fn number() -> Json {
    proptest::prop_oneof![
        8 => (0.0_f64..1_000.0).prop_map(|f| f.to_string()),
        3 => proptest::sample::select(vec![
            "0", "-0", "0.0", "-0.0", "1", "-1", "0.5", "1e-400", "1e400", "-1e400", "1e308",
            "-1e308", "1.7976931348623157e308", "1e300", "1e9", "1000000000.5", "1000",
            "1000.0001", "100", "100.0001", "100000", "100000.0001", "3600", "3601", "10", "11",
            "1000000", "1000001", "2147483647", "2147483648", "-2147483649",
            "9223372036854775807", "9223372036854775808", "18446744073709551616",
            "99999999999999999999999999", "1E2", "5e-324",
        ])
        .prop_map(str::to_owned),
        2 => proptest::arbitrary::any::<i64>().prop_map(|n| n.to_string()),
        2 => proptest::arbitrary::any::<f64>().prop_map(|f| {
            serde_json::Number::from_f64(f).map_or_else(|| "1e999".to_owned(), |n| n.to_string())
        }),
        2 => (-10.0_f64..200_000.0).prop_map(|f| f.to_string()),
    ]
    .boxed()
}

fn object_text(fields: Vec<String>) -> String {
    format!("{{{}}}", fields.join(","))
}

/// Any JSON value, nested a few levels.
fn any_json() -> Json {
    let leaf = proptest::prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        hostile_string(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            vec((hostile_string(), inner), 0..4).prop_map(|fields| {
                object_text(
                    fields
                        .into_iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect(),
                )
            }),
        ]
    })
    .boxed()
}

/// What a field holds, for values plausible enough to pass the earlier checks.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Name,
    Url,
    Email,
    Secret,
    Bool,
    Number,
    Int,
    UpTo,
    MaybeNumber,
    Pricing,
    Object,
    Names,
    Aliases,
    Headers,
    Format,
    Formats,
    Billing,
    Role,
    GlobalId,
    GlobalName,
    Time,
    EnvName,
    Hash,
    List(&'static [Field]),
}

type Field = (&'static str, Kind);

fn one_of(values: &[&str]) -> Json {
    let values: Vec<String> = values.iter().map(|v| quoted(v)).collect();
    proptest::sample::select(values).boxed()
}

/// Integers: mostly around the integer fields' bounds, sometimes any number.
fn integer() -> Json {
    proptest::prop_oneof![
        4 => (-20_i64..400).prop_map(|n| n.to_string()),
        2 => proptest::sample::select(vec![
            -1_000_001_i64, -1_000_000, 1_000_000, 1_000_001, 3_600, 3_601, 2_147_483_647,
            2_147_483_648, -2_147_483_649, i64::MAX, i64::MIN,
        ])
        .prop_map(|n| n.to_string()),
        1 => number(),
    ]
    .boxed()
}

/// Whether a field holds only values of its own kind (`Typed`, hostile ones included) or,
/// one time in five, anything at all (`Junk`).
#[derive(Debug, Clone, Copy)]
enum Mode {
    Typed,
    Junk,
}

/// Mostly `valid`, one time in five `hostile`: enough valid values that many requests get
/// through every check and reach the database.
fn mostly(valid: Json, hostile: Json) -> Json {
    proptest::prop_oneof![4 => valid, 1 => hostile].boxed()
}

/// Keys of free-form objects: ordinary names, and sometimes hostile ones.
fn key() -> Json {
    mostly(
        "pt-[a-z]{1,6}".prop_map(|k| quoted(&k)).boxed(),
        hostile_string(),
    )
}

/// A value of `kind` (plausible or hostile), or in [`Mode::Junk`] sometimes any JSON.
fn value(kind: Kind, ids: &Ids, mode: Mode) -> Json {
    let array = |items: Json, len: std::ops::Range<usize>| {
        vec(items, len)
            .prop_map(|items| format!("[{}]", items.join(",")))
            .boxed()
    };
    let plausible: Json = match kind {
        Kind::Name => proptest::prop_oneof![
            12 => "pt-[a-z]{1,8}".prop_map(|name| quoted(&name)),
            // Valid but unusual: every byte length up to the limits, bidi, emoji.
            1 => (1_usize..300).prop_map(|n| quoted(&"é".repeat(n / 2 + 1))),
            1 => one_of(&["\u{202e}rtl", "😀 x", " pad ", "a/b", "x'; drop table users; --"]),
            1 => hostile_string(),
        ]
        .boxed(),
        Kind::Url => mostly(
            one_of(&[
                "https://x.test/v1",
                "http://127.0.0.1:9",
                "https://x.test/é?q=😀",
            ]),
            proptest::prop_oneof![
                one_of(&["ftp://x", "https://x.test/\u{0}", "https://", "x.test"]),
                (1_usize..700).prop_map(|n| quoted(&format!("https://x.test/{}", "a".repeat(n)))),
                hostile_string(),
            ]
            .boxed(),
        ),
        Kind::Email => mostly(
            "[a-z]{1,6}@x\\.test".prop_map(|e| quoted(&e)).boxed(),
            hostile_string(),
        ),
        Kind::Secret => mostly(
            "sk-[a-z0-9]{4,20}".prop_map(|s| quoted(&s)).boxed(),
            hostile_string(),
        ),
        Kind::Bool => {
            proptest::prop_oneof![Just("true".to_owned()), Just("false".to_owned())].boxed()
        }
        Kind::Number => number(),
        Kind::Int => integer(),
        Kind::UpTo => proptest::prop_oneof![
            2 => Just("null".to_owned()),
            2 => (1_i64..2_000_000).prop_map(|n| n.to_string()),
            1 => integer(),
        ]
        .boxed(),
        Kind::MaybeNumber => {
            proptest::prop_oneof![1 => Just("null".to_owned()), 3 => number()].boxed()
        }
        Kind::Pricing => object(TIERED_PRICING, ids, mode),
        Kind::Object => vec((key(), any_json()), 0..4)
            .prop_map(|fields| {
                object_text(
                    fields
                        .into_iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect(),
                )
            })
            .boxed(),
        Kind::Names => array(value(Kind::Name, ids, mode), 0..4),
        Kind::Aliases => array(object(ALIAS, ids, mode), 0..3),
        Kind::Headers => vec(
            (
                mostly(
                    one_of(&["x-org", "X-Ok"]),
                    proptest::prop_oneof![
                        one_of(&["x org", "bad:", "a\nb", "\u{0}", ""]),
                        hostile_string()
                    ]
                    .boxed(),
                ),
                mostly(
                    one_of(&["7", "a b"]),
                    proptest::prop_oneof![one_of(&["a\r\nb", "\u{0}", "é"]), hostile_string()]
                        .boxed(),
                ),
            ),
            0..3,
        )
        .prop_map(|fields| {
            object_text(
                fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect(),
            )
        })
        .boxed(),
        Kind::Formats => array(value(Kind::Format, ids, mode), 0..3),
        Kind::Format => mostly(
            one_of(&["OPENAI", "CLAUDE"]),
            proptest::prop_oneof![one_of(&["openai", "GRPC", ""]), hostile_string()].boxed(),
        ),
        Kind::Billing => mostly(
            one_of(&["pay_as_you_go", "free_tier", "monthly_quota"]),
            one_of(&["barter", ""]),
        ),
        Kind::Role => mostly(one_of(&["user", "admin"]), one_of(&["root", ""])),
        Kind::GlobalId => mostly(
            Just(quoted(&ids.global)).boxed(),
            proptest::prop_oneof![one_of(&["nope", "", "\u{0}"]), hostile_string()].boxed(),
        ),
        Kind::GlobalName => mostly(Just(quoted(&ids.global_name)).boxed(), hostile_string()),
        Kind::Time => mostly(
            one_of(&[
                "2030-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999Z",
                "0000-01-01T00:00:00Z",
                "1970-01-01T00:00:00+23:59",
            ]),
            one_of(&["2030-02-30T00:00:00Z", "tomorrow", "-0001-01-01T00:00:00Z"]),
        ),
        Kind::EnvName => mostly(
            one_of(&["PATH", "TOLLGATE_HOSTILE_NOT_SET"]),
            one_of(&["", "A=B", "a\u{0}b", "1X"]),
        ),
        Kind::Hash => mostly(
            "[0-9a-fA-F]{64}".prop_map(|h| quoted(&h)).boxed(),
            hostile_string(),
        ),
        Kind::List(fields) => match mode {
            Mode::Typed => array(object(fields, ids, mode), 1..3),
            Mode::Junk => array(object(fields, ids, mode), 0..3),
        },
    };
    match mode {
        Mode::Typed => plausible,
        Mode::Junk => proptest::prop_oneof![4 => plausible, 1 => any_json()].boxed(),
    }
}

/// An object with most of `fields` (each present 19 times in 20), in [`Mode::Junk`]
/// sometimes an unknown field too.
fn object(fields: &'static [Field], ids: &Ids, mode: Mode) -> Json {
    let members: Vec<BoxedStrategy<Option<String>>> = fields
        .iter()
        .map(|&(name, kind)| {
            proptest::option::weighted(0.95, value(kind, ids, mode))
                .prop_map(move |v| v.map(|v| format!("{}:{v}", quoted(name))))
                .boxed()
        })
        .collect();
    let unknown: BoxedStrategy<Option<(String, String)>> = match mode {
        Mode::Typed => Just(None).boxed(),
        Mode::Junk => proptest::option::weighted(0.2, (hostile_string(), any_json())).boxed(),
    };
    (members, unknown)
        .prop_map(|(members, unknown)| {
            let mut fields: Vec<String> = members.into_iter().flatten().collect();
            if let Some((k, v)) = unknown {
                fields.push(format!("{k}:{v}"));
            }
            object_text(fields)
        })
        .boxed()
}

/// A request body for a route taking `fields`: mostly objects of the right shape with
/// plausible or hostile values, then objects with junk in them, sometimes any JSON at all,
/// sometimes a document cut short.
fn body(fields: &'static [Field], ids: &Ids) -> Json {
    proptest::prop_oneof![
        8 => object(fields, ids, Mode::Typed),
        4 => object(fields, ids, Mode::Junk),
        1 => any_json(),
        1 => object(fields, ids, Mode::Junk).prop_map(|text| {
            let mut end = text.len() / 2;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        }),
    ]
    .boxed()
}

const TIER: &[Field] = &[
    ("up_to", Kind::UpTo),
    ("input_price_per_1m", Kind::Number),
    ("output_price_per_1m", Kind::Number),
    ("cache_creation_price_per_1m", Kind::MaybeNumber),
    ("cache_read_price_per_1m", Kind::MaybeNumber),
];
const TIERED_PRICING: &[Field] = &[("tiers", Kind::List(TIER))];
const ALIAS: &[Field] = &[
    ("name", Kind::Name),
    ("priority", Kind::Int),
    ("api_formats", Kind::Formats),
];
const PROVIDER: &[Field] = &[
    ("name", Kind::Name),
    ("display_name", Kind::Name),
    ("billing_type", Kind::Billing),
    ("provider_priority", Kind::Int),
    ("is_active", Kind::Bool),
    ("config", Kind::Object),
];
const ENDPOINT_UPDATE: &[Field] = &[
    ("base_url", Kind::Url),
    ("headers", Kind::Headers),
    ("timeout", Kind::Int),
    ("max_retries", Kind::Int),
    ("is_active", Kind::Bool),
];
const ENDPOINT: &[Field] = &[
    ("api_format", Kind::Format),
    ("base_url", Kind::Url),
    ("headers", Kind::Headers),
    ("timeout", Kind::Int),
    ("max_retries", Kind::Int),
    ("is_active", Kind::Bool),
];
const PROVIDER_KEY: &[Field] = &[
    ("api_key", Kind::Secret),
    ("name", Kind::Name),
    ("rate_multiplier", Kind::Number),
    ("internal_priority", Kind::Int),
    ("allowed_models", Kind::Names),
    ("is_active", Kind::Bool),
];
const GLOBAL_MODEL: &[Field] = &[
    ("name", Kind::Name),
    ("display_name", Kind::Name),
    ("default_tiered_pricing", Kind::Pricing),
    ("default_price_per_request", Kind::Number),
    ("supported_capabilities", Kind::Names),
    ("config", Kind::Object),
    ("is_active", Kind::Bool),
];
const MODEL: &[Field] = &[
    ("global_model_id", Kind::GlobalId),
    ("provider_model_name", Kind::Name),
    ("provider_model_aliases", Kind::Aliases),
    ("price_per_request", Kind::Number),
    ("tiered_pricing", Kind::Pricing),
    ("supports_vision", Kind::Bool),
    ("supports_function_calling", Kind::Bool),
    ("supports_streaming", Kind::Bool),
    ("supports_extended_thinking", Kind::Bool),
    ("supports_image_generation", Kind::Bool),
    ("is_active", Kind::Bool),
    ("is_available", Kind::Bool),
    ("config", Kind::Object),
];
const USER_CREATE: &[Field] = &[
    ("username", Kind::Name),
    ("email", Kind::Email),
    ("role", Kind::Role),
    ("is_active", Kind::Bool),
    ("quota_usd", Kind::Number),
];
const USER_UPDATE: &[Field] = &[
    ("username", Kind::Name),
    ("email", Kind::Email),
    ("role", Kind::Role),
    ("is_active", Kind::Bool),
    ("quota_usd", Kind::Number),
    ("used_usd", Kind::Number),
];
const CLIENT_KEY: &[Field] = &[("name", Kind::Name), ("expires_at", Kind::Time)];
const CATALOG_KEY: &[Field] = &[
    ("name", Kind::Name),
    ("api_key", Kind::Secret),
    ("api_key_env", Kind::EnvName),
    ("rate_multiplier", Kind::Number),
    ("internal_priority", Kind::Int),
    ("allowed_models", Kind::Names),
    ("is_active", Kind::Bool),
];
const CATALOG_ENDPOINT: &[Field] = &[
    ("api_format", Kind::Format),
    ("base_url", Kind::Url),
    ("headers", Kind::Headers),
    ("timeout", Kind::Int),
    ("max_retries", Kind::Int),
    ("is_active", Kind::Bool),
    ("keys", Kind::List(CATALOG_KEY)),
];
const CATALOG_MODEL: &[Field] = &[
    ("global_model", Kind::GlobalName),
    ("provider_model_name", Kind::Name),
    ("aliases", Kind::Aliases),
    ("tiered_pricing", Kind::Pricing),
    ("price_per_request", Kind::Number),
    ("is_active", Kind::Bool),
];
const CATALOG_PROVIDER: &[Field] = &[
    ("name", Kind::Name),
    ("display_name", Kind::Name),
    ("billing_type", Kind::Billing),
    ("priority", Kind::Int),
    ("is_active", Kind::Bool),
    ("endpoints", Kind::List(CATALOG_ENDPOINT)),
    ("models", Kind::List(CATALOG_MODEL)),
];
const CATALOG_CLIENT_KEY: &[Field] = &[
    ("name", Kind::Name),
    ("key", Kind::Secret),
    ("key_hash", Kind::Hash),
    ("expires_at", Kind::Time),
    ("is_active", Kind::Bool),
];
const CATALOG_USER: &[Field] = &[
    ("username", Kind::Name),
    ("email", Kind::Email),
    ("role", Kind::Role),
    ("is_active", Kind::Bool),
    ("quota_usd", Kind::Number),
    ("api_keys", Kind::List(CATALOG_CLIENT_KEY)),
];
const CATALOG: &[Field] = &[
    ("global_models", Kind::List(GLOBAL_MODEL)),
    ("providers", Kind::List(CATALOG_PROVIDER)),
    ("users", Kind::List(CATALOG_USER)),
];

/// The ids plausible values refer to.
struct Ids {
    global: String,
    global_name: String,
}

/// Sends `body` and checks the answer: below 500, and every error in the admin shape and
/// produced by validation (not by the database refusing a value).
fn check(
    gw: &Gateway,
    key: &str,
    method: &Method,
    path: &str,
    body: String,
) -> Result<(), TestCaseError> {
    let answer = block(call(
        gw,
        method.clone(),
        path,
        Some(key),
        Some(body.clone()),
    ));
    let status = answer.status.as_u16();
    proptest::prop_assert!(
        status < 500,
        "{method} {path} {body}\n=> {status} {}",
        answer.text()
    );
    if status >= 400 {
        let error: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            TestCaseError::fail(format!(
                "{method} {path} {body}\n=> {status} body is not JSON ({e}): {}",
                answer.text()
            ))
        })?;
        proptest::prop_assert!(
            error["error"]["code"].is_string(),
            "{method} {path} {body}\n=> {error}"
        );
        proptest::prop_assert_ne!(
            error["error"]["message"].as_str(),
            Some(DATA_ERROR_MESSAGE),
            "{} {} {}",
            method,
            path,
            body
        );
    }
    Ok(())
}

db_test!(async fn arbitrary_payloads_never_answer_5xx(db) {
    let gw = gateway(&db.conn);
    let root = admin(&db.conn, "hostile-root").await;
    let api = Session { gateway: &gw, key: root.key.clone() };
    let kept = catalogue(&api, "kept").await;
    let before = snapshot(&api, &kept).await;
    let target = catalogue(&api, "target").await;
    let ids = Ids { global: target.global.clone(), global_name: target.global_name.clone() };
    let routes: Vec<(Method, String, &'static [Field])> = vec![
        (Method::POST, "/api/admin/providers".to_owned(), PROVIDER),
        (Method::PATCH, format!("/api/admin/providers/{}", target.provider), PROVIDER),
        (Method::POST, format!("/api/admin/providers/{}/endpoints", target.provider), ENDPOINT),
        (Method::PATCH, format!("/api/admin/endpoints/{}", target.endpoint), ENDPOINT_UPDATE),
        (Method::POST, format!("/api/admin/endpoints/{}/keys", target.endpoint), PROVIDER_KEY),
        (Method::PATCH, format!("/api/admin/provider-keys/{}", target.key), PROVIDER_KEY),
        (Method::POST, "/api/admin/models/global".to_owned(), GLOBAL_MODEL),
        (Method::PATCH, format!("/api/admin/models/global/{}", target.global), GLOBAL_MODEL),
        (Method::POST, format!("/api/admin/providers/{}/models", target.provider), MODEL),
        (Method::PATCH, format!("/api/admin/providers/{}/models/{}", target.provider, target.model), MODEL),
        (Method::POST, "/api/admin/users".to_owned(), USER_CREATE),
        (Method::PATCH, format!("/api/admin/users/{}", target.user), USER_UPDATE),
        (Method::POST, format!("/api/admin/users/{}/api-keys", target.user), CLIENT_KEY),
        (Method::PUT, "/api/admin/catalog".to_owned(), CATALOG),
    ];
    for (method, path, fields) in &routes {
        let strategy = body(fields, &ids);
        runner(cases(db))
            .run(&strategy, |body| check(&gw, &root.key, method, path, body))
            .unwrap_or_else(|failure| panic!("{method} {path}: {failure}"));
    }

    assert_eq!(snapshot(&api, &kept).await, before, "the hostile payloads changed rows they did not target");
    let renamed = api.patch(&format!("/api/admin/providers/{}", kept.provider), json!({"display_name": "still works"})).await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.text());
    api.create("/api/admin/providers", json!({"name": "after-the-storm"})).await;
});

/// Any bytes as one path segment, percent-encoded except for unreserved characters.
fn path_segment() -> BoxedStrategy<String> {
    proptest::prop_oneof![
        vec(proptest::arbitrary::any::<u8>(), 1..80),
        hostile_text()
            .prop_filter("a segment is not empty", |t| !t.is_empty())
            .prop_map(String::into_bytes),
        "[0-9a-f-]{30,40}".prop_map(String::into_bytes),
    ]
    .prop_map(|bytes| {
        bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    })
    .boxed()
}

db_test!(async fn arbitrary_path_ids_never_answer_5xx(db) {
    let gw = gateway(&db.conn);
    let root = admin(&db.conn, "hostile-root").await;
    let api = Session { gateway: &gw, key: root.key.clone() };
    let c = catalogue(&api, "kept").await;
    let before = full_snapshot(&api, &c).await;
    let count = id_routes(&c, "x").len();
    let per_route = cases(db) / 2;
    for index in 0..count {
        runner(per_route)
            .run(&path_segment(), |segment| {
                let (method, path, body) = id_routes(&c, &segment).swap_remove(index);
                let answer = block(call(&gw, method.clone(), &path, Some(&root.key), body));
                let status = answer.status.as_u16();
                proptest::prop_assert!(status == 404 || status == 400, "{method} {path} => {status} {}", answer.text());
                let error: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                proptest::prop_assert!(error["error"]["code"].is_string(), "{method} {path} => {}", answer.text());
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("route {index}: {failure}"));
    }
    assert_eq!(full_snapshot(&api, &c).await, before);
    let renamed = api.patch(&format!("/api/admin/providers/{}", c.provider), json!({"display_name": "still works"})).await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.text());
});
