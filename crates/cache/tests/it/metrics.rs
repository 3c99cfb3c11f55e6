//! The counters named in product.md, with their labels and the configured extra labels.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tollgate_cache::Config;

use crate::families::WidgetById;
use crate::support::{self, Kind};

/// A recorder that keeps every counter by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct Capture {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

impl Capture {
    fn value(&self, series: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(series)
            .map_or(0, |count| count.load(Ordering::SeqCst))
    }

    fn series(&self) -> Vec<String> {
        self.counters.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        labels.sort();
        let series = format!("{}{{{}}}", key.name(), labels.join(","));
        let count = self
            .counters
            .lock()
            .unwrap()
            .entry(series)
            .or_default()
            .clone();
        Counter::from_arc(count)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn requests_and_backend_errors_are_counted_with_labels() {
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        // Everything, spawned tasks included, runs on this thread and so sees the recorder.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = Config {
                metric_labels: vec![("cache".to_owned(), "catalogue".to_owned())],
                ..support::config()
            };
            let cache = support::store(Kind::Tiered, config).await;
            let key = WidgetById("counted".to_owned());
            cache
                .get_or_load(&key, || async { Ok::<_, Infallible>(None) })
                .await
                .unwrap();
            assert!(cache.get(&key).await.is_some());

            let url = format!("redis://127.0.0.1:{}", support::free_port());
            let down = support::store_at(Kind::Redis, support::config(), &url).await;
            assert!(down.get(&key).await.is_none());
        });
    });
    let series = capture.series();
    let request = |tier: &str, result: &str| {
        capture.value(&format!(
            "cache_requests_total{{cache=catalogue,family=widget_by_id,result={result},tier={tier}}}"
        ))
    };
    assert_eq!(request("l1", "miss"), 1, "{series:#?}");
    assert_eq!(request("redis", "miss"), 1, "{series:#?}");
    assert_eq!(request("loader", "missing"), 1, "{series:#?}");
    assert_eq!(request("l1", "negative_hit"), 1, "{series:#?}");
    assert_eq!(
        capture.value("cache_requests_total{family=widget_by_id,result=error,tier=redis}"),
        1,
        "{series:#?}"
    );
    // The constructor's connection attempt and the failed GET.
    assert_eq!(
        capture.value("cache_backend_errors_total{backend=redis}"),
        2,
        "{series:#?}"
    );
}
