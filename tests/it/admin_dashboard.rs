//! The dashboard API equals what the aggregator's own functions compute for the same data,
//! in a non-UTC business time zone, and a user never sees another user's numbers.

use axum::http::Method;
use tollgate_server::Gateway;
use tollgate_stats::{Aggregator, BreakdownBy, BusinessCalendar};
use tollgate_testkit::{db_test, fixtures};

use crate::admin_support::{admin, call};
use crate::gateway_support::client;

/// Equal JSON, except that numbers may differ in their last bits: the database adds costs
/// in whatever order its plan visits rows, so two computations of one sum can round apart.
fn assert_close(actual: &serde_json::Value, expected: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                "{at}: {a} != {b}"
            );
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}: lengths differ");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{at}: fields differ");
            for (key, x) in a {
                assert_close(x, &b[key], &format!("{at}.{key}"));
            }
        }
        (a, b) => assert_eq!(a, b, "{at}"),
    }
}

fn without_as_of(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        map.remove("as_of");
    }
    value
}

db_test!(async fn dashboard_numbers_equal_the_aggregators(db) {
    let conn = &db.conn;
    let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
    let stats = Aggregator::new(conn.clone(), calendar.clone());
    let today = stats.today().unwrap();
    let yesterday = calendar.previous(&today).unwrap();
    let before = calendar.previous(&yesterday).unwrap();

    let root = admin(conn, "root").await;
    let alice = client(conn, "alice").await;
    let bob = client(conn, "bob").await;
    let mut n = 0_i32;
    for (day, user, model, count) in [
        (&before, &alice, "gpt-a", 3),
        (&before, &bob, "gpt-b", 2),
        (&yesterday, &alice, "gpt-b", 4),
        (&yesterday, &bob, "gpt-a", 1),
        (&today, &alice, "gpt-a", 2),
        (&today, &bob, "gpt-b", 5),
    ] {
        for i in 0..count {
            n += 1;
            let mut row = fixtures::usage_row(model, day.start() + time::Duration::seconds(i64::from(i)));
            row.user_id = Some(user.user_id.clone());
            row.api_key_id = Some(user.key_id.clone());
            row.input_tokens = 100 * n;
            row.output_tokens = 10 * n;
            row.total_tokens = 110 * n;
            row.total_cost_usd = f64::from(n) / 100.0;
            row.actual_total_cost_usd = f64::from(n) / 200.0;
            if i == 0 {
                row.status_code = Some(500);
                row.error_message = Some("upstream failed".into());
            }
            fixtures::insert(conn, row).await;
        }
    }
    // The oldest day is aggregated; yesterday is not (reported not aggregated); today is live.
    stats.aggregate_day(&before).await.unwrap();
    stats.refresh_summary().await.unwrap();

    let gw = Gateway::builder(conn.clone()).business_calendar(calendar.clone()).build().unwrap();
    let get = |path: String, key: String| {
        let gw = &gw;
        async move { call(gw, Method::GET, &path, Some(&key), None).await }
    };

    let daily = get("/api/dashboard/daily-stats?days=3".into(), root.key.clone()).await;
    assert_eq!(daily.status.as_u16(), 200, "{}", daily.text());
    let expected = serde_json::to_value(stats.daily_series(3).await.unwrap()).unwrap();
    assert_close(&daily.json()["days"], &expected, "daily");
    assert_eq!(daily.json()["timezone"], "Asia/Shanghai");
    assert_eq!(expected.as_array().unwrap().len(), 3);

    let combined = get("/api/dashboard/stats".into(), root.key.clone()).await;
    assert_eq!(combined.status.as_u16(), 200, "{}", combined.text());
    let expected = serde_json::to_value(stats.combined().await.unwrap()).unwrap();
    assert_close(&without_as_of(combined.json()), &without_as_of(expected), "combined");

    let own = get(format!("/api/dashboard/users/{}/daily-stats?days=3", alice.user_id), alice.key.clone()).await;
    assert_eq!(own.status.as_u16(), 200, "{}", own.text());
    let alice_expected = serde_json::to_value(stats.user_daily_series(&alice.user_id, 3).await.unwrap()).unwrap();
    assert_close(&own.json()["days"], &alice_expected, "alice");

    // Bob's own numbers differ from Alice's, and the per-caller cache never hands him hers.
    let bob_own = get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), bob.key.clone()).await;
    let bob_expected = serde_json::to_value(stats.user_daily_series(&bob.user_id, 3).await.unwrap()).unwrap();
    assert_close(&bob_own.json()["days"], &bob_expected, "bob");
    assert_ne!(bob_expected, alice_expected);

    let forbidden = get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), alice.key.clone()).await;
    assert_eq!(forbidden.status.as_u16(), 403, "{}", forbidden.text());
    assert_eq!(get("/api/dashboard/stats".into(), alice.key.clone()).await.status.as_u16(), 403);
    assert_eq!(get("/api/dashboard/daily-stats".into(), bob.key.clone()).await.status.as_u16(), 403);
    let by_admin = get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), root.key.clone()).await;
    assert_close(&by_admin.json()["days"], &bob_expected, "bob by admin");
    assert_eq!(get("/api/dashboard/users/nobody/daily-stats".into(), root.key.clone()).await.status.as_u16(), 404);

    for bad in ["0", "91", "abc", "-1"] {
        let answer = get(format!("/api/dashboard/daily-stats?days={bad}"), root.key.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "days={bad}: {}", answer.text());
        assert!(answer.text().contains("days"));
    }
});

db_test!(async fn hourly_breakdown_and_key_routes_equal_the_aggregators(db) {
    let conn = &db.conn;
    let calendar = BusinessCalendar::new("Asia/Kolkata").unwrap();
    let stats = Aggregator::new(conn.clone(), calendar.clone());
    let today = stats.today().unwrap();
    let yesterday = calendar.previous(&today).unwrap();
    let root = admin(conn, "root").await;
    let alice = client(conn, "alice").await;
    let bob = client(conn, "bob").await;
    let mut n = 0_i32;
    for (day, user, provider, count) in [
        (&yesterday, &alice, "prov-a", 3),
        (&yesterday, &bob, "prov-b", 2),
        (&today, &alice, "prov-b", 4),
        (&today, &bob, "prov-a", 1),
    ] {
        for i in 0..count {
            n += 1;
            let mut row = fixtures::usage_row("gpt-x", day.start() + time::Duration::minutes(i64::from(i)));
            row.user_id = Some(user.user_id.clone());
            row.api_key_id = Some(user.key_id.clone());
            row.provider = provider.to_owned();
            row.total_cost_usd = f64::from(n) / 100.0;
            row.response_time_ms = Some(100 * n);
            fixtures::insert(conn, row).await;
        }
    }
    stats.aggregate_day(&yesterday).await.unwrap();

    let gw = Gateway::builder(conn.clone()).business_calendar(calendar.clone()).build().unwrap();
    let get = |path: String, key: String| {
        let gw = &gw;
        async move { call(gw, Method::GET, &path, Some(&key), None).await }
    };

    let hourly = get("/api/dashboard/hourly-stats?hours=30".into(), root.key.clone()).await;
    assert_eq!(hourly.status.as_u16(), 200, "{}", hourly.text());
    let expected = serde_json::to_value(stats.hourly_series(30).await.unwrap()).unwrap();
    assert_close(&hourly.json()["hours"], &expected, "hourly");
    assert_eq!(expected.as_array().unwrap().len(), 30);
    assert_eq!(hourly.json()["timezone"], "Asia/Kolkata");

    for (by, kind) in [("provider", BreakdownBy::Provider), ("api_key", BreakdownBy::ApiKey)] {
        let answer = get(format!("/api/dashboard/breakdown?by={by}&days=2"), root.key.clone()).await;
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
        let mut expected = serde_json::to_value(stats.breakdown(kind, 2).await.unwrap()).unwrap();
        expected["timezone"] = "Asia/Kolkata".into();
        assert_close(&answer.json(), &expected, by);
    }
    // Per provider: yesterday from its day rows and today from closed hours and the live
    // tail, with percentiles; per key: complete days only.
    let providers = stats.breakdown(BreakdownBy::Provider, 2).await.unwrap();
    let totals: Vec<_> = providers.rows.iter().map(|row| (row.key.as_str(), row.total_requests)).collect();
    assert_eq!(totals, [("prov-b", 6), ("prov-a", 4)]);
    assert!(providers.rows[0].percentiles.p99_ms.is_some());
    let keys = stats.breakdown(BreakdownBy::ApiKey, 2).await.unwrap();
    let totals: Vec<_> = keys.rows.iter().map(|row| row.total_requests).collect();
    assert_eq!(totals, [3, 2], "yesterday's keys only");
    assert!(!keys.today_included);

    let own = get(format!("/api/dashboard/keys/{}/daily-stats?days=2", alice.key_id), alice.key.clone()).await;
    assert_eq!(own.status.as_u16(), 200, "{}", own.text());
    let expected = serde_json::to_value(stats.api_key_daily_series(&alice.key_id, 2).await.unwrap()).unwrap();
    assert_close(&own.json()["days"], &expected, "alice's key");
    assert_eq!(own.json()["days"][0]["stats"]["total_requests"], 3);
    assert_eq!(own.json()["days"][1]["stats"]["total_requests"], 4, "today, live for one key");
    let other = get(format!("/api/dashboard/keys/{}/daily-stats", alice.key_id), bob.key.clone()).await;
    assert_eq!(other.status.as_u16(), 403, "{}", other.text());
    let by_admin = get(format!("/api/dashboard/keys/{}/daily-stats?days=2", alice.key_id), root.key.clone()).await;
    assert_close(&by_admin.json()["days"], &expected, "alice's key by admin");
    assert_eq!(get("/api/dashboard/keys/nokey/daily-stats".into(), root.key.clone()).await.status.as_u16(), 404);
    // A user cannot probe which key ids exist.
    assert_eq!(get("/api/dashboard/keys/nokey/daily-stats".into(), bob.key.clone()).await.status.as_u16(), 403);
    assert_eq!(get("/api/dashboard/hourly-stats".into(), alice.key.clone()).await.status.as_u16(), 403);
    assert_eq!(get("/api/dashboard/breakdown".into(), bob.key.clone()).await.status.as_u16(), 403);

    for (path, word) in [
        ("/api/dashboard/hourly-stats?hours=0", "hours"),
        ("/api/dashboard/hourly-stats?hours=169", "hours"),
        ("/api/dashboard/hourly-stats?hours=x", "hours"),
        ("/api/dashboard/breakdown?by=model", "by"),
        ("/api/dashboard/breakdown?days=91", "days"),
        ("/api/dashboard/hourly-stats?hour=3", "hour"),
    ] {
        let answer = get(path.into(), root.key.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "{path}: {}", answer.text());
        assert!(answer.text().contains(word), "{path}: {}", answer.text());
    }
});
