//! The gateway alone on the embedded default (no aggregator process) closes statistics
//! hours and days itself (behaviour.md 9), and does not with `--no-aggregation`.

use std::process::Stdio;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use time::OffsetDateTime;
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_stats::BusinessCalendar;
use tollgate_testkit::fixtures;

use crate::gateway_support::{KillOnDrop, closed_port, gateway_in, wait_healthy};

const ADMIN_KEY: &str = "sk-closing-test-admin-0123456789abcdef";

fn start(dir: &std::path::Path, url: &str, port: u16, extra: &[&str]) -> KillOnDrop {
    KillOnDrop(
        gateway_in(dir, &format!("127.0.0.1:{port}"))
            .args(extra)
            .env("DATABASE_URL", url)
            .env("TOLLGATE_ADMIN_KEY", ADMIN_KEY)
            .env_remove("TOLLGATE_NO_AGGREGATION")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A migrated SQLite database in a fresh directory: the directory, the URL and a connection.
async fn sqlite_in_a_fresh_dir() -> (std::path::PathBuf, String, DatabaseConnection) {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-closing-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display());
    let conn = Database::connect(&url).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    (dir, url, conn)
}

async fn rows_in(conn: &DatabaseConnection, table: &str) -> i64 {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_gateway_alone_closes_hours_and_days() {
    let (dir, url, conn) = sqlite_in_a_fresh_dir().await;

    // Traffic two hours ago (an hour that has ended) and yesterday.
    let calendar = BusinessCalendar::utc();
    let now = OffsetDateTime::now_utc();
    let recent = now - time::Duration::hours(2);
    let recent_hour = calendar.hour_containing(recent).unwrap();
    let yesterday = calendar
        .previous(&calendar.day_containing(now).unwrap())
        .unwrap();
    for _ in 0..2 {
        fixtures::insert(&conn, fixtures::usage_row("gpt-recent", recent)).await;
    }
    for minute in 0..3 {
        let at = yesterday.start() + time::Duration::minutes(minute + 1);
        fixtures::insert(&conn, fixtures::usage_row("gpt-yesterday", at)).await;
    }
    let yesterday_requests = 3 + if yesterday.contains(recent) { 2 } else { 0 };

    tollgate_server::install_crypto_provider();
    let http = reqwest::Client::new();
    // With --no-aggregation nothing is closed.
    {
        let port = closed_port();
        let mut child = start(&dir, &url, port, &["--no-aggregation"]);
        wait_healthy(
            &http,
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(60),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            rows_in(&conn, "stats_hourly").await,
            0,
            "--no-aggregation closed hours"
        );
        assert_eq!(
            rows_in(&conn, "stats_daily").await,
            0,
            "--no-aggregation closed days"
        );
        let _ = child.0.kill();
        let _ = child.0.wait();
    }

    let port = closed_port();
    let _child = start(&dir, &url, port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &base, Duration::from_secs(60)).await;
    let recent_start = serde_json::to_value(
        time::OffsetDateTime::format(
            recent_hour.start(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap(),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let hourly = get(&http, &format!("{base}/api/dashboard/hourly-stats?hours=6")).await;
        let daily = get(&http, &format!("{base}/api/dashboard/daily-stats?days=2")).await;
        let hour = hourly["hours"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["hour"]["start"] == recent_start)
            .cloned()
            .unwrap_or_else(|| panic!("hour {recent_start} not in {hourly}"));
        let day = daily["days"][0].clone();
        if hour["source"] == "aggregated" && day["source"] == "aggregated" {
            assert_eq!(hour["stats"]["total_requests"], 2, "{hour}");
            assert_eq!(day["stats"]["total_requests"], yesterday_requests, "{day}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not close the hour and the day: {hour} {day}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        rows_in(&conn, "stats_hourly").await >= 3,
        "the last three hours are closed"
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A closing loop that fails on every cycle (the database rejects its writes: a statistics
/// table is gone) holds no request up: another user's next request is answered and recorded.
#[tokio::test]
async fn a_failing_closing_loop_stops_no_request() {
    let (dir, url, conn) = sqlite_in_a_fresh_dir().await;
    conn.execute_unprepared("ALTER TABLE stats_hourly RENAME TO stats_hourly_gone")
        .await
        .unwrap();
    let recent = OffsetDateTime::now_utc() - time::Duration::hours(2);
    fixtures::insert(&conn, fixtures::usage_row("gpt-recent", recent)).await;

    let mock = tollgate_server::mock::MockUpstream::start().await.unwrap();
    let client_key = format!("tg-client-{}", uuid::Uuid::new_v4().simple());
    let catalogue = serde_json::json!({
        "global_models": [{"name": "canary", "default_tiered_pricing": {"tiers": [
            {"up_to": null, "input_price_per_1m": 3.0, "output_price_per_1m": 15.0}]}}],
        "providers": [{"name": "healthy", "priority": 10, "endpoints": [
            {"api_format": "OPENAI", "base_url": mock.openai_base_url(),
             "keys": [{"name": "c", "api_key": crate::gateway_support::UPSTREAM_SECRET}]}],
            "models": [{"global_model": "canary", "provider_model_name": "canary"}]}],
        "users": [{"username": "bystander", "api_keys": [{"name": "k", "key": client_key}]}],
    });
    let path = dir.join("catalog.json");
    std::fs::write(&path, catalogue.to_string()).unwrap();

    tollgate_server::install_crypto_provider();
    let http = reqwest::Client::new();
    let port = closed_port();
    let catalog = path.display().to_string();
    let _child = start(&dir, &url, port, &["--catalog", &catalog]);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &base, Duration::from_secs(60)).await;
    // Let the loop try (and fail) its first cycle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answer = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&client_key)
        .header("content-type", "application/json")
        .body(crate::gateway_support::chat("canary", false))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "the request is answered");
    let request_id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let row = crate::gateway_support::wait_for_usage(&conn, &request_id, Duration::from_secs(10))
        .await
        .expect("the request is recorded while the loop fails");
    assert_eq!(row.model, "canary");
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
