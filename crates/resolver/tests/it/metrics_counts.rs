//! The seed's metrics: one resolution count per call with the real method on cache hits,
//! and the conflict counter. Each test runs on its own thread with a local recorder.

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tollgate_resolver::{ResolutionOrder, ResolverConfig};
use tollgate_testkit::Backend;

use crate::support::{CacheSetup, Ctx, seed_global, seed_model, seed_provider};

/// The tests `sqlite` and `postgres` in a module named after `$body`, each calling
/// `$body(backend)`: the naming of `db_test!`, for tests that build their own runtime.
macro_rules! on_both_backends {
    ($body:ident) => {
        mod $body {
            use tollgate_testkit::Backend;

            #[test]
            fn sqlite() {
                super::$body(Backend::Sqlite);
            }

            #[test]
            fn postgres() {
                super::$body(Backend::Postgres);
            }
        }
    };
}

/// Runs `body` on a current-thread runtime under a local recorder, so concurrent tests
/// cannot add to these counters.
fn with_recorder<F, Fut>(body: F) -> Snapshotter
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body());
    });
    snapshotter
}

type Metrics = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Takes the recorded values once: a snapshot drains what it reads.
fn read(snapshotter: &Snapshotter) -> Metrics {
    snapshotter.snapshot().into_vec()
}

fn counter(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .iter()
        .filter(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

fn resolutions_are_counted_once_with_the_real_method(backend: Backend) {
    let snapshot = with_recorder(|| async move {
        let ctx = Ctx::new(backend, CacheSetup::Local).await;
        let g = seed_global(ctx.conn(), "counted-global").await;
        let p = seed_provider(ctx.conn(), "p", 10).await;
        seed_model(ctx.conn(), &p.provider, &g, "counted-upstream").await;
        let resolver = ctx.resolver().await;
        for _ in 0..3 {
            resolver
                .resolve_global_model("counted-upstream")
                .await
                .unwrap();
        }
        resolver
            .resolve_global_model("counted-global")
            .await
            .unwrap();
        resolver.resolve_global_model("nothing-here").await.unwrap();
        resolver.resolve_global_model("nothing-here").await.unwrap();
    });
    let snapshot = read(&snapshot);
    let total = "model_mapping_resolution_total";
    for (method, cache_hit, count) in [
        ("provider_model_name", "false", 1),
        ("provider_model_name", "true", 2),
        ("direct_match", "false", 1),
        ("not_found", "false", 1),
        ("not_found", "true", 1),
    ] {
        let labels = [("method", method), ("cache_hit", cache_hit)];
        assert_eq!(counter(&snapshot, total, &labels), count, "{labels:?}");
    }
    assert_eq!(counter(&snapshot, total, &[]), 6, "one count per call");
    assert_eq!(counter(&snapshot, "model_mapping_conflict_total", &[]), 0);
}

on_both_backends!(resolutions_are_counted_once_with_the_real_method);

fn conflicts_are_counted(backend: Backend) {
    let snapshot = with_recorder(|| async move {
        let ctx = Ctx::new(backend, CacheSetup::Local).await;
        let conn = ctx.conn();
        // Two global models share a provider model name.
        let g1 = seed_global(conn, "one").await;
        let g2 = seed_global(conn, "two").await;
        let a = seed_provider(conn, "a", 10).await;
        let b = seed_provider(conn, "b", 20).await;
        seed_model(conn, &a.provider, &g1, "shared").await;
        seed_model(conn, &b.provider, &g2, "shared").await;
        // A provider model name shadows another global model's name.
        let shadowed = seed_global(conn, "shadowed").await;
        seed_model(conn, &a.provider, &g1, "shadowed").await;
        let _ = shadowed;
        let resolver = ctx.resolver().await;
        for name in ["shared", "shadowed"] {
            let resolved = resolver.resolve_global_model(name).await.unwrap().unwrap();
            assert_eq!(resolved.global_model.id, g1.id, "{name}");
        }
        // Cache hits do not count again.
        resolver.resolve_global_model("shared").await.unwrap();
        // With direct_first the canonical name wins and nothing is shadowed.
        let direct = ctx
            .resolver_with(ResolverConfig {
                resolution_order: ResolutionOrder::DirectFirst,
                ..ResolverConfig::default()
            })
            .await;
        assert_eq!(
            direct
                .resolve_global_model("shadowed")
                .await
                .unwrap()
                .unwrap()
                .global_model
                .name,
            "shadowed"
        );
    });
    let snapshot = read(&snapshot);
    assert_eq!(counter(&snapshot, "model_mapping_conflict_total", &[]), 2);
}

on_both_backends!(conflicts_are_counted);
