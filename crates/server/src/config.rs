//! The gateway's validated settings, as the binary builds them from flags and the
//! environment (or an embedder builds them in code).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tollgate_accounting::WriterConfig;
use tollgate_catalogue::Secret;
use tollgate_resolver::ResolutionOrder;

use crate::app::Limits;
use crate::listener::ServerLimits;

/// The embedded default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tollgate.db?mode=rwc";

/// Default largest request body (10 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Validated gateway settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL (may hold a password).
    pub database_url: Secret,
    /// Redis URL, when the shared cache tier is on.
    pub redis_url: Option<Secret>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Bootstrap admin client key.
    pub admin_key: Option<Secret>,
    /// Business-day time zone (validated IANA name).
    pub timezone: String,
    /// Passphrase that encrypts upstream credentials at rest.
    pub encryption_key: Option<Secret>,
    /// Cache settings.
    pub cache: tollgate_cache::Config,
    /// Resolution order.
    pub resolution_order: ResolutionOrder,
    /// Catalogue file applied at start.
    pub catalog: Option<PathBuf>,
    /// Demo mode.
    pub demo: bool,
    /// Whether this process runs the statistics closing loop (behaviour.md 9); off with
    /// `--no-aggregation`.
    pub aggregation: bool,
    /// Whether start-up may change the schema (migrate); off with `--no-migrate`, when it
    /// only checks and stops naming what is missing.
    pub migrate: bool,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Usage writer settings.
    pub writer: WriterConfig,
    /// Bound of a shutdown.
    pub shutdown_timeout: Duration,
    /// Bounds of the request path.
    pub limits: Limits,
    /// Connection settings of the client-facing server.
    pub server: ServerLimits,
}
