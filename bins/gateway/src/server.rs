//! Start-up and shutdown: database, migrations, cache, catalogue file, demo, bootstrap
//! admin, listener, serve until SIGINT/SIGTERM, then flush usage.

use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tollgate_cache::Cache;
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_resolver::ResolverConfig;
use tollgate_stats::BusinessCalendar;

use crate::app::{BuildError, Gateway};
use crate::bootstrap::bootstrap_admin;
use crate::catalog_file::{CatalogError, CatalogFile, apply_catalog};
use crate::config::Config;
use crate::secret::{Secret, redact_url};
use crate::secret_box::SecretBox;
use crate::{demo, telemetry};

/// Why the gateway could not start (or stopped with an error). Each message is one line
/// naming the option involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database did not accept a connection.
    #[error("cannot connect to DATABASE_URL `{url}`: {source}")]
    Database {
        /// The URL without its password.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// Migrations failed.
    #[error("cannot migrate the database at DATABASE_URL: {0}")]
    Migrate(DbErr),
    /// The Redis cache could not be set up.
    #[error("invalid REDIS_URL: {0}")]
    Cache(#[from] tollgate_cache::CacheError),
    /// The gateway could not be assembled.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The `--catalog` file is unreadable, invalid or could not be applied.
    #[error("--catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The demo mock upstream could not start.
    #[error("--demo: cannot start the mock upstream: {0}")]
    Demo(std::io::Error),
    /// The business time zone cannot be loaded.
    #[error("invalid TOLLGATE_TIMEZONE (--timezone): {0}")]
    Timezone(String),
    /// The bootstrap admin could not be written.
    #[error("cannot create the bootstrap admin (TOLLGATE_ADMIN_KEY): {0}")]
    Bootstrap(DbErr),
    /// The listen address is unavailable.
    #[error("cannot listen on TOLLGATE_LISTEN `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Opens the database (a pool with short connect and acquire timeouts, so an outage fails
/// fast and the usage writer retries).
///
/// An SQLite file is put in write-ahead-log mode with `synchronous = NORMAL`, the usual
/// setting for SQLite behind a server: readers (resolver misses, the admin API, the
/// dashboard) no longer wait for the usage writer, and a commit no longer waits for an
/// fsync of a rollback journal, which capped the writer below the gateway's own throughput.
/// A crash of the process loses nothing committed; a power cut may lose the last commits.
pub async fn connect_database(url: &Secret) -> Result<DatabaseConnection, StartError> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let is_sqlite = url.expose().starts_with("sqlite:");
    let mut options = ConnectOptions::new(url.expose().to_owned());
    options
        .max_connections(if is_sqlite { 8 } else { 16 })
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        });
    Database::connect(options)
        .await
        .map_err(|source| StartError::Database {
            url: redact_url(url.expose()),
            source,
        })
}

/// Runs the gateway described by `config` until SIGINT or SIGTERM, then drains the usage
/// queue.
pub async fn run(config: Config) -> Result<(), StartError> {
    let metrics = telemetry::prometheus();
    if let Some(handle) = &metrics {
        telemetry::spawn_upkeep(handle.clone());
    }
    let conn = connect_database(&config.database_url).await?;
    Migrator::up(&conn, None)
        .await
        .map_err(StartError::Migrate)?;
    let cache = match &config.redis_url {
        None => Cache::in_process(config.cache.clone())?,
        Some(url) => Cache::tiered(config.cache.clone(), url.expose()).await?,
    };
    let calendar = BusinessCalendar::new(&config.timezone)
        .map_err(|error| StartError::Timezone(error.to_string()))?;
    let secrets = SecretBox::new(config.encryption_key.as_ref().map(Secret::expose));
    let mut builder = Gateway::builder(conn.clone())
        .cache(cache)
        .secrets(secrets.clone())
        .business_calendar(calendar)
        .resolver_config(ResolverConfig {
            resolution_order: config.resolution_order,
            ..ResolverConfig::default()
        })
        .body_limit(config.body_limit)
        .writer(config.writer.clone());
    if let Some(metrics) = metrics {
        builder = builder.metrics(metrics);
    }
    let gateway = builder.build()?;
    let mut catalogue_changed = false;
    if let Some(path) = &config.catalog {
        let file = CatalogFile::load(path)?;
        let summary = apply_catalog(&conn, &file, &secrets).await?;
        tracing::info!(path = %path.display(), created = summary.created, updated = summary.updated, "catalogue file applied");
        catalogue_changed = true;
    }
    let demo = if config.demo {
        catalogue_changed = true;
        Some(demo::start(&conn, &secrets).await?)
    } else {
        None
    };
    if catalogue_changed && let Err(error) = gateway.resolver().flush().await {
        tracing::warn!(%error, "cache flush after applying the catalogue did not reach redis");
    }
    let generated = bootstrap_admin(&conn, config.admin_key.as_ref())
        .await
        .map_err(StartError::Bootstrap)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, redis = config.redis_url.is_some(), "tollgate gateway listening");
    // The two deliberate prints of the service: the generated admin key (shown once) and the
    // demo banner, both meant for the operator's terminal rather than the log.
    if let Some(key) = &generated {
        println!(
            "\nNo admin user existed, so one was created. Admin client key (shown once, store it now):\n  {}\n",
            key.expose()
        );
    }
    if let Some(demo) = &demo {
        println!("{}", demo::banner(addr, demo, generated.as_ref()));
    }
    // Small SSE chunks must not wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, gateway.router())
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("stopped accepting requests; flushing usage");
    let stats = gateway.shutdown(config.shutdown_timeout).await;
    tracing::info!(
        written = stats.written,
        dropped = stats.dropped,
        "usage writer stopped"
    );
    drop(demo);
    served.map_err(StartError::Serve)
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::connect_database;
    use crate::secret::Secret;

    /// One PRAGMA's value, read through the pool as the gateway's own queries are.
    async fn pragma(
        conn: &sea_orm::DatabaseConnection,
        name: &str,
    ) -> Result<String, sea_orm::DbErr> {
        let row = conn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await?
            .ok_or_else(|| sea_orm::DbErr::RecordNotFound(name.to_owned()))?;
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
    }

    #[tokio::test]
    async fn an_sqlite_file_runs_in_wal_mode_with_normal_sync()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("tollgate-wal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("g.db").display());
        let conn = connect_database(&Secret::new(url)).await?;
        let mode = pragma(&conn, "journal_mode").await?;
        // 1 = NORMAL; SQLite's default for a file is FULL (2) with a rollback journal.
        let sync = pragma(&conn, "synchronous").await?;
        conn.close().await?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(mode, "wal");
        assert_eq!(sync, "1");
        Ok(())
    }
}
