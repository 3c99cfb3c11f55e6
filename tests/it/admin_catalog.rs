//! Catalogue export, then import into an empty database, reproduces the same routing for
//! every model and exports the same bytes again; exports carry no secrets, which the import
//! supplies again.

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tollgate_entities::api_keys;
use tollgate_testkit::{TestDb, db_test};

use crate::admin_support::{Session, admin, global_body};
use crate::gateway_support::{UPSTREAM_SECRET, gateway};

/// The routing facts of a plan: what an operator would compare.
fn routing(explained: &Value) -> Value {
    json!({
        "resolved": explained["resolved"]["global_model"],
        "method": explained["resolved"]["method"],
        "candidates": explained["candidates"].as_array().map(|all| all.iter().map(|c| json!({
            "provider": c["provider"],
            "base_url": c["base_url"],
            "key_name": c["key_name"],
            "upstream_model_name": c["upstream_model_name"],
            "usable": c["usable"],
            "skip_reason": c["skip_reason"],
        })).collect::<Vec<_>>()),
    })
}

/// An exported document with every upstream key's secret given again, as an import needs.
fn give_upstream_secrets(document: &mut Value) {
    for provider in document["providers"].as_array_mut().unwrap() {
        for endpoint in provider["endpoints"].as_array_mut().unwrap() {
            for key in endpoint["keys"].as_array_mut().unwrap() {
                key["api_key"] = json!(UPSTREAM_SECRET);
            }
        }
    }
}

db_test!(async fn export_then_import_reproduces_routing(db) {
    let gw = gateway(&db.conn);
    let api = Session::admin(&gw, &db.conn, "root").await;

    let mut names = Vec::new();
    let mut globals = Vec::new();
    for name in ["alpha", "beta"] {
        let mut body = global_body(name);
        body["default_price_per_request"] = json!(0.0);
        let g = api.create("/api/admin/models/global", body).await;
        globals.push(g["id"].as_str().unwrap().to_owned());
        names.push(name.to_owned());
    }
    for (i, (provider, priority)) in [("p-low", 5), ("p-mid", 10), ("p-high", 30)].into_iter().enumerate() {
        let p = api.create("/api/admin/providers", json!({"name": provider, "provider_priority": priority, "billing_type": if i == 2 { "free_tier" } else { "pay_as_you_go" }})).await;
        let pid = p["id"].as_str().unwrap();
        for (format, url) in [("OPENAI", "https://openai.test/v1"), ("CLAUDE", "https://claude.test")] {
            if format == "CLAUDE" && i == 1 {
                continue;
            }
            let e = api.create(&format!("/api/admin/providers/{pid}/endpoints"), json!({"api_format": format, "base_url": format!("{url}/{provider}"), "headers": {"x-p": provider}})).await;
            let eid = e["id"].as_str().unwrap();
            api.create(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "k1", "api_key": UPSTREAM_SECRET, "internal_priority": 10})).await;
            api.create(&format!("/api/admin/endpoints/{eid}/keys"), json!({"name": "k2", "api_key": UPSTREAM_SECRET, "allowed_models": ["alpha"], "rate_multiplier": 0.5})).await;
        }
        for (g, gid) in globals.iter().enumerate() {
            if i == 0 && g == 1 {
                continue;
            }
            let pmn = format!("{}-{provider}", names[g]);
            api.create(&format!("/api/admin/providers/{pid}/models"), json!({
                "global_model_id": gid,
                "provider_model_name": pmn,
                "provider_model_aliases": [{"name": format!("{pmn}-a"), "priority": 1}, {"name": format!("{pmn}-b"), "priority": 1, "api_formats": ["CLAUDE"]}],
                "price_per_request": 0.01,
            })).await;
            names.push(pmn);
        }
    }
    let user = api.create("/api/admin/users", json!({"username": "ada", "email": "ada@example.test"})).await;
    api.create(&format!("/api/admin/users/{}/api-keys", user["id"].as_str().unwrap()), json!({"name": "laptop"})).await;

    let exported = api.get("/api/admin/catalog").await;
    assert_eq!(exported.status.as_u16(), 200, "{}", exported.text());
    assert!(!exported.text().contains(UPSTREAM_SECRET), "an export carries no upstream secret");
    let mut document = exported.json();
    give_upstream_secrets(&mut document);

    let empty = TestDb::new(db.backend()).await;
    let gw2 = gateway(&empty.conn);
    let api2 = Session::admin(&gw2, &empty.conn, "importer").await;
    let imported = api2.put("/api/admin/catalog", document.clone()).await;
    assert_eq!(imported.status.as_u16(), 200, "{}", imported.text());

    for name in &names {
        for format in ["OPENAI", "CLAUDE"] {
            let path = format!("/api/admin/resolve?model={name}&api_format={format}&client_key_id=c1");
            let before = routing(&api.get(&path).await.json());
            let after = routing(&api2.get(&path).await.json());
            assert_eq!(before, after, "{name} {format}");
            assert_ne!(before["resolved"], Value::Null, "{name} resolves");
        }
    }
    // The import is an upsert: applying it again changes no routing and creates nothing.
    let again = api2.put("/api/admin/catalog", document).await.json();
    assert_eq!(again["created"], 0, "{again}");
    // A document without the secrets is refused with the key named.
    let mut bare = api.get("/api/admin/catalog").await.json();
    bare["users"] = json!([]);
    let refused = api2.put("/api/admin/catalog", bare).await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.text());
    assert!(refused.text().contains("api_key"), "{}", refused.text());
});

/// A catalogue that uses every field the document has: display names, capabilities and a
/// config with unknown keys, tiered prices with cache prices, headers, inactive rows, key
/// allow-lists and multipliers, aliases with formats, quotas, roles and key expiries.
async fn rich_catalogue(api: &Session<'_>) {
    let alpha = api.create("/api/admin/models/global", json!({
        "name": "alpha", "display_name": "Alpha 1", "default_price_per_request": 0.002,
        "supported_capabilities": ["chat", "vision"],
        "config": {"family": "a", "context_limit": 128000, "custom": {"x": [1, 2], "b": true}},
        "default_tiered_pricing": {"tiers": [
            {"up_to": 1000, "input_price_per_1m": 2.5, "output_price_per_1m": 10.0, "cache_read_price_per_1m": 1.25},
            {"up_to": null, "input_price_per_1m": 2.0, "output_price_per_1m": 8.0, "cache_creation_price_per_1m": 3.75}
        ]},
    })).await;
    let mut beta = global_body("beta");
    beta["is_active"] = json!(false);
    let beta = api.create("/api/admin/models/global", beta).await;
    let one = api.create("/api/admin/providers", json!({"name": "p-one", "display_name": "Provider One", "provider_priority": 5, "billing_type": "free_tier"})).await;
    let two = api
        .create(
            "/api/admin/providers",
            json!({"name": "p-two", "is_active": false}),
        )
        .await;
    let (one, two) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());
    let openai = api.create(&format!("/api/admin/providers/{one}/endpoints"), json!({"api_format": "OPENAI", "base_url": "https://one.test/v1", "headers": {"x-team": "a", "x-org": "7"}, "timeout": 60, "max_retries": 3})).await;
    api.create(
        &format!("/api/admin/providers/{one}/endpoints"),
        json!({"api_format": "CLAUDE", "base_url": "https://one.test", "is_active": false}),
    )
    .await;
    let claude = api
        .create(
            &format!("/api/admin/providers/{two}/endpoints"),
            json!({"api_format": "CLAUDE", "base_url": "https://two.test"}),
        )
        .await;
    for (endpoint, name, extra) in [
        (
            &openai,
            "k1",
            json!({"allowed_models": ["alpha-one"], "rate_multiplier": 0.5, "internal_priority": 10}),
        ),
        (
            &openai,
            "k2",
            json!({"is_active": false, "rate_multiplier": 0.0}),
        ),
        (&claude, "main", json!({})),
    ] {
        let mut body = json!({"name": name, "api_key": UPSTREAM_SECRET});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        api.create(
            &format!(
                "/api/admin/endpoints/{}/keys",
                endpoint["id"].as_str().unwrap()
            ),
            body,
        )
        .await;
    }
    api.create(&format!("/api/admin/providers/{one}/models"), json!({
        "global_model_id": alpha["id"], "provider_model_name": "alpha-one", "price_per_request": 0.01,
        "provider_model_aliases": [{"name": "alpha-one-a", "priority": 2}, {"name": "alpha-one-b", "api_formats": ["CLAUDE"]}],
        "tiered_pricing": {"tiers": [{"input_price_per_1m": 1.0, "output_price_per_1m": 4.0}]},
    })).await;
    api.create(&format!("/api/admin/providers/{two}/models"), json!({"global_model_id": beta["id"], "provider_model_name": "beta-two", "is_active": false})).await;
    let ada = api
        .create(
            "/api/admin/users",
            json!({"username": "ada", "email": "ada@example.test", "quota_usd": 12.5}),
        )
        .await;
    let bob = api.create("/api/admin/users", json!({"username": "bob", "email": "bob@example.test", "role": "admin", "is_active": false})).await;
    let ada = ada["id"].as_str().unwrap();
    for body in [
        json!({"name": "laptop", "expires_at": "2030-01-02T03:04:05.123456Z"}),
        json!({"name": "laptop"}),
        json!({"name": "ci"}),
    ] {
        api.create(&format!("/api/admin/users/{ada}/api-keys"), body)
            .await;
    }
    api.create(
        &format!("/api/admin/users/{}/api-keys", bob["id"].as_str().unwrap()),
        json!({"name": "cli"}),
    )
    .await;
}

db_test!(async fn export_import_export_is_byte_identical(db) {
    let gw = gateway(&db.conn);
    let root = admin(&db.conn, "root").await;
    let api = Session { gateway: &gw, key: root.key.clone() };
    rich_catalogue(&api).await;
    let first = api.get("/api/admin/catalog").await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.text());
    assert!(!first.text().contains(UPSTREAM_SECRET), "an export carries no upstream secret");
    let mut document = first.json();
    assert_eq!(document["providers"][0]["endpoints"][1]["keys"].as_array().unwrap().len(), 2, "{document}");
    let expiries: Vec<&Value> = document["users"][0]["api_keys"].as_array().unwrap().iter().map(|key| &key["expires_at"]).collect();
    assert!(expiries.contains(&&json!("2030-01-02T03:04:05.123456Z")), "{document}");
    give_upstream_secrets(&mut document);

    // The fresh database's admin has the same name as the first one's, so the import updates
    // it; its own fixture key is then the one row the first database does not have.
    let empty = TestDb::new(db.backend()).await;
    let gw2 = gateway(&empty.conn);
    let root2 = admin(&empty.conn, "root").await;
    let api2 = Session { gateway: &gw2, key: root2.key };
    let imported = api2.put("/api/admin/catalog", document).await;
    assert_eq!(imported.status.as_u16(), 200, "{}", imported.text());
    api_keys::Entity::delete_by_id(root2.key_id).exec(&empty.conn).await.unwrap();
    // The first admin's key came with the import.
    let again = Session { gateway: &gw2, key: root.key };
    let second = again.get("/api/admin/catalog").await;
    assert_eq!(second.status.as_u16(), 200, "{}", second.text());
    assert_eq!(second.text(), first.text(), "export, import, export is byte-identical");
    assert_eq!(second.body, first.body);
});
