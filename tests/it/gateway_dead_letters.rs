//! Accounting integrity through the in-process gateway (behaviour.md 7): a usage row the
//! database refuses is dead-lettered without stopping anyone else's, listed and replayed
//! once; deletions during a request never break its usage row; `/ready` reports a stalled
//! writer.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};
use tollgate_accounting::WriterConfig;
use tollgate_entities::{ApiFormat, TieredPricing, usage, usage_dead_letters};
use tollgate_server::Gateway;
use tollgate_server::mock::MockUpstream;
use tollgate_testkit::writer::{
    TempDir, accept_every_model, assert_references_nulled, refuse_model,
};
use tollgate_testkit::{Backend, TestDb, db_test};
use tower::ServiceExt;

use crate::admin_support::{Session, admin, assert_error, call};
use crate::gateway_support::{
    CANARY_WAIT, Client, assert_canary_recorded, chat, client, counters, global_model,
    openai_route, request, send, wait_for_usage,
};

/// The routed global model whose usage rows the database is made to refuse.
const POISON_MODEL: &str = "poison-model";
/// A healthy routed global model for canaries.
const GOOD_MODEL: &str = "good-model";

/// A gateway over `db` whose writer keeps dead letters in a fresh directory (returned with
/// it, removed when dropped) and counts as stalled after `stall_after`.
fn gateway(db: &TestDb, stall_after: Duration) -> (TempDir, Gateway) {
    let dir = TempDir::new("tollgate-e2e-dead");
    let mut builder = Gateway::builder(db.conn.clone()).writer(WriterConfig {
        dead_letter_dir: dir.path().to_owned(),
        stall_after,
        retry_max: Duration::from_millis(200),
        // Requests sent together share a batch, so a refused row has neighbours to spare.
        linger: Duration::from_millis(200),
        ..WriterConfig::default()
    });
    if let Some(handle) = tollgate_server::prometheus() {
        builder = builder.metrics(handle);
    }
    (dir, builder.build().unwrap())
}

/// Routes `name` to `mock` through a provider of its own.
async fn routed(db: &TestDb, mock: &MockUpstream, name: &str) -> crate::gateway_support::Route {
    let global = global_model(&db.conn, name, TieredPricing::fixed(1.0, 2.0)).await;
    openai_route(&db.conn, &format!("provider-{name}"), mock, &global, name).await
}

/// A healthy upstream with [`GOOD_MODEL`] routed to it, for canaries.
async fn canary_upstream(db: &TestDb) -> MockUpstream {
    let upstream = MockUpstream::start().await.unwrap();
    routed(db, &upstream, GOOD_MODEL).await;
    upstream
}

/// Makes the database refuse `usage` rows whose `model` is [`POISON_MODEL`].
async fn refuse_poison(db: &TestDb) {
    refuse_model(db, POISON_MODEL, "P0001").await;
}

/// Sends one OpenAI request for `model` as `client`; asserts 200 and returns its request id.
async fn request_id_of(gateway: &Gateway, client: &Client, model: &str) -> String {
    let answer = send(
        gateway,
        request(ApiFormat::OpenAi, Some(&client.key), chat(model, false)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.header("x-request-id").to_owned()
}

/// Polls the dead-letter listing until it shows `request_id`.
async fn wait_for_dead_letter(session: &Session<'_>, request_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + CANARY_WAIT;
    loop {
        let answer = session.get("/api/admin/usage/dead-letters").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        if let Some(letter) = answer
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|letter| letter["request_id"] == request_id)
        {
            return letter.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter for {request_id} within {CANARY_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn usage_rows_of(db: &TestDb, request_id: &str) -> u64 {
    usage::Entity::find()
        .filter(usage::Column::RequestId.eq(request_id))
        .count(&db.conn)
        .await
        .unwrap()
}

db_test!(async fn a_refused_usage_row_is_dead_lettered_listed_and_replayed_once(db) {
    let mock = MockUpstream::start().await.unwrap();
    routed(db, &mock, POISON_MODEL).await;
    routed(db, &mock, GOOD_MODEL).await;
    refuse_poison(db).await;
    let (_dir, gateway) = gateway(db, Duration::from_secs(60));
    let operator = admin(&db.conn, "operator").await;
    let session = Session { gateway: &gateway, key: operator.key.clone() };
    let alice = client(&db.conn, "alice").await;

    let dave = client(&db.conn, "dave").await;
    let (poisoned, neighbours) = tokio::join!(
        request_id_of(&gateway, &alice, POISON_MODEL),
        futures_util::future::join_all(
            (0..5).map(|_| request_id_of(&gateway, &dave, GOOD_MODEL))
        ),
    );
    for request_id in &neighbours {
        assert!(
            wait_for_usage(&db.conn, request_id, CANARY_WAIT).await.is_some(),
            "a request sent with the refused one has no usage row"
        );
    }
    assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, GOOD_MODEL).await;
    let letter = wait_for_dead_letter(&session, &poisoned).await;
    assert!(letter["error"].as_str().unwrap().contains("poison"), "{letter}");
    assert_eq!(letter["replayed_at"], serde_json::Value::Null);
    assert_eq!(letter["payload"]["usage"]["model"], POISON_MODEL);
    assert_eq!(letter["payload"]["usage"]["user_id"], alice.user_id.as_str());
    assert!(!letter["payload"]["candidates"].as_array().unwrap().is_empty());
    assert!(letter["created_at"].is_string() && letter["id"].is_string());
    assert_eq!(usage_rows_of(db, &poisoned).await, 0);
    if let Some(handle) = tollgate_server::prometheus() {
        assert!(handle.render().contains("usage_writer_dead_letters_total{store=\"table\"}"));
    }

    // Still refused: reported, never a 500, nothing written.
    let answer = session.post("/api/admin/usage/dead-letters/replay", serde_json::json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!(report["replayed"], 0);
    assert_eq!(report["failed"][0]["id"], letter["id"]);
    assert!(report["failed"][0]["error"].as_str().unwrap().contains("poison"));
    assert_eq!(gateway.usage_stats().dead_lettered, 1);

    accept_every_model(db).await;
    let answer = session.post("/api/admin/usage/dead-letters/replay", serde_json::json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!((report["replayed"].as_u64(), report["already_present"].as_u64()), (Some(1), Some(0)), "{report}");
    assert_eq!(report["failed"], serde_json::json!([]));
    let row = wait_for_usage(&db.conn, &poisoned, CANARY_WAIT).await.unwrap();
    assert_eq!(row.user_id.as_deref(), Some(alice.user_id.as_str()));
    let (key, _) = counters(&db.conn, &alice).await;
    assert_eq!(key.total_requests, 1);

    // Again, by default and by id: nothing written twice.
    let answer = session.post("/api/admin/usage/dead-letters/replay", serde_json::json!({})).await;
    assert_eq!((answer.json()["replayed"].as_u64(), answer.json()["already_present"].as_u64()), (Some(0), Some(0)));
    let answer = session
        .post("/api/admin/usage/dead-letters/replay", serde_json::json!({"ids": [letter["id"]]}))
        .await;
    assert_eq!((answer.json()["replayed"].as_u64(), answer.json()["already_present"].as_u64()), (Some(0), Some(1)), "{}", answer.text());
    // No body at all replays the default set.
    let answer = call(
        &gateway,
        Method::POST,
        "/api/admin/usage/dead-letters/replay",
        Some(&operator.key),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(usage_rows_of(db, &poisoned).await, 1);
    let (key, _) = counters(&db.conn, &alice).await;
    assert_eq!(key.total_requests, 1);

    let listed = session.get("/api/admin/usage/dead-letters").await.json();
    assert_eq!(listed, serde_json::json!([]), "replayed letters are hidden by default");
    let listed = session.get("/api/admin/usage/dead-letters?include_replayed=true&limit=5").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0]["replayed_at"].is_string());
    assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, GOOD_MODEL).await;
});

db_test!(async fn dead_letter_endpoints_check_their_input_and_caller(db) {
    let (_dir, gateway) = gateway(db, Duration::from_secs(60));
    let session = Session::admin(&gateway, &db.conn, "operator").await;
    for query in ["limit=0", "limit=1001", "limit=-1", "limit=ten"] {
        let answer = session.get(&format!("/api/admin/usage/dead-letters?{query}")).await;
        assert_error(&answer, 400, "limit");
    }
    let answer = session.get("/api/admin/usage/dead-letters?include_replayed=maybe").await;
    assert_error(&answer, 400, "include_replayed");
    let answer = session
        .post("/api/admin/usage/dead-letters/replay", serde_json::json!({"ids": "x"}))
        .await;
    assert_error(&answer, 422, "ids");
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let answer = session
        .post("/api/admin/usage/dead-letters/replay", serde_json::json!({"ids": many}))
        .await;
    assert_error(&answer, 422, "ids");
    // A user's key may not list; no key may not replay.
    let user = client(&db.conn, "not-an-admin").await;
    for (method, path, key, status) in [
        (Method::GET, "/api/admin/usage/dead-letters", Some(user.key.as_str()), StatusCode::FORBIDDEN),
        (Method::POST, "/api/admin/usage/dead-letters/replay", None, StatusCode::UNAUTHORIZED),
    ] {
        let answer = call(&gateway, method, path, key, None).await;
        assert_eq!(answer.status, status, "{path}");
    }
});

db_test!(async fn deleting_the_user_and_provider_mid_request_keeps_its_usage_row(db) {
    let slow = MockUpstream::start().await.unwrap();
    slow.set(|b| b.latency = Duration::from_millis(1500));
    let doomed = routed(db, &slow, "slow-model").await;
    let _fast = canary_upstream(db).await;
    let (_dir, gateway) = gateway(db, Duration::from_secs(60));
    let session = Session::admin(&gateway, &db.conn, "operator").await;
    let bob = client(&db.conn, "bob").await;

    let in_flight = tokio::spawn(gateway.router().oneshot(request(
        ApiFormat::OpenAi,
        Some(&bob.key),
        chat("slow-model", false),
    )));
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.request_count() == 0 {
        assert!(Instant::now() < deadline, "the request never reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = session.delete(&format!("/api/admin/users/{}", bob.user_id)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    // Cascades to its endpoints, upstream keys and models.
    let answer = session.delete(&format!("/api/admin/providers/{}", doomed.provider_id)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();

    let row = wait_for_usage(&db.conn, &request_id, CANARY_WAIT)
        .await
        .expect("the usage row of the request whose user and provider were deleted");
    assert_references_nulled(&row, "provider-slow-model");
    assert_eq!(row.model, "slow-model");
    assert!(row.total_tokens > 0);
    let letters = usage_dead_letters::Entity::find().count(&db.conn).await.unwrap();
    assert_eq!(letters, 0);
    assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, GOOD_MODEL).await;
});

/// Polls `/ready` until it answers `status`; returns the body.
async fn wait_for_ready(
    gateway: &Gateway,
    status: StatusCode,
    wait: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + wait;
    loop {
        let answer = call(gateway, Method::GET, "/ready", None, None).await;
        if answer.status == status {
            return answer.json();
        }
        assert!(
            Instant::now() < deadline,
            "/ready did not answer {status} within {wait:?}: {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

db_test!(async fn ready_reports_a_stalled_writer_and_recovers(db) {
    let _upstream = canary_upstream(db).await;
    let (_dir, gateway) = gateway(db, Duration::from_secs(1));
    let carol = client(&db.conn, "carol").await;
    wait_for_ready(&gateway, StatusCode::OK, Duration::from_secs(1)).await;

    // Another session holds a lock the writer needs: SQLite's write lock (the writer gets
    // SQLITE_BUSY and retries), PostgreSQL's table lock (the insert waits).
    let lock = db.conn.begin().await.unwrap();
    match db.backend() {
        Backend::Sqlite => {
            lock.execute_unprepared("CREATE TABLE lock_holder (id integer primary key)")
                .await
                .unwrap();
        }
        Backend::Postgres => {
            lock.execute_unprepared("LOCK TABLE usage IN EXCLUSIVE MODE").await.unwrap();
        }
    }
    let waiting = request_id_of(&gateway, &carol, GOOD_MODEL).await;
    let body = wait_for_ready(&gateway, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(5)).await;
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("usage writer stalled: 1 records waiting, none written for "),
        "{body}"
    );
    assert_eq!(body["usage_writer"]["waiting"], 1);
    assert!(body["usage_writer"]["oldest_record_age_seconds"].as_f64().unwrap() >= 1.0);
    if let Some(handle) = tollgate_server::prometheus() {
        assert!(handle.render().contains("usage_writer_oldest_record_age_seconds"));
    }
    assert_eq!(usage_rows_of(db, &waiting).await, 0);

    lock.rollback().await.unwrap();
    wait_for_ready(&gateway, StatusCode::OK, Duration::from_secs(10)).await;
    assert_eq!(usage_rows_of(db, &waiting).await, 1);
    assert_eq!(gateway.usage_stats().dead_lettered, 0);
    assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, GOOD_MODEL).await;
});

db_test!(async fn deleting_the_user_and_provider_during_a_live_stream_keeps_its_usage_row(db) {
    // The stream is open (first events read) when an admin deletes the user and an operator
    // deletes the provider directly in the database (cascading to its endpoint, upstream key
    // and model), as the operations notes allow.
    let slow = MockUpstream::start().await.unwrap();
    slow.set(|b| {
        b.chunk_delay = Duration::from_millis(300);
        b.chunks = 4;
    });
    let doomed = routed(db, &slow, "streamed-model").await;
    let _fast = canary_upstream(db).await;
    let (_dir, gateway) = gateway(db, Duration::from_secs(60));
    let session = Session::admin(&gateway, &db.conn, "operator").await;
    let carol = client(&db.conn, "carol").await;

    let response = gateway
        .router()
        .oneshot(request(ApiFormat::OpenAi, Some(&carol.key), chat("streamed-model", true)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut body = response.into_body().into_data_stream();
    let first = futures_util::StreamExt::next(&mut body).await.unwrap().unwrap();
    assert!(!first.is_empty());

    let answer = session.delete(&format!("/api/admin/users/{}", carol.user_id)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let deleted = db
        .conn
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            db.db_backend(),
            match db.backend() {
                Backend::Postgres => "DELETE FROM providers WHERE id = $1",
                Backend::Sqlite => "DELETE FROM providers WHERE id = ?",
            },
            [doomed.provider_id.clone().into()],
        ))
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);

    let mut rest = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(text.ends_with("data: [DONE]\n\n"), "the stream completes: {text}");

    let row = wait_for_usage(&db.conn, &request_id, CANARY_WAIT)
        .await
        .expect("the usage row of the stream whose user and provider were deleted");
    assert_references_nulled(&row, "provider-streamed-model");
    assert_eq!(row.status_code, Some(200));
    assert!(row.total_tokens > 0, "the upstream's usage block was read");
    let letters = usage_dead_letters::Entity::find().count(&db.conn).await.unwrap();
    assert_eq!(letters, 0);
    assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, GOOD_MODEL).await;
});
