//! The three stores of `tollgate-cache` for tests, and the round-trip checks every key family
//! must pass on each of them (the cache's own toy families and the resolver's real ones).

use std::fmt::Debug;

use tollgate_cache::{Cache, CacheKey, Config, CounterKey, Entry, Lookup, Tier};

/// The three stores behind the cache's one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Cache::in_process`.
    InProcess,
    /// `Cache::redis`.
    Redis,
    /// `Cache::tiered`: an in-process L1 in front of Redis, with the invalidation bus.
    Tiered,
}

/// Every store.
pub const ALL: [Kind; 3] = [Kind::InProcess, Kind::Redis, Kind::Tiered];

/// The stores that keep their values in Redis.
pub const WITH_REDIS: [Kind; 2] = [Kind::Redis, Kind::Tiered];

/// A configuration with a namespace (and so a bus channel) of its own.
pub fn config() -> Config {
    Config {
        namespace: format!("tollgate:test:{}:", uuid::Uuid::new_v4().simple()),
        ..Config::default()
    }
}

/// A `kind` store on the test Redis ([`crate::redis_url`]).
pub async fn store(kind: Kind, config: Config) -> Cache {
    store_at(kind, config, &crate::redis_url()).await
}

/// A `kind` store on the Redis at `url`; panics when it cannot be built.
pub async fn store_at(kind: Kind, config: Config, url: &str) -> Cache {
    match kind {
        Kind::InProcess => Cache::in_process(config),
        Kind::Redis => Cache::redis(config, url).await,
        Kind::Tiered => Cache::tiered(config, url).await,
    }
    .unwrap_or_else(|error| panic!("cannot build the {kind:?} cache: {error}"))
}

/// A writer and a reader on one fresh namespace: one handle in process, two handles with
/// Redis, so that what the reader gets comes from Redis's bytes.
pub async fn writer_and_reader(kind: Kind) -> (Cache, Cache) {
    let config = config();
    let writer = store(kind, config.clone()).await;
    let reader = if kind == Kind::InProcess {
        writer.clone()
    } else {
        store(kind, config).await
    };
    (writer, reader)
}

/// Stores `value` under `key` through `writer`, reads it back through `reader` and asserts
/// that it comes back equal, from L1 in process and from Redis otherwise. Returns what was
/// read, for further checks.
pub async fn round_trip<K>(
    writer: &Cache,
    reader: &Cache,
    kind: Kind,
    key: K,
    value: K::Value,
) -> K::Value
where
    K: CacheKey + Debug,
    K::Value: PartialEq + Debug,
{
    let lookup = store_and_read(writer, reader, kind, &key, Entry::Found(value.clone())).await;
    assert_eq!(lookup.entry, Entry::Found(value), "{kind:?}: {key:?}");
    let expected = if kind == Kind::InProcess {
        Tier::L1
    } else {
        Tier::Redis
    };
    assert_eq!(lookup.tier, expected, "{kind:?}: {key:?}");
    lookup
        .entry
        .found()
        .unwrap_or_else(|| panic!("{kind:?}: {key:?} is missing"))
}

/// A negative entry is an entry of its own: stored as `Missing`, read back as `Missing`.
pub async fn missing_round_trips<K>(writer: &Cache, reader: &Cache, kind: Kind, key: K)
where
    K: CacheKey + Debug,
    K::Value: PartialEq + Debug,
{
    let lookup = store_and_read(writer, reader, kind, &key, Entry::Missing).await;
    assert_eq!(lookup.entry, Entry::Missing, "{kind:?}");
}

/// Stores `entry` under `key` through `writer` and reads it back through `reader`.
async fn store_and_read<K: CacheKey + Debug>(
    writer: &Cache,
    reader: &Cache,
    kind: Kind,
    key: &K,
    entry: Entry<K::Value>,
) -> Lookup<K::Value> {
    writer
        .set(key, entry)
        .await
        .unwrap_or_else(|error| panic!("{kind:?}: cannot store {key:?}: {error}"));
    reader
        .get(key)
        .await
        .unwrap_or_else(|| panic!("{kind:?}: {key:?} not found"))
}

/// A hit counter starts absent, reads 1 once initialised and counts on from there, as seen
/// from both handles.
pub async fn counter_counts<C: CounterKey>(writer: &Cache, reader: &Cache, kind: Kind, counter: C) {
    assert_eq!(reader.hits(&counter).await, None, "{kind:?}");
    writer.init_hits(&counter).await;
    assert_eq!(reader.hits(&counter).await, Some(1), "{kind:?}");
    assert_eq!(writer.incr_hits(&counter).await, Some(2), "{kind:?}");
    assert_eq!(reader.hits(&counter).await, Some(2), "{kind:?}");
}
