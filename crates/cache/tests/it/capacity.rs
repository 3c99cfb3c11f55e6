//! The in-process tier stays within its entry bound.

use tollgate_cache::{Config, Entry};

use crate::families::Pick;
use crate::support::{self, Kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_stays_within_its_bound() {
    let config = Config {
        l1_capacity: 500,
        ..support::config()
    };
    let cache = support::store(Kind::InProcess, config).await;
    for i in 0..20_000 {
        cache
            .set(&Pick(format!("random-name-{i}")), Entry::Missing)
            .await
            .unwrap();
    }
    let count = cache.local_entry_count().unwrap();
    assert!(count <= 500, "l1 holds {count} entries, bound is 500");
    assert!(count > 0);
}
