//! Admin API CRUD for every resource, with validation, conflicts, unknown ids and
//! authorisation, on SQLite and PostgreSQL.

use axum::http::Method;
use sea_orm::EntityTrait;
use serde_json::json;
use tollgate_entities::provider_api_keys;
use tollgate_testkit::db_test;

use crate::admin_support::{Session, admin, assert_error, call, global_body};
use crate::gateway_support::{UPSTREAM_SECRET, client, gateway};

db_test!(async fn admin_routes_need_an_admin_key(db) {
    let gw = gateway(&db.conn);
    let user = client(&db.conn, "plain-user").await;
    for (method, path) in [
        (Method::GET, "/api/admin/providers"),
        (Method::GET, "/api/admin/models/global"),
        (Method::GET, "/api/admin/users"),
        (Method::GET, "/api/admin/catalog"),
        (Method::GET, "/api/admin/resolve?model=x"),
        (Method::DELETE, "/api/admin/cache/model-mapping"),
    ] {
        let none = call(&gw, method.clone(), path, None, None).await;
        assert_error(&none, 401, "");
        let wrong = call(&gw, method.clone(), path, Some("tg-not-a-key"), None).await;
        assert_error(&wrong, 401, "invalid client key");
        let forbidden = call(&gw, method, path, Some(&user.key), None).await;
        assert_error(&forbidden, 403, "not an admin");
    }
});

db_test!(async fn providers_crud(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "root").await;

    let created = api.create("/api/admin/providers", json!({"name": "acme", "provider_priority": 5})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "acme");
    assert_eq!(created["display_name"], "acme");
    assert_eq!(created["billing_type"], "pay_as_you_go");
    assert_eq!(created["provider_priority"], 5);
    assert!(created["created_at"].as_str().unwrap().contains('T'), "RFC 3339 timestamps");

    assert_eq!(api.get(&format!("/api/admin/providers/{id}")).await.json()["name"], "acme");
    assert_eq!(api.get("/api/admin/providers").await.json().as_array().unwrap().len(), 1);

    let patched = api.patch(&format!("/api/admin/providers/{id}"), json!({"billing_type": "free_tier", "config": {"a": 1}})).await;
    assert_eq!(patched.status.as_u16(), 200, "{}", patched.text());
    assert_eq!(patched.json()["billing_type"], "free_tier");
    assert_eq!(patched.json()["provider_priority"], 5, "absent fields are kept");
    let cleared = api.patch(&format!("/api/admin/providers/{id}"), json!({"config": null})).await;
    assert_eq!(cleared.json()["config"], serde_json::Value::Null);

    assert_error(&api.post("/api/admin/providers", json!({"name": "acme"})).await, 409, "acme");
    assert_error(&api.post("/api/admin/providers", json!({"name": "x", "colour": "red"})).await, 422, "colour");
    assert_error(&api.post("/api/admin/providers", json!({"name": 7})).await, 422, "name");
    assert_error(&api.post("/api/admin/providers", json!({"name": "y", "provider_priority": "high"})).await, 422, "provider_priority");
    assert_error(&api.post("/api/admin/providers", json!({"name": "  "})).await, 422, "name");
    assert_error(&api.post("/api/admin/providers", json!({"name": "z", "billing_type": "barter"})).await, 422, "billing_type");
    let malformed = call(&gw, Method::POST, "/api/admin/providers", Some(&api.key), Some("{\"name\": ".to_owned())).await;
    assert_error(&malformed, 400, "malformed JSON");
    assert_error(&api.get("/api/admin/providers/no-such-id").await, 404, "no-such-id");
    assert_error(&api.patch("/api/admin/providers/no-such-id", json!({"name": "n"})).await, 404, "no-such-id");

    let other = api.create("/api/admin/providers", json!({"name": "other"})).await;
    assert_error(&api.patch(&format!("/api/admin/providers/{}", other["id"].as_str().unwrap()), json!({"name": "acme"})).await, 409, "acme");

    assert_eq!(api.delete(&format!("/api/admin/providers/{id}")).await.status.as_u16(), 204);
    assert_error(&api.get(&format!("/api/admin/providers/{id}")).await, 404, &id);
    assert_error(&api.delete(&format!("/api/admin/providers/{id}")).await, 404, &id);
});

db_test!(async fn endpoints_and_keys_crud_with_write_only_secrets(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "root").await;
    let provider = api.create("/api/admin/providers", json!({"name": "acme"})).await;
    let pid = provider["id"].as_str().unwrap();

    let endpoint = api
        .create(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "OPENAI", "base_url": "https://api.acme.test/v1/", "headers": {"x-org": "7"}}))
        .await;
    let eid = endpoint["id"].as_str().unwrap();
    assert_eq!(endpoint["base_url"], "https://api.acme.test/v1");
    assert_eq!(endpoint["timeout"], 300);
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "OPENAI", "base_url": "https://x.test/v1"})).await, 409, "OPENAI");
    // A duplicate is named first, even when its fields are bad too.
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "OPENAI", "base_url": "not a url", "timeout": 0})).await, 409, "OPENAI");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "CLAUDE", "base_url": "not a url"})).await, 422, "base_url");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "GRPC", "base_url": "https://x.test"})).await, 422, "api_format");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "CLAUDE", "base_url": "https://x.test", "timeout": 0})).await, 422, "timeout");
    assert_error(&api.post("/api/admin/providers/nope/endpoints", json!({"api_format": "CLAUDE", "base_url": "https://x.test"})).await, 404, "nope");
    let patched = api.patch(&format!("/api/admin/endpoints/{eid}"), json!({"timeout": 30, "headers": null})).await;
    assert_eq!(patched.json()["timeout"], 30, "{}", patched.text());
    assert_eq!(patched.json()["headers"], serde_json::Value::Null);
    assert_eq!(api.get(&format!("/api/admin/providers/{pid}/endpoints")).await.json().as_array().unwrap().len(), 1);

    let key = api
        .create(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "main", "api_key": UPSTREAM_SECRET, "rate_multiplier": 0.0, "allowed_models": ["m1"]}))
        .await;
    let kid = key["id"].as_str().unwrap();
    assert_eq!(key["rate_multiplier"], 0.0);
    assert_eq!(key["allowed_models"], json!(["m1"]));
    assert!(key.get("api_key").is_none());
    assert!(key["api_key_masked"].as_str().unwrap().starts_with("sk-"));
    let listed = api.get(&format!("/api/admin/endpoints/{eid}/keys")).await;
    assert!(!listed.text().contains(UPSTREAM_SECRET), "secret leaked: {}", listed.text());
    assert_error(&api.post(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "bad", "api_key": "k", "rate_multiplier": -1})).await, 422, "rate_multiplier");
    assert_error(&api.post(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "bad", "api_key": ""})).await, 422, "api_key");

    let rotated = api.patch(&format!("/api/admin/provider-keys/{kid}"), json!({"api_key": "sk-rotated-0123456789", "allowed_models": null})).await;
    assert_eq!(rotated.status.as_u16(), 200, "{}", rotated.text());
    assert!(!rotated.text().contains("sk-rotated-0123456789"));
    assert_eq!(rotated.json()["allowed_models"], serde_json::Value::Null);
    let stored = provider_api_keys::Entity::find_by_id(kid.to_owned()).one(&db.conn).await.unwrap().unwrap();
    assert_eq!(stored.api_key, "sk-rotated-0123456789", "without an encryption key secrets are stored as given");

    assert_eq!(api.delete(&format!("/api/admin/provider-keys/{kid}")).await.status.as_u16(), 204);
    assert_error(&api.patch(&format!("/api/admin/provider-keys/{kid}"), json!({"name": "n"})).await, 404, kid);
    assert_eq!(api.delete(&format!("/api/admin/endpoints/{eid}")).await.status.as_u16(), 204);
    assert_error(&api.patch(&format!("/api/admin/endpoints/{eid}"), json!({"timeout": 5})).await, 404, eid);
});

db_test!(async fn global_models_and_models_crud(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "root").await;

    let global = api.create("/api/admin/models/global", global_body("gpt-test")).await;
    let gid = global["id"].as_str().unwrap();
    assert_eq!(global["default_tiered_pricing"]["tiers"][0]["up_to"], serde_json::Value::Null);
    assert_error(&api.post("/api/admin/models/global", global_body("gpt-test")).await, 409, "gpt-test");
    let bad_pricing = json!({"name": "bad", "default_tiered_pricing": {"tiers": [
        {"up_to": 1000, "input_price_per_1m": 1.0, "output_price_per_1m": 1.0},
        {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": -3.0}
    ]}});
    let answer = api.post("/api/admin/models/global", bad_pricing).await;
    assert_error(&answer, 422, "tier 1");
    assert_error(&answer, 422, "output_price_per_1m");
    let unordered = json!({"name": "bad2", "default_tiered_pricing": {"tiers": [
        {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 1.0},
        {"up_to": 5, "input_price_per_1m": 1.0, "output_price_per_1m": 1.0}
    ]}});
    assert_error(&api.post("/api/admin/models/global", unordered).await, 422, "up_to");
    assert_error(&api.post("/api/admin/models/global", json!({"name": "nopricing"})).await, 422, "default_tiered_pricing");
    assert_error(&api.post("/api/admin/models/global", json!({"name": "bad\u{1}name", "default_tiered_pricing": {"tiers": [{"input_price_per_1m": 1.0, "output_price_per_1m": 1.0}]}})).await, 422, "name");

    let patched = api.patch(&format!("/api/admin/models/global/{gid}"), json!({"default_price_per_request": 0.0, "display_name": "GPT Test"})).await;
    assert_eq!(patched.json()["default_price_per_request"], 0.0, "{}", patched.text());
    let patched = api.patch(&format!("/api/admin/models/global/{gid}"), json!({"default_price_per_request": null})).await;
    assert_eq!(patched.json()["default_price_per_request"], serde_json::Value::Null);
    assert_eq!(api.get(&format!("/api/admin/models/global/{gid}")).await.json()["display_name"], "GPT Test");

    let provider = api.create("/api/admin/providers", json!({"name": "acme"})).await;
    let pid = provider["id"].as_str().unwrap();
    let model = api
        .create(&format!("/api/admin/providers/{pid}/models"), json!({
            "global_model_id": gid,
            "provider_model_name": "gpt-test-0613",
            "provider_model_aliases": [{"name": "gpt-test-alt", "priority": 2, "api_formats": ["OPENAI"]}],
            "price_per_request": 0.0,
        }))
        .await;
    let mid = model["id"].as_str().unwrap();
    assert_eq!(model["price_per_request"], 0.0);
    assert_eq!(model["tiered_pricing"], serde_json::Value::Null);
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": gid, "provider_model_name": "gpt-test-0613"})).await, 409, "gpt-test-0613");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": "nope", "provider_model_name": "x"})).await, 422, "global_model_id");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": gid, "provider_model_name": "y", "provider_model_aliases": [{"name": "a", "api_formats": ["SOAP"]}]})).await, 422, "api_formats");
    assert_error(&api.post(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": gid, "provider_model_name": "z", "tiered_pricing": {"tiers": []}})).await, 422, "tiered_pricing");
    let patched = api.patch(&format!("/api/admin/providers/{pid}/models/{mid}"), json!({"is_active": false, "supports_vision": true})).await;
    assert_eq!(patched.json()["is_active"], false, "{}", patched.text());
    assert_eq!(api.get(&format!("/api/admin/providers/{pid}/models")).await.json().as_array().unwrap().len(), 1);
    let other = api.create("/api/admin/providers", json!({"name": "other"})).await;
    assert_error(&api.get(&format!("/api/admin/providers/{}/models/{mid}", other["id"].as_str().unwrap())).await, 404, mid);
    assert_eq!(api.delete(&format!("/api/admin/providers/{pid}/models/{mid}")).await.status.as_u16(), 204);
    assert_eq!(api.delete(&format!("/api/admin/models/global/{gid}")).await.status.as_u16(), 204);
    assert_error(&api.get(&format!("/api/admin/models/global/{gid}")).await, 404, gid);
});

db_test!(async fn users_and_client_keys(db) {
    let gw = gateway(&db.conn);
    let admin = admin(&db.conn, "root").await;
    let api = Session { gateway: &gw, key: admin.key.clone() };

    let user = api.create("/api/admin/users", json!({"username": "ada", "email": "ada@example.test", "quota_usd": 0.0})).await;
    let uid = user["id"].as_str().unwrap();
    assert_eq!(user["role"], "user");
    assert_eq!(user["quota_usd"], 0.0);
    assert_error(&api.post("/api/admin/users", json!({"username": "ada", "email": "other@example.test"})).await, 409, "ada");
    assert_error(&api.post("/api/admin/users", json!({"username": "bob", "email": "ada@example.test"})).await, 409, "ada@example.test");
    assert_error(&api.post("/api/admin/users", json!({"username": "bob", "email": "not-an-email"})).await, 422, "email");
    assert_error(&api.post("/api/admin/users", json!({"username": "bob", "email": "b@x", "role": "root"})).await, 422, "role");
    assert_error(&api.post("/api/admin/users", json!({"username": "bob", "email": "b@x", "quota_usd": -5})).await, 422, "quota_usd");

    let created = api.create(&format!("/api/admin/users/{uid}/api-keys"), json!({"name": "laptop"})).await;
    let plaintext = created["key"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("tg-"));
    let models = call(&gw, Method::GET, "/v1/models", Some(&plaintext), None).await;
    assert_eq!(models.status.as_u16(), 200, "the new key works: {}", models.text());
    // The plaintext is never shown again.
    assert!(!api.get("/api/admin/users").await.text().contains(&plaintext));
    assert_error(&api.post(&format!("/api/admin/users/{uid}/api-keys"), json!({"name": "x", "expires_at": "tomorrow"})).await, 422, "expires_at");
    assert_error(&api.post("/api/admin/users/nope/api-keys", json!({"name": "x"})).await, 404, "nope");

    // Deactivating the user stops its key on the very next request (cached look-ups dropped).
    let patched = api.patch(&format!("/api/admin/users/{uid}"), json!({"is_active": false, "quota_usd": null})).await;
    assert_eq!(patched.json()["is_active"], false, "{}", patched.text());
    assert_eq!(patched.json()["quota_usd"], serde_json::Value::Null);
    let refused = call(&gw, Method::GET, "/v1/models", Some(&plaintext), None).await;
    assert_eq!(refused.status.as_u16(), 401);

    assert_error(&api.delete(&format!("/api/admin/users/{}", admin.user_id)).await, 409, "own user");
    assert_eq!(api.delete(&format!("/api/admin/users/{uid}")).await.status.as_u16(), 204);
    assert_error(&api.patch(&format!("/api/admin/users/{uid}"), json!({"is_active": true})).await, 404, uid);
});

db_test!(async fn resolve_explains_the_plan_and_flush_answers(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "root").await;
    let global = api.create("/api/admin/models/global", global_body("explained")).await;
    let gid = global["id"].as_str().unwrap();
    for (name, priority) in [("second", 20), ("first", 10)] {
        let provider = api.create("/api/admin/providers", json!({"name": name, "provider_priority": priority})).await;
        let pid = provider["id"].as_str().unwrap();
        let endpoint = api.create(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "OPENAI", "base_url": "https://up.test/v1"})).await;
        let eid = endpoint["id"].as_str().unwrap();
        api.create(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "k", "api_key": UPSTREAM_SECRET, "allowed_models": if name == "first" { json!(["someone-else"]) } else { json!(null) }})).await;
        api.create(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": gid, "provider_model_name": format!("explained-{name}")})).await;
    }
    let answer = api.get("/api/admin/resolve?model=%20explained-second%20").await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    assert!(!answer.text().contains(UPSTREAM_SECRET));
    let body = answer.json();
    assert_eq!(body["resolved"]["global_model"], "explained");
    assert_eq!(body["resolved"]["method"], "provider_model_name");
    assert_eq!(body["resolved"]["cache_tier"], "loader");
    assert_eq!(body["resolution_order"], "provider_name_first");
    let candidates = body["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    assert_eq!(candidates[0]["provider"], "first");
    assert_eq!(candidates[0]["usable"], false);
    assert_eq!(candidates[0]["skip_reason"], "model_not_allowed");
    assert_eq!(candidates[1]["provider"], "second");
    assert_eq!(candidates[1]["usable"], true);
    assert_eq!(candidates[1]["upstream_model_name"], "explained-second");
    let again = api.get("/api/admin/resolve?model=explained-second").await.json();
    assert_eq!(again["resolved"]["cache_tier"], "l1");
    let claude = api.get("/api/admin/resolve?model=explained&api_format=CLAUDE").await.json();
    assert!(claude["candidates"].as_array().unwrap().iter().all(|c| c["skip_reason"] == "no_endpoint_for_format"));
    assert_eq!(api.get("/api/admin/resolve?model=unknown-model").await.json()["resolved"], serde_json::Value::Null);
    assert_error(&api.get(&format!("/api/admin/resolve?model={}", "x".repeat(300))).await, 400, "200 bytes");
    assert_error(&api.get("/api/admin/resolve?model=x&api_format=SOAP").await, 400, "api_format");
    assert_error(&api.get("/api/admin/resolve").await, 400, "model");

    let flushed = api.delete("/api/admin/cache/model-mapping").await;
    assert_eq!(flushed.status.as_u16(), 200, "{}", flushed.text());
    let after = api.get("/api/admin/resolve?model=explained-second").await.json();
    assert_eq!(after["resolved"]["cache_tier"], "loader", "the flush emptied the cache");
});

db_test!(async fn upstream_secrets_are_encrypted_at_rest_when_a_key_is_configured(db) {
    use tollgate_entities::ApiFormat;
    use tollgate_catalogue::SecretBox;
    use tollgate_server::mock::MockUpstream;

    use crate::gateway_support::{chat, request, send};

    let secrets = SecretBox::new(Some("a passphrase of some length"));
    let gw = tollgate_server::Gateway::builder(db.conn.clone()).secrets(secrets.clone()).build().unwrap();
    let api = Session::admin(&gw, &db.conn, "root").await;
    let upstream = MockUpstream::start().await.unwrap();

    let g = api.create("/api/admin/models/global", global_body("sealed-model")).await;
    let p = api.create("/api/admin/providers", json!({"name": "sealed"})).await;
    let pid = p["id"].as_str().unwrap();
    let e = api.create(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": "OPENAI", "base_url": upstream.openai_base_url()})).await;
    let k = api.create(&format!("/api/admin/endpoints/{}/keys", e["id"].as_str().unwrap()), json!({"name": "k", "api_key": UPSTREAM_SECRET})).await;
    api.create(&format!("/api/admin/providers/{pid}/models"), json!({"global_model_id": g["id"], "provider_model_name": "sealed-up"})).await;
    assert_eq!(k["api_key_masked"], crate::admin_support::masked(UPSTREAM_SECRET));

    let stored = provider_api_keys::Entity::find_by_id(k["id"].as_str().unwrap().to_owned()).one(&db.conn).await.unwrap().unwrap();
    assert!(stored.api_key.starts_with("enc:v1:"), "stored as {}", stored.api_key);
    assert!(!stored.api_key.contains(UPSTREAM_SECRET));

    // Requests still reach the upstream with the plaintext credential.
    let user = crate::gateway_support::client(&db.conn, "caller").await;
    let answer = send(&gw, request(ApiFormat::OpenAi, Some(&user.key), chat("sealed-model", false))).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let seen = upstream.requests();
    assert_eq!(seen.last().unwrap().header("authorization"), Some(format!("Bearer {UPSTREAM_SECRET}").as_str()));

    // A gateway with another passphrase cannot use the key: the attempt fails, no secret leaks.
    let wrong = tollgate_server::Gateway::builder(db.conn.clone()).secrets(SecretBox::new(Some("another passphrase entirely"))).build().unwrap();
    let refused = send(&wrong, request(ApiFormat::OpenAi, Some(&user.key), chat("sealed-model", false))).await;
    assert!(refused.status.is_server_error(), "{}", refused.text());
    assert!(!refused.text().contains("enc:v1:"));
    assert_eq!(upstream.requests().len(), seen.len(), "no request went out without a credential");
});
