//! The client-facing HTTP/1.1 server (behaviour.md 8b): a bounded number of open
//! connections, a deadline for each request's headers, and a graceful stop. Nobody, with or
//! without a key, can hold enough idle or half-sent connections to exhaust file descriptors
//! and take `/health` down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection settings of the client-facing server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A connection that has not sent complete request headers within this time is closed
    /// (`TOLLGATE_HEADER_TIMEOUT_SECS`, default 10 s). A request body that stalls longer than
    /// this between two reads ends the request with a 4xx.
    pub header_timeout: Duration,
    /// A keep-alive connection idle for longer is closed (`TOLLGATE_IDLE_TIMEOUT_SECS`,
    /// default 60 s). hyper starts its header clock as soon as it waits for the next
    /// request, so the effective idle limit is the shorter of the two.
    pub idle_timeout: Duration,
    /// Most client connections open at once (`TOLLGATE_MAX_CONNECTIONS`); further ones wait
    /// in the kernel's accept queue until one closes.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
        }
    }
}

/// Raises the soft open-file limit to the hard one and returns the connection bound that
/// leaves room for one upstream connection per client connection and for the database and
/// cache pools: (limit − 256) / 2, between 64 and 10 000.
pub fn default_max_connections() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let bound = limit.saturating_sub(256) / 2;
    usize::try_from(bound.clamp(64, 10_000)).unwrap_or(10_000)
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting and waits for
/// the open connections to finish (idle ones are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.min(limits.idle_timeout))
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        metrics::gauge!("gateway_open_connections").increment(1.0);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended with an error");
            }
            metrics::gauge!("gateway_open_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
