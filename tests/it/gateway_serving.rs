//! Serving clients (behaviour.md 8b): idle and half-sent connections cannot take `/health`
//! down and are closed after the header timeout, a stalled request body ends the request,
//! the connection bound holds, and two deployments sharing one Redis database never read
//! each other's cache entries.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_cache::Cache;
use tollgate_server::{Gateway, Limits, ServerLimits, deployment_cache_config, serve_router};
use tollgate_testkit::TestDb;

use crate::admin_support::{Session, admin};

/// Serves a gateway over `db` on a free port with `limits`; stops when the sender drops.
async fn serve(
    db: &TestDb,
    limits: ServerLimits,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let gateway = Gateway::builder(db.conn.clone())
        .limits(Limits {
            request_body_timeout: limits.header_timeout,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve_router(listener, gateway.router(), limits, async move {
            let _ = stopped.await;
        })
        .await;
        drop(gateway);
    });
    (addr, stop)
}

/// Server limits with this header timeout and connection bound (idle connections: 60 s).
fn limits(header_timeout: Duration, max_connections: usize) -> ServerLimits {
    ServerLimits {
        header_timeout,
        idle_timeout: Duration::from_secs(60),
        max_connections,
    }
}

/// Reads until the server closes the connection; `true` when it did within `wait`.
async fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// `GET /health` on a fresh connection; the status line, or `None` when nothing came back
/// within `wait`.
async fn health(addr: std::net::SocketAddr, wait: Duration) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .map(str::to_owned)
    };
    tokio::time::timeout(wait, attempt).await.ok().flatten()
}

/// Asserts that `GET /health` answers 200 within `wait`.
async fn assert_healthy(addr: std::net::SocketAddr, wait: Duration) {
    assert_eq!(health(addr, wait).await.as_deref(), Some("HTTP/1.1 200 OK"));
}

/// The status of `GET /api/admin/providers` on `gateway` with the admin key `key`.
async fn providers_status(gateway: &Gateway, key: &str) -> StatusCode {
    let session = Session {
        gateway,
        key: key.to_owned(),
    };
    session.get("/api/admin/providers").await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sockets_do_not_stop_health_and_are_closed_after_the_header_timeout() {
    tollgate_server::default_max_connections(); // raises this process's open-file limit
    let db = TestDb::sqlite().await;
    let header_timeout = Duration::from_secs(2);
    let (addr, _stop) = serve(&db, limits(header_timeout, 4096)).await;
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            // Half of them send part of a request head and then nothing.
            stream
                .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\n")
                .await
                .unwrap();
        }
        idle.push(stream);
    }
    let opened = Instant::now();
    assert_healthy(addr, Duration::from_secs(5)).await;
    // Every idle socket is closed by the server once the header timeout has passed.
    for stream in &mut idle {
        let left = (header_timeout + Duration::from_secs(5)).saturating_sub(opened.elapsed());
        assert!(
            closed_by_server(stream, left).await,
            "an idle connection was still open {:?} after it was opened",
            opened.elapsed()
        );
    }
    assert!(opened.elapsed() >= header_timeout - Duration::from_millis(100));
    assert_healthy(addr, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_bound_holds_and_frees_up_after_the_header_timeout() {
    let db = TestDb::sqlite().await;
    let (addr, _stop) = serve(&db, limits(Duration::from_secs(2), 5)).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The sixth connection waits in the accept queue while five are open...
    assert_eq!(health(addr, Duration::from_millis(800)).await, None);
    // ...and is served once the idle ones have been closed by the header timeout.
    assert_healthy(addr, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_ends_the_request() {
    let db = TestDb::sqlite().await;
    let (addr, _stop) = serve(&db, limits(Duration::from_secs(1), 64)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mod",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was still open after 6 s");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a stalled body must end in a 4xx or a closed connection: {text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_sharing_redis_do_not_share_cache_entries() {
    let base = tollgate_cache::Config {
        namespace: format!("tollgate-test:{}:", uuid::Uuid::new_v4().simple()),
        ..tollgate_cache::Config::default()
    };
    let redis = tollgate_testkit::redis_url();
    let first = TestDb::sqlite().await;
    let second = TestDb::sqlite().await;
    let first_config = deployment_cache_config(&first.conn, &base).await.unwrap();
    let second_config = deployment_cache_config(&second.conn, &base).await.unwrap();
    assert_ne!(first_config.namespace, second_config.namespace);
    assert_eq!(
        deployment_cache_config(&first.conn, &base)
            .await
            .unwrap()
            .namespace,
        first_config.namespace,
        "a deployment's id is stable"
    );
    let gateway_on = |db: &TestDb, config: tollgate_cache::Config| {
        let conn = db.conn.clone();
        let redis = redis.clone();
        async move {
            let cache = Cache::tiered(config, &redis)
                .await
                .expect("Redis must be running (scripts/test.sh starts it)");
            Gateway::builder(conn).cache(cache).build().unwrap()
        }
    };
    let first_gateway = gateway_on(&first, first_config.clone()).await;
    let second_gateway = gateway_on(&second, second_config).await;
    let first_admin = admin(&first.conn, "root").await;
    assert_eq!(
        providers_status(&first_gateway, &first_admin.key).await,
        StatusCode::OK
    );
    // The first deployment's admin key is cached in Redis now; the second deployment does
    // not read that entry.
    assert_eq!(
        providers_status(&second_gateway, &first_admin.key).await,
        StatusCode::UNAUTHORIZED
    );
    // The hazard the namespace prevents: a gateway over the second database that shared the
    // first one's namespace would accept the key from the shared cache.
    let sharing = gateway_on(&second, first_config).await;
    assert_eq!(
        providers_status(&sharing, &first_admin.key).await,
        StatusCode::OK
    );
}
