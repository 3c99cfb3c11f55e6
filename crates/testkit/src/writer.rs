//! Support for the usage writer's tests, in the accounting crate and through the gateway: a
//! directory for dead letters, a database that refuses one model's usage rows, and the check
//! of a usage row whose references were deleted.

use std::path::{Path, PathBuf};

use sea_orm::ConnectionTrait;
use tollgate_entities::usage;

use crate::{Backend, TestDb};

/// A fresh directory in the system temp directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `{prefix}-{uuid}` in the system temp directory.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        Self(path)
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes the database refuse `usage` rows for `model` with the message `poison record
/// refused` (PostgreSQL: with SQLSTATE `code`; SQLite can only abort, a data error).
pub async fn refuse_model(db: &TestDb, model: &str, code: &str) {
    let sql = match db.backend() {
        Backend::Sqlite => format!(
            "CREATE TRIGGER refuse_model BEFORE INSERT ON usage WHEN NEW.model = '{model}' \
             BEGIN SELECT RAISE(ABORT, 'poison record refused'); END"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION refuse_model() RETURNS trigger AS $$ BEGIN \
             IF NEW.model = '{model}' THEN RAISE EXCEPTION 'poison record refused' USING ERRCODE = '{code}'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_model BEFORE INSERT ON usage FOR EACH ROW EXECUTE FUNCTION refuse_model();"
        ),
    };
    execute(db, &sql).await;
}

/// Undoes [`refuse_model`]: every model's usage rows are accepted again.
pub async fn accept_every_model(db: &TestDb) {
    let sql = match db.backend() {
        Backend::Sqlite => "DROP TRIGGER refuse_model",
        Backend::Postgres => "DROP TRIGGER refuse_model ON usage; DROP FUNCTION refuse_model();",
    };
    execute(db, sql).await;
}

async fn execute(db: &TestDb, sql: &str) {
    db.conn
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// Asserts that `row` references no user, key, provider, endpoint or provider key any more
/// and still names its provider `provider` (names stay as text).
pub fn assert_references_nulled(row: &usage::Model, provider: &str) {
    assert_eq!(row.user_id, None);
    assert_eq!(row.api_key_id, None);
    assert_eq!(row.provider_id, None);
    assert_eq!(row.provider_endpoint_id, None);
    assert_eq!(row.provider_api_key_id, None);
    assert_eq!(row.provider, provider, "names stay as text");
}
