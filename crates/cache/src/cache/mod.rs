//! The cache handle: one interface over the in-process, Redis and tiered stores.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use deadpool_redis::redis::Client;

use crate::bus::{Bus, Invalidator, Message};
use crate::entry::encode;
use crate::flight::{self, Flights, Join, State, Waited};
use crate::local::Local;
use crate::remote::Remote;
use crate::telemetry::Telemetry;

mod counters;
mod read;
mod tiers;

use crate::{CacheError, CacheKey, Config, Entry, Key, Lookup, Tier};
use read::RemoteRead;

/// A cheap-to-clone handle on one store: in-process, Redis, or tiered (in-process in front of
/// Redis). Clones share everything; the invalidation subscriber stops when the last clone is
/// dropped.
///
/// Look-ups never fail because of Redis: a Redis error or timeout is counted
/// (`cache_backend_errors_total{backend="redis"}`) and the look-up falls through to the
/// in-process tier and the loader. After `breaker_threshold` consecutive failures Redis is
/// skipped for `breaker_backoff`, then probed again, so caching resumes by itself when Redis
/// returns.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    channel: String,
    /// `{namespace}meta:invalidation_version`, see [`crate::remote::Version`].
    version_key: String,
    telemetry: Telemetry,
    invalidator: Invalidator,
    remote: Option<Remote>,
    bus: Option<Bus>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.config.namespace)
            .field("in_process", &self.inner.invalidator.local.is_some())
            .field("redis", &self.inner.remote.is_some())
            .field("bus_connected", &self.bus_connected())
            .finish()
    }
}

impl Cache {
    /// An in-process store only: the embedded default. Fails only on an invalid `config`.
    pub fn in_process(config: Config) -> Result<Self, CacheError> {
        config.validate()?;
        let local = Local::new(config.l1_capacity);
        Ok(Self::assemble(config, Some(local), None, None))
    }

    /// A Redis store without an in-process tier. Its deletes still publish on the
    /// invalidation bus, so tiered replicas drop their copies.
    ///
    /// Fails only on an invalid `config` or an unparsable `url`: an unreachable Redis is
    /// handled like any Redis failure, so a process can start while Redis is down.
    pub async fn redis(config: Config, url: &str) -> Result<Self, CacheError> {
        Self::connect(config, url, false).await
    }

    /// An in-process tier in front of Redis, with the invalidation bus: deletes on any replica
    /// reach this one's in-process tier. Waits up to `connect_timeout` for the first
    /// subscription attempt, so a healthy Redis is subscribed when this returns.
    ///
    /// Fails only on an invalid `config` or an unparsable `url`.
    pub async fn tiered(config: Config, url: &str) -> Result<Self, CacheError> {
        Self::connect(config, url, true).await
    }

    async fn connect(config: Config, url: &str, in_process: bool) -> Result<Self, CacheError> {
        config.validate()?;
        let telemetry = Telemetry::new(&config.metric_labels);
        let remote = Remote::new(url, &config, telemetry.clone())?;
        let local = in_process.then(|| Local::new(config.l1_capacity));
        let client = if in_process {
            Some(Client::open(url).map_err(|source| CacheError::InvalidRedisUrl { source })?)
        } else {
            None
        };
        let cache = Self::assemble(config, local, Some(remote), client);
        // Open the shared connection now so the first look-up does not pay for it; a failure
        // is counted like any other and retried on use.
        if let Some(remote) = &cache.inner.remote {
            let _ = remote.ping().await;
        }
        if let Some(bus) = &cache.inner.bus {
            bus.first_attempt(cache.inner.config.connect_timeout).await;
        }
        Ok(cache)
    }

    fn assemble(
        config: Config,
        local: Option<Local>,
        remote: Option<Remote>,
        bus_client: Option<Client>,
    ) -> Self {
        let telemetry = Telemetry::new(&config.metric_labels);
        let invalidator = Invalidator {
            local,
            epoch: Arc::new(AtomicU64::new(0)),
            flights: Arc::new(Flights::default()),
        };
        let bus = bus_client
            .map(|client| Bus::spawn(client, &config, invalidator.clone(), telemetry.clone()));
        Self {
            inner: Arc::new(Inner {
                channel: config.channel(),
                version_key: format!("{}meta:invalidation_version", config.namespace),
                config,
                telemetry,
                invalidator,
                remote,
                bus,
            }),
        }
    }

    /// The configuration this cache runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Reads `key` from the in-process tier, then Redis (copying a Redis hit into the
    /// in-process tier). `None` when no tier holds it; an undecodable Redis value counts as
    /// absent.
    pub async fn get<K: CacheKey>(&self, key: &K) -> Option<Lookup<K::Value>> {
        let name = key.render();
        if let Some(hit) = self.local_lookup::<K>(&name, true) {
            return Some(hit);
        }
        let epoch = self.epoch();
        match self.remote_lookup::<K>(&name).await {
            RemoteRead::Hit(entry, remaining) => {
                self.fill_local::<K>(name, &entry, remaining, epoch);
                Some(Lookup {
                    entry,
                    tier: Tier::Redis,
                })
            }
            RemoteRead::Absent | RemoteRead::Miss | RemoteRead::Failed => None,
        }
    }

    /// Stores `entry` under `key` in every tier, with the family's TTL for found or missing
    /// entries, and tells other replicas to drop their in-process copy so none keeps an older
    /// value. Like a delete, it bumps the invalidation version, so a load in flight on any
    /// replica does not overwrite this value with what it read before.
    ///
    /// The in-process tier is always written. The error reports a Redis write that failed or
    /// was skipped by the open circuit breaker, or a value that cannot be serialized.
    pub async fn set<K: CacheKey>(
        &self,
        key: &K,
        entry: Entry<K::Value>,
    ) -> Result<(), CacheError> {
        let name = key.render();
        let ttl = self.ttl_for::<K>(&entry);
        let Some(remote) = self.inner.remote.as_ref().filter(|_| !ttl.is_zero()) else {
            // No Redis tier, or a zero TTL (nothing to keep; the in-process tier skips it too).
            self.insert_local(name, entry, ttl);
            return Ok(());
        };
        let encoded = encode(&entry, ttl).map_err(|source| CacheError::Encode {
            family: K::FAMILY,
            source,
        });
        self.insert_local(name.clone(), entry, ttl);
        let bytes = encoded?;
        let message = Message::Delete { key: name.clone() }.to_json();
        remote
            .set(
                &self.redis_key(&name),
                &bytes,
                ttl,
                &self.inner.version_key,
                (self.inner.channel.as_str(), message.as_str()),
            )
            .await
    }

    /// Removes `key` from every tier of this process and publishes it on the invalidation bus,
    /// so every subscribed replica drops its in-process copy. Loads in flight in this process
    /// when the delete happens do not store what they loaded.
    ///
    /// The in-process tier is always cleared. The error reports that Redis could not be
    /// reached (the delete is attempted even while the circuit breaker is open): the shared
    /// entry may then survive until its TTL, and other replicas were not told.
    pub async fn delete<K: Key>(&self, key: &K) -> Result<(), CacheError> {
        let name = key.render();
        self.inner.invalidator.remove(&name);
        let result = match &self.inner.remote {
            Some(remote) => {
                let message = Message::Delete { key: name.clone() }.to_json();
                remote
                    .delete(
                        &self.redis_key(&name),
                        &self.inner.version_key,
                        &self.inner.channel,
                        &message,
                    )
                    .await
            }
            None => Ok(()),
        };
        // A load in this process may have passed its epoch check just before the first
        // removal; removing again after the round trip closes that window.
        self.inner.invalidator.remove(&name);
        result
    }

    /// The entry under `key`, from the first tier that has it, or else from `loader`, whose
    /// answer is stored in every tier (`Ok(None)` is stored as [`Entry::Missing`]) unless an
    /// invalidation (a delete, set or flush on any replica) happened after the load began:
    /// the answer may then predate the change, and is only handed to the caller.
    ///
    /// Concurrent calls for one key in this process run one loader: the others wait and
    /// share its answer (with the tier that answered it). A loader error is returned to its
    /// caller and not cached; waiting callers then run their own loaders. Redis problems are
    /// never returned: they are counted and the call falls through to the loader.
    pub async fn get_or_load<K, F, Fut, E>(&self, key: &K, loader: F) -> Result<Lookup<K::Value>, E>
    where
        K: CacheKey,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<K::Value>, E>>,
    {
        let name = key.render();
        if let Some(hit) = self.local_lookup::<K>(&name, true) {
            return Ok(hit);
        }
        let leader = loop {
            match self.inner.invalidator.flights.join(&name) {
                Join::Leader(leader) => break Some(leader),
                Join::Follower(receiver) => match flight::wait(receiver).await {
                    Waited::Done(value, tier) => {
                        if let Some(entry) = value.downcast_ref::<Entry<K::Value>>() {
                            self.inner
                                .telemetry
                                .request(K::FAMILY, "flight", "coalesced");
                            return Ok(Lookup {
                                entry: entry.clone(),
                                tier,
                            });
                        }
                        // Another family rendered the same key: load independently.
                        break None;
                    }
                    Waited::Failed => break None,
                    Waited::Abandoned => {
                        if let Some(hit) = self.local_lookup::<K>(&name, false) {
                            return Ok(hit);
                        }
                    }
                },
            }
        };
        let result = self
            .load::<K, F, Fut, E>(name, leader.is_some(), loader)
            .await;
        if let Some(leader) = leader {
            leader.finish(match &result {
                Ok(lookup) => State::Done(Arc::new(lookup.entry.clone()), lookup.tier),
                Err(_) => State::Failed,
            });
        }
        result
    }

    async fn load<K, F, Fut, E>(
        &self,
        name: String,
        recheck: bool,
        loader: F,
    ) -> Result<Lookup<K::Value>, E>
    where
        K: CacheKey,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<K::Value>, E>>,
    {
        let epoch = self.epoch();
        // A load for this key may have finished between our miss and our taking the lead.
        if recheck && let Some(hit) = self.local_lookup::<K>(&name, false) {
            return Ok(hit);
        }
        let mut redis_usable = true;
        let (read, version) = self.remote_lookup_for_load::<K>(&name).await;
        match read {
            RemoteRead::Hit(entry, remaining) => {
                self.fill_local::<K>(name, &entry, remaining, epoch);
                return Ok(Lookup {
                    entry,
                    tier: Tier::Redis,
                });
            }
            // One failed Redis call per look-up is enough: writing back would add a second
            // timeout to this call.
            RemoteRead::Failed => redis_usable = false,
            RemoteRead::Absent | RemoteRead::Miss => {}
        }
        let loaded = match loader().await {
            Ok(loaded) => loaded,
            Err(error) => {
                self.inner.telemetry.request(K::FAMILY, "loader", "error");
                return Err(error);
            }
        };
        let entry = Entry::from(loaded);
        let result = if entry.is_missing() {
            "missing"
        } else {
            "found"
        };
        self.inner.telemetry.request(K::FAMILY, "loader", result);
        // An invalidation while we were loading means our answer may predate it: hand it to
        // the caller, but do not cache it.
        if self.epoch() == epoch {
            let ttl = self.ttl_for::<K>(&entry);
            if redis_usable
                && !ttl.is_zero()
                && let Some(remote) = &self.inner.remote
            {
                match encode(&entry, ttl) {
                    Ok(bytes) => {
                        // A failure is counted and logged by the Redis tier; the answer stands.
                        let stored = remote
                            .store_if_current(
                                &self.redis_key(&name),
                                &bytes,
                                ttl,
                                &self.inner.version_key,
                                &version,
                            )
                            .await;
                        if let Ok(false) = stored {
                            // Another replica invalidated since this load began.
                            self.inner
                                .telemetry
                                .request(K::FAMILY, "redis", "stale_store_skipped");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(family = K::FAMILY, %error, "cannot encode a cache value; not stored in redis");
                    }
                }
            }
            if self.epoch() == epoch {
                self.insert_local(name, entry.clone(), ttl);
            }
        }
        Ok(Lookup {
            entry,
            tier: Tier::Loader,
        })
    }

    /// Drops every entry of the namespace: this process's in-process tier, every Redis key
    /// under the namespace, and (through the bus) every replica's in-process tier. Returns how
    /// many Redis keys were removed.
    ///
    /// The error reports that Redis could not be reached; this process's in-process tier is
    /// cleared regardless.
    pub async fn flush(&self) -> Result<u64, CacheError> {
        self.inner.invalidator.clear();
        let result = match &self.inner.remote {
            Some(remote) => {
                remote
                    .flush(
                        &self.inner.config.namespace,
                        &self.inner.version_key,
                        &self.inner.channel,
                        &Message::Flush.to_json(),
                    )
                    .await
            }
            None => Ok(0),
        };
        self.inner.invalidator.clear();
        result
    }

    /// Whether the invalidation bus is subscribed right now (always `false` for stores without
    /// an in-process tier, which need no bus).
    pub fn bus_connected(&self) -> bool {
        self.inner.bus.as_ref().is_some_and(Bus::connected)
    }

    /// Whether Redis is currently being skipped after repeated failures (always `false` for
    /// the in-process store).
    pub fn redis_breaker_open(&self) -> bool {
        self.inner.remote.as_ref().is_some_and(Remote::breaker_open)
    }

    /// The exact number of entries in the in-process tier, `None` for a Redis-only store.
    /// Applies pending evictions first, which costs time: for diagnostics and tests.
    pub fn local_entry_count(&self) -> Option<u64> {
        self.inner
            .invalidator
            .local
            .as_ref()
            .map(Local::entry_count)
    }
}
