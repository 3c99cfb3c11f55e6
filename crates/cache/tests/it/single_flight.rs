//! Concurrent misses for one key in one process run the loader once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tollgate_cache::{Entry, Tier};

use crate::families::{self, WidgetById};
use crate::support::{self, ALL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cold_loads_run_the_loader_once() {
    for kind in ALL {
        let cache = support::store(kind, support::config()).await;
        let model = families::widget("popular");
        let key = WidgetById(model.id.clone());
        let loads = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (cache, key, model, loads, barrier) = (
                cache.clone(),
                key.clone(),
                model.clone(),
                loads.clone(),
                barrier.clone(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_or_load(&key, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Infallible>(Some(model))
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut from_loader = 0;
        for task in tasks {
            let lookup = task.await.unwrap();
            assert_eq!(lookup.entry, Entry::Found(model.clone()));
            from_loader += usize::from(lookup.tier == Tier::Loader);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "{kind:?}: loader runs");
        assert!(from_loader >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_error_is_returned_and_not_cached() {
    for kind in ALL {
        let cache = support::store(kind, support::config()).await;
        let key = WidgetById("flaky".to_owned());
        let failed = cache
            .get_or_load(&key, || async { Err::<Option<_>, _>("database down") })
            .await;
        assert_eq!(failed, Err("database down"));
        assert_eq!(cache.get(&key).await, None, "{kind:?}");
        let model = families::widget("flaky");
        let loaded = cache
            .get_or_load(&key, || async { Ok::<_, &str>(Some(model.clone())) })
            .await
            .unwrap();
        assert_eq!(loaded.tier, Tier::Loader);
    }
}

/// behaviour.md 7: a load that began before an invalidation is not handed to a request that
/// began after it. The old load is still in flight (held by a oneshot) when the key is
/// deleted; a caller arriving after the delete runs its own loader and sees the new value,
/// and the old load's answer is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_in_flight_at_an_invalidation_is_not_shared_with_later_callers() {
    for kind in ALL {
        let cache = support::store(kind, support::config()).await;
        let old = families::widget("before-the-edit");
        let mut new = old.clone();
        new.name = "after-the-edit".to_owned();
        let key = WidgetById(old.id.clone());
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let early = {
            let (cache, key, old) = (cache.clone(), key.clone(), old.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&key, || async move {
                        let _ = started_tx.send(());
                        let _ = held.await;
                        Ok::<_, Infallible>(Some(old))
                    })
                    .await
                    .unwrap()
            })
        };
        started.await.unwrap();
        cache.delete(&key).await.unwrap();
        let late = {
            let (cache, key, new) = (cache.clone(), key.clone(), new.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&key, || async move { Ok::<_, Infallible>(Some(new)) })
                    .await
                    .unwrap()
            })
        };
        let late = tokio::time::timeout(Duration::from_secs(5), late)
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: the late caller waited on the old load"))
            .unwrap();
        assert_eq!(late.entry, Entry::Found(new.clone()), "{kind:?}");
        release.send(()).unwrap();
        let old_again = old.clone();
        assert_eq!(early.await.unwrap().entry, Entry::Found(old), "{kind:?}");
        let after = cache
            .get_or_load(&key, || async { Ok::<_, Infallible>(None) })
            .await
            .unwrap();
        // The late load may not have been stored either (this process's own bus message can
        // arrive during it, and a load that saw an invalidation stores nothing); what must
        // never be there is the old value.
        assert_ne!(
            after.entry,
            Entry::Found(old_again),
            "{kind:?}: the old load was stored"
        );
    }
}
