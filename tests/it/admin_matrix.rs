//! The invalidation matrix through HTTP: two gateway replicas share the database and Redis
//! (each with its own in-process tier and bus subscription); every change goes through
//! replica A's admin API, and the next client request through replica B routes (or fails)
//! according to it. "Next" allows the bus's delivery time (behaviour.md 2.4: a replica
//! applies what it has received), bounded here at 100 ms.

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate_cache::{Cache, Config};
use tollgate_entities::ApiFormat;
use tollgate_gateway::Gateway;
use tollgate_gateway::mock::MockUpstream;
use tollgate_testkit::{Backend, TestDb};

use crate::admin_support::{Session, admin, global_body};
use crate::gateway_support::{Client, UPSTREAM_SECRET, chat, client, request, send};

const BUS: Duration = Duration::from_millis(100);

async fn replica(db: &TestDb, namespace: &str) -> Gateway {
    let config = Config {
        namespace: namespace.to_owned(),
        ..Config::default()
    };
    let cache = Cache::tiered(config, &tollgate_testkit::redis_url())
        .await
        .expect("tiered cache");
    Gateway::builder(db.conn.clone())
        .cache(cache)
        .build()
        .expect("gateway")
}

/// What B answers for `model`: the status and the provider that served it.
async fn route_on(b: &Gateway, user: &Client, model: &str) -> (u16, Option<String>) {
    let answer = send(
        b,
        request(ApiFormat::OpenAi, Some(&user.key), chat(model, false)),
    )
    .await;
    let provider = answer
        .headers
        .get("x-tollgate-provider")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (answer.status.as_u16(), provider)
}

/// Asserts B reaches `expected` for `model` within the bus bound.
async fn expect_route(b: &Gateway, user: &Client, model: &str, expected: (u16, Option<&str>)) {
    let deadline = Instant::now() + BUS;
    loop {
        let got = route_on(b, user, model).await;
        if got.0 == expected.0 && got.1.as_deref() == expected.1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{model}: replica B answered {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Creates a provider with an OpenAI endpoint at `upstream` and a key; returns its id.
async fn provider(api: &Session<'_>, name: &str, priority: i32, upstream: &MockUpstream) -> String {
    let provider = api
        .create(
            "/api/admin/providers",
            json!({"name": name, "provider_priority": priority}),
        )
        .await;
    let pid = provider["id"].as_str().unwrap().to_owned();
    let endpoint = api
        .create(
            &format!("/api/admin/providers/{pid}/endpoints"),
            json!({"api_format": "OPENAI", "base_url": upstream.openai_base_url()}),
        )
        .await;
    let eid = endpoint["id"].as_str().unwrap();
    api.create(
        &format!("/api/admin/endpoints/{eid}/keys"),
        json!({"name": "k", "api_key": UPSTREAM_SECRET}),
    )
    .await;
    pid
}

async fn model(api: &Session<'_>, pid: &str, gid: &str, name: &str) -> String {
    let created = api
        .create(
            &format!("/api/admin/providers/{pid}/models"),
            json!({"global_model_id": gid, "provider_model_name": name}),
        )
        .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn matrix(backend: Backend) {
    let db = TestDb::new(backend).await;
    let namespace = format!("tollgate:matrix:{}:", uuid::Uuid::new_v4().simple());
    let a = replica(&db, &namespace).await;
    let b = replica(&db, &namespace).await;
    let root = admin(&db.conn, "root").await;
    let api = Session {
        gateway: &a,
        key: root.key.clone(),
    };
    let user = client(&db.conn, "caller").await;
    let up_one = MockUpstream::start().await.unwrap();
    let up_two = MockUpstream::start().await.unwrap();
    let one = provider(&api, "one", 10, &up_one).await;
    let two = provider(&api, "two", 20, &up_two).await;

    // Global model created: B had cached `Missing` (404); now it resolves (no route yet: 503),
    // then routes once a model exists.
    expect_route(&b, &user, "fresh", (404, None)).await;
    let global = api
        .create("/api/admin/models/global", global_body("fresh"))
        .await;
    let gid = global["id"].as_str().unwrap().to_owned();
    expect_route(&b, &user, "fresh", (503, None)).await;

    // Model created.
    let m_two = model(&api, &two, &gid, "fresh-two").await;
    expect_route(&b, &user, "fresh", (200, Some("two"))).await;
    expect_route(&b, &user, "fresh-two", (200, Some("two"))).await;
    let m_one = model(&api, &one, &gid, "fresh-one").await;
    expect_route(&b, &user, "fresh", (200, Some("one"))).await;

    // Model updated: renamed, old name gone, new name routes.
    api.patch(
        &format!("/api/admin/providers/{one}/models/{m_one}"),
        json!({"provider_model_name": "fresh-uno"}),
    )
    .await;
    expect_route(&b, &user, "fresh-one", (404, None)).await;
    expect_route(&b, &user, "fresh-uno", (200, Some("one"))).await;

    // Model deactivated, then reactivated, then deleted.
    api.patch(
        &format!("/api/admin/providers/{one}/models/{m_one}"),
        json!({"is_active": false}),
    )
    .await;
    expect_route(&b, &user, "fresh", (200, Some("two"))).await;
    expect_route(&b, &user, "fresh-uno", (404, None)).await;
    api.patch(
        &format!("/api/admin/providers/{one}/models/{m_one}"),
        json!({"is_active": true}),
    )
    .await;
    expect_route(&b, &user, "fresh", (200, Some("one"))).await;
    api.delete(&format!("/api/admin/providers/{one}/models/{m_one}"))
        .await;
    expect_route(&b, &user, "fresh", (200, Some("two"))).await;
    let _m_one = model(&api, &one, &gid, "fresh-one").await;
    expect_route(&b, &user, "fresh", (200, Some("one"))).await;

    // Provider updated (priority), deactivated, reactivated, deleted.
    api.patch(
        &format!("/api/admin/providers/{two}"),
        json!({"provider_priority": 1}),
    )
    .await;
    expect_route(&b, &user, "fresh", (200, Some("two"))).await;
    api.patch(
        &format!("/api/admin/providers/{two}"),
        json!({"is_active": false}),
    )
    .await;
    expect_route(&b, &user, "fresh", (200, Some("one"))).await;
    expect_route(&b, &user, "fresh-two", (404, None)).await;
    api.patch(
        &format!("/api/admin/providers/{two}"),
        json!({"is_active": true}),
    )
    .await;
    expect_route(&b, &user, "fresh", (200, Some("two"))).await;
    api.delete(&format!("/api/admin/providers/{two}")).await;
    expect_route(&b, &user, "fresh", (200, Some("one"))).await;
    expect_route(&b, &user, "fresh-two", (404, None)).await;
    let _ = m_two;

    // Global model updated (renamed), deactivated, reactivated, deleted.
    api.patch(
        &format!("/api/admin/models/global/{gid}"),
        json!({"name": "renamed"}),
    )
    .await;
    expect_route(&b, &user, "fresh", (404, None)).await;
    expect_route(&b, &user, "renamed", (200, Some("one"))).await;
    api.patch(
        &format!("/api/admin/models/global/{gid}"),
        json!({"is_active": false}),
    )
    .await;
    expect_route(&b, &user, "renamed", (404, None)).await;
    expect_route(&b, &user, "fresh-one", (404, None)).await;
    api.patch(
        &format!("/api/admin/models/global/{gid}"),
        json!({"is_active": true}),
    )
    .await;
    expect_route(&b, &user, "fresh-one", (200, Some("one"))).await;
    api.delete(&format!("/api/admin/models/global/{gid}")).await;
    expect_route(&b, &user, "renamed", (404, None)).await;
    expect_route(&b, &user, "fresh-one", (404, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_matrix_through_http_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_matrix_through_http_postgres() {
    matrix(Backend::Postgres).await;
}
