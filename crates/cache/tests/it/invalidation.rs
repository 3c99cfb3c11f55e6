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

/// The race across replicas: replica B misses and reads the database just before an admin
/// edit commits on replica A; A deletes the key (after its commit); then B's load finishes.
/// B hands its answer to its caller but must not store it in Redis, where every replica
/// would read the pre-edit value until the TTL ran out. B's own invalidation epoch cannot
/// tell: a Redis-only store has no bus, and a tiered one may hear the bus message only
/// after it has stored. The namespace's invalidation version in Redis does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_on_another_replica_that_races_a_delete_is_not_shared() {
    for loader_kind in [Kind::Redis, Kind::Tiered] {
        let config = support::config();
        let loader = support::store(loader_kind, config.clone()).await;
        let admin = support::store(Kind::Tiered, config.clone()).await;
        let reader = support::store(Kind::Redis, config).await;
        let before = support::model("before-the-edit");
        let mut after = before.clone();
        after.provider_model_name = "after-the-edit".to_owned();
        let key = ModelById(before.id.clone());

        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let loading = {
            let loader = loader.clone();
            let key = key.clone();
            let before = before.clone();
            tokio::spawn(async move {
                loader
                    .get_or_load(&key, || async move {
                        // The database answered with the row as it was before the edit.
                        let _ = started_tx.send(());
                        let _ = release_rx.await;
                        Ok::<_, Infallible>(Some(before))
                    })
                    .await
                    .unwrap()
            })
        };
        started_rx.await.unwrap();
        // The edit commits, then its invalidation runs.
        admin.delete(&key).await.unwrap();
        release_tx.send(()).unwrap();
        let answer = loading.await.unwrap();
        assert_eq!(answer.entry, Entry::Found(before.clone()));
        assert_eq!(
            reader.get(&key).await,
            None,
            "{loader_kind:?}: the pre-edit answer was stored in redis after the delete"
        );

        // Caching goes on: the next load stores the new row, and other replicas read it.
        let loaded = loader
            .get_or_load(&key, || async { Ok::<_, Infallible>(Some(after.clone())) })
            .await
            .unwrap();
        assert_eq!(loaded.tier, Tier::Loader);
        let shared = reader.get(&key).await.unwrap();
        assert_eq!(
            (shared.entry, shared.tier),
            (Entry::Found(after.clone()), Tier::Redis)
        );
    }
}

/// A flush also invalidates loads in flight, and keeps the invalidation version, so that a
/// load cannot find the number it read again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_invalidates_loads_in_flight_and_keeps_the_version() {
    let config = support::config();
    let namespace = config.namespace.clone();
    let loader = support::store(Kind::Redis, config.clone()).await;
    let admin = support::store(Kind::Tiered, config.clone()).await;
    let reader = support::store(Kind::Redis, config).await;
    let key = Resolve("flushed-while-loading".to_owned());
    admin.delete(&key).await.unwrap();

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let loading = {
        let loader = loader.clone();
        let key = key.clone();
        tokio::spawn(async move {
            loader
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
    admin.flush().await.unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(loading.await.unwrap().entry, Entry::Missing);
    assert_eq!(reader.get(&key).await, None);

    let mut raw = support::raw().await;
    let version: Option<i64> = deadpool_redis::redis::cmd("GET")
        .arg(format!("{namespace}meta:invalidation_version"))
        .query_async(&mut raw)
        .await
        .unwrap();
    // One delete, then the flush's bump on top of the surviving version.
    assert_eq!(version, Some(2));
}
