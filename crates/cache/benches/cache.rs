//! Criterion benchmark of the cache: an in-process hit, a Redis hit, a miss followed by a
//! load, and, in the same run for comparison, a raw Redis GET of the same bytes on a held
//! multiplexed connection. Needs the local Redis (`tollgate_testkit::redis_url()`).

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop"
)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use deadpool_redis::redis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tollgate_cache::{Cache, Config, Entry, Key};

/// The cached value: a stand-in for a catalogue row snapshot with the fields of the resolver's
/// `models::Model` (about 600 bytes of JSON), so encoding and decoding cost what they cost
/// in the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    id: String,
    provider_id: String,
    global_model_id: String,
    provider_model_name: String,
    provider_model_aliases: Option<Vec<String>>,
    price_per_request: Option<f64>,
    tiered_pricing: Option<serde_json::Value>,
    supports_vision: Option<bool>,
    supports_function_calling: Option<bool>,
    supports_streaming: Option<bool>,
    supports_extended_thinking: Option<bool>,
    supports_image_generation: Option<bool>,
    is_active: bool,
    is_available: bool,
    config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

tollgate_cache::string_key! {
    /// `row:id:{id}`: a row by its id.
    struct RowById(String);
    family = "row_by_id", prefix = "row:id:", value = Row;
}

fn benches(c: &mut Criterion) {
    // One thread: the benchmark loop and the Redis connection's driver share it, as they
    // would share a worker under load; both Redis benchmarks run on it alike.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = tollgate_testkit::redis_url();
    let config = Config {
        namespace: format!("tollgate:bench:{}:", uuid::Uuid::new_v4().simple()),
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(60),
        ..Config::default()
    };
    // The testkit's `models` row, decoded into the mirror: the cached JSON is the row's own.
    let id = || uuid::Uuid::new_v4().to_string();
    let row = tollgate_testkit::fixtures::model(&id(), &id(), "claude-sonnet-4-20250514");
    let model: Row = serde_json::from_value(serde_json::to_value(row).unwrap()).unwrap();
    let key = RowById(model.id.clone());

    let in_process = Cache::in_process(config.clone()).unwrap();
    let (remote, tiered, raw) = runtime.block_on(async {
        let remote = Cache::redis(config.clone(), &url).await.unwrap();
        let tiered = Cache::tiered(config.clone(), &url).await.unwrap();
        let raw = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        in_process
            .set(&key, Entry::Found(model.clone()))
            .await
            .unwrap();
        remote.set(&key, Entry::Found(model.clone())).await.unwrap();
        (remote, tiered, raw)
    });
    let raw_key = format!("{}{}", config.namespace, key.render());

    let mut group = c.benchmark_group("cache");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);

    group.bench_function("l1_hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(in_process.get(&key).await) });
    });
    group.bench_function("raw_redis_get", |b| {
        // The strictest baseline: one connection borrowed mutably across the whole loop.
        b.to_async(&runtime).iter_custom(|iterations| {
            let mut connection = raw.clone();
            let raw_key = raw_key.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    let bytes: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(&raw_key)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    black_box(bytes);
                }
                started.elapsed()
            }
        });
    });

    group.bench_function("redis_hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(remote.get(&key).await) });
    });
    // The same comparison with the two interleaved call by call, so machine noise hits both
    // alike: criterion reports the cache's time, the ratio is printed at the end.
    let paired = std::cell::Cell::new((Duration::ZERO, Duration::ZERO));
    group.bench_function("redis_hit_paired", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let mut connection = raw.clone();
            let (raw_key, remote, key, paired) = (&raw_key, &remote, &key, &paired);
            async move {
                let (mut raw_total, mut hit_total) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iterations {
                    let started = Instant::now();
                    let bytes: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(raw_key)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    black_box(bytes);
                    let between = Instant::now();
                    black_box(remote.get(key).await);
                    raw_total += between - started;
                    hit_total += between.elapsed();
                }
                let (raw_sum, hit_sum) = paired.get();
                paired.set((raw_sum + raw_total, hit_sum + hit_total));
                hit_total
            }
        });
    });
    let (raw_sum, hit_sum) = paired.get();
    eprintln!(
        "paired redis hit / raw GET ratio: {:.3}",
        hit_sum.as_secs_f64() / raw_sum.as_secs_f64().max(f64::MIN_POSITIVE)
    );

    let fresh = AtomicU64::new(0);
    let miss_then_load = |cache: &Cache| {
        let key = RowById(format!("miss-{}", fresh.fetch_add(1, Ordering::Relaxed)));
        let model = model.clone();
        let cache = cache.clone();
        async move {
            black_box(
                cache
                    .get_or_load(&key, || async { Ok::<_, Infallible>(Some(model)) })
                    .await
                    .unwrap(),
            )
        }
    };
    group.bench_function("miss_then_load_in_process", |b| {
        b.to_async(&runtime).iter(|| miss_then_load(&in_process));
    });
    group.bench_function("miss_then_load_tiered", |b| {
        b.to_async(&runtime).iter(|| miss_then_load(&tiered));
    });
    group.finish();

    runtime.block_on(async {
        let _ = remote.flush().await;
    });
}

criterion_group!(cache, benches);
criterion_main!(cache);
