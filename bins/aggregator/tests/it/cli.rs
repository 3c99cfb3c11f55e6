//! The binary's commands and exit codes (0 success, 1 failure, 2 bad usage).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sea_orm::EntityTrait as _;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_closes_the_last_hours_on_a_sqlite_file() {
    let db = TestDb::sqlite().await;
    let now = OffsetDateTime::now_utc();
    // Two hours ago is in one of the last three ended (UTC) hours.
    let at = now - time::Duration::hours(2);
    for _ in 0..2 {
        fixtures::insert(&db.conn, fixtures::usage_row("gpt-4o", at)).await;
    }
    let output = aggregator(db.url(), &["hourly"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("closed 3 hours from "), "{text}");
    assert!(text.trim_end().ends_with(": 2 requests"), "{text}");
    let hour = at
        .replace_minute(0)
        .unwrap()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap();
    let rows = tollgate_entities::stats_hourly::Entity::find()
        .all(&db.conn)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|row| row.hour == hour)
        .expect("the hour's row");
    assert_eq!(row.total_requests, 2);
    assert_eq!(rows.len(), 3, "three hours closed");
    let zero = aggregator(db.url(), &["hourly", "--hours", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert!(stderr(&zero).contains("--hours"), "{}", stderr(&zero));
}

/// Rows of `usage` and `request_candidates` in the database.
async fn raw_counts(db: &TestDb) -> (u64, u64) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    use tollgate_entities::{request_candidates, usage};
    (
        usage::Entity::find().count(&db.conn).await.unwrap(),
        request_candidates::Entity::find()
            .count(&db.conn)
            .await
            .unwrap(),
    )
}

/// `prune` on `db`: usage errors exit 2, the JSON report, what is deleted and kept, and a
/// pruned day refused by `daily`.
async fn prune_on(db: &TestDb) {
    let today = OffsetDateTime::now_utc().date();
    let midnight = |days_ago: i64| {
        (today - time::Duration::days(days_ago))
            .midnight()
            .assume_utc()
    };
    // Five days ago: aggregated. Four days ago: never aggregated. Yesterday: aggregated but
    // within the retention.
    for (days_ago, rows) in [(5, 3), (4, 2), (1, 4)] {
        for i in 0..rows {
            let at = midnight(days_ago) + time::Duration::minutes(10 * i);
            let row = fixtures::insert(&db.conn, fixtures::usage_row("gpt-4o", at)).await;
            let candidate = fixtures::candidate_row(
                &row.request_id,
                tollgate_entities::CandidateStatus::Success,
                at,
            );
            fixtures::insert(&db.conn, candidate).await;
        }
    }
    for days_ago in [5, 1] {
        let date = midnight(days_ago).date().to_string();
        let daily = aggregator(db.url(), &["daily", "--date", &date]);
        assert_eq!(daily.status.code(), Some(0), "{}", stderr(&daily));
    }

    for args in [
        &["prune", "--keep-days", "0"][..],
        &["prune"],
        &["prune", "--keep-days", "2", "--batch-rows", "0"],
    ] {
        let output = aggregator(db.url(), args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(raw_counts(db).await, (9, 9), "usage errors delete nothing");

    let json = aggregator(
        db.url(),
        &["prune", "--keep-days", "2", "--batch-rows", "2", "--json"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let date = |days_ago: i64| serde_json::Value::from(midnight(days_ago).date().to_string());
    assert_eq!(report["pruned"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["pruned"][0]["date"], date(5));
    assert_eq!(report["skipped"][0]["date"], date(4));
    assert_eq!(report["usage_rows_deleted"], 3);
    assert_eq!(report["candidate_rows_deleted"], 3);
    // Three rows per table in batches of two: 2 + 1.
    assert_eq!(report["batches"], 4);
    assert_eq!(report["stopped"], false);
    assert_eq!(raw_counts(db).await, (6, 6));

    let line = aggregator(db.url(), &["prune", "--keep-days", "2"]);
    assert_eq!(line.status.code(), Some(0), "{}", stderr(&line));
    let text = String::from_utf8(line.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    // The walk starts at the oldest row left, four days ago: nothing more to delete.
    let cutoff = midnight(2).date().to_string();
    assert!(
        text.starts_with(&format!("pruned 0 days before {cutoff}: deleted 0 usage")),
        "{text}"
    );
    assert!(
        text.contains("kept 2 days without complete rollups"),
        "{text}"
    );

    let refused = aggregator(
        db.url(),
        &["daily", "--date", &midnight(5).date().to_string()],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("was pruned"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_on_sqlite_and_postgres() {
    prune_on(&TestDb::sqlite().await).await;
    prune_on(&TestDb::postgres().await).await;
}

#[cfg(unix)]
/// Starts `daemon --catch-up-days 3 --refresh-today 10 [daemon options]` on `db` with
/// `global` options.
fn start_daemon(db: &TestDb, global: &[&str], daemon: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tollgate-aggregator"))
        .args(["--database-url", db.url()])
        .args(global)
        .args(["daemon", "--catch-up-days", "3", "--refresh-today", "10"])
        .args(daemon)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and checks the daemon exits 0 within 20 s, saying so.
async fn stop_daemon(mut child: std::process::Child) {
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
}

/// The run metrics after the daemon's catch-up.
fn assert_caught_up(text: &str) {
    for metric in [
        "aggregator_runs_total{result=\"success\"} 1",
        "aggregator_last_success_timestamp_seconds",
    ] {
        assert!(text.contains(metric), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_stops_cleanly_on_sigterm() {
    let db = TestDb::sqlite().await;
    let metrics = std::env::temp_dir().join(format!("tollgate-metrics-{}.prom", uuid_like()));
    let metrics_arg = metrics.display().to_string();
    let child = start_daemon(&db, &["--metrics-file", &metrics_arg], &[]);
    // Wait for the catch-up to have written the metrics file, then ask it to stop.
    let started = Instant::now();
    while !metrics.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon never finished its catch-up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_caught_up(&std::fs::read_to_string(&metrics).unwrap());
    stop_daemon(child).await;
    let _ = std::fs::remove_file(metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_prunes_after_its_run() {
    let db = TestDb::sqlite().await;
    // Two days ago: aggregated by the catch-up, then older than `--keep-days 1`.
    let old = (OffsetDateTime::now_utc().date() - time::Duration::days(2))
        .midnight()
        .assume_utc();
    for minutes in [0_i64, 30, 90] {
        let at = old + time::Duration::minutes(minutes);
        fixtures::insert(&db.conn, fixtures::usage_row("gpt-4o", at)).await;
    }
    let metrics = std::env::temp_dir().join(format!("tollgate-metrics-{}.prom", uuid_like()));
    let metrics_arg = metrics.display().to_string();
    let child = start_daemon(
        &db,
        &["--metrics-file", &metrics_arg],
        &["--keep-days", "1"],
    );
    let started = Instant::now();
    let pruned = "aggregator_pruned_rows_total{table=\"usage\"} 3";
    while !std::fs::read_to_string(&metrics).is_ok_and(|text| text.contains(pruned)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon never pruned: {:?}",
            std::fs::read_to_string(&metrics)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(raw_counts(&db).await, (0, 0));
    stop_daemon(child).await;
    let _ = std::fs::remove_file(metrics);
}

/// `GET /metrics` over a plain connection; `None` until something answers 200.
fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer
        .starts_with("HTTP/1.1 200")
        .then(|| {
            answer
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_owned())
        })
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_serves_its_metrics_over_http() {
    let db = TestDb::sqlite().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = start_daemon(&db, &["--metrics-listen", &addr], &[]);
    let started = Instant::now();
    let text = loop {
        if let Some(text) = scrape(&addr).filter(|text| text.contains("aggregator_runs_total")) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no metrics at http://{addr}/metrics after the catch-up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_caught_up(&text);
    stop_daemon(child).await;
}

#[test]
fn a_metrics_address_in_use_fails_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("tollgate-cli-metrics-{}", uuid_like()));
    let url = format!("sqlite://{}?mode=rwc", dir.with_extension("db").display());
    let output = aggregator(&url, &["--metrics-listen", &addr, "summary"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("--metrics-listen"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    // A malformed address is clap's usage error: exit 2, naming the option first.
    let malformed = aggregator(&url, &["--metrics-listen", "not-an-address", "summary"]);
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));
    let first = stderr(&malformed)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        first.starts_with("error: ") && first.contains("--metrics-listen"),
        "{first}"
    );
    let _ = std::fs::remove_file(dir.with_extension("db"));
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}
