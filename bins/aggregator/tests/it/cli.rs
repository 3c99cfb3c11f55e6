//! The binary's commands and exit codes (0 success, 1 failure, 2 bad usage).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tollgate_testkit::{TestDb, fixtures};

fn aggregator(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate-aggregator"))
        .args(["--database-url", url])
        .args(args)
        .env_remove("TOLLGATE_TIMEZONE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A usage error is exactly one line that names the option, and exit code 2.
fn assert_usage_error(output: &Output, option: &str) {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got {text:?}");
    assert!(lines[0].starts_with("error: "), "{text}");
    assert!(lines[0].contains(option), "names {option}: {text}");
    assert!(!text.contains("panicked"));
}

#[test]
fn bad_timezone_is_a_one_line_usage_error() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{}", std::process::id()));
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.with_extension("tz.db").display()
    );
    assert_usage_error(
        &aggregator(&url, &["--timezone", "Mars/Olympus", "summary"]),
        "--timezone",
    );
    let from_env = Command::new(env!("CARGO_BIN_EXE_tollgate-aggregator"))
        .args(["--database-url", &url, "summary"])
        .env("TOLLGATE_TIMEZONE", "Not/AZone")
        .output()
        .unwrap();
    assert_usage_error(&from_env, "TOLLGATE_TIMEZONE");
    // Nothing was created for a command that never ran.
    assert!(!dir.with_extension("tz.db").exists());
}

#[test]
fn bad_date_is_a_one_line_usage_error() {
    let url = "sqlite:///nonexistent-dir/never.db?mode=rwc";
    for date in ["2025-02-30", "2025-13-01", "yesterday", "20250101"] {
        assert_usage_error(&aggregator(url, &["daily", "--date", date]), "--date");
    }
    assert_usage_error(&aggregator(url, &["daemon", "--at", "25:00"]), "--at");
    assert_usage_error(
        &aggregator("mysql://localhost/x", &["summary"]),
        "--database-url",
    );
}

#[test]
fn clap_usage_errors_exit_2() {
    let url = "sqlite:///nonexistent-dir/never.db?mode=rwc";
    assert_eq!(aggregator(url, &["bogus"]).status.code(), Some(2));
    assert_eq!(
        aggregator(url, &["show", "--days", "0"]).status.code(),
        Some(2)
    );
}

#[test]
fn unreachable_database_exits_1() {
    let output = aggregator("sqlite:///nonexistent-dir/never.db?mode=ro", &["summary"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("--database-url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_summary_and_show_on_a_sqlite_file() {
    let db = TestDb::sqlite().await;
    let now = OffsetDateTime::now_utc();
    let yesterday = now.date().previous_day().unwrap().midnight().assume_utc();
    let user = fixtures::insert(&db.conn, fixtures::user("cli")).await;
    for minutes in [0_i64, 60, 600] {
        let mut row = fixtures::usage_row("gpt-4o", yesterday + time::Duration::minutes(minutes));
        row.user_id = Some(user.id.clone());
        fixtures::insert(&db.conn, row).await;
    }

    let daily = aggregator(db.url(), &["daily"]);
    assert_eq!(daily.status.code(), Some(0), "{}", stderr(&daily));
    let date = format!("{}", yesterday.date());
    let explicit = aggregator(db.url(), &["daily", "--date", &date]);
    assert_eq!(explicit.status.code(), Some(0), "{}", stderr(&explicit));
    let summary = aggregator(db.url(), &["summary"]);
    assert_eq!(summary.status.code(), Some(0), "{}", stderr(&summary));

    let show = aggregator(db.url(), &["show", "--days", "3"]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let table = String::from_utf8(show.stdout).unwrap();
    assert_eq!(table.lines().count(), 4, "a header and three days: {table}");

    let json = aggregator(db.url(), &["show", "--days", "2", "--json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let entries: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["day"]["date"], date.as_str());
    assert_eq!(entries[0]["source"], "aggregated");
    assert_eq!(entries[0]["stats"]["total_requests"], 3);
    assert_eq!(entries[0]["models"][0]["model"], "gpt-4o");
    assert_eq!(entries[1]["source"], "today");

    let today = aggregator(db.url(), &["today", "--json"]);
    assert_eq!(today.status.code(), Some(0), "{}", stderr(&today));
    let backfill = aggregator(db.url(), &["backfill", "--days", "4"]);
    assert_eq!(backfill.status.code(), Some(0), "{}", stderr(&backfill));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_stops_cleanly_on_sigterm() {
    let db = TestDb::sqlite().await;
    let metrics = std::env::temp_dir().join(format!("tollgate-metrics-{}.prom", uuid_like()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-aggregator"))
        .args(["--database-url", db.url(), "--metrics-file"])
        .arg(&metrics)
        .args(["daemon", "--catch-up-days", "3", "--refresh-today", "10"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the catch-up to have written the metrics file, then ask it to stop.
    let started = Instant::now();
    while !metrics.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon never finished its catch-up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("aggregator_runs_total{result=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("aggregator_last_success_timestamp_seconds"),
        "{text}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "daemon did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("daemon stopped"));
    let _ = std::fs::remove_file(metrics);
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}
