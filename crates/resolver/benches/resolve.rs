//! Resolver benchmarks: resolve on an L1 hit, on a Redis hit and on a miss against
//! PostgreSQL; `plan` on a cache hit with 5 providers × 2 keys.
//!
//! ```text
//! bash scripts/test.sh --no-run   # or start PostgreSQL and Redis yourself
//! cargo bench -p tollgate-resolver --bench resolve
//! ```
#![allow(clippy::expect_used, missing_docs, reason = "benchmark harness")]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_cache::{Cache, Config};
use tollgate_entities::ApiFormat;
use tollgate_resolver::{Resolve, Resolver};
use tollgate_testkit::{TestDb, fixtures};

async fn seed(db: &TestDb) {
    let conn = &db.conn;
    let g = fixtures::insert(conn, fixtures::global_model("bench-model")).await;
    for i in 0..5 {
        let provider = fixtures::insert(conn, fixtures::provider(&format!("bench-p{i}"), i)).await;
        let endpoint = fixtures::insert(
            conn,
            fixtures::endpoint(&provider.id, ApiFormat::OpenAi, "http://bench.test/v1"),
        )
        .await;
        for k in 0..2 {
            fixtures::insert(
                conn,
                fixtures::provider_key(&endpoint.id, &format!("sk-{i}-{k}")),
            )
            .await;
        }
        fixtures::insert(
            conn,
            fixtures::model(&provider.id, &g.id, &format!("bench-upstream-{i}")),
        )
        .await;
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (db, local, redis_only) = runtime.block_on(async {
        let db = TestDb::postgres().await;
        seed(&db).await;
        let config = Config {
            namespace: format!("tollgate:bench:{}:", uuid::Uuid::new_v4().simple()),
            ..Config::default()
        };
        let local = Resolver::for_database(db.conn.clone())
            .build()
            .expect("resolver");
        let redis = Cache::redis(config, &tollgate_testkit::redis_url())
            .await
            .expect("redis cache");
        let redis_only = Resolver::for_database(db.conn.clone())
            .cache(redis)
            .build()
            .expect("resolver");
        (db, local, redis_only)
    });

    let mut group = c.benchmark_group("resolver");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    // A hit of each tier: warmed once, then resolved from that tier.
    for (name, resolver) in [
        ("resolve_l1_hit", &local),
        ("resolve_redis_hit", &redis_only),
    ] {
        runtime.block_on(async {
            resolver
                .resolve_global_model("bench-model")
                .await
                .expect("warm")
        });
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                resolver
                    .resolve_global_model("bench-model")
                    .await
                    .expect("resolve")
            });
        });
    }

    group.bench_function("resolve_miss_postgres", |b| {
        b.to_async(&runtime).iter(|| async {
            // Dropping the in-process entry (well under a microsecond) forces a load.
            let _ = local
                .cache()
                .delete(&Resolve("bench-upstream-3".to_owned()))
                .await;
            local
                .resolve_global_model("bench-upstream-3")
                .await
                .expect("resolve")
        });
    });

    runtime.block_on(async {
        local
            .plan("bench-model", ApiFormat::OpenAi, Some("client"))
            .await
            .expect("warm")
    });
    group.bench_function("plan_cache_hit_5x2", |b| {
        b.to_async(&runtime).iter(|| async {
            local
                .plan("bench-model", ApiFormat::OpenAi, Some("client"))
                .await
                .expect("plan")
        });
    });
    group.finish();
    drop(db);
}

criterion_group!(resolver, benches);
criterion_main!(resolver);
