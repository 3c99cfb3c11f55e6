//! Human output of `show`, `today` and `prune`: aligned text tables and one-line reports on
//! stdout.

use std::fmt::Write as _;

use tollgate_stats::{BusinessDay, DailyEntry, DayAggregate, DaySource, ModelStats, PruneReport};

fn source(source: DaySource) -> &'static str {
    match source {
        DaySource::Aggregated => "stored",
        DaySource::Hours => "hours",
        DaySource::NotAggregated => "none",
        DaySource::Today => "today",
    }
}

/// The daily rows of `show`, one line per day.
pub(crate) fn daily_table(entries: &[DailyEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10}  {:<6}  {:>9}  {:>9}  {:>7}  {:>12}  {:>12}  {:>12}  {:>12}  {:>9}  {:>9}  {:>6}",
        "date",
        "source",
        "requests",
        "success",
        "errors",
        "input tok",
        "output tok",
        "cost usd",
        "actual usd",
        "avg ms",
        "fallbacks",
        "models"
    );
    for entry in entries {
        let stats = &entry.stats;
        let _ = writeln!(
            out,
            "{:<10}  {:<6}  {:>9}  {:>9}  {:>7}  {:>12}  {:>12}  {:>12.4}  {:>12.4}  {:>9.1}  {:>9}  {:>6}",
            entry.day.to_string(),
            source(entry.source),
            stats.total_requests,
            stats.success_requests,
            stats.error_requests,
            stats.input_tokens,
            stats.output_tokens,
            stats.total_cost,
            stats.actual_total_cost,
            stats.avg_response_time_ms,
            stats.fallback_count,
            entry.models.len()
        );
    }
    out
}

fn models_table(models: &[ModelStats]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32}  {:>9}  {:>12}  {:>12}  {:>12}  {:>9}",
        "model", "requests", "input tok", "output tok", "cost usd", "avg ms"
    );
    for model in models {
        let _ = writeln!(
            out,
            "{:<32}  {:>9}  {:>12}  {:>12}  {:>12.4}  {:>9.1}",
            model.model,
            model.total_requests,
            model.input_tokens,
            model.output_tokens,
            model.total_cost,
            model.avg_response_time_ms
        );
    }
    out
}

/// Today's live numbers and per-model breakdown.
pub(crate) fn today_table(today: &DayAggregate) -> String {
    let stats = &today.stats;
    let mut out = String::new();
    let start = today
        .day
        .start()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = writeln!(out, "today {} (from {start})", today.day);
    let _ = writeln!(
        out,
        "requests {}  success {}  errors {}  fallbacks {}",
        stats.total_requests, stats.success_requests, stats.error_requests, stats.fallback_count
    );
    let _ = writeln!(
        out,
        "tokens in {}  out {}  cache creation {}  cache read {}",
        stats.input_tokens,
        stats.output_tokens,
        stats.cache_creation_tokens,
        stats.cache_read_tokens
    );
    let _ = writeln!(
        out,
        "cost usd {:.4}  actual usd {:.4}  avg response {:.1} ms  models {}  providers {}",
        stats.total_cost,
        stats.actual_total_cost,
        stats.avg_response_time_ms,
        stats.unique_models,
        stats.unique_providers
    );
    if !today.models.is_empty() {
        out.push('\n');
        out.push_str(&models_table(&today.models));
    }
    out
}

/// One line saying what `prune` deleted and what it kept; `cutoff` is the first business
/// day whose rows were kept.
pub(crate) fn prune_line(report: &PruneReport, cutoff: &BusinessDay) -> String {
    let mut line = format!(
        "pruned {} days before {cutoff}: deleted {} usage and {} request_candidates rows in {} batches",
        report.pruned.len(),
        report.usage_rows_deleted,
        report.candidate_rows_deleted,
        report.batches
    );
    if let (Some(first), Some(last)) = (report.skipped.first(), report.skipped.last()) {
        let _ = write!(
            line,
            "; kept {} days without complete rollups ({first}..={last}): aggregate them, then prune again",
            report.skipped.len()
        );
    }
    line
}
