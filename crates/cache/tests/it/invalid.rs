//! A value that does not decode is a miss, never an error or a panic.

use std::convert::Infallible;

use tollgate_cache::{Entry, Key, Tier};

use crate::families::{self, WidgetById};
use crate::support::{self, WITH_REDIS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_reads_as_a_miss_and_the_loader_answers() {
    let garbage: [&[u8]; 4] = [
        b"NOT_FOUND",
        b"None",
        br#"{"expires_at_ms":99999999999999,"entry":{"found":{"id":3}}}"#,
        &[0xff, 0xfe, 0x00],
    ];
    for kind in WITH_REDIS {
        for bad in garbage {
            let config = support::config();
            let namespace = config.namespace.clone();
            let cache = support::store(kind, config.clone()).await;
            let model = families::widget("decoded");
            let key = WidgetById(model.id.clone());
            let mut raw = support::raw().await;
            let _: () = deadpool_redis::redis::cmd("SET")
                .arg(format!("{namespace}{}", key.render()))
                .arg(bad)
                .query_async(&mut raw)
                .await
                .unwrap();

            assert_eq!(cache.get(&key).await, None, "{kind:?}");
            let loaded = cache
                .get_or_load(&key, || async { Ok::<_, Infallible>(Some(model.clone())) })
                .await
                .unwrap();
            assert_eq!(loaded.tier, Tier::Loader, "{kind:?}");
            assert_eq!(loaded.entry, Entry::Found(model.clone()));

            // The loader's answer replaced the garbage in Redis.
            let other = support::store(kind, config).await;
            let again = other.get(&key).await.unwrap();
            assert_eq!(
                (again.tier, again.entry),
                (Tier::Redis, Entry::Found(model))
            );
        }
    }
}
