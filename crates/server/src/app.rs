//! Application state: what every handler shares ([`AppState`]) and the bounds of the request
//! path ([`Limits`]); the state is also the catalogue's `Store`. Handlers depend on this
//! file; the router and the [`Gateway`] that assembles the state live in `gateway.rs`.
//!
//! [`Gateway`]: crate::Gateway

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;
use tollgate_accounting::{SpendLedger, UsageSender};
use tollgate_cache::Cache;
use tollgate_catalogue::{SecretBox, Store};
use tollgate_resolver::Resolver;
use tollgate_stats::Aggregator;

use crate::admin::answers::DashboardCache;
use crate::auth::ClientKeyByHash;
use crate::drain::{Drain, DrainSignal};

/// The parts of the state; `gateway.rs` fills them in.
pub(crate) struct Inner {
    pub(crate) conn: DatabaseConnection,
    pub(crate) cache: Cache,
    pub(crate) resolver: Resolver,
    pub(crate) http: reqwest::Client,
    pub(crate) usage: UsageSender,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) body_limit: usize,
    pub(crate) secrets: SecretBox,
    pub(crate) stats: Aggregator,
    pub(crate) dashboard: DashboardCache,
    pub(crate) spend: SpendLedger,
    pub(crate) limits: Limits,
    pub(crate) drain: Drain,
    pub(crate) tasks: TaskTracker,
}

/// Bounds of the request path (behaviour.md 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole (non-streamed) upstream answer; larger is a failed attempt. Default
    /// 32 MiB (`TOLLGATE_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// How long a stream keeps reading the upstream after its client left, to collect the
    /// usage block. Default 5 s.
    pub stream_grace: Duration,
    /// Longest pause between two reads of a request body (`TOLLGATE_HEADER_TIMEOUT_SECS`,
    /// default 10 s); a body that stalls longer ends the request with a 4xx.
    pub request_body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: 32 * 1024 * 1024,
            stream_grace: Duration::from_secs(5),
            request_body_timeout: Duration::from_secs(10),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.inner.conn
    }
    pub(crate) fn cache(&self) -> &Cache {
        &self.inner.cache
    }
    pub(crate) fn resolver(&self) -> &Resolver {
        &self.inner.resolver
    }
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
    pub(crate) fn usage(&self) -> &UsageSender {
        &self.inner.usage
    }
    pub(crate) fn spend(&self) -> &SpendLedger {
        &self.inner.spend
    }
    pub(crate) fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }
    pub(crate) fn body_limit(&self) -> usize {
        self.inner.body_limit
    }
    pub(crate) fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }
    pub(crate) fn stats(&self) -> &Aggregator {
        &self.inner.stats
    }
    pub(crate) fn dashboard(&self) -> &DashboardCache {
        &self.inner.dashboard
    }
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }
    pub(crate) fn drain_signal(&self) -> DrainSignal {
        self.inner.drain.signal()
    }
    /// The shutdown's cut: ends open streams and pending attempts.
    pub(crate) fn cut(&self) {
        self.inner.drain.cut();
    }
    /// Request and stream tasks, which a shutdown waits for.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }
}

/// The gateway's state is where the catalogue lives: its database, its upstream-key box, its
/// resolver, and the client-key look-ups of `ClientKeyByHash`.
impl Store for AppState {
    fn conn(&self) -> &DatabaseConnection {
        AppState::conn(self)
    }

    fn secrets(&self) -> &SecretBox {
        AppState::secrets(self)
    }

    fn resolver(&self) -> &Resolver {
        AppState::resolver(self)
    }

    /// Drops the cached look-ups of the keys with `hashes`, so a change to their user applies
    /// to the very next request on every replica.
    async fn forget_client_keys(&self, hashes: Vec<String>) {
        for hash in hashes {
            if let Err(error) = self.cache().delete(&ClientKeyByHash(hash)).await {
                tracing::warn!(%error, "client key invalidation did not reach redis");
            }
        }
    }
}
