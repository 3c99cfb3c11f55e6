//! The writer against SQLite and PostgreSQL: a refused record among good ones, references to
//! deleted rows, the dead-letter file, transient failures, shutdown, and replay.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};
use tollgate_entities::{
    ApiFormat, CandidateStatus, api_keys, request_candidates, usage, usage_dead_letters, users,
};
use tollgate_testkit::writer::{
    TempDir, accept_every_model, assert_references_nulled, refuse_model,
};
use tollgate_testkit::{Backend, TestDb, db_test, fixtures};

use super::dead_letter::FILE_NAME;
use super::{UsageRecord, UsageSender, WriterConfig, WriterHandle, spawn};

/// The writer's dead-letter file in a test directory.
trait DeadLetterFile {
    fn file(&self) -> PathBuf;

    /// The lines of the dead-letter file (none when it does not exist).
    fn lines(&self) -> Vec<usage_dead_letters::Model>;
}

impl DeadLetterFile for TempDir {
    fn file(&self) -> PathBuf {
        self.path().join(FILE_NAME)
    }

    fn lines(&self) -> Vec<usage_dead_letters::Model> {
        match std::fs::read_to_string(self.file()) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn config(dir: &Path) -> WriterConfig {
    WriterConfig {
        retry_max: Duration::from_millis(100),
        linger: Duration::from_millis(50),
        dead_letter_dir: dir.to_owned(),
        ..WriterConfig::default()
    }
}

/// A writer over `conn` whose dead letters go to a fresh directory.
fn start(conn: DatabaseConnection) -> (TempDir, UsageSender, WriterHandle) {
    let dir = TempDir::new("tollgate-dead");
    let (sender, handle) = spawn(conn, config(dir.path()));
    (dir, sender, handle)
}

/// A record for `model` with one candidate row, owned by `owner` when given.
fn record(model: &str, owner: Option<(&users::Model, &api_keys::Model)>) -> UsageRecord {
    let at = tollgate_entities::now_utc();
    let mut usage = fixtures::usage_row(model, at);
    usage.total_cost_usd = 0.5;
    if let Some((user, key)) = owner {
        usage.user_id = Some(user.id.clone());
        usage.api_key_id = Some(key.id.clone());
    }
    let candidate = request_candidates::Model {
        id: tollgate_entities::new_id(),
        request_id: usage.request_id.clone(),
        user_id: usage.user_id.clone(),
        api_key_id: usage.api_key_id.clone(),
        candidate_index: 0,
        retry_index: 0,
        provider_id: None,
        endpoint_id: None,
        key_id: None,
        status: CandidateStatus::Success,
        skip_reason: None,
        is_cached: false,
        status_code: Some(200),
        error_type: None,
        error_message: None,
        latency_ms: Some(5),
        extra_data: None,
        created_at: at,
        started_at: Some(at),
        finished_at: Some(at),
    };
    UsageRecord {
        usage,
        candidates: vec![candidate],
    }
}

async fn owner(conn: &DatabaseConnection) -> (users::Model, api_keys::Model) {
    let user = fixtures::insert(conn, fixtures::user(&format!("u-{}", uuid::Uuid::new_v4()))).await;
    let key = fixtures::insert(
        conn,
        fixtures::api_key(&user.id, &uuid::Uuid::new_v4().to_string()),
    )
    .await;
    (user, key)
}

/// Renames table `from` to `to`: away, writes to it fail; back, they succeed again.
async fn rename_table(conn: &DatabaseConnection, from: &str, to: &str) {
    conn.execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .await
        .unwrap();
}

/// Makes the database refuse `poison` rows and moves the dead-letter table away.
async fn refuse_poison_without_the_table(db: &TestDb) {
    refuse_model(db, "poison", "P0001").await;
    rename_table(&db.conn, "usage_dead_letters", "usage_dead_letters_away").await;
}

async fn stored(conn: &DatabaseConnection, record: &UsageRecord) -> Option<usage::Model> {
    usage::Entity::find()
        .filter(usage::Column::RequestId.eq(record.usage.request_id.as_str()))
        .one(conn)
        .await
        .unwrap()
}

async fn dead_letters(conn: &DatabaseConnection) -> Vec<usage_dead_letters::Model> {
    usage_dead_letters::Entity::find().all(conn).await.unwrap()
}

async fn stop(sender: UsageSender, handle: WriterHandle) {
    sender.flush().await;
    drop(sender);
    handle.shutdown(Duration::from_secs(1)).await;
}

db_test!(async fn one_refused_record_is_dead_lettered_and_every_other_written(db) {
    let conn = &db.conn;
    refuse_model(db, "poison", "P0001").await;
    let (user, key) = owner(conn).await;
    let (dir, sender, handle) = start(conn.clone());
    let mut good = Vec::new();
    for _ in 0..40 {
        good.push(record("good", Some((&user, &key))));
    }
    let poison = record("poison", Some((&user, &key)));
    for record in &good[..17] {
        sender.send(record.clone());
    }
    sender.send(poison.clone());
    for record in &good[17..] {
        sender.send(record.clone());
    }
    sender.flush().await;

    for record in &good {
        assert!(stored(conn, record).await.is_some(), "a good record is missing");
    }
    assert!(stored(conn, &poison).await.is_none());
    let candidates = request_candidates::Entity::find().count(conn).await.unwrap();
    assert_eq!(candidates, 40, "candidate rows of the good records, once each");
    // Counters are added once per written record, however often the halves were retried.
    let key = api_keys::Entity::find_by_id(key.id.clone()).one(conn).await.unwrap().unwrap();
    assert_eq!(key.total_requests, 40);
    let user = users::Entity::find_by_id(user.id.clone()).one(conn).await.unwrap().unwrap();
    assert!((user.total_usd - 20.0).abs() < 1e-9, "{}", user.total_usd);

    let letters = dead_letters(conn).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].request_id, poison.usage.request_id);
    assert!(letters[0].error.contains("poison record refused"), "{}", letters[0].error);
    assert_eq!(letters[0].replayed_at, None);
    let payload: UsageRecord = serde_json::from_value(letters[0].payload.clone()).unwrap();
    assert_eq!(payload.usage, poison.usage);
    assert_eq!(payload.candidates, poison.candidates);
    let stats = sender.stats();
    assert_eq!((stats.written, stats.dead_lettered, stats.dropped), (40, 1, 0));
    assert_eq!(sender.health().waiting, 0);
    assert!(dir.lines().is_empty(), "nothing goes to the file while the table works");
    stop(sender, handle).await;
});

db_test!(async fn a_value_the_database_refuses_is_isolated(db) {
    let conn = &db.conn;
    let (_dir, sender, handle) = start(conn.clone());
    let good: Vec<UsageRecord> = (0..9).map(|_| record("good", None)).collect();
    let mut bad = record("bad", None);
    match db.backend() {
        // SQLite stores NaN as NULL, which the NOT NULL column refuses.
        Backend::Sqlite => bad.usage.total_cost_usd = f64::NAN,
        // PostgreSQL text refuses NUL bytes.
        Backend::Postgres => bad.usage.error_message = Some("upstream said \0".to_owned()),
    }
    for record in good.iter().take(4) {
        sender.send(record.clone());
    }
    sender.send(bad.clone());
    for record in good.iter().skip(4) {
        sender.send(record.clone());
    }
    sender.flush().await;
    for record in &good {
        assert!(stored(conn, record).await.is_some());
    }
    assert!(stored(conn, &bad).await.is_none());
    let letters = dead_letters(conn).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].request_id, bad.usage.request_id);
    assert!(!letters[0].error.is_empty());
    stop(sender, handle).await;
});

db_test!(async fn references_to_deleted_rows_are_written_as_null(db) {
    let conn = &db.conn;
    let (user, key) = owner(conn).await;
    let provider = fixtures::insert(conn, fixtures::provider("gone", 1)).await;
    let endpoint = fixtures::insert(
        conn,
        fixtures::endpoint(&provider.id, ApiFormat::OpenAi, "http://127.0.0.1:9/v1"),
    )
    .await;
    let upstream_key = fixtures::insert(conn, fixtures::provider_key(&endpoint.id, "sk")).await;
    let (kept_user, kept_key) = owner(conn).await;
    let mut orphan = record("m", Some((&user, &key)));
    orphan.usage.provider = "gone".to_owned();
    orphan.usage.provider_id = Some(provider.id.clone());
    orphan.usage.provider_endpoint_id = Some(endpoint.id.clone());
    orphan.usage.provider_api_key_id = Some(upstream_key.id.clone());
    let other = record("m", Some((&kept_user, &kept_key)));
    // Deleted while the request was in flight.
    users::Entity::delete_by_id(user.id.clone()).exec(conn).await.unwrap();
    tollgate_entities::providers::Entity::delete_by_id(provider.id.clone())
        .exec(conn)
        .await
        .unwrap();

    let (_dir, sender, handle) = start(conn.clone());
    sender.send(orphan.clone());
    sender.send(other.clone());
    sender.flush().await;
    let row = stored(conn, &orphan).await.expect("the orphan's usage row");
    assert_references_nulled(&row, "gone");
    assert_eq!(row.total_cost_usd, 0.5);
    let other_row = stored(conn, &other).await.unwrap();
    assert_eq!(other_row.user_id.as_deref(), Some(kept_user.id.as_str()));
    let kept_key = api_keys::Entity::find_by_id(kept_key.id.clone()).one(conn).await.unwrap().unwrap();
    assert_eq!(kept_key.total_requests, 1);
    assert!(dead_letters(conn).await.is_empty());
    assert_eq!(sender.stats().dead_lettered, 0);
    stop(sender, handle).await;
});

db_test!(async fn without_the_table_dead_letters_go_to_the_file_and_replay_imports_it(db) {
    let conn = &db.conn;
    refuse_poison_without_the_table(db).await;
    let (dir, sender, handle) = start(conn.clone());
    let poison = record("poison", None);
    let good = record("good", None);
    sender.send(poison.clone());
    sender.send(good.clone());
    sender.flush().await;
    assert!(stored(conn, &good).await.is_some());
    let lines = dir.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].request_id, poison.usage.request_id);
    assert!(lines[0].error.contains("poison record refused"), "{}", lines[0].error);
    let stats = sender.stats();
    assert_eq!((stats.dead_lettered, stats.dropped), (1, 0));

    rename_table(conn, "usage_dead_letters_away", "usage_dead_letters").await;
    // Still refused: imported, listed as failed, the file renamed.
    let report = sender.replay(conn, None).await.unwrap();
    assert_eq!((report.imported, report.replayed), (1, 0));
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].id.as_deref(), Some(lines[0].id.as_str()));
    assert!(!dir.file().exists(), "the imported file is renamed");
    let renamed = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(renamed, 1);
    accept_every_model(db).await;
    let report = sender.replay(conn, None).await.unwrap();
    assert_eq!((report.imported, report.replayed, report.already_present), (0, 1, 0));
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(stored(conn, &poison).await.is_some());
    stop(sender, handle).await;
});

db_test!(async fn when_the_file_fails_too_the_record_is_logged_and_counted_dropped(db) {
    let conn = &db.conn;
    refuse_poison_without_the_table(db).await;
    let dir = TempDir::new("tollgate-dead");
    // A regular file where the directory should be.
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"").unwrap();
    let (sender, handle) = spawn(conn.clone(), config(&not_a_dir));
    sender.send(record("poison", None));
    sender.flush().await;
    let stats = sender.stats();
    assert_eq!((stats.dead_lettered, stats.dropped), (0, 1));
    assert_eq!(sender.health().waiting, 0);
    stop(sender, handle).await;
});

/// Makes every `usage` insert fail transiently until the returned guard is released:
/// PostgreSQL: a trigger raising a serialization failure; SQLite: a write lock held by
/// another connection (the writer's pool waits only 50 ms for it). Returns the connection
/// the writer should use.
/// An open write transaction on `db`'s SQLite file, and a second connection that gives up
/// waiting for the lock after 50 ms (SQLITE_BUSY).
pub(super) async fn hold_sqlite_write_lock(
    db: &TestDb,
) -> (DatabaseTransaction, DatabaseConnection) {
    db.conn
        .execute_unprepared("CREATE TABLE lock_holder (id integer primary key)")
        .await
        .unwrap();
    let held = db.conn.begin().await.unwrap();
    held.execute_unprepared("INSERT INTO lock_holder (id) VALUES (1)")
        .await
        .unwrap();
    let mut options = ConnectOptions::new(db.url().to_owned());
    options
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|options| options.busy_timeout(Duration::from_millis(50)));
    (held, Database::connect(options).await.unwrap())
}

async fn transient_failures(db: &TestDb) -> (DatabaseConnection, Option<DatabaseTransaction>) {
    match db.backend() {
        Backend::Postgres => {
            refuse_model(db, "m", "40001").await;
            (db.conn.clone(), None)
        }
        Backend::Sqlite => {
            let (held, other) = hold_sqlite_write_lock(db).await;
            (other, Some(held))
        }
    }
}

async fn end_transient_failures(db: &TestDb, held: Option<DatabaseTransaction>) {
    match held {
        Some(held) => held.rollback().await.unwrap(),
        None => accept_every_model(db).await,
    }
}

db_test!(async fn a_transient_failure_is_retried_and_never_dead_lettered(db) {
    let (writer_conn, held) = transient_failures(db).await;
    let (dir, sender, handle) = start(writer_conn);
    let pending = record("m", None);
    sender.send(pending.clone());
    // Several retries at most 100 ms apart.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(stored(&db.conn, &pending).await.is_none());
    assert!(dead_letters(&db.conn).await.is_empty());
    assert!(dir.lines().is_empty());
    let health = sender.health();
    assert_eq!(health.waiting, 1);
    assert!(health.oldest_age >= Duration::from_secs(1), "{health:?}");
    assert_eq!(sender.stats(), crate::writer::WriterStats::default());

    end_transient_failures(db, held).await;
    tokio::time::timeout(Duration::from_secs(10), sender.flush())
        .await
        .expect("written once the failure passes");
    assert!(stored(&db.conn, &pending).await.is_some());
    assert_eq!(sender.stats().written, 1);
    assert_eq!(sender.health().waiting, 0);
    stop(sender, handle).await;
});

db_test!(async fn records_still_failing_at_the_shutdown_deadline_go_to_the_file(db) {
    let (writer_conn, held) = transient_failures(db).await;
    let (dir, sender, handle) = start(writer_conn);
    let records: Vec<UsageRecord> = (0..3).map(|_| record("m", None)).collect();
    for record in &records {
        sender.send(record.clone());
    }
    handle.shutdown(Duration::from_millis(300)).await;
    let stats = sender.stats();
    assert_eq!((stats.written, stats.dead_lettered, stats.dropped), (0, 3, 0));
    let lines = dir.lines();
    for line in &lines {
        assert!(line.error.starts_with("still failing at shutdown"), "{}", line.error);
    }
    let mut lines: Vec<String> = lines.into_iter().map(|row| row.request_id).collect();
    let mut sent: Vec<String> = records.iter().map(|r| r.usage.request_id.clone()).collect();
    lines.sort();
    sent.sort();
    assert_eq!(lines, sent);

    end_transient_failures(db, held).await;
    let report = sender.replay(&db.conn, None).await.unwrap();
    assert_eq!((report.imported, report.replayed), (3, 3), "{report:?}");
    for record in &records {
        assert!(stored(&db.conn, record).await.is_some());
    }
});

db_test!(async fn replay_writes_a_record_once(db) {
    let conn = &db.conn;
    refuse_model(db, "poison", "P0001").await;
    let (user, key) = owner(conn).await;
    let (_dir, sender, handle) = start(conn.clone());
    let poison = record("poison", Some((&user, &key)));
    sender.send(poison.clone());
    sender.flush().await;
    let letter = dead_letters(conn).await.remove(0);
    // A second dead letter of the same request (a record can fail more than once).
    let mut twin = letter.clone();
    twin.id = tollgate_entities::new_id();
    crate::writer::dead_letter::insert_rows(conn, vec![twin.clone()]).await.unwrap();

    accept_every_model(db).await;
    let report = sender.replay(conn, None).await.unwrap();
    assert_eq!((report.replayed, report.already_present), (1, 1), "{report:?}");
    assert!(report.failed.is_empty());
    assert!(stored(conn, &poison).await.is_some());
    let key_row = api_keys::Entity::find_by_id(key.id.clone()).one(conn).await.unwrap().unwrap();
    assert_eq!(key_row.total_requests, 1);
    assert!(dead_letters(conn).await.iter().all(|l| l.replayed_at.is_some()));

    // Again, by id: nothing written twice.
    let ids = [letter.id.clone(), twin.id.clone(), "no-such-id".to_owned()];
    let report = sender.replay(conn, Some(&ids)).await.unwrap();
    assert_eq!((report.replayed, report.already_present), (0, 2), "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].error.contains("no-such-id"));
    // A dead letter of a request already in `usage` is only marked.
    let mut late = letter.clone();
    late.id = tollgate_entities::new_id();
    crate::writer::dead_letter::insert_rows(conn, vec![late]).await.unwrap();
    let report = sender.replay(conn, None).await.unwrap();
    assert_eq!((report.replayed, report.already_present), (0, 1), "{report:?}");
    let key_row = api_keys::Entity::find_by_id(key.id.clone()).one(conn).await.unwrap().unwrap();
    assert_eq!(key_row.total_requests, 1);
    let rows = usage::Entity::find()
        .filter(usage::Column::RequestId.eq(poison.usage.request_id.as_str()))
        .count(conn)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    stop(sender, handle).await;
});
