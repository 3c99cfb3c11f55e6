//! One request's accounting (behaviour.md 4 step 5, 5 and 7): the candidate that served it,
//! how it ended, and the `usage` and `request_candidates` rows it leaves — built from
//! clamped tokens, priced, fitted to their columns, and queued for the writer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tollgate_entities::{
    ApiFormat, BillingType, CandidateStatus, CostRequest, EffectivePricing, JsonObject,
    TokenCounts, UsageStatus, compute_cost, new_id, now_utc, request_candidates, usage,
};
use tollgate_resolver::Candidate;

use crate::app::AppState;
use crate::auth::ClientIdentity;
use crate::error::{ApiError, ErrorCode};
use crate::relay::StreamEnd;
use tollgate_accounting::UsageRecord;
use tollgate_accounting::{UsageReading, within_quota};

/// The candidate that answered (or was tried last), owned so a stream can keep it.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) provider: String,
    pub(crate) provider_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) key_id: String,
    pub(crate) target_model: String,
    pub(crate) pricing: EffectivePricing,
    pub(crate) rate_multiplier: f64,
    pub(crate) billing_type: BillingType,
}

impl Served {
    pub(crate) fn of(
        candidate: &Candidate<'_>,
        global: &tollgate_entities::global_models::Model,
    ) -> Self {
        Self {
            provider: candidate.provider.name.clone(),
            provider_id: candidate.provider.id.clone(),
            endpoint_id: candidate.endpoint.map(|e| e.id.clone()).unwrap_or_default(),
            key_id: candidate.key.map(|k| k.id.clone()).unwrap_or_default(),
            target_model: candidate.upstream_model_name.to_owned(),
            pricing: EffectivePricing::resolve(
                candidate.model.tiered_pricing.as_ref(),
                candidate.model.price_per_request,
                &global.default_tiered_pricing,
                global.default_price_per_request,
            ),
            rate_multiplier: candidate.key.map_or(1.0, |k| k.rate_multiplier),
            billing_type: candidate.provider.billing_type,
        }
    }
}

/// What every row of one request shares.
#[derive(Clone)]
pub(crate) struct RequestContext {
    pub(crate) state: AppState,
    pub(crate) format: ApiFormat,
    pub(crate) request_id: String,
    pub(crate) identity: ClientIdentity,
    pub(crate) model: String,
    pub(crate) global_model: Option<String>,
    pub(crate) is_stream: bool,
    pub(crate) created_at: time::OffsetDateTime,
    pub(crate) started: Instant,
    /// Size of the client's body: the base of the input estimate (`estimate`).
    pub(crate) request_bytes: usize,
    /// Set when the client hung up before the answer was handed over.
    pub(crate) client_gone: Arc<AtomicBool>,
}

/// How the request ended, for its usage row.
pub(crate) struct Ending {
    pub(crate) status: UsageStatus,
    pub(crate) status_code: u16,
    pub(crate) error: Option<String>,
    pub(crate) tokens: TokenCounts,
    pub(crate) first_byte: Option<Duration>,
    /// What `request_metadata` says about how the tokens were obtained.
    pub(crate) notes: serde_json::Map<String, serde_json::Value>,
}

/// Error message of a request whose client hung up.
const CLIENT_DISCONNECTED: &str = "client disconnected";

/// Status code recorded for a request whose client hung up (nginx's convention).
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Ending {
    /// A successful answer whose usage block (if any) was `reading`; when the client is
    /// already gone it is recorded as a failed 499 with the upstream's tokens.
    pub(crate) fn answered(
        status: StatusCode,
        reading: Option<UsageReading>,
        first_byte: Duration,
        client_gone: bool,
    ) -> Self {
        let reading = reading.unwrap_or_default();
        let mut ending = Self {
            status: UsageStatus::Completed,
            status_code: status.as_u16(),
            error: None,
            tokens: reading.tokens,
            first_byte: Some(first_byte),
            notes: serde_json::Map::new(),
        };
        ending.note_clamped(reading.clamped);
        if client_gone {
            ending.client_gone();
        }
        ending
    }

    pub(crate) fn client_gone(&mut self) {
        self.status = UsageStatus::Failed;
        self.status_code = CLIENT_CLOSED_REQUEST;
        self.error = Some(CLIENT_DISCONNECTED.to_owned());
    }

    pub(crate) fn note_clamped(&mut self, clamped: Vec<String>) {
        if !clamped.is_empty() {
            self.notes
                .insert("usage_clamped".to_owned(), serde_json::json!(clamped));
        }
    }

    /// Estimates what an interrupted stream used when the client left before the upstream's
    /// usage block: input = ⌈request body bytes / 4⌉ unless the upstream reported it, output
    /// = the larger of what it reported and ⌈relayed answer characters / 4⌉ (about four
    /// characters a token). `request_metadata.tokens_estimated` records it.
    pub(crate) fn estimate(&mut self, end: &StreamEnd, request_bytes: usize) {
        let quarter = |n: u64| i64::try_from(n.div_ceil(4)).unwrap_or(i64::MAX);
        if !end.usage_seen {
            self.tokens.input = quarter(request_bytes as u64);
        }
        self.tokens.output = self.tokens.output.max(quarter(end.text_chars));
        self.notes.insert(
            "tokens_estimated".to_owned(),
            serde_json::json!({
                "reason": "client disconnected before the upstream's usage block",
                "input": !end.usage_seen,
                "output": true,
                "rule": "input = request bytes / 4, output = relayed answer characters / 4",
            }),
        );
    }
}

pub(crate) fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

impl RequestContext {
    pub(crate) fn candidate_row(
        &self,
        index: usize,
        candidate: &Candidate<'_>,
        status: CandidateStatus,
    ) -> request_candidates::Model {
        request_candidates::Model {
            user_id: Some(self.identity.user_id.clone()),
            api_key_id: Some(self.identity.key_id.clone()),
            candidate_index: i32::try_from(index).unwrap_or(i32::MAX),
            provider_id: Some(candidate.provider.id.clone()),
            endpoint_id: candidate.endpoint.map(|e| e.id.clone()),
            key_id: candidate.key.map(|k| k.id.clone()),
            skip_reason: candidate.skip_reason.map(|r| r.as_str().to_owned()),
            ..request_candidates::Model::first_attempt(&self.request_id, status, now_utc())
        }
    }

    pub(crate) fn usage_row(&self, served: Option<&Served>, ending: &Ending) -> usage::Model {
        let succeeded = ending.status == UsageStatus::Completed;
        let cost = served.map(|served| {
            compute_cost(&CostRequest {
                pricing: &served.pricing,
                api_format: self.format,
                tokens: ending.tokens,
                rate_multiplier: served.rate_multiplier,
                billing_type: served.billing_type,
                succeeded,
            })
        });
        let cost = cost.unwrap_or_default();
        let tokens = ending.tokens.clamped();
        let columns = tokens.columns();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        usage::Model {
            id: new_id(),
            user_id: Some(self.identity.user_id.clone()),
            api_key_id: Some(self.identity.key_id.clone()),
            request_id: self.request_id.clone(),
            provider: served.map(|s| s.provider.clone()).unwrap_or_default(),
            // Cut to the column by `fit_columns` in `record`.
            model: self.model.clone(),
            global_model: self.global_model.clone(),
            target_model: served.map(|s| s.target_model.clone()),
            provider_id: served.map(|s| s.provider_id.clone()),
            provider_endpoint_id: served.and_then(|s| non_empty(&s.endpoint_id)),
            provider_api_key_id: served.and_then(|s| non_empty(&s.key_id)),
            input_tokens: columns[0],
            output_tokens: columns[1],
            total_tokens: tokens.total_i32(),
            cache_creation_input_tokens: columns[2],
            cache_read_input_tokens: columns[3],
            input_cost_usd: cost.input_cost,
            output_cost_usd: cost.output_cost,
            cache_creation_cost_usd: cost.cache_creation_cost,
            cache_read_cost_usd: cost.cache_read_cost,
            cache_cost_usd: cost.cache_cost,
            request_cost_usd: cost.request_cost,
            total_cost_usd: cost.total_cost,
            actual_input_cost_usd: cost.actual_input_cost,
            actual_output_cost_usd: cost.actual_output_cost,
            actual_cache_creation_cost_usd: cost.actual_cache_creation_cost,
            actual_cache_read_cost_usd: cost.actual_cache_read_cost,
            actual_request_cost_usd: cost.actual_request_cost,
            actual_total_cost_usd: cost.actual_total_cost,
            rate_multiplier: served.map_or(1.0, |_| cost.rate_multiplier),
            input_price_per_1m: cost.input_price_per_1m,
            output_price_per_1m: cost.output_price_per_1m,
            cache_creation_price_per_1m: cost.cache_creation_price_per_1m,
            cache_read_price_per_1m: cost.cache_read_price_per_1m,
            price_per_request: cost.price_per_request,
            request_type: "chat".to_owned(),
            api_format: self.format.as_str().to_owned(),
            is_stream: self.is_stream,
            status_code: Some(i32::from(ending.status_code)),
            error_message: ending.error.clone(),
            response_time_ms: Some(millis(self.started.elapsed())),
            first_byte_time_ms: ending.first_byte.map(millis),
            status: ending.status,
            request_metadata: (!ending.notes.is_empty()).then(|| JsonObject(ending.notes.clone())),
            created_at: self.created_at,
        }
    }

    pub(crate) fn record(
        &self,
        served: Option<&Served>,
        ending: &Ending,
        candidates: Vec<request_candidates::Model>,
    ) {
        let mut usage = self.usage_row(served, ending);
        // Client- and upstream-supplied text must never be what makes the database reject a
        // row (behaviour.md 7).
        usage.fit_columns();
        let mut candidates = candidates;
        for row in &mut candidates {
            row.fit_columns();
        }
        if self.identity.quota_usd.is_some() {
            self.state.spend().record(
                &self.identity.user_id,
                time::OffsetDateTime::now_utc().unix_timestamp(),
                usage.total_cost_usd,
            );
        }
        self.state.usage().send(UsageRecord { usage, candidates });
    }
}

/// The attempt ledger of one request: its candidate rows (skipped and tried), how many
/// upstream attempts it made, the time they took, and the last failure.
#[derive(Default)]
pub(crate) struct Attempts {
    pub(crate) rows: Vec<request_candidates::Model>,
    pub(crate) count: usize,
    pub(crate) upstream_time: Duration,
    pub(crate) last: Option<(Served, String)>,
    started_at: Option<time::OffsetDateTime>,
    latency: Duration,
}

impl Attempts {
    /// Runs one upstream attempt for `row`, timing it.
    pub(crate) async fn attempt<T>(
        &mut self,
        row: &mut request_candidates::Model,
        run: impl std::future::Future<Output = T>,
    ) -> T {
        self.count += 1;
        let started_at = now_utc();
        let started = Instant::now();
        let outcome = run.await;
        self.latency = started.elapsed();
        self.upstream_time += self.latency;
        self.started_at = Some(started_at);
        row.started_at = Some(started_at);
        outcome
    }

    /// Closes the row of the attempt just made and keeps it.
    pub(crate) fn finish(
        &mut self,
        mut row: request_candidates::Model,
        status: CandidateStatus,
        status_code: Option<u16>,
        error: Option<(&str, String)>,
    ) {
        row.status = status;
        row.status_code = status_code.map(i32::from);
        if let Some((error_type, message)) = error {
            row.error_type = Some(error_type.to_owned());
            row.error_message = Some(message);
        }
        row.started_at = self.started_at;
        row.finished_at = Some(now_utc());
        row.latency_ms = Some(millis(self.latency));
        self.rows.push(row);
    }
}

pub(crate) fn failed_ending(error: &ApiError) -> Ending {
    Ending {
        status: UsageStatus::Failed,
        status_code: error.status().as_u16(),
        error: Some(error.to_string()),
        tokens: TokenCounts::default(),
        first_byte: None,
        notes: serde_json::Map::new(),
    }
}

/// 402 when the client key's user has spent their quota (`tollgate_accounting::within_quota`).
pub(crate) fn check_quota(
    state: &AppState,
    format: ApiFormat,
    identity: &ClientIdentity,
) -> Result<(), ApiError> {
    let Some(quota) = identity.quota_usd else {
        return Ok(());
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let recent = state
        .spend()
        .spent_since(&identity.user_id, identity.loaded_at_unix, now);
    if within_quota(Some(quota), identity.used_usd, recent) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::InsufficientQuota,
        format,
        format!(
            "quota exceeded: this key's user has spent {:.4} of a {quota:.4} USD quota",
            identity.used_usd + recent
        ),
    ))
}
