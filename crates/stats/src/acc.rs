//! [`Acc`]: the mergeable sums of a set of usage rows (a group of a pass, a stored hour or
//! day row), and the statistics types built from them.

use sea_orm::QueryResult;

use crate::sql::{get_f64, get_i64, mean};
use crate::types::Percentiles;
use crate::{DayStats, ModelStats, ResponseTimeHistogram, SliceStats, StatsError, UserStats};

/// Sums over a set of usage rows, with the exact response-time sum, so merging is exact.
#[derive(Clone, Debug, Default)]
pub(crate) struct Acc {
    requests: i64,
    errors: i64,
    tokens: [i64; 4],
    /// total, actual, input, output, cache creation, cache read.
    costs: [f64; 6],
    pub(crate) rt_sum: i64,
    pub(crate) rt_count: i64,
    unpriced: i64,
    pub(crate) histogram: ResponseTimeHistogram,
}

impl Acc {
    /// Adds `other`.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (sum, add) in self.tokens.iter_mut().zip(other.tokens) {
            *sum += add;
        }
        for (sum, add) in self.costs.iter_mut().zip(other.costs) {
            *sum += add;
        }
        self.rt_sum += other.rt_sum;
        self.rt_count += other.rt_count;
        self.unpriced += other.unpriced;
        self.histogram.merge(&other.histogram);
    }

    /// The `stats_daily` columns but the distinct counts and fallbacks.
    pub(crate) fn day_stats(&self) -> DayStats {
        DayStats {
            total_requests: self.requests,
            success_requests: self.requests - self.errors,
            error_requests: self.errors,
            input_tokens: self.tokens[0],
            output_tokens: self.tokens[1],
            cache_creation_tokens: self.tokens[2],
            cache_read_tokens: self.tokens[3],
            total_cost: self.costs[0],
            actual_total_cost: self.costs[1],
            input_cost: self.costs[2],
            output_cost: self.costs[3],
            cache_creation_cost: self.costs[4],
            cache_read_cost: self.costs[5],
            avg_response_time_ms: mean(self.rt_sum, self.rt_count),
            unpriced_requests: self.unpriced,
            percentiles: Percentiles::of(&self.histogram),
            response_time_histogram: self.histogram.clone(),
            ..DayStats::default()
        }
    }

    pub(crate) fn slice(&self, key: &str) -> SliceStats {
        SliceStats {
            key: key.to_owned(),
            total_requests: self.requests,
            success_requests: self.requests - self.errors,
            error_requests: self.errors,
            input_tokens: self.tokens[0],
            output_tokens: self.tokens[1],
            cache_creation_tokens: self.tokens[2],
            cache_read_tokens: self.tokens[3],
            total_cost: self.costs[0],
            actual_total_cost: self.costs[1],
            avg_response_time_ms: mean(self.rt_sum, self.rt_count),
            unpriced_requests: self.unpriced,
            percentiles: Percentiles::of(&self.histogram),
            response_time_histogram: self.histogram.clone(),
        }
    }

    pub(crate) fn model(&self, key: &str) -> ModelStats {
        let slice = self.slice(key);
        ModelStats {
            model: slice.key,
            total_requests: slice.total_requests,
            input_tokens: slice.input_tokens,
            output_tokens: slice.output_tokens,
            cache_creation_tokens: slice.cache_creation_tokens,
            cache_read_tokens: slice.cache_read_tokens,
            total_cost: slice.total_cost,
            avg_response_time_ms: slice.avg_response_time_ms,
            unpriced_requests: slice.unpriced_requests,
            response_time_histogram: slice.response_time_histogram,
            percentiles: slice.percentiles,
        }
    }

    pub(crate) fn user(&self, key: &str) -> UserStats {
        let slice = self.slice(key);
        UserStats {
            user_id: slice.key,
            total_requests: slice.total_requests,
            success_requests: slice.success_requests,
            error_requests: slice.error_requests,
            input_tokens: slice.input_tokens,
            output_tokens: slice.output_tokens,
            cache_creation_tokens: slice.cache_creation_tokens,
            cache_read_tokens: slice.cache_read_tokens,
            total_cost: slice.total_cost,
            unpriced_requests: slice.unpriced_requests,
            response_time_histogram: slice.response_time_histogram,
            percentiles: slice.percentiles,
        }
    }

    /// The sums of a stored hour or day row (fallbacks and distinct counts aside).
    pub(crate) fn of_day(stats: &DayStats) -> Self {
        let mut acc = Self::of_slice(&SliceStats {
            key: String::new(),
            total_requests: stats.total_requests,
            success_requests: stats.success_requests,
            error_requests: stats.error_requests,
            input_tokens: stats.input_tokens,
            output_tokens: stats.output_tokens,
            cache_creation_tokens: stats.cache_creation_tokens,
            cache_read_tokens: stats.cache_read_tokens,
            total_cost: stats.total_cost,
            actual_total_cost: stats.actual_total_cost,
            avg_response_time_ms: stats.avg_response_time_ms,
            unpriced_requests: stats.unpriced_requests,
            response_time_histogram: stats.response_time_histogram.clone(),
            percentiles: stats.percentiles,
        });
        acc.costs[2..].copy_from_slice(&[
            stats.input_cost,
            stats.output_cost,
            stats.cache_creation_cost,
            stats.cache_read_cost,
        ]);
        acc
    }

    /// The sums of a stored slice row (its response-time sum recovered from the mean and
    /// the histogram's count, exact to float rounding).
    pub(crate) fn of_slice(slice: &SliceStats) -> Self {
        let rt_count = i64::try_from(slice.response_time_histogram.total()).unwrap_or(i64::MAX);
        let rt_sum = response_time_sum(slice.avg_response_time_ms, rt_count);
        Self {
            requests: slice.total_requests,
            errors: slice.error_requests,
            tokens: [
                slice.input_tokens,
                slice.output_tokens,
                slice.cache_creation_tokens,
                slice.cache_read_tokens,
            ],
            costs: [
                slice.total_cost,
                slice.actual_total_cost,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            rt_sum,
            rt_count,
            unpriced: slice.unpriced_requests,
            histogram: slice.response_time_histogram.clone(),
        }
    }

    /// Reads the sums a pass selected from column `first` on: requests, errors, four token
    /// sums, `costs` cost sums, response-time sum and count, unpriced.
    pub(crate) fn read(row: &QueryResult, first: usize, costs: usize) -> Result<Self, StatsError> {
        let mut acc = Self {
            requests: get_i64(row, first)?,
            errors: get_i64(row, first + 1)?,
            ..Self::default()
        };
        for (index, token) in acc.tokens.iter_mut().enumerate() {
            *token = get_i64(row, first + 2 + index)?;
        }
        for (index, cost) in acc.costs.iter_mut().take(costs).enumerate() {
            *cost = get_f64(row, first + 6 + index)?;
        }
        let next = first + 6 + costs;
        acc.rt_sum = get_i64(row, next)?;
        acc.rt_count = get_i64(row, next + 1)?;
        acc.unpriced = get_i64(row, next + 2)?;
        Ok(acc)
    }
}

/// The exact response-time sum a stored mean was computed from: the mean times its count.
pub(crate) fn response_time_sum(mean: f64, count: i64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "a mean times its count is the integer sum it was computed from"
    )]
    let sum = (mean * count as f64).round() as i64;
    sum
}
