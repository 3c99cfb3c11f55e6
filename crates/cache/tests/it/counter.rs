//! The hit counter: INCR and its TTL in one round trip, so it never lacks a TTL.

use tollgate_cache::Key;

use crate::families::StockHits;
use crate::support::{self, Kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increment_always_leaves_a_ttl() {
    let config = support::config();
    let namespace = config.namespace.clone();
    let cache = support::store(Kind::Redis, config).await;
    let mut raw = support::raw().await;
    let key = StockHits {
        shop_id: "p".to_owned(),
        widget_id: "g".to_owned(),
    };
    let redis_key = format!("{namespace}{}", key.render());

    assert_eq!(cache.incr_hits(&key).await, Some(1));
    let ttl = support::pttl(&mut raw, &redis_key).await;
    assert!(ttl > 0, "fresh counter has no ttl ({ttl})");

    assert_eq!(cache.incr_hits(&key).await, Some(2));
    assert!(support::pttl(&mut raw, &redis_key).await > 0);

    // A counter someone left without a TTL gets one back on the next increment.
    let _: () = deadpool_redis::redis::cmd("SET")
        .arg(&redis_key)
        .arg(41)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(support::pttl(&mut raw, &redis_key).await, -1);
    assert_eq!(cache.incr_hits(&key).await, Some(42));
    assert!(support::pttl(&mut raw, &redis_key).await > 0);

    cache.init_hits(&key).await;
    assert_eq!(cache.hits(&key).await, Some(1));
    assert!(support::pttl(&mut raw, &redis_key).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_counter_counts() {
    let cache = support::store(Kind::InProcess, support::config()).await;
    let key = StockHits {
        shop_id: "p".to_owned(),
        widget_id: "g".to_owned(),
    };
    assert_eq!(cache.hits(&key).await, None);
    cache.init_hits(&key).await;
    assert_eq!(cache.incr_hits(&key).await, Some(2));
    assert_eq!(cache.hits(&key).await, Some(2));
    cache.delete(&key).await.unwrap();
    assert_eq!(cache.hits(&key).await, None);
}
