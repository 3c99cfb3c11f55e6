//! What a read of the Redis tier gave, shared by the handle (`mod.rs`) and the per-tier
//! reads (`tiers.rs`).

use std::time::Duration;

use crate::Entry;

/// What a Redis read gave.
pub(super) enum RemoteRead<V> {
    /// This store has no Redis tier.
    Absent,
    /// Nothing usable under the key (absent, or undecodable).
    Miss,
    /// An entry, and how long it has left in Redis.
    Hit(Entry<V>, Duration),
    /// Redis failed or was skipped; do not write to it in this call either.
    Failed,
}
