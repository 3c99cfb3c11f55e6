//! The router and [`Gateway`]: the shared state plus the usage writer, built the same way by
//! the binary and by in-process tests.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;
use tollgate_accounting::{SpendLedger, WriterConfig, WriterHandle, WriterStats, spawn_writer};
use tollgate_cache::Cache;
use tollgate_catalogue::SecretBox;
use tollgate_resolver::{Resolver, ResolverConfig};
use tollgate_stats::{Aggregator, BusinessCalendar};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::admin::{self, answers::DashboardCache};
use crate::app::{AppState, Inner, Limits};
use crate::config::DEFAULT_BODY_LIMIT;
use crate::drain::Drain;
use crate::{ops, proxy};

/// The gateway's routes over `state`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit();
    Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/models", get(ops::models))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .merge(admin::routes())
        .merge(admin::dashboard_routes())
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(
            state.limits().request_body_timeout,
        ))
        .with_state(state)
}

/// Installs the process-wide rustls crypto provider (ring) once; reqwest is built without
/// one, and the first client would panic otherwise.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Builds a [`Gateway`].
pub struct GatewayBuilder {
    conn: DatabaseConnection,
    cache: Option<Cache>,
    resolver: ResolverConfig,
    body_limit: usize,
    writer: WriterConfig,
    metrics: Option<PrometheusHandle>,
    secrets: SecretBox,
    calendar: BusinessCalendar,
    limits: Limits,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("body_limit", &self.body_limit)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The in-process cache rejected its configuration.
    #[error("cache: {0}")]
    Cache(#[from] tollgate_cache::CacheError),
    /// The resolver could not be built.
    #[error("resolver: {0}")]
    Resolver(#[from] tollgate_resolver::ResolverError),
    /// The HTTP client for upstreams could not be built.
    #[error("upstream http client: {0}")]
    Http(#[from] reqwest::Error),
}

impl GatewayBuilder {
    /// The cache (default: in-process with default settings).
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Resolver settings.
    pub fn resolver_config(mut self, config: ResolverConfig) -> Self {
        self.resolver = config;
        self
    }

    /// Largest request body in bytes (default 10 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Usage writer settings.
    pub fn writer(mut self, config: WriterConfig) -> Self {
        self.writer = config;
        self
    }

    /// The Prometheus handle `/metrics` renders (default: none, `/metrics` answers 503).
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// How upstream secrets are stored (default: as given, unencrypted).
    pub fn secrets(mut self, secrets: SecretBox) -> Self {
        self.secrets = secrets;
        self
    }

    /// The business-day calendar of the dashboard statistics (default UTC).
    pub fn business_calendar(mut self, calendar: BusinessCalendar) -> Self {
        self.calendar = calendar;
        self
    }

    /// Bounds of the request path (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Starts the usage writer and returns the gateway. Needs a Tokio runtime.
    pub fn build(self) -> Result<Gateway, BuildError> {
        install_crypto_provider();
        let cache = match self.cache {
            Some(cache) => cache,
            None => Cache::in_process(tollgate_cache::Config::default())?,
        };
        let resolver = Resolver::for_database(self.conn.clone())
            .cache(cache.clone())
            .config(self.resolver)
            .build()?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // Redirects are never followed: credentials go only to the configured endpoint,
            // and a 3xx is a failed attempt (behaviour.md 8).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (usage, writer) = spawn_writer(self.conn.clone(), self.writer);
        let stats = Aggregator::new(self.conn.clone(), self.calendar);
        Ok(Gateway {
            state: AppState::new(Inner {
                conn: self.conn,
                cache,
                resolver,
                http,
                usage,
                metrics: self.metrics,
                body_limit: self.body_limit,
                secrets: self.secrets,
                stats,
                dashboard: DashboardCache::default(),
                spend: SpendLedger::default(),
                limits: self.limits,
                drain: Drain::default(),
                tasks: TaskTracker::new(),
            }),
            writer: tokio::sync::Mutex::new(Some(writer)),
        })
    }
}

/// A gateway: the shared state and its usage writer.
pub struct Gateway {
    state: AppState,
    /// Taken by the first drain.
    writer: tokio::sync::Mutex<Option<WriterHandle>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A builder over a migrated database.
    pub fn builder(conn: DatabaseConnection) -> GatewayBuilder {
        GatewayBuilder {
            conn,
            cache: None,
            resolver: ResolverConfig::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            writer: WriterConfig::default(),
            metrics: None,
            secrets: SecretBox::default(),
            calendar: BusinessCalendar::utc(),
            limits: Limits::default(),
        }
    }

    /// The router, for `axum::serve` or `tower::ServiceExt::oneshot`.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The resolver (to invalidate after catalogue changes).
    pub fn resolver(&self) -> &Resolver {
        self.state.resolver()
    }

    /// Ends every open stream with the format's error event and makes every upstream attempt
    /// still waiting give up: the shutdown's cut (behaviour.md 8b).
    pub fn cut_streams(&self) {
        self.state.cut();
    }

    /// Waits, for at most `within`, until every request and stream task has recorded its
    /// usage; call after the server stopped accepting and [`Gateway::cut_streams`].
    pub async fn finish_requests(&self, within: Duration) -> bool {
        let tasks = self.state.tasks();
        tasks.close();
        tokio::time::timeout(within, tasks.wait()).await.is_ok()
    }

    /// Waits until every usage record queued so far is written (or dropped).
    pub async fn flush_usage(&self) {
        self.state.usage().flush().await;
    }

    /// Written and dropped usage records so far.
    pub fn usage_stats(&self) -> WriterStats {
        self.state.usage().stats()
    }

    /// Drains the usage queue, retrying a failing database for at most `timeout`, and
    /// stops the writer. Call after the server stopped accepting requests.
    pub async fn shutdown(self, timeout: Duration) -> WriterStats {
        self.drain_usage(timeout).await
    }

    /// As [`Gateway::shutdown`], by reference (the server keeps the gateway).
    pub async fn drain_usage(&self, timeout: Duration) -> WriterStats {
        let stats_of = self.state.usage().clone();
        if let Some(writer) = self.writer.lock().await.take() {
            writer.shutdown(timeout).await;
        }
        stats_of.stats()
    }
}
