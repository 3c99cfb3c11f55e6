//! Hit counters: Redis first, the in-process tier when Redis fails.

use crate::{Cache, CounterKey};

impl Cache {
    /// Adds one to the counter under `key` and restarts its TTL, atomically (INCR and PEXPIRE
    /// in one MULTI/EXEC round trip on Redis). Returns the new count; a counter that did not
    /// exist becomes 1. When Redis fails the in-process tier counts instead; `None` when no
    /// tier could count (a Redis-only store with Redis down).
    pub async fn incr_hits<K: CounterKey>(&self, key: &K) -> Option<i64> {
        let name = key.render();
        let ttl = K::ttl(&self.inner.config);
        if let Some(remote) = &self.inner.remote
            && let Ok(count) = remote.increment(&self.redis_key(&name), ttl).await
        {
            return Some(count);
        }
        self.inner
            .invalidator
            .local
            .as_ref()
            .map(|local| local.increment(name, ttl))
    }

    /// Sets the counter under `key` to 1 with a fresh TTL: call it when the entry it counts
    /// is populated. Best effort, like [`Cache::incr_hits`].
    pub async fn init_hits<K: CounterKey>(&self, key: &K) {
        let name = key.render();
        let ttl = K::ttl(&self.inner.config);
        if let Some(remote) = &self.inner.remote
            && remote
                .set_counter(&self.redis_key(&name), 1, ttl)
                .await
                .is_ok()
        {
            return;
        }
        if let Some(local) = &self.inner.invalidator.local {
            local.set_counter(name, 1, ttl);
        }
    }

    /// The counter under `key`, if it exists (Redis first, the in-process tier when Redis
    /// fails).
    pub async fn hits<K: CounterKey>(&self, key: &K) -> Option<i64> {
        let name = key.render();
        if let Some(remote) = &self.inner.remote
            && let Ok(count) = remote.counter(&self.redis_key(&name)).await
        {
            return count;
        }
        self.inner
            .invalidator
            .local
            .as_ref()
            .and_then(|local| local.counter(&name))
    }
}
