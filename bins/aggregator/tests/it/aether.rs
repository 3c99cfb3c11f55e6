//! The binary on an Aether database: `--no-migrate` stops with one line naming what is
//! missing and changes nothing; a plain start adopts the database and aggregates into
//! Aether's own summary row.

use std::process::{Command, Output, Stdio};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tollgate_testkit::aether;

fn aggregator(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate-aggregator"))
        .args(["--database-url", url, "--timezone", "Asia/Shanghai"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_migrate_on_an_aether_database_names_what_is_missing() {
    let db = aether::database().await;
    let before = aether::schema_snapshot(&db).await;
    for command in ["summary", "daily", "backfill"] {
        let output = aggregator(db.url(), &["--no-migrate", command]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains("--no-migrate: the database lacks table"),
            "{stderr}"
        );
    }
    assert_eq!(aether::schema_snapshot(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_adopts_and_the_summary_updates_aethers_row() {
    let db = aether::database().await;
    db.conn
        .execute_unprepared(
            "INSERT INTO stats_summary (id, cutoff_date) VALUES ('aether-summary', now())",
        )
        .await
        .expect("Aether's summary row");
    for command in [
        &["backfill", "--days", "3"][..],
        &["summary"][..],
        &["daily"][..],
    ] {
        let output = aggregator(db.url(), command);
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM stats_summary",
        ))
        .await
        .expect("summary rows");
    let ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get_by_index(0).expect("id"))
        .collect();
    assert_eq!(ids, ["aether-summary"]);
    let output = aggregator(db.url(), &["--no-migrate", "summary"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
