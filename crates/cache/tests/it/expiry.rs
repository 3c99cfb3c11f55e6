//! Found and Missing entries expire after their own TTLs, in every tier.

use std::time::Duration;

use tollgate_cache::{Cache, Entry, Key};

use crate::families::{self, WidgetById};
use crate::support::{self, Kind};

async fn expires(kind: Kind) {
    let config = tollgate_cache::Config {
        ttl: Duration::from_secs(1),
        negative_ttl: Duration::from_secs(2),
        ..support::config()
    };
    let namespace = config.namespace.clone();
    let cache: Cache = support::store(kind, config).await;
    let model = families::widget("expiring");
    let found = WidgetById(model.id.clone());
    let missing = WidgetById("absent".to_owned());
    cache
        .set(&found, Entry::Found(model.clone()))
        .await
        .unwrap();
    cache.set(&missing, Entry::Missing).await.unwrap();

    if kind != Kind::InProcess {
        let mut raw = support::raw().await;
        let found_ttl = support::pttl(&mut raw, &format!("{namespace}{}", found.render())).await;
        let missing_ttl =
            support::pttl(&mut raw, &format!("{namespace}{}", missing.render())).await;
        assert!(
            (1..=1000).contains(&found_ttl),
            "{kind:?}: found pttl {found_ttl}"
        );
        assert!(
            (1001..=2000).contains(&missing_ttl),
            "{kind:?}: missing pttl {missing_ttl}"
        );
    }

    assert_eq!(cache.get(&found).await.unwrap().entry, Entry::Found(model));
    assert_eq!(cache.get(&missing).await.unwrap().entry, Entry::Missing);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        cache.get(&found).await,
        None,
        "{kind:?}: found entry outlived its ttl"
    );
    assert_eq!(
        cache.get(&missing).await.map(|lookup| lookup.entry),
        Some(Entry::Missing),
        "{kind:?}: missing entry expired with the found ttl"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        cache.get(&missing).await,
        None,
        "{kind:?}: missing entry outlived its ttl"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_and_missing_expire_after_their_ttls() {
    tokio::join!(
        expires(Kind::InProcess),
        expires(Kind::Redis),
        expires(Kind::Tiered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_hit_lives_no_longer_in_l1_than_in_redis() {
    let config = tollgate_cache::Config {
        ttl: Duration::from_secs(2),
        ..support::config()
    };
    let writer = support::store(Kind::Redis, config.clone()).await;
    let reader = support::store(Kind::Tiered, config).await;
    let model = families::widget("copied");
    let key = WidgetById(model.id.clone());
    writer.set(&key, Entry::Found(model)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Copied into the reader's L1 with the ~0.8 s Redis has left, not a fresh 2 s.
    assert_eq!(
        reader.get(&key).await.unwrap().tier,
        tollgate_cache::Tier::Redis
    );
    assert_eq!(
        reader.get(&key).await.unwrap().tier,
        tollgate_cache::Tier::L1
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(reader.get(&key).await, None);
}
