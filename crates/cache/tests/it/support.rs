//! Shared helpers: unique namespaces, store construction, raw Redis access, private Redis
//! servers and a Redis that never answers.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use deadpool_redis::redis::{self, aio::MultiplexedConnection};
use tollgate_cache::{Cache, CacheKey, Tier};

// The stores and their configuration are shared with the resolver's round-trip tests.
pub(crate) use tollgate_testkit::stores::{ALL, Kind, WITH_REDIS, config, store, store_at};

/// A connection of the test's own, for looking at (and tampering with) what the cache wrote.
pub(crate) async fn raw() -> MultiplexedConnection {
    redis::Client::open(tollgate_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

pub(crate) async fn pttl(connection: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Loads `value` under `key` through `cache`'s loader and asserts that it came from the
/// loader and is then in the in-process tier.
pub(crate) async fn load_into_l1<K: CacheKey>(cache: &Cache, key: &K, value: K::Value) {
    let loaded = cache
        .get_or_load(key, || async { Ok::<_, Infallible>(Some(value)) })
        .await
        .unwrap();
    assert_eq!(loaded.tier, Tier::Loader);
    assert_eq!(cache.get(key).await.unwrap().tier, Tier::L1);
}

/// Polls `condition` every millisecond until it holds; panics with `what` after `limit`.
pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A "Redis" that accepts connections and never answers. Returns its URL; the listener lives
/// as long as the test's runtime.
pub(crate) async fn silent_redis() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}
