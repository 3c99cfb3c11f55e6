//! Response-time histograms (behaviour.md section 9): counts of `response_time_ms` over one
//! fixed list of log-spaced bucket bounds used by every hourly and daily row, so the
//! percentiles of any range of hours, days, models or users come from merging rows instead
//! of scanning raw usage.
//!
//! Bucket `i` holds the times `t` with `BOUNDS_MS[i - 1] < t <= BOUNDS_MS[i]` (bucket 0: every
//! `t <= 1`); the last bucket, one past the bounds, holds everything slower than the last
//! bound. The bounds grow by a factor of about 1.26 (ten buckets per decade), so a
//! percentile read from a histogram lies in the same bucket as the exact one, within 26 %.
//! The stored JSON is sparse, bucket index to count (see `tollgate_entities::HistogramCounts`);
//! the API answer is the plain list of counts with trailing empty buckets left out.

use serde::{Deserialize, Serialize};

/// Upper bounds of the buckets in milliseconds: `10^(k/10)` rounded, for k = 0 to 58 (ten
/// per decade from 1 ms to about 10.5 minutes), repeats left out. Changing the list changes the meaning of every stored histogram: never edit it,
/// add a new versioned list instead.
pub const BOUNDS_MS: [u32; 56] = [
    1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100, 126, 158, 200, 251, 316, 398,
    501, 631, 794, 1_000, 1_259, 1_585, 1_995, 2_512, 3_162, 3_981, 5_012, 6_310, 7_943, 10_000,
    12_589, 15_849, 19_953, 25_119, 31_623, 39_811, 50_119, 63_096, 79_433, 100_000, 125_893,
    158_489, 199_526, 251_189, 316_228, 398_107, 501_187, 630_957,
];

/// Number of buckets: one per bound and the overflow bucket.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Counts of response times per bucket of [`BOUNDS_MS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResponseTimeHistogram {
    counts: Vec<u64>,
}

/// The bucket a response time falls in; negative times count as 0 ms.
pub fn bucket_of(ms: i64) -> usize {
    let ms = u64::try_from(ms).unwrap_or(0);
    BOUNDS_MS.partition_point(|&bound| u64::from(bound) < ms)
}

impl ResponseTimeHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one response time.
    pub fn record(&mut self, ms: i64) {
        self.add(bucket_of(ms), 1);
    }

    /// Adds `count` times to bucket `bucket` (clamped to the overflow bucket).
    pub fn add(&mut self, bucket: usize, count: u64) {
        if count == 0 {
            return;
        }
        let bucket = bucket.min(BUCKETS - 1);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] = self.counts[bucket].saturating_add(count);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (bucket, &count) in other.counts.iter().enumerate() {
            self.add(bucket, count);
        }
    }

    /// How many times were counted.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0, |sum, &count| sum.saturating_add(count))
    }

    /// Whether nothing was counted (stored as null).
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The counts per bucket, trailing empty buckets left out.
    pub fn counts(&self) -> &[u64] {
        let used = self
            .counts
            .iter()
            .rposition(|&count| count > 0)
            .map_or(0, |last| last + 1);
        &self.counts[..used]
    }

    /// The bucket holding the `q`-quantile (`0.0..=1.0`, e.g. 0.99) by the nearest-rank
    /// method; `None` when empty.
    pub fn quantile_bucket(&self, q: f64) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        // Nearest rank: the smallest rank r (1-based) with r >= q * total.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0_u64;
        self.counts.iter().position(|&count| {
            seen = seen.saturating_add(count);
            seen >= rank
        })
    }

    /// The `q`-quantile in milliseconds: the upper bound of its bucket (the last bound for
    /// the overflow bucket); `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<u32> {
        self.quantile_bucket(q)
            .map(|bucket| BOUNDS_MS[bucket.min(BOUNDS_MS.len() - 1)])
    }

    /// The histogram in its stored form (see [`tollgate_entities::HistogramCounts`]), or
    /// `None` when empty.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        self.stored()
            .and_then(|counts| serde_json::to_value(counts).ok())
    }

    /// The histogram of stored counts (`None`: empty); counts past the last bucket are
    /// dropped.
    pub fn from_counts(counts: Option<&[u64]>) -> Self {
        let mut counts = counts.map(<[u64]>::to_vec).unwrap_or_default();
        counts.truncate(BUCKETS);
        Self { counts }
    }

    /// The histogram as a row stores it: the trimmed counts, or `None` when empty.
    pub(crate) fn stored(&self) -> Option<tollgate_entities::HistogramCounts> {
        (!self.is_empty()).then(|| tollgate_entities::HistogramCounts(self.counts().to_vec()))
    }

    /// A stored histogram (sparse, or the dense list of earlier rows); `None` (null) is an
    /// empty one. Anything else is refused.
    pub fn from_json(value: Option<&serde_json::Value>) -> Result<Self, serde_json::Error> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(Self::default()),
            Some(value) => {
                let counts: tollgate_entities::HistogramCounts =
                    serde_json::from_value(value.clone())?;
                Ok(Self::from_counts(Some(&counts.0)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

    use super::{BOUNDS_MS, BUCKETS, ResponseTimeHistogram, bucket_of};

    fn of(times: &[i64]) -> ResponseTimeHistogram {
        let mut histogram = ResponseTimeHistogram::new();
        for &ms in times {
            histogram.record(ms);
        }
        histogram
    }

    /// The exact nearest-rank quantile of `times`.
    fn exact(times: &[i64], q: f64) -> i64 {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn bounds_are_ten_per_decade() {
        for (k, bound) in (0..59)
            .map(|k| (10_f64.powf(f64::from(k) / 10.0)).round() as u32)
            .enumerate()
        {
            assert!(
                BOUNDS_MS.contains(&bound),
                "10^({k}/10) = {bound} is not a bound"
            );
        }
        for pair in BOUNDS_MS.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
            let ratio = f64::from(pair[1]) / f64::from(pair[0]);
            assert!(
                ratio <= 2.0,
                "{pair:?}: buckets that wide lose the percentile"
            );
        }
        assert_eq!(BUCKETS, BOUNDS_MS.len() + 1);
    }

    #[test]
    fn buckets_hold_their_upper_bound() {
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(
            bucket_of(1_000),
            BOUNDS_MS.iter().position(|&b| b == 1_000).unwrap()
        );
        assert_eq!(
            bucket_of(1_001),
            BOUNDS_MS.iter().position(|&b| b == 1_259).unwrap()
        );
        assert_eq!(bucket_of(i64::MAX), BUCKETS - 1);
    }

    #[test]
    fn stored_form_is_sparse_and_null_when_empty() {
        assert_eq!(ResponseTimeHistogram::new().to_json(), None);
        let histogram = of(&[1, 2, 2]);
        assert_eq!(
            histogram.to_json(),
            Some(serde_json::json!({"0": 1, "1": 2}))
        );
        let dense = ResponseTimeHistogram::from_json(Some(&serde_json::json!([1, 2]))).unwrap();
        assert_eq!(
            dense.counts(),
            histogram.counts(),
            "earlier rows' dense lists still read"
        );
        let hostile = serde_json::json!({"99999999999": 1});
        assert!(ResponseTimeHistogram::from_json(Some(&hostile)).is_err());
        let back = ResponseTimeHistogram::from_json(histogram.to_json().as_ref()).unwrap();
        assert_eq!(back.counts(), histogram.counts());
        assert!(ResponseTimeHistogram::from_json(None).unwrap().is_empty());
        assert!(ResponseTimeHistogram::from_json(Some(&serde_json::json!("x"))).is_err());
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let times: Vec<i64> = (1..=100).collect();
        let histogram = of(&times);
        assert_eq!(histogram.quantile_ms(0.5), Some(50));
        assert_eq!(histogram.quantile_ms(0.9), Some(100));
        assert_eq!(histogram.quantile_ms(0.99), Some(100));
        assert_eq!(ResponseTimeHistogram::new().quantile_ms(0.5), None);
    }

    proptest! {
        #[test]
        fn quantiles_lie_in_the_exact_values_bucket(
            times in prop::collection::vec(-10_i64..3_000_000, 1..400),
            q in 0.0_f64..=1.0,
        ) {
            let histogram = of(&times);
            let bucket = histogram.quantile_bucket(q).unwrap();
            prop_assert_eq!(bucket, bucket_of(exact(&times, q)));
        }

        #[test]
        fn merging_equals_counting_everything(
            left in prop::collection::vec(any::<i64>(), 0..200),
            right in prop::collection::vec(any::<i64>(), 0..200),
        ) {
            let mut merged = of(&left);
            merged.merge(&of(&right));
            let all: Vec<i64> = left.iter().chain(&right).copied().collect();
            let counted = of(&all);
            prop_assert_eq!(merged.counts(), counted.counts());
            prop_assert_eq!(merged.total(), all.len() as u64);
            let mut other_way = of(&right);
            other_way.merge(&of(&left));
            prop_assert_eq!(other_way.counts(), merged.counts());
        }

        #[test]
        fn any_stored_list_reads_without_panic(counts in prop::collection::vec(any::<u64>(), 0..100)) {
            let histogram = ResponseTimeHistogram::from_json(Some(&serde_json::json!(counts))).unwrap();
            prop_assert!(histogram.counts().len() <= BUCKETS);
            let _ = histogram.quantile_ms(0.99);
        }
    }
}
