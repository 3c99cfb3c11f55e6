//! The handle's private per-tier steps: the in-process tier's reads and writes, and a Redis
//! read with its telemetry.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Cache;
use super::read::RemoteRead;
use crate::entry::decode;
use crate::remote::Version;
use crate::{CacheError, CacheKey, Entry, Lookup, Tier};

impl Cache {
    pub(super) fn epoch(&self) -> u64 {
        self.inner.invalidator.epoch.load(Ordering::Acquire)
    }

    pub(super) fn redis_key(&self, name: &str) -> String {
        let namespace = &self.inner.config.namespace;
        let mut key = String::with_capacity(namespace.len() + name.len());
        key.push_str(namespace);
        key.push_str(name);
        key
    }

    pub(super) fn ttl_for<K: CacheKey>(&self, entry: &Entry<K::Value>) -> Duration {
        if entry.is_missing() {
            K::negative_ttl(&self.inner.config)
        } else {
            K::ttl(&self.inner.config)
        }
    }

    pub(super) fn insert_local<V: Send + Sync + 'static>(
        &self,
        name: String,
        entry: Entry<V>,
        ttl: Duration,
    ) {
        if let Some(local) = &self.inner.invalidator.local {
            local.insert(name, entry, ttl);
        }
    }

    /// Copies a Redis hit into the in-process tier for no longer than Redis keeps it, unless
    /// an invalidation happened since the read started.
    pub(super) fn fill_local<K: CacheKey>(
        &self,
        name: String,
        entry: &Entry<K::Value>,
        remaining: Duration,
        epoch: u64,
    ) {
        if self.inner.invalidator.local.is_some() && self.epoch() == epoch {
            let ttl = self.ttl_for::<K>(entry).min(remaining);
            self.insert_local(name, entry.clone(), ttl);
        }
    }

    pub(super) fn local_lookup<K: CacheKey>(
        &self,
        name: &str,
        count: bool,
    ) -> Option<Lookup<K::Value>> {
        let local = self.inner.invalidator.local.as_ref()?;
        let found = local.get::<K::Value>(name);
        if count {
            let result = match &found {
                Some(Entry::Found(_)) => "hit",
                Some(Entry::Missing) => "negative_hit",
                None => "miss",
            };
            self.inner.telemetry.request(K::FAMILY, "l1", result);
        }
        found.map(|entry| Lookup {
            entry,
            tier: Tier::L1,
        })
    }

    pub(super) async fn remote_lookup<K: CacheKey>(&self, name: &str) -> RemoteRead<K::Value> {
        let Some(remote) = &self.inner.remote else {
            return RemoteRead::Absent;
        };
        let redis_key = self.redis_key(name);
        let read = remote.get(&redis_key).await;
        self.remote_read::<K>(&redis_key, read)
    }

    /// [`Cache::remote_lookup`], with the invalidation version a load's store must match.
    pub(super) async fn remote_lookup_for_load<K: CacheKey>(
        &self,
        name: &str,
    ) -> (RemoteRead<K::Value>, Version) {
        let Some(remote) = &self.inner.remote else {
            return (RemoteRead::Absent, Version::default());
        };
        let redis_key = self.redis_key(name);
        match remote
            .get_with_version(&redis_key, &self.inner.version_key)
            .await
        {
            Ok((bytes, version)) => (self.remote_read::<K>(&redis_key, Ok(bytes)), version),
            Err(error) => (
                self.remote_read::<K>(&redis_key, Err(error)),
                Version::default(),
            ),
        }
    }

    pub(super) fn remote_read<K: CacheKey>(
        &self,
        redis_key: &str,
        read: Result<Option<Vec<u8>>, CacheError>,
    ) -> RemoteRead<K::Value> {
        let telemetry = &self.inner.telemetry;
        match read {
            Ok(Some(bytes)) => match decode::<K::Value>(&bytes) {
                Ok((entry, remaining)) => {
                    let result = if entry.is_missing() {
                        "negative_hit"
                    } else {
                        "hit"
                    };
                    telemetry.request(K::FAMILY, "redis", result);
                    RemoteRead::Hit(entry, remaining)
                }
                Err(error) => {
                    tracing::warn!(
                        family = K::FAMILY,
                        key = %redis_key,
                        %error,
                        "undecodable cache value; treated as a miss"
                    );
                    telemetry.request(K::FAMILY, "redis", "invalid");
                    RemoteRead::Miss
                }
            },
            Ok(None) => {
                telemetry.request(K::FAMILY, "redis", "miss");
                RemoteRead::Miss
            }
            Err(CacheError::BreakerOpen { .. }) => {
                telemetry.request(K::FAMILY, "redis", "skipped");
                RemoteRead::Failed
            }
            Err(_) => {
                telemetry.request(K::FAMILY, "redis", "error");
                RemoteRead::Failed
            }
        }
    }
}
