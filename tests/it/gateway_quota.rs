//! Spending limits: a user who has spent `quota_usd` gets 402 in the endpoint's error shape,
//! whether the spend is still in this replica's ledger or already in `users.used_usd`; an
//! admin who resets `used_usd` (or raises the quota) lets the user back in.

use axum::http::StatusCode;
use tollgate_entities::{ApiFormat, PriceTier, TieredPricing, UsageStatus, users};
use tollgate_server::mock::{MockUpstream, MockUsage};
use tollgate_testkit::{TestDb, db_cases, db_test};

use crate::admin_support::Session;
use crate::gateway_support::{
    Client, chat, client, close, gateway, global_model, request, route, send, usage_of,
};

/// One dollar per request: a million input tokens at $1 per million.
fn dollar_a_request() -> TieredPricing {
    TieredPricing {
        tiers: vec![PriceTier {
            up_to: None,
            input_price_per_1m: 1.0,
            output_price_per_1m: 0.0,
            cache_creation_price_per_1m: None,
            cache_read_price_per_1m: None,
        }],
    }
}

async fn set_quota(conn: &sea_orm::DatabaseConnection, client: &Client, quota: Option<f64>) {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
    let user = users::Entity::find_by_id(client.user_id.clone())
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    let mut user = user.into_active_model();
    user.quota_usd = Set(quota);
    user.update(conn).await.unwrap();
}

async fn used_usd(conn: &sea_orm::DatabaseConnection, client: &Client) -> f64 {
    use sea_orm::EntityTrait;
    users::Entity::find_by_id(client.user_id.clone())
        .one(conn)
        .await
        .unwrap()
        .unwrap()
        .used_usd
}

/// Model `metered` at [`dollar_a_request`], routed in `format` through provider `prov` to a
/// fresh mock upstream (returned) as `metered-up`.
async fn metered_route(conn: &sea_orm::DatabaseConnection, format: ApiFormat) -> MockUpstream {
    let mock = MockUpstream::start().await.unwrap();
    let base_url = match format {
        ApiFormat::OpenAi => mock.openai_base_url(),
        ApiFormat::Claude => mock.claude_base_url(),
    };
    let global = global_model(conn, "metered", dollar_a_request()).await;
    route(
        conn,
        "prov",
        10,
        format,
        &base_url,
        30,
        &global,
        "metered-up",
    )
    .await;
    mock
}

async fn quota_is_enforced(db: &TestDb, format: ApiFormat) {
    let conn = &db.conn;
    let mock = metered_route(conn, format).await;
    mock.set(|b| {
        b.usage = MockUsage {
            input: 1_000_000,
            output: 0,
            cache_creation: 0,
            cache_read: 0,
        };
    });
    let capped = client(conn, "capped").await;
    set_quota(conn, &capped, Some(2.5)).await;
    let unlimited = client(conn, "unlimited").await;
    let gateway = gateway(conn);
    let ask = |key: &str| request(format, Some(key), chat("metered", false));

    // $0 and $1 spent: below the quota. $2 spent: still below 2.5, so a third request
    // goes through (the limit is checked before a request, whose cost is known after).
    for n in 0..3 {
        let answer = send(&gateway, ask(&capped.key)).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "request {n}: {}",
            answer.text()
        );
    }
    let refused = send(&gateway, ask(&capped.key)).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text()
    );
    let body = refused.json();
    match format {
        ApiFormat::OpenAi => {
            assert_eq!(body["error"]["code"], "insufficient_quota");
            assert_eq!(body["error"]["type"], "insufficient_quota");
        }
        ApiFormat::Claude => {
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], "billing_error");
        }
    }
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("3.0000 of a 2.5000 USD quota"),
        "{message}"
    );
    assert_eq!(
        mock.requests().len(),
        3,
        "a refused request reaches no upstream"
    );
    // The refusal is a failed usage row of its own, free.
    gateway.flush_usage().await;
    let row = usage_of(conn, refused.header("x-request-id")).await;
    assert_eq!(row.status, UsageStatus::Failed);
    assert_eq!(row.status_code, Some(402));
    assert_eq!(row.model, "metered");
    assert!(close(row.total_cost_usd, 0.0));

    // Another user of the same model is not affected.
    assert_eq!(
        send(&gateway, ask(&unlimited.key)).await.status,
        StatusCode::OK
    );

    // A replica that starts now knows nothing of the first one's ledger: the spend it sees
    // is `users.used_usd`, which the usage writer has brought to 3.
    assert!(close(used_usd(conn, &capped).await, 3.0));
    let other_replica = crate::gateway_support::gateway(conn);
    let refused = send(&other_replica, ask(&capped.key)).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text()
    );

    // A new period: the admin resets the spend, which reaches the cached key at once.
    let session = Session::admin(&other_replica, conn, "root").await;
    let path = format!("/api/admin/users/{}", capped.user_id);
    let reset = session
        .patch(&path, serde_json::json!({"used_usd": 0.0}))
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert_eq!(
        send(&other_replica, ask(&capped.key)).await.status,
        StatusCode::OK
    );
    // A negative spend is refused and changes nothing.
    let bad = session
        .patch(&path, serde_json::json!({"used_usd": -1.0}))
        .await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad.text()
    );
    assert!(bad.text().contains("used_usd"), "{}", bad.text());

    // Lifting the quota (null = unlimited) lets every request through.
    let lifted = session
        .patch(&path, serde_json::json!({"quota_usd": null}))
        .await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text());
    for _ in 0..4 {
        assert_eq!(
            send(&other_replica, ask(&capped.key)).await.status,
            StatusCode::OK
        );
    }
}

db_cases!(quota_is_enforced:
    quota_openai(ApiFormat::OpenAi),
    quota_claude(ApiFormat::Claude),
);

db_test!(async fn a_hostile_model_name_from_a_user_over_quota_is_refused_before_anything_is_recorded(db) {
    // The poison: a user over quota sent a model name with a NUL byte; the refused
    // request's usage row was rejected by PostgreSQL and stopped the writer. The name is now
    // checked first: 400, no row, and everyone else's rows keep being written.
    let conn = &db.conn;
    let _mock = metered_route(conn, ApiFormat::OpenAi).await;
    let capped = client(conn, "capped").await;
    set_quota(conn, &capped, Some(0.0)).await;
    let gateway = gateway(conn);
    for name in ["bad\u{0}name", "line\nbreak", "", &"x".repeat(201)] {
        let body = serde_json::json!({"model": name, "messages": []}).to_string();
        let answer = send(&gateway, request(ApiFormat::OpenAi, Some(&capped.key), body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name:?}: {}", answer.text());
        assert_eq!(answer.json()["error"]["code"], "invalid_request");
        assert!(!answer.text().contains('\u{0}'));
        let rid = answer.header("x-request-id").to_owned();
        gateway.flush_usage().await;
        assert!(
            crate::gateway_support::wait_for_usage(conn, &rid, std::time::Duration::ZERO).await.is_none(),
            "{name:?}: a refused name is never recorded"
        );
    }
    // A valid name from the same user is the 402, recorded as before.
    let answer = send(&gateway, request(ApiFormat::OpenAi, Some(&capped.key), chat("metered", false))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    gateway.flush_usage().await;
    assert_eq!(usage_of(conn, answer.header("x-request-id")).await.status_code, Some(402));
    crate::gateway_support::assert_canary_recorded(&gateway, conn, ApiFormat::OpenAi, "metered").await;
});
