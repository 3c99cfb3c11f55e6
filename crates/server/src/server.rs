//! Start-up and shutdown: database, migrations, cache, catalogue file, demo, bootstrap
//! admin, listener, serve until SIGINT/SIGTERM, then flush usage.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tollgate_cache::Cache;
use tollgate_migrations::{SchemaError, StartOptions, prepare_database};
use tollgate_resolver::ResolverConfig;
use tollgate_stats::{Aggregator, BusinessCalendar, ClosingConfig};

use crate::config::Config;
use crate::demo::DemoError;
use crate::gateway::{BuildError, Gateway};
use crate::{demo, listener, telemetry};
use tollgate_catalogue::SecretBox;
use tollgate_catalogue::bootstrap_admin;
use tollgate_catalogue::{CatalogError, CatalogFile, apply_catalog};
use tollgate_catalogue::{Secret, redact_url};

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
    /// Migrations failed, or the database is refused (an Aether database, or one lacking
    /// tables with `--no-migrate`).
    #[error("database at DATABASE_URL: {0}")]
    Migrate(SchemaError),
    /// The Redis cache could not be set up.
    #[error("invalid REDIS_URL: {0}")]
    Cache(#[from] tollgate_cache::CacheError),
    /// The gateway could not be assembled.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The `--catalog` file is unreadable, invalid or could not be applied.
    #[error("--catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The demo could not start.
    #[error("--demo: {0}")]
    Demo(#[from] DemoError),
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
    /// The deployment id could not be read or created.
    #[error("cannot read the deployment id from the database at DATABASE_URL: {0}")]
    Deployment(DbErr),
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
    // The gateway refuses an Aether database (adopted or not): its catalogue columns are not
    // tollgate's (docs/OPERATIONS.md, "Coming from Aether").
    let options = StartOptions {
        migrate: config.migrate,
        accept_aether: false,
    };
    prepare_database(&conn, options)
        .await
        .map_err(StartError::Migrate)?;
    let cache_config = deployment_cache_config(&conn, &config.cache)
        .await
        .map_err(StartError::Deployment)?;
    let cache = match &config.redis_url {
        None => Cache::in_process(cache_config)?,
        Some(url) => Cache::tiered(cache_config, url.expose()).await?,
    };
    let calendar = BusinessCalendar::new(&config.timezone)
        .map_err(|error| StartError::Timezone(error.to_string()))?;
    let secrets = SecretBox::new(config.encryption_key.as_ref().map(Secret::expose));
    let mut builder = Gateway::builder(conn.clone())
        .cache(cache)
        .secrets(secrets.clone())
        .business_calendar(calendar.clone())
        .resolver_config(ResolverConfig {
            resolution_order: config.resolution_order,
            ..ResolverConfig::default()
        })
        .body_limit(config.body_limit)
        .limits(config.limits)
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
    // Hours and days close in this process unless told not to; on PostgreSQL the advisory
    // lock keeps one worker at a time across gateways and aggregators. Its transactions are
    // atomic, so aborting it at shutdown leaves consistent rows. It starts after the
    // start-up writes above: on SQLite its first cycle's writes could otherwise make the
    // catalogue's transaction fail with "database is locked".
    let closing = config.aggregation.then(|| {
        let stats = Aggregator::new(conn.clone(), calendar.clone());
        tokio::spawn(async move {
            stats
                .run_closing_loop(ClosingConfig::default(), std::future::pending())
                .await;
        })
    });
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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = listener::serve(listener, gateway.router(), config.server, async move {
        let _ = stopped.await;
    });
    tokio::pin!(served);
    tokio::select! {
        () = &mut served => {}
        () = shutdown_signal() => {
            let _ = stop.send(());
            stop_within(&gateway, config.shutdown_timeout, served).await;
        }
    }
    if let Some(closing) = closing {
        closing.abort();
    }
    drop(demo);
    Ok(())
}

/// The shutdown sequence (behaviour.md 8b), all within `bound` of the signal: requests and
/// streams in flight get 80 % of it, then the cut ends open streams with the format's error
/// event; their usage is recorded, and the usage queue is drained in what is left (at least
/// one second, so the last records are not dropped when the bound is tiny).
async fn stop_within(gateway: &Gateway, bound: Duration, served: impl Future<Output = ()>) {
    let begun = tokio::time::Instant::now();
    let cut_at = begun + bound.mul_f64(0.8);
    tracing::info!(
        bound_secs = bound.as_secs_f64(),
        "stopped accepting requests; finishing the ones in flight"
    );
    tokio::pin!(served);
    if tokio::time::timeout_at(cut_at, &mut served).await.is_err() {
        tracing::warn!("requests still in flight at the shutdown cut; ending them");
        gateway.cut_streams();
        let _ = tokio::time::timeout_at(begun + bound.mul_f64(0.9), &mut served).await;
    }
    gateway.cut_streams();
    let left = |share: f64| {
        (begun + bound.mul_f64(share)).saturating_duration_since(tokio::time::Instant::now())
    };
    if !gateway.finish_requests(left(0.9)).await {
        tracing::warn!("some requests had not recorded their usage at the shutdown bound");
    }
    tracing::info!("flushing usage");
    let stats = gateway
        .drain_usage(left(1.0).max(Duration::from_secs(1)))
        .await;
    tracing::info!(
        written = stats.written,
        dropped = stats.dropped,
        "usage writer stopped"
    );
}

/// The cache settings of this deployment: `base` with the deployment's random id (created
/// with the database, in `tollgate_meta`) in the namespace, so two deployments that share a
/// Redis database never read each other's entries (behaviour.md 8b).
pub async fn deployment_cache_config(
    conn: &DatabaseConnection,
    base: &tollgate_cache::Config,
) -> Result<tollgate_cache::Config, DbErr> {
    let id = deployment_id(conn).await?;
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    Ok(tollgate_cache::Config {
        namespace: format!("{}{short}:", base.namespace),
        ..base.clone()
    })
}

/// The deployment's id: read from `tollgate_meta`, created (a random UUID) on first use.
/// Concurrent first starts agree on one id: the insert does nothing when a row exists.
pub async fn deployment_id(conn: &DatabaseConnection) -> Result<String, DbErr> {
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{EntityTrait, Set};
    use tollgate_entities::tollgate_meta;
    let row = tollgate_meta::ActiveModel {
        key: Set(tollgate_meta::DEPLOYMENT_ID.to_owned()),
        value: Set(uuid::Uuid::new_v4().simple().to_string()),
        created_at: Set(tollgate_entities::now_utc()),
    };
    tollgate_meta::Entity::insert(row)
        .on_conflict(
            OnConflict::column(tollgate_meta::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec(conn)
        .await?;
    tollgate_meta::Entity::find_by_id(tollgate_meta::DEPLOYMENT_ID.to_owned())
        .one(conn)
        .await?
        .map(|row| row.value)
        .ok_or_else(|| DbErr::RecordNotFound("tollgate_meta.deployment_id".to_owned()))
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
    use tollgate_catalogue::Secret;

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
