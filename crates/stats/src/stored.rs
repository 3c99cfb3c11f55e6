//! Sums of stored hourly slice rows (per user, per client key), read column by column
//! instead of through the entities: closing a day reads every such row of its hours (about
//! 240,000 of each at 1,000,000 requests a day), and the entity decoding with its JSON
//! histogram was most of that read.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, QueryResult};
use time::OffsetDateTime;

use crate::acc::{Acc, response_time_sum};
use crate::sql::{bound, get_f64, get_i64, statement};
use crate::{ResponseTimeHistogram, SliceStats, StatsError};

/// Adds the rows of slice table `table` (dimension column `key`) whose hour is in
/// `[from, to)` to `sums` by key, in hour order.
///
/// On PostgreSQL the rows are summed in the database, one row per key back: integers and
/// money with `SUM` over the rows sorted by key and hour (a serial plan adds them in that
/// order, the same additions as adding row by row, so the result is identical to the bit;
/// `SUM(… ORDER BY hour)` says so explicitly but sorts every group apart, 2.5x slower on
/// PostgreSQL 15), and each hour's mean response time and histogram as text, from which
/// the exact response-time sum is rebuilt here.
pub(crate) async fn add_hourly_slices<C: ConnectionTrait>(
    conn: &C,
    (table, key): (&str, &str),
    (from, to): (OffsetDateTime, OffsetDateTime),
    sums: &mut BTreeMap<String, Acc>,
) -> Result<(), StatsError> {
    let backend = conn.get_database_backend();
    let values = vec![bound(backend, from)?, bound(backend, to)?];
    if backend == DbBackend::Postgres {
        // Floats must come back as text that reads as the same `f64`, and the sums must see
        // the rows in the sorted order (no parallel workers).
        conn.execute_unprepared(
            "SET LOCAL extra_float_digits = 1; SET LOCAL max_parallel_workers_per_gather = 0",
        )
        .await?;
        let sql = format!(
            "SELECT {key}, CAST(SUM(total_requests) AS BIGINT), \
             CAST(SUM(error_requests) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), \
             CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_creation_tokens) AS BIGINT), \
             CAST(SUM(cache_read_tokens) AS BIGINT), SUM(total_cost), SUM(actual_total_cost), \
             CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(SUM(unpriced_requests) AS BIGINT), \
             string_agg(CAST(avg_response_time_ms AS TEXT) || '|' \
             || COALESCE(CAST(response_time_histogram AS TEXT), ''), ';') \
             FROM (SELECT * FROM {table} WHERE hour >= $1 AND hour < $2 \
             ORDER BY {key}, hour) AS sorted GROUP BY {key}"
        );
        for row in conn.query_all_raw(statement(backend, &sql, values)).await? {
            let key: String = row.try_get_by_index(0)?;
            let mut acc = Acc::read(&row, 1, 2)?;
            let hours: Option<String> = row.try_get_by_index(12)?;
            for hour in hours.as_deref().unwrap_or("").split(';') {
                let (mean, histogram) = hour.split_once('|').unwrap_or((hour, ""));
                let histogram = parse_histogram(Some(histogram));
                let count = i64::try_from(histogram.total()).unwrap_or(i64::MAX);
                acc.rt_sum += response_time_sum(mean.parse().unwrap_or(0.0), count);
                acc.rt_count += count;
                acc.histogram.merge(&histogram);
            }
            sums.entry(key).or_default().merge(&acc);
        }
        return Ok(());
    }
    let sql = format!(
        "SELECT {key}, CAST(total_requests AS BIGINT), CAST(success_requests AS BIGINT), \
         CAST(error_requests AS BIGINT), input_tokens, output_tokens, cache_creation_tokens, \
         cache_read_tokens, total_cost, actual_total_cost, avg_response_time_ms, \
         CAST(unpriced_requests AS BIGINT), CAST(response_time_histogram AS TEXT) \
         FROM {table} WHERE hour >= $1 AND hour < $2 ORDER BY hour"
    );
    for row in conn.query_all_raw(statement(backend, &sql, values)).await? {
        let (key, slice) = slice_of(&row)?;
        sums.entry(key).or_default().merge(&Acc::of_slice(&slice));
    }
    Ok(())
}

fn slice_of(row: &QueryResult) -> Result<(String, SliceStats), StatsError> {
    let key: String = row.try_get_by_index(0)?;
    let histogram: Option<String> = row.try_get_by_index(12)?;
    let slice = SliceStats {
        key: String::new(),
        total_requests: get_i64(row, 1)?,
        success_requests: get_i64(row, 2)?,
        error_requests: get_i64(row, 3)?,
        input_tokens: get_i64(row, 4)?,
        output_tokens: get_i64(row, 5)?,
        cache_creation_tokens: get_i64(row, 6)?,
        cache_read_tokens: get_i64(row, 7)?,
        total_cost: get_f64(row, 8)?,
        actual_total_cost: get_f64(row, 9)?,
        avg_response_time_ms: get_f64(row, 10)?,
        unpriced_requests: get_i64(row, 11)?,
        response_time_histogram: parse_histogram(histogram.as_deref()),
        percentiles: crate::types::Percentiles::default(),
    };
    Ok((key, slice))
}

/// A stored histogram's text: the sparse object (`{"35": 1, "38": 2}`) or the dense list of
/// earlier rows (`[0, 1, 2]`); null or unreadable text is an empty histogram, as the
/// entity reading treats a missing one.
pub(crate) fn parse_histogram(text: Option<&str>) -> ResponseTimeHistogram {
    let mut histogram = ResponseTimeHistogram::new();
    let Some(text) = text.map(str::trim) else {
        return histogram;
    };
    if let Some(body) = text
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
    {
        for entry in body.split(',') {
            if let Some((bucket, count)) = entry.split_once(':')
                && let (Ok(bucket), Ok(count)) = (
                    bucket.trim().trim_matches('"').parse::<usize>(),
                    count.trim().parse::<u64>(),
                )
            {
                histogram.add(bucket, count);
            }
        }
    } else if let Some(body) = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        for (bucket, count) in body.split(',').enumerate() {
            if let Ok(count) = count.trim().parse::<u64>() {
                histogram.add(bucket, count);
            }
        }
    }
    histogram
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{any, prop, proptest};

    use super::parse_histogram;
    use crate::ResponseTimeHistogram;

    proptest! {
        /// The text reader agrees with the JSON reader on every stored form.
        #[test]
        fn reads_what_the_json_reader_reads(counts in prop::collection::vec(0_u64..1_000, 0..70)) {
            let mut histogram = ResponseTimeHistogram::new();
            for (bucket, count) in counts.iter().enumerate() {
                histogram.add(bucket, *count);
            }
            let sparse = histogram.to_json().map(|json| json.to_string());
            assert_eq!(parse_histogram(sparse.as_deref()).counts(), histogram.counts());
            let dense = serde_json::json!(histogram.counts()).to_string();
            assert_eq!(parse_histogram(Some(&dense)).counts(), histogram.counts());
        }

        /// Hostile text never panics.
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = parse_histogram(Some(&text));
        }
    }
}
