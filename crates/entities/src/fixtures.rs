//! Complete traffic rows with neutral defaults, for tests to adjust (the `fixtures` feature).
//! The testkit re-exports them beside its catalogue rows; they live here because this
//! crate's own tests need them and may not depend on the testkit (it chooses database
//! drivers, and it depends on this crate).

use time::OffsetDateTime;

use crate::{ApiFormat, CandidateStatus, UsageStatus, new_id, request_candidates, usage};

/// A completed, free `usage` row for `model` at `created_at`.
pub fn usage_row(model: &str, created_at: OffsetDateTime) -> usage::Model {
    usage::Model {
        id: new_id(),
        user_id: None,
        api_key_id: None,
        request_id: new_id(),
        provider: "test-provider".to_owned(),
        model: model.to_owned(),
        global_model: None,
        target_model: None,
        provider_id: None,
        provider_endpoint_id: None,
        provider_api_key_id: None,
        input_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        input_cost_usd: 0.0,
        output_cost_usd: 0.0,
        cache_creation_cost_usd: 0.0,
        cache_read_cost_usd: 0.0,
        cache_cost_usd: 0.0,
        request_cost_usd: 0.0,
        total_cost_usd: 0.0,
        actual_input_cost_usd: 0.0,
        actual_output_cost_usd: 0.0,
        actual_cache_creation_cost_usd: 0.0,
        actual_cache_read_cost_usd: 0.0,
        actual_request_cost_usd: 0.0,
        actual_total_cost_usd: 0.0,
        rate_multiplier: 1.0,
        input_price_per_1m: 0.0,
        output_price_per_1m: 0.0,
        cache_creation_price_per_1m: 0.0,
        cache_read_price_per_1m: 0.0,
        price_per_request: None,
        request_type: "chat".to_owned(),
        api_format: ApiFormat::OpenAi.as_str().to_owned(),
        is_stream: false,
        status_code: Some(200),
        error_message: None,
        response_time_ms: Some(100),
        first_byte_time_ms: Some(50),
        status: UsageStatus::Completed,
        request_metadata: None,
        created_at,
    }
}

/// The first attempt (candidate 0, retry 0) of `request_id` in `status` at `created_at`, with
/// nothing else known.
pub fn candidate_row(
    request_id: &str,
    status: CandidateStatus,
    created_at: OffsetDateTime,
) -> request_candidates::Model {
    request_candidates::Model::first_attempt(request_id, status, created_at)
}
