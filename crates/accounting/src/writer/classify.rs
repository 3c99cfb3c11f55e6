//! Tells a database failure that will pass (the connection, the server, a lock) from one a
//! record causes (a constraint, an encoding, a value out of range): the writer retries the
//! first and isolates the record behind the second.

use sea_orm::DbErr;
#[cfg(any(feature = "sqlite", feature = "postgres", test))]
use sea_orm::RuntimeErr;
#[cfg(any(feature = "sqlite", feature = "postgres", test))]
use sea_orm::sqlx::error::DatabaseError;

/// Whether `error` says nothing about the records written: a lost or refused connection, a
/// pool timeout, an I/O failure, a server shutting down or out of resources, a serialization
/// failure, a deadlock, a busy or locked SQLite file. Every other database error is a data
/// error. Driver codes are read for the drivers whose feature is on (`sqlite`, `postgres`).
pub(crate) fn is_transient(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        #[cfg(any(feature = "sqlite", feature = "postgres", test))]
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            sqlx_is_transient(error)
        }
        _ => false,
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", test))]
fn sqlx_is_transient(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::BeginFailed => true,
        Error::Database(error) => database_is_transient(error.as_ref()),
        _ => false,
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", test))]
fn database_is_transient(error: &dyn DatabaseError) -> bool {
    #[cfg(any(feature = "postgres", test))]
    if let Some(error) = error.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>() {
        return postgres_code_is_transient(error.code());
    }
    #[cfg(any(feature = "sqlite", test))]
    if let Some(error) = error.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>() {
        return error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(sqlite_code_is_transient);
    }
    false
}

/// SQLSTATE classes 08 (connection), 53 (insufficient resources), 58 (system, I/O), the
/// server shutting down or starting (57P01, 57P02, 57P03), serialization failure (40001),
/// deadlock (40P01) and lock timeout (55P03).
#[cfg(any(feature = "postgres", test))]
fn postgres_code_is_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03"
        )
}

/// Extended result codes whose primary code is a property of the file or the process, never
/// of a record: BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
#[cfg(any(feature = "sqlite", test))]
fn sqlite_code_is_transient(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{
        ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, TransactionTrait,
    };
    use tollgate_testkit::{Backend, TestDb, db_test};

    use super::{is_transient, postgres_code_is_transient, sqlite_code_is_transient};

    async fn error_of(conn: &DatabaseConnection, sql: &str) -> DbErr {
        conn.execute_unprepared(sql)
            .await
            .expect_err(&format!("`{sql}` should fail"))
    }

    #[test]
    fn codes_are_classified_by_their_class() {
        for code in [
            "08006", "08001", "53300", "53100", "58030", "57P01", "40001", "40P01",
        ] {
            assert!(postgres_code_is_transient(code), "{code}");
        }
        for code in [
            "23505", "23503", "23502", "22021", "22001", "22003", "P0001", "42P01",
        ] {
            assert!(!postgres_code_is_transient(code), "{code}");
        }
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_IOERR_WRITE.
        for code in [5, 517, 6, 778] {
            assert!(sqlite_code_is_transient(code), "{code}");
        }
        // SQLITE_CONSTRAINT_NOTNULL, _FOREIGNKEY, _TRIGGER, SQLITE_ERROR, SQLITE_TOOBIG.
        for code in [1299, 787, 1811, 1, 18] {
            assert!(!sqlite_code_is_transient(code), "{code}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let mut options = ConnectOptions::new(format!(
            "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        ));
        options.connect_timeout(Duration::from_secs(2));
        let error = Database::connect(options).await.unwrap_err();
        assert!(is_transient(&error), "{error:?}");
    }

    db_test!(async fn a_pool_timeout_is_transient(db) {
        let mut options = ConnectOptions::new(db.url().to_owned());
        options
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(100))
            .sqlx_logging(false);
        let conn = Database::connect(options).await.unwrap();
        let held = conn.begin().await.unwrap();
        let error = conn.ping().await.unwrap_err();
        assert!(is_transient(&error), "{error:?}");
        held.rollback().await.unwrap();
    });

    db_test!(async fn constraint_and_trigger_errors_are_data_errors(db) {
        let conn = &db.conn;
        conn.execute_unprepared("CREATE TABLE t (id integer primary key, v text not null)")
            .await
            .unwrap();
        conn.execute_unprepared("INSERT INTO t (id, v) VALUES (1, 'a')")
            .await
            .unwrap();
        for sql in [
            "INSERT INTO t (id, v) VALUES (1, 'b')",
            "INSERT INTO t (id, v) VALUES (2, NULL)",
            "INSERT INTO usage (id, request_id, provider, model, api_format, created_at, user_id) \
             VALUES ('u1', 'r1', 'p', 'm', 'openai', '2026-01-01T00:00:00Z', 'no-such-user')",
            "SELECT * FROM no_such_table",
        ] {
            let error = error_of(conn, sql).await;
            assert!(!is_transient(&error), "{sql}: {error:?}");
        }
        let error = match db.backend() {
            Backend::Sqlite => {
                conn.execute_unprepared(
                    "CREATE TRIGGER reject BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, 'rejected'); END",
                )
                .await
                .unwrap();
                error_of(conn, "INSERT INTO t (id, v) VALUES (3, 'c')").await
            }
            Backend::Postgres => {
                // A text value with a NUL byte: PostgreSQL refuses the encoding.
                conn.execute_raw(sea_orm::Statement::from_sql_and_values(
                    conn.get_database_backend(),
                    "INSERT INTO t (id, v) VALUES (3, $1)",
                    ["a\0b".into()],
                ))
                .await
                .unwrap_err()
            }
        };
        assert!(!is_transient(&error), "{error:?}");
    });

    #[tokio::test]
    async fn postgres_serialization_deadlock_and_shutdown_codes_are_transient() {
        let db = TestDb::new(Backend::Postgres).await;
        for code in ["40001", "40P01", "57P01", "53300", "08006"] {
            let error = error_of(
                &db.conn,
                &format!(
                    "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{code}'; END $$"
                ),
            )
            .await;
            assert!(is_transient(&error), "{code}: {error:?}");
        }
        let error = error_of(
            &db.conn,
            "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '22003'; END $$",
        )
        .await;
        assert!(!is_transient(&error), "{error:?}");
    }

    #[tokio::test]
    async fn a_locked_sqlite_file_is_transient() {
        let db = TestDb::new(Backend::Sqlite).await;
        let (held, other) = crate::writer::tests::hold_sqlite_write_lock(&db).await;
        let error = error_of(&other, "INSERT INTO lock_holder (id) VALUES (2)").await;
        assert!(is_transient(&error), "{error:?}");
        held.rollback().await.unwrap();
    }
}
