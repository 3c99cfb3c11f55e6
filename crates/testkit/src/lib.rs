//! Test support for tollgate crates: a fresh, migrated database per test (a uniquely named
//! PostgreSQL database, dropped afterwards, or a fresh SQLite file), a macro that runs one
//! test body against both, and loud checks for the local PostgreSQL and Redis services; rows
//! with defaults ([`fixtures`]); an Aether database for adoption tests ([`aether`]); the
//! three cache stores and the round trip every key family must pass on them ([`stores`]); a
//! redis-server a test may stop ([`PrivateRedis`]); dead-letter directories and refused usage
//! rows for the usage writer's tests ([`writer`]).
//!
//! Nothing here skips a test: when a service is missing the test panics with a message that
//! says which service and how to start it (`scripts/test.sh` starts both).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

pub mod aether;
pub mod fixtures;
mod private_redis;
pub mod stores;
pub mod writer;

pub use private_redis::PrivateRedis;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration_reexport::MigratorTrait;
use tollgate_migrations::Migrator;

// `tollgate-migrations` re-exports the trait; a local alias keeps the import explicit.
mod sea_orm_migration_reexport {
    pub(crate) use tollgate_migrations::MigratorTraitReexport as MigratorTrait;
}

/// Which database a [`TestDb`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in the system temp directory.
    Sqlite,
    /// A fresh database on the local PostgreSQL server.
    Postgres,
}

/// The server-level PostgreSQL URL tests create their databases on:
/// `TOLLGATE_TEST_PG_URL`, or the local trust-auth server.
pub fn pg_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_PG_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()
    })
}

/// The Redis URL tests use: `TOLLGATE_TEST_REDIS_URL`, or the local server. Panics with a
/// clear message when nothing answers `PING` there.
pub fn redis_url() -> String {
    let url = std::env::var("TOLLGATE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let answered = TcpStream::connect_timeout(
        &address
            .parse()
            .unwrap_or_else(|_| panic!("TOLLGATE_TEST_REDIS_URL host `{address}` is not ip:port")),
        Duration::from_secs(2),
    )
    .and_then(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0_u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(reply.starts_with(b"+PONG"))
    });
    match answered {
        Ok(true) => url,
        Ok(false) | Err(_) => panic!(
            "Redis is required at {url} and did not answer PING; start it with \
             `bash scripts/test.sh` or `redis-server --daemonize yes --port 6379 --save ''`"
        ),
    }
}

/// A fresh, migrated database that is removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// An open pool on the database.
    pub conn: DatabaseConnection,
    backend: Backend,
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A fresh SQLite file, migrated.
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("tollgate-test-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let conn = connect(&url).await;
        let db = Self {
            conn,
            backend: Backend::Sqlite,
            url,
            cleanup: Cleanup::File(path),
        };
        db.migrate().await;
        db
    }

    /// A fresh uniquely named PostgreSQL database, migrated; panics loudly when the server
    /// is not running.
    pub async fn postgres() -> Self {
        let db = Self::postgres_empty().await;
        db.migrate().await;
        db
    }

    /// A fresh uniquely named PostgreSQL database without any table (for tests that build
    /// another schema first, such as an Aether database); panics loudly when the server is
    /// not running.
    pub async fn postgres_empty() -> Self {
        let admin_url = pg_admin_url();
        let name = format!("tollgate_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str()).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is required at {admin_url} ({error}); start it with \
                 `bash scripts/test.sh` or `pg_ctlcluster --skip-systemctl-redirect <version> main start`"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let _ = admin.close().await;
        let url = database_url_for(&admin_url, &name);
        let conn = connect(&url).await;
        Self {
            conn,
            backend: Backend::Postgres,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        }
    }

    /// Which backend this database is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm backend of the connection.
    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// A URL another process (a binary under test) can open.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies every migration.
    pub async fn migrate(&self) {
        Migrator::up(&self.conn, None)
            .await
            .unwrap_or_else(|error| panic!("migrations failed on {:?}: {error}", self.backend));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Database { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot block on itself: run the
                // DROP on a small runtime of its own in a plain thread and wait for it.
                let admin_url = admin_url.clone();
                let name = name.clone();
                let dropped = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                });
                let _ = dropped.join();
            }
        }
    }
}

/// Replaces the database name (the URL path) of a PostgreSQL URL, keeping its query.
pub fn database_url_for(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(5)
        .min_connections(1)
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|error| panic!("cannot open test database {url}: {error}"))
}

/// Runs one async test body against SQLite and PostgreSQL, as two tests named
/// `<name>::sqlite` and `<name>::postgres`. The body gets `db: &TestDb`.
///
/// ```ignore
/// tollgate_testkit::db_test!(async fn inserts_a_user(db) {
///     assert_eq!(db.conn.ping().await.is_ok(), true);
/// });
/// ```
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports, reason = "the body may or may not use the parent's imports")]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = $crate::TestDb::new($crate::Backend::Sqlite).await;
                let $db = &owned;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let owned = $crate::TestDb::new($crate::Backend::Postgres).await;
                let $db = &owned;
                $body
            }
        }
    };
}

/// A table of [`db_test!`]s that each run one async check with their own arguments: every
/// `name(args…)` is a `db_test!` named `name` whose body is `check(db, args…).await`.
///
/// ```ignore
/// tollgate_testkit::db_cases!(falls_back:
///     falls_back_on_500(Failure::Status(500)),
///     falls_back_on_timeout(Failure::Timeout),
/// );
/// ```
#[macro_export]
macro_rules! db_cases {
    ($check:ident: $($name:ident($($argument:expr),* $(,)?)),+ $(,)?) => {
        $(
            $crate::db_test!(async fn $name(db) {
                $check(db, $($argument),*).await;
            });
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::database_url_for;

    #[test]
    fn database_url_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            database_url_for(
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
                "t1"
            ),
            "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            database_url_for("postgres://u:p@h:1", "t2"),
            "postgres://u:p@h:1/t2"
        );
    }
}
