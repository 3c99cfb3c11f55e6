//! Catalogue export, then import into an empty database, reproduces the same routing for
//! every model; exports carry no secrets, which the import supplies again.

use serde_json::{Value, json};
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

db_test!(async fn export_then_import_reproduces_routing(db) {
    let gw = gateway(&db.conn);
    let root = admin(&db.conn, "root").await;
    let api = Session { gateway: &gw, key: root.key };

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
    for provider in document["providers"].as_array_mut().unwrap() {
        for endpoint in provider["endpoints"].as_array_mut().unwrap() {
            for key in endpoint["keys"].as_array_mut().unwrap() {
                key["api_key"] = json!(UPSTREAM_SECRET);
            }
        }
    }

    let empty = TestDb::new(db.backend()).await;
    let gw2 = gateway(&empty.conn);
    let root2 = admin(&empty.conn, "importer").await;
    let api2 = Session { gateway: &gw2, key: root2.key };
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
