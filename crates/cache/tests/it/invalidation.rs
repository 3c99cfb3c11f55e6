//! Deletes and flushes reach every replica's in-process tier through the bus.

use std::convert::Infallible;
use std::time::Duration;

use tollgate_cache::{Cache, CacheKey, Entry, Tier};

use crate::families::{self, Pick, WidgetById};
use crate::support::{self, Kind};

/// A `get_or_load` whose loader has read its answer (`value`) and is held until `release`
/// fires: the window in which an invalidation can overtake a load.
struct HeldLoad<V> {
    release: tokio::sync::oneshot::Sender<()>,
    loading: tokio::task::JoinHandle<tollgate_cache::Lookup<V>>,
}

impl<V: Clone + Send + Sync + 'static> HeldLoad<V> {
    /// Starts the load on `cache` and returns once its loader runs.
    async fn start<K>(cache: &Cache, key: &K, value: Option<V>) -> Self
    where
        K: CacheKey<Value = V> + Clone + Send + Sync + 'static,
    {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
        let cache = cache.clone();
        let key = key.clone();
        let loading = tokio::spawn(async move {
            cache
                .get_or_load(&key, || async move {
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, Infallible>(value)
                })
                .await
                .unwrap()
        });
        started_rx.await.unwrap();
        Self { release, loading }
    }

    /// Lets the loader answer; returns what the caller got.
    async fn finish(self) -> tollgate_cache::Lookup<V> {
        self.release.send(()).unwrap();
        self.loading.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_one_store_reaches_another_within_100ms() {
    for deleter_kind in [Kind::Tiered, Kind::Redis] {
        let config = support::config();
        let replica = support::store(Kind::Tiered, config.clone()).await;
        let deleter = support::store(deleter_kind, config).await;
        assert!(replica.bus_connected());

        let model = families::widget("invalidated");
        let key = WidgetById(model.id.clone());
        support::load_into_l1(&replica, &key, model).await;

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
        let key = Pick(format!("name-{i}"));
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
    let key = Pick("racing".to_owned());
    let held = HeldLoad::start(&cache, &key, None).await;
    cache.delete(&key).await.unwrap();
    let answer = held.finish().await;
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
        let before = families::widget("before-the-edit");
        let mut after = before.clone();
        after.name = "after-the-edit".to_owned();
        let key = WidgetById(before.id.clone());

        // The database answered with the row as it was before the edit.
        let held = HeldLoad::start(&loader, &key, Some(before.clone())).await;
        // The edit commits, then its invalidation runs.
        admin.delete(&key).await.unwrap();
        let answer = held.finish().await;
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
    let key = Pick("flushed-while-loading".to_owned());
    admin.delete(&key).await.unwrap();

    let held = HeldLoad::start(&loader, &key, None).await;
    admin.flush().await.unwrap();
    assert_eq!(held.finish().await.entry, Entry::Missing);
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
