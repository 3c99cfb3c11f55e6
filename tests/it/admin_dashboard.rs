//! The dashboard API equals what the aggregator's own functions compute for the same data,
//! in a non-UTC business time zone, and a user never sees another user's numbers.

use axum::http::Method;
use sea_orm::DatabaseConnection;
use tollgate_entities::usage;
use tollgate_server::Gateway;
use tollgate_stats::{Aggregator, BreakdownBy, BusinessCalendar, BusinessDay};
use tollgate_testkit::{db_test, fixtures};

use crate::admin_support::{admin, call};
use crate::gateway_support::{Answer, Client, client};

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

/// Asserts that `answer` is a 200 whose `field` is close to `expected`.
fn assert_answers(answer: &Answer, field: &str, expected: &serde_json::Value, at: &str) {
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    assert_close(&answer.json()[field], expected, at);
}

/// The calendar of business time zone `zone` and an aggregator over `conn` in it.
fn aggregator(conn: &DatabaseConnection, zone: &str) -> (BusinessCalendar, Aggregator) {
    let calendar = BusinessCalendar::new(zone).unwrap();
    let stats = Aggregator::new(conn.clone(), calendar.clone());
    (calendar, stats)
}

/// An admin (`root`) and two users (`alice`, `bob`), each with a client key.
async fn people(conn: &DatabaseConnection) -> [Client; 3] {
    [
        admin(conn, "root").await,
        client(conn, "alice").await,
        client(conn, "bob").await,
    ]
}

/// Inserts, for each `(day, user, label, count)`, `count` usage rows of `user`'s key
/// `spacing` apart from the day's start: `make(at, label, n, i)` makes the row numbered `n`
/// (from 1, across all groups) that is the `i`th of its group.
async fn insert_usage(
    conn: &DatabaseConnection,
    groups: &[(&BusinessDay, &Client, &str, i32)],
    spacing: time::Duration,
    make: impl Fn(time::OffsetDateTime, &str, i32, i32) -> usage::Model,
) {
    let mut n = 0_i32;
    for &(day, user, label, count) in groups {
        for i in 0..count {
            n += 1;
            let mut row = make(day.start() + spacing * i, label, n, i);
            row.user_id = Some(user.user_id.clone());
            row.api_key_id = Some(user.key_id.clone());
            fixtures::insert(conn, row).await;
        }
    }
}

/// The gateway over `conn` in `calendar`, asked as one client or another.
struct Dashboard(Gateway);

impl Dashboard {
    fn new(conn: &DatabaseConnection, calendar: &BusinessCalendar) -> Self {
        Dashboard(
            Gateway::builder(conn.clone())
                .business_calendar(calendar.clone())
                .build()
                .unwrap(),
        )
    }

    /// `GET path` with the client key `key`.
    async fn get(&self, path: String, key: String) -> Answer {
        call(&self.0, Method::GET, &path, Some(&key), None).await
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
    let (calendar, stats) = aggregator(conn, "Asia/Shanghai");
    let today = stats.today().unwrap();
    let yesterday = calendar.previous(&today).unwrap();
    let before = calendar.previous(&yesterday).unwrap();

    let [root, alice, bob] = people(conn).await;
    let groups = [
        (&before, &alice, "gpt-a", 3),
        (&before, &bob, "gpt-b", 2),
        (&yesterday, &alice, "gpt-b", 4),
        (&yesterday, &bob, "gpt-a", 1),
        (&today, &alice, "gpt-a", 2),
        (&today, &bob, "gpt-b", 5),
    ];
    insert_usage(conn, &groups, time::Duration::seconds(1), |at, model, n, i| {
        let mut row = fixtures::usage_row(model, at);
        row.input_tokens = 100 * n;
        row.output_tokens = 10 * n;
        row.total_tokens = 110 * n;
        row.total_cost_usd = f64::from(n) / 100.0;
        row.actual_total_cost_usd = f64::from(n) / 200.0;
        if i == 0 {
            row.status_code = Some(500);
            row.error_message = Some("upstream failed".into());
        }
        row
    })
    .await;
    // The oldest day is aggregated; yesterday is not (reported not aggregated); today is live.
    stats.aggregate_day(&before).await.unwrap();
    stats.refresh_summary().await.unwrap();

    let dashboard = Dashboard::new(conn, &calendar);

    let daily = dashboard.get("/api/dashboard/daily-stats?days=3".into(), root.key.clone()).await;
    let expected = serde_json::to_value(stats.daily_series(3).await.unwrap()).unwrap();
    assert_answers(&daily, "days", &expected, "daily");
    assert_eq!(daily.json()["timezone"], "Asia/Shanghai");
    assert_eq!(expected.as_array().unwrap().len(), 3);

    let combined = dashboard.get("/api/dashboard/stats".into(), root.key.clone()).await;
    assert_eq!(combined.status.as_u16(), 200, "{}", combined.text());
    let expected = serde_json::to_value(stats.combined().await.unwrap()).unwrap();
    assert_close(&without_as_of(combined.json()), &without_as_of(expected), "combined");

    let own = dashboard.get(format!("/api/dashboard/users/{}/daily-stats?days=3", alice.user_id), alice.key.clone()).await;
    let alice_expected = serde_json::to_value(stats.user_daily_series(&alice.user_id, 3).await.unwrap()).unwrap();
    assert_answers(&own, "days", &alice_expected, "alice");

    // Bob's own numbers differ from Alice's, and the per-caller cache never hands him hers.
    let bob_own = dashboard.get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), bob.key.clone()).await;
    let bob_expected = serde_json::to_value(stats.user_daily_series(&bob.user_id, 3).await.unwrap()).unwrap();
    assert_close(&bob_own.json()["days"], &bob_expected, "bob");
    assert_ne!(bob_expected, alice_expected);

    let forbidden = dashboard.get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), alice.key.clone()).await;
    assert_eq!(forbidden.status.as_u16(), 403, "{}", forbidden.text());
    assert_eq!(dashboard.get("/api/dashboard/stats".into(), alice.key.clone()).await.status.as_u16(), 403);
    assert_eq!(dashboard.get("/api/dashboard/daily-stats".into(), bob.key.clone()).await.status.as_u16(), 403);
    let by_admin = dashboard.get(format!("/api/dashboard/users/{}/daily-stats?days=3", bob.user_id), root.key.clone()).await;
    assert_close(&by_admin.json()["days"], &bob_expected, "bob by admin");
    assert_eq!(dashboard.get("/api/dashboard/users/nobody/daily-stats".into(), root.key.clone()).await.status.as_u16(), 404);

    for bad in ["0", "91", "abc", "-1"] {
        let answer = dashboard.get(format!("/api/dashboard/daily-stats?days={bad}"), root.key.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "days={bad}: {}", answer.text());
        assert!(answer.text().contains("days"));
    }
});

db_test!(async fn hourly_breakdown_and_key_routes_equal_the_aggregators(db) {
    let conn = &db.conn;
    let [root, alice, bob] = people(conn).await;
    let (calendar, stats) = aggregator(conn, "Asia/Kolkata");
    let today = stats.today().unwrap();
    let yesterday = calendar.previous(&today).unwrap();
    let groups = [
        (&yesterday, &alice, "prov-a", 3),
        (&yesterday, &bob, "prov-b", 2),
        (&today, &alice, "prov-b", 4),
        (&today, &bob, "prov-a", 1),
    ];
    insert_usage(conn, &groups, time::Duration::minutes(1), |at, provider, n, _| {
        let mut row = fixtures::usage_row("gpt-x", at);
        row.provider = provider.to_owned();
        row.total_cost_usd = f64::from(n) / 100.0;
        row.response_time_ms = Some(100 * n);
        row
    })
    .await;
    stats.aggregate_day(&yesterday).await.unwrap();

    let dashboard = Dashboard::new(conn, &calendar);

    let hourly = dashboard.get("/api/dashboard/hourly-stats?hours=30".into(), root.key.clone()).await;
    let expected = serde_json::to_value(stats.hourly_series(30).await.unwrap()).unwrap();
    assert_answers(&hourly, "hours", &expected, "hourly");
    assert_eq!(expected.as_array().unwrap().len(), 30);
    assert_eq!(hourly.json()["timezone"], "Asia/Kolkata");

    for (by, kind) in [("provider", BreakdownBy::Provider), ("api_key", BreakdownBy::ApiKey)] {
        let answer = dashboard.get(format!("/api/dashboard/breakdown?by={by}&days=2"), root.key.clone()).await;
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

    let own = dashboard.get(format!("/api/dashboard/keys/{}/daily-stats?days=2", alice.key_id), alice.key.clone()).await;
    let expected = serde_json::to_value(stats.api_key_daily_series(&alice.key_id, 2).await.unwrap()).unwrap();
    assert_answers(&own, "days", &expected, "alice's key");
    assert_eq!(own.json()["days"][0]["stats"]["total_requests"], 3);
    assert_eq!(own.json()["days"][1]["stats"]["total_requests"], 4, "today, live for one key");
    let other = dashboard.get(format!("/api/dashboard/keys/{}/daily-stats", alice.key_id), bob.key.clone()).await;
    assert_eq!(other.status.as_u16(), 403, "{}", other.text());
    let by_admin = dashboard.get(format!("/api/dashboard/keys/{}/daily-stats?days=2", alice.key_id), root.key.clone()).await;
    assert_close(&by_admin.json()["days"], &expected, "alice's key by admin");
    assert_eq!(dashboard.get("/api/dashboard/keys/nokey/daily-stats".into(), root.key.clone()).await.status.as_u16(), 404);
    // A user cannot probe which key ids exist.
    assert_eq!(dashboard.get("/api/dashboard/keys/nokey/daily-stats".into(), bob.key.clone()).await.status.as_u16(), 403);
    assert_eq!(dashboard.get("/api/dashboard/hourly-stats".into(), alice.key.clone()).await.status.as_u16(), 403);
    assert_eq!(dashboard.get("/api/dashboard/breakdown".into(), bob.key.clone()).await.status.as_u16(), 403);

    for (path, word) in [
        ("/api/dashboard/hourly-stats?hours=0", "hours"),
        ("/api/dashboard/hourly-stats?hours=169", "hours"),
        ("/api/dashboard/hourly-stats?hours=x", "hours"),
        ("/api/dashboard/breakdown?by=model", "by"),
        ("/api/dashboard/breakdown?days=91", "days"),
        ("/api/dashboard/hourly-stats?hour=3", "hour"),
    ] {
        let answer = dashboard.get(path.into(), root.key.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "{path}: {}", answer.text());
        assert!(answer.text().contains(word), "{path}: {}", answer.text());
    }
});
