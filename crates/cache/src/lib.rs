//! Typed cache keys with TTLs and negative caching over in-process, Redis and tiered stores,
//! plus the cross-replica invalidation bus (issue 3 fills this crate).
