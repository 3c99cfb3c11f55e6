//! Deletes and flushes reach every replica's in-process tier through the bus.

use std::convert::Infallible;
use std::time::Duration;

use tollgate_cache::{Entry, ModelById, Resolve, Tier};

use crate::support::{self, Kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_one_store_reaches_another_within_100ms() {
    for deleter_kind in [Kind::Tiered, Kind::Redis] {
        let config = support::config();
        let replica = support::store(Kind::Tiered, config.clone()).await;
        let deleter = support::store(deleter_kind, config).await;
        assert!(replica.bus_connected());

        let model = support::model("invalidated");
        let key = ModelById(model.id.clone());
        let loaded = replica
            .get_or_load(&key, || async { Ok::<_, Infallible>(Some(model.clone())) })
            .await
            .unwrap();
        assert_eq!(loaded.tier, Tier::Loader);
        assert_eq!(replica.get(&key).await.unwrap().tier, Tier::L1);

        deleter.delete(&key).await.unwrap();
        let took = support::eventually(Duration::from_secs(2), "invalidation", || async {
            replica.get(&key).await.is_none()
        })
        .await;
        assert!(
            took < Duration::from_millis(100),
            "{deleter_kind:?}: invalidation took {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_drops_the_namespace_in_every_tier_and_replica() {
    let config = support::config();
    let replica = support::store(Kind::Tiered, config.clone()).await;
    let admin = support::store(Kind::Tiered, config).await;
    let bystander = support::store(Kind::Tiered, support::config()).await;

    let mut keys = Vec::new();
    for i in 0..50 {
        let key = Resolve(format!("name-{i}"));
        // get_or_load populates both tiers without publishing anything.
        for cache in [&replica, &bystander] {
            cache
                .get_or_load(&key, || async { Ok::<_, Infallible>(None) })
                .await
                .unwrap();
        }
        assert_eq!(replica.get(&key).await.unwrap().tier, Tier::L1);
        keys.push(key);
    }

    let removed = admin.flush().await.unwrap();
    assert_eq!(removed, 50);
    support::eventually(Duration::from_secs(2), "flush", || async {
        replica.get(&keys[0]).await.is_none()
    })
    .await;
    for key in &keys {
        assert_eq!(replica.get(key).await, None);
        // Another namespace is untouched.
        assert!(bystander.get(key).await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_races_a_delete_is_not_cached() {
    let cache = support::store(Kind::Tiered, support::config()).await;
    let key = Resolve("racing".to_owned());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let loading = {
        let cache = cache.clone();
        let key = key.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(&key, || async move {
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, Infallible>(None)
                })
                .await
                .unwrap()
        })
    };
    started_rx.await.unwrap();
    cache.delete(&key).await.unwrap();
    release_tx.send(()).unwrap();
    let answer = loading.await.unwrap();
    assert_eq!(answer.entry, Entry::Missing);
    // The answer loaded before the delete was handed back but not stored.
    assert_eq!(cache.get(&key).await, None);
}
