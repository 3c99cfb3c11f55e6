//! Adopting an Aether database (behaviour.md 10): the fixture schema filled with
//! Aether-shaped rows is adopted, aggregated and compared with an independent computation of
//! Aether's definitions; a second start changes nothing; nothing of Aether's schema is
//! dropped, renamed or retyped; `adopt --dry-run` and `--no-migrate` change nothing; the
//! gateway refuses the database with one line.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use time::OffsetDateTime;
use tollgate_migrations::{
    DatabaseKind, Migrator, MigratorTraitReexport as _, SchemaError, StartOptions, prepare_database,
};
use tollgate_stats::{Aggregator, BusinessCalendar, BusinessDay};
use tollgate_testkit::{TestDb, aether};

use crate::gateway_support::gateway_binary;

/// Aether's default business time zone.
const ZONE: &str = "Asia/Shanghai";

const AGGREGATOR: StartOptions = StartOptions {
    migrate: true,
    accept_aether: true,
};

const CHECK_ONLY: StartOptions = StartOptions {
    migrate: false,
    accept_aether: true,
};

/// Aether's own summary row, under the random id Aether gave it.
const AETHER_SUMMARY_ID: &str = "5b0c7a52-2f4e-4d7e-9d55-0f6f0d7d9a11";

/// `sql` with its `$n` placeholders bound to `values`, for the (PostgreSQL) Aether database.
fn postgres(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn exec(db: &TestDb, sql: &str, values: Vec<Value>) {
    db.conn
        .execute_raw(postgres(sql, values))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// Rows of `sql` keyed by their first (text) column, the others read as doubles.
async fn keyed(db: &TestDb, sql: &str, values: Vec<Value>) -> BTreeMap<String, Vec<f64>> {
    let rows = db
        .conn
        .query_all_raw(postgres(sql, values))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    rows.iter()
        .map(|row| {
            let key: String = row.try_get_by_index(0).expect("key");
            let mut numbers = Vec::new();
            let mut index = 1;
            while let Ok(value) = row.try_get_by_index::<f64>(index) {
                numbers.push(value);
                index += 1;
            }
            (key, numbers)
        })
        .collect()
}

fn assert_close(
    what: &str,
    actual: &BTreeMap<String, Vec<f64>>,
    expected: &BTreeMap<String, Vec<f64>>,
) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: rows"
    );
    for (key, want) in expected {
        let have = &actual[key];
        assert_eq!(have.len(), want.len(), "{what} {key}: columns");
        for (column, (a, b)) in have.iter().zip(want).enumerate() {
            let tolerance = 1e-9 * a.abs().max(b.abs()).max(1.0);
            assert!(
                (a - b).abs() <= tolerance,
                "{what} {key} column {column}: tollgate {a}, Aether {b}"
            );
        }
    }
}

/// Users, client keys and three past business days of Aether-shaped traffic: rows with an
/// empty model name, an inactive user with traffic, an active user without, NULL token
/// counts and response times, errors by status and by message, fallbacks inside a day and
/// failovers that cross midnight; plus the rows Aether's own aggregator left (its summary
/// row and a day row under random ids, a zero row for a user without traffic).
async fn fill(db: &TestDb, days: &[BusinessDay]) {
    exec(
        db,
        "INSERT INTO users (id, email, username, password_hash, is_active) VALUES \
         ('u-active', 'a@x', 'active', 'h', true), ('u-idle', 'i@x', 'idle', 'h', true), \
         ('u-inactive', 'n@x', 'inactive', 'h', false)",
        vec![],
    )
    .await;
    exec(
        db,
        "INSERT INTO api_keys (id, user_id, key_hash, is_active) VALUES \
         ('k-1', 'u-active', 'h1', true), ('k-2', 'u-inactive', 'h2', false), \
         ('k-3', 'u-idle', 'h3', true)",
        vec![],
    )
    .await;
    let users = [Some("u-active"), Some("u-inactive"), None];
    let keys = [Some("k-1"), Some("k-2"), None, Some("k-3")];
    let models = ["claude-sonnet", "gpt-4o", "", "claude-sonnet", "deepseek"];
    let providers = ["anthropic", "openai", "azure"];
    let mut n = 0_i64;
    for day in days {
        for i in 0..40_i64 {
            n += 1;
            let at = day.start() + Duration::from_secs(u64::try_from(i * 2_143 + 7).unwrap());
            insert_usage(db, n, at, &users, &keys, &models, &providers).await;
        }
        // The last and first instants of the day.
        for (offset, edge) in [(-1_i64, day.end()), (0, day.end())] {
            n += 1;
            let at = edge + time::Duration::milliseconds(offset * 500);
            insert_usage(db, n, at, &users, &keys, &models, &providers).await;
        }
        // A fallback inside the day, a skipped candidate, and a failover crossing midnight.
        let noon = day.start() + Duration::from_secs(12 * 3_600);
        let late = day.end() - Duration::from_secs(5);
        let early = day.end() + Duration::from_secs(3);
        let tag = day.date().to_string();
        for (request, index, status, at) in [
            (format!("fb-{tag}"), 0, "failed", noon),
            (format!("fb-{tag}"), 1, "success", noon),
            (format!("one-{tag}"), 0, "success", noon),
            (format!("one-{tag}"), 1, "skipped", noon),
            (format!("mid-{tag}"), 0, "failed", late),
            (format!("mid-{tag}"), 1, "success", early),
        ] {
            exec(
                db,
                "INSERT INTO request_candidates (id, request_id, candidate_index, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    format!("{request}-{index}").into(),
                    request.into(),
                    index.into(),
                    status.into(),
                    at.into(),
                ],
            )
            .await;
        }
    }
    let first = days[0].start();
    exec(
        db,
        "INSERT INTO stats_summary (id, cutoff_date, all_time_requests) VALUES ($1, $2, 7)",
        vec![AETHER_SUMMARY_ID.into(), first.into()],
    )
    .await;
    exec(
        db,
        "INSERT INTO stats_daily (id, date, total_requests, updated_at) VALUES ('aether-day', $1, 3, $2)",
        vec![first.into(), days[0].end().into()],
    )
    .await;
    exec(
        db,
        "INSERT INTO stats_user_daily (id, user_id, date) VALUES ('aether-idle', 'u-idle', $1)",
        vec![first.into()],
    )
    .await;
}

async fn insert_usage(
    db: &TestDb,
    n: i64,
    at: OffsetDateTime,
    users: &[Option<&str>],
    keys: &[Option<&str>],
    models: &[&str],
    providers: &[&str],
) {
    let pick = |len: usize| usize::try_from(n).unwrap() % len;
    let tokens = |factor: i64| (n % 9 != 0).then_some(n * factor);
    #[expect(clippy::cast_precision_loss, reason = "small test numbers")]
    let cost = n as f64 * 0.001_3;
    exec(
        db,
        "INSERT INTO usage (id, request_id, user_id, api_key_id, model, provider, input_tokens, \
         output_tokens, cache_creation_input_tokens, cache_read_input_tokens, total_cost_usd, \
         actual_total_cost_usd, input_cost_usd, output_cost_usd, cache_creation_cost_usd, \
         cache_read_cost_usd, input_price_per_1m, status_code, error_message, response_time_ms, \
         created_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10 * 0.8, $10 * 0.5, \
         $10 * 0.3, $10 * 0.15, $10 * 0.05, $11, $12, $13, $14, $15)",
        vec![
            format!("req-{n}").into(),
            users[pick(users.len())].map(str::to_owned).into(),
            keys[pick(keys.len())].map(str::to_owned).into(),
            models[pick(models.len())].into(),
            providers[pick(providers.len())].into(),
            tokens(13).map(|t| i32::try_from(t).unwrap()).into(),
            tokens(7).map(|t| i32::try_from(t).unwrap()).into(),
            i32::try_from(n % 5).unwrap().into(),
            i32::try_from(n % 3).unwrap().into(),
            cost.into(),
            (n % 4 != 0).then_some(3.0_f64).into(),
            if n % 7 == 0 { 500_i32 } else { 200 }.into(),
            (n % 11 == 0).then(|| "upstream said no".to_owned()).into(),
            (n % 5 != 0)
                .then(|| i32::try_from(n * 37 % 3_000).unwrap())
                .into(),
            at.into(),
        ],
    )
    .await;
}

/// Aether's definitions, computed independently of tollgate (Aether's own queries: COUNT,
/// AVG, one grouped query per table), for one day.
async fn expected_day(db: &TestDb, day: &BusinessDay) -> [BTreeMap<String, Vec<f64>>; 3] {
    let range = || vec![Value::from(day.start()), Value::from(day.end())];
    let d = "CAST(COALESCE(SUM({}), 0) AS DOUBLE PRECISION)";
    let sum = |column: &str| d.replace("{}", column);
    let tokens = [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .map(sum)
    .join(", ");
    let error = "CAST(COUNT(*) FILTER (WHERE status_code >= 400 OR error_message IS NOT NULL) AS DOUBLE PRECISION)";
    let daily = keyed(
        db,
        &format!(
            "SELECT 'day', CAST(COUNT(*) AS DOUBLE PRECISION), {error}, {tokens}, {}, {}, {}, {}, {}, {}, \
             CAST(COALESCE(AVG(response_time_ms), 0) AS DOUBLE PRECISION), \
             CAST(COUNT(DISTINCT model) AS DOUBLE PRECISION), \
             CAST(COUNT(DISTINCT provider) AS DOUBLE PRECISION), \
             (SELECT CAST(COUNT(*) AS DOUBLE PRECISION) FROM (SELECT request_id FROM request_candidates \
              WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
              GROUP BY request_id HAVING COUNT(id) > 1) AS executed) \
             FROM usage WHERE created_at >= $1 AND created_at < $2",
            sum("total_cost_usd"),
            sum("actual_total_cost_usd"),
            sum("input_cost_usd"),
            sum("output_cost_usd"),
            sum("cache_creation_cost_usd"),
            sum("cache_read_cost_usd"),
        ),
        range(),
    )
    .await;
    // Aether skips the group of an empty model name.
    let models = keyed(
        db,
        &format!(
            "SELECT model, CAST(COUNT(id) AS DOUBLE PRECISION), {tokens}, {}, \
             CAST(COALESCE(AVG(response_time_ms), 0) AS DOUBLE PRECISION) \
             FROM usage WHERE created_at >= $1 AND created_at < $2 GROUP BY model HAVING model <> ''",
            sum("total_cost_usd"),
        ),
        range(),
    )
    .await;
    // The same query per user, here for every user with traffic (Aether ran it for each
    // active user, with or without traffic: the deliberate difference).
    let users = keyed(
        db,
        &format!(
            "SELECT user_id, CAST(COUNT(*) AS DOUBLE PRECISION), {error}, {tokens}, {} \
             FROM usage WHERE created_at >= $1 AND created_at < $2 AND user_id IS NOT NULL \
             GROUP BY user_id",
            sum("total_cost_usd"),
        ),
        range(),
    )
    .await;
    [daily, models, users]
}

/// What tollgate stored for one day, in the order of [`expected_day`].
async fn stored_day(db: &TestDb, day: &BusinessDay) -> [BTreeMap<String, Vec<f64>>; 3] {
    let cast = |columns: &str| {
        columns
            .split_whitespace()
            .map(|column| format!("CAST({column} AS DOUBLE PRECISION)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tokens = "input_tokens output_tokens cache_creation_tokens cache_read_tokens";
    let date = || vec![Value::from(day.start())];
    let daily = keyed(
        db,
        &format!(
            "SELECT 'day', {} FROM stats_daily WHERE date = $1",
            cast(&format!(
                "total_requests error_requests {tokens} total_cost actual_total_cost input_cost \
                 output_cost cache_creation_cost cache_read_cost avg_response_time_ms \
                 unique_models unique_providers fallback_count"
            ))
        ),
        date(),
    )
    .await;
    let models = keyed(
        db,
        &format!(
            "SELECT model, {} FROM stats_daily_model WHERE date = $1",
            cast(&format!(
                "total_requests {tokens} total_cost avg_response_time_ms"
            ))
        ),
        date(),
    )
    .await;
    let users = keyed(
        db,
        &format!(
            "SELECT user_id, {} FROM stats_user_daily WHERE date = $1",
            cast(&format!(
                "total_requests error_requests {tokens} total_cost"
            ))
        ),
        date(),
    )
    .await;
    [daily, models, users]
}

/// The business days before today, oldest first.
fn past_days(calendar: &BusinessCalendar, count: u32) -> Vec<BusinessDay> {
    let today = calendar
        .day_containing(OffsetDateTime::now_utc())
        .expect("today");
    let mut days = Vec::new();
    let mut day = today;
    for _ in 0..count {
        day = calendar.previous(&day).expect("previous day");
        days.push(day);
    }
    days.reverse();
    days
}

async fn aggregate(db: &TestDb, days: &[BusinessDay]) {
    let calendar = BusinessCalendar::new(ZONE).expect("zone");
    let stats = Aggregator::new(db.conn.clone(), calendar);
    for day in days {
        stats.aggregate_day(day).await.expect("aggregate a day");
    }
    stats.refresh_summary().await.expect("refresh the summary");
}

/// Compares every stats table with Aether's definitions, and the hourly and slice rollups
/// with the day totals.
async fn assert_aether_numbers(db: &TestDb, days: &[BusinessDay]) {
    for day in days {
        let stored = stored_day(db, day).await;
        let expected = expected_day(db, day).await;
        for (what, (have, want)) in ["stats_daily", "stats_daily_model", "stats_user_daily"]
            .iter()
            .zip(stored.iter().zip(&expected))
        {
            assert_close(&format!("{what} {}", day.date()), have, want);
        }
        assert!(expected[1].keys().all(|model| !model.is_empty()));
        assert!(
            stored[2].contains_key("u-inactive"),
            "inactive users' traffic counts"
        );
        assert!(
            !stored[2].contains_key("u-idle"),
            "no row for a user without traffic"
        );
        let total = expected[0]["day"][0];
        for table in ["stats_hourly", "stats_daily_provider"] {
            let time = if table == "stats_hourly" {
                "hour"
            } else {
                "date"
            };
            let sums = keyed(
                db,
                &format!(
                    "SELECT 'sum', CAST(COALESCE(SUM(total_requests), 0) AS DOUBLE PRECISION) \
                     FROM {table} WHERE {time} >= $1 AND {time} < $2"
                ),
                vec![day.start().into(), day.end().into()],
            )
            .await;
            assert_eq!(
                sums["sum"][0],
                total,
                "{table} adds up to the day on {}",
                day.date()
            );
        }
    }
    let summary = keyed(
        db,
        "SELECT id, CAST(all_time_requests AS DOUBLE PRECISION), \
         CAST(all_time_input_tokens AS DOUBLE PRECISION), all_time_cost, all_time_actual_cost, \
         CAST(total_users AS DOUBLE PRECISION), CAST(active_users AS DOUBLE PRECISION), \
         CAST(total_api_keys AS DOUBLE PRECISION), CAST(active_api_keys AS DOUBLE PRECISION) \
         FROM stats_summary",
        vec![],
    )
    .await;
    let cutoff = days.last().expect("a day").end();
    let expected = keyed(
        db,
        &format!(
            "SELECT '{AETHER_SUMMARY_ID}', CAST(SUM(total_requests) AS DOUBLE PRECISION), \
             CAST(SUM(input_tokens) AS DOUBLE PRECISION), SUM(total_cost), SUM(actual_total_cost), \
             (SELECT CAST(COUNT(id) AS DOUBLE PRECISION) FROM users), \
             (SELECT CAST(COUNT(id) AS DOUBLE PRECISION) FROM users WHERE is_active), \
             (SELECT CAST(COUNT(id) AS DOUBLE PRECISION) FROM api_keys), \
             (SELECT CAST(COUNT(id) AS DOUBLE PRECISION) FROM api_keys WHERE is_active) \
             FROM stats_daily WHERE date < $1"
        ),
        vec![cutoff.into()],
    )
    .await;
    assert_close(
        "stats_summary (Aether's row, updated in place)",
        &summary,
        &expected,
    );
    let kept = keyed(db, "SELECT id FROM stats_daily", vec![]).await;
    assert!(
        kept.contains_key("aether-day"),
        "Aether's day row is updated, not replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_aether_database_gets_aethers_numbers_and_keeps_its_schema() {
    let db = aether::database().await;
    let calendar = BusinessCalendar::new(ZONE).expect("zone");
    let days = past_days(&calendar, 3);
    fill(&db, &days).await;
    let before = aether::schema_snapshot(&db).await;

    let first = prepare_database(&db.conn, AGGREGATOR).await.expect("adopt");
    assert_eq!(first.kind, DatabaseKind::Aether);
    for wanted in [
        "table stats_hourly",
        "column usage.global_model",
        "column stats_daily.unpriced_requests",
    ] {
        assert!(
            first.changed.iter().any(|c| c == wanted),
            "{wanted} in {:?}",
            first.changed
        );
    }
    let adopted = aether::schema_snapshot(&db).await;
    let lost: Vec<&String> = before.difference(&adopted).collect();
    assert!(lost.is_empty(), "adoption changed or removed: {lost:?}");

    aggregate(&db, &days).await;
    assert_aether_numbers(&db, &days).await;

    // A second start: nothing to do, nothing changed, the same numbers again.
    let second = prepare_database(&db.conn, AGGREGATOR)
        .await
        .expect("second start");
    assert_eq!(second.kind, DatabaseKind::Adopted);
    assert!(second.changed.is_empty(), "{:?}", second.changed);
    assert_eq!(aether::schema_snapshot(&db).await, adopted);
    prepare_database(&db.conn, CHECK_ONLY)
        .await
        .expect("--no-migrate accepts an adopted database");
    aggregate(&db, &days).await;
    assert_aether_numbers(&db, &days).await;
    let summaries = keyed(&db, "SELECT id FROM stats_summary", vec![]).await;
    assert_eq!(summaries.len(), 1, "one summary row: {summaries:?}");

    // Undoing the adoption gives Aether's schema back.
    tollgate_migrations::unadopt_aether(&db.conn)
        .await
        .expect("unadopt");
    assert_eq!(aether::schema_snapshot(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_dry_run_prints_the_statements_and_changes_nothing() {
    let db = aether::database().await;
    let before = aether::schema_snapshot(&db).await;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "-p",
            "tollgate-migrations",
            "--",
            "adopt",
            "--dry-run",
        ])
        .env("DATABASE_URL", db.url())
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for wanted in [
        "ALTER TABLE \"usage\" ADD COLUMN IF NOT EXISTS \"global_model\" varchar(100) NULL;",
        "CREATE TABLE IF NOT EXISTS \"stats_hourly\" (",
        "CREATE INDEX IF NOT EXISTS \"idx_request_candidates_created_at\"",
        "-- DROP TABLE IF EXISTS \"stats_hourly\";",
    ] {
        assert!(stdout.contains(wanted), "{wanted} not in:\n{stdout}");
    }
    assert_eq!(aether::schema_snapshot(&db).await, before);
    let plan = tollgate_migrations::adoption_plan(&db.conn)
        .await
        .expect("plan");
    assert_eq!(
        plan.statements
            .iter()
            .map(|s| format!("{s};"))
            .collect::<Vec<_>>(),
        stdout
            .lines()
            .filter(|line| !line.starts_with("--"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_migrate_names_what_is_missing_and_changes_nothing() {
    let db = aether::database().await;
    let before = aether::schema_snapshot(&db).await;
    let error = prepare_database(&db.conn, CHECK_ONLY)
        .await
        .expect_err("an Aether database lacks tollgate's tables");
    assert!(matches!(error, SchemaError::Lacking { .. }), "{error}");
    let message = error.to_string();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("table usage_dead_letters"), "{message}");
    assert_eq!(aether::schema_snapshot(&db).await, before);

    // A tollgate database one migration behind.
    let tollgate = TestDb::postgres().await;
    Migrator::down(&tollgate.conn, Some(1))
        .await
        .expect("down one");
    let before = aether::schema_snapshot(&tollgate).await;
    let message = prepare_database(&tollgate.conn, CHECK_ONLY)
        .await
        .expect_err("one migration behind")
        .to_string();
    let last = Migrator::migrations()
        .last()
        .map(|migration| migration.name().to_owned())
        .expect("migrations");
    assert!(message.contains(&format!("migration {last}")), "{message}");
    assert_eq!(aether::schema_snapshot(&tollgate).await, before);
}

/// Runs the gateway binary on `url` with `args` until it exits (at most a minute).
fn run_gateway(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(gateway_binary())
        .args(args)
        .env("DATABASE_URL", url)
        .env("TOLLGATE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway did not stop on a database it must refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_an_aether_database_in_one_line() {
    let db = aether::database().await;
    let before = aether::schema_snapshot(&db).await;
    for args in [&[][..], &["--no-migrate"][..]] {
        let (code, stderr) = run_gateway(db.url(), args);
        assert_eq!(code, Some(1), "{stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("tollgate-gateway:"))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("cannot use an Aether database"),
            "{stderr}"
        );
    }
    assert_eq!(aether::schema_snapshot(&db).await, before);

    let empty = TestDb::postgres_empty().await;
    let (code, stderr) = run_gateway(empty.url(), &["--no-migrate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--no-migrate: the database lacks every tollgate table"),
        "{stderr}"
    );
    assert!(
        aether::schema_snapshot(&empty).await.is_empty(),
        "nothing created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_and_foreign_databases_are_told_apart() {
    let db = TestDb::postgres_empty().await;
    let first = prepare_database(&db.conn, AGGREGATOR).await.expect("fresh");
    assert_eq!(first.kind, DatabaseKind::Fresh);
    let second = prepare_database(&db.conn, AGGREGATOR).await.expect("again");
    assert_eq!(
        (second.kind, second.changed.len()),
        (DatabaseKind::Tollgate, 0)
    );

    // A failed start's empty history is still a fresh database; unknown tables are refused.
    let other = TestDb::postgres_empty().await;
    exec(
        &other,
        "CREATE TABLE seaql_migrations (version varchar PRIMARY KEY, applied_at bigint)",
        vec![],
    )
    .await;
    assert_eq!(
        tollgate_migrations::database_kind(&other.conn)
            .await
            .expect("kind"),
        DatabaseKind::Fresh
    );
    exec(
        &other,
        "CREATE TABLE users (id varchar(36) PRIMARY KEY)",
        vec![],
    )
    .await;
    let error = prepare_database(&other.conn, AGGREGATOR)
        .await
        .expect_err("unknown tables");
    assert!(error.to_string().contains("(users)"), "{error}");
    let tables: BTreeSet<String> = aether::schema_snapshot(&other)
        .await
        .into_iter()
        .filter(|line| line.starts_with("table "))
        .collect();
    assert_eq!(tables.len(), 2, "nothing created: {tables:?}");
}

/// The `table.column` names of a snapshot's column lines.
fn column_names(snapshot: &BTreeSet<String>) -> BTreeSet<String> {
    aether::columns(snapshot)
        .iter()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_leaves_no_tollgate_table_or_column_missing() {
    let tollgate = TestDb::postgres().await;
    let db = aether::database().await;
    prepare_database(&db.conn, AGGREGATOR).await.expect("adopt");
    let wanted = column_names(&aether::schema_snapshot(&tollgate).await);
    let have = column_names(&aether::schema_snapshot(&db).await);
    let missing: Vec<&String> = wanted.difference(&have).collect();
    assert!(missing.is_empty(), "an adopted database lacks {missing:?}");
    let plan = tollgate_migrations::adoption_plan(&db.conn)
        .await
        .expect("plan");
    assert!(plan.is_empty(), "{:?}", plan.missing);
}
