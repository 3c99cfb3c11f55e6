//! The gateway's client API in process, against mock upstreams the tests control: both
//! formats whole and streamed, exact usage and cost rows, fallback on each failure kind,
//! client errors returned as is, authentication and request validation errors.

use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use tollgate_entities::{
    ApiFormat, BillingType, CandidateStatus, CostRequest, EffectivePricing, PriceTier,
    TieredPricing, TokenCounts, UsageStatus, compute_cost,
};
use tollgate_server::Gateway;
use tollgate_server::mock::{MockUpstream, MockUsage};
use tollgate_testkit::{TestDb, db_cases, db_test, fixtures};
use tower::ServiceExt;

use crate::gateway_support::{
    Answer, UPSTREAM_SECRET, candidates_of, chat, client, close, closed_port, counters, gateway,
    global_model, openai_route, request, route, send, usage_of,
};

fn pricing() -> TieredPricing {
    TieredPricing {
        tiers: vec![PriceTier {
            up_to: None,
            input_price_per_1m: 3.0,
            output_price_per_1m: 15.0,
            cache_creation_price_per_1m: Some(3.75),
            cache_read_price_per_1m: Some(0.3),
        }],
    }
}

fn expected_cost(format: ApiFormat, tokens: TokenCounts) -> tollgate_entities::CostBreakdown {
    let pricing = EffectivePricing {
        tiered: pricing(),
        price_per_request: None,
    };
    compute_cost(&CostRequest {
        pricing: &pricing,
        api_format: format,
        tokens,
        rate_multiplier: 1.0,
        billing_type: BillingType::PayAsYouGo,
        succeeded: true,
    })
}

const USAGE: MockUsage = MockUsage {
    input: 1200,
    output: 345,
    cache_creation: 67,
    cache_read: 890,
};

/// The tokens the gateway must record for `USAGE` in `format` (OpenAI has no cache creation).
fn expected_tokens(format: ApiFormat) -> TokenCounts {
    TokenCounts {
        input: USAGE.input,
        output: USAGE.output,
        cache_creation: if format == ApiFormat::Claude {
            USAGE.cache_creation
        } else {
            0
        },
        cache_read: USAGE.cache_read,
    }
}

fn base_url(mock: &MockUpstream, format: ApiFormat) -> String {
    match format {
        ApiFormat::OpenAi => mock.openai_base_url(),
        ApiFormat::Claude => mock.claude_base_url(),
    }
}

/// Alice's whole-response request for `model` in `format` through a fresh gateway over
/// `conn`; returns the gateway and its answer.
async fn alice_asks(
    conn: &sea_orm::DatabaseConnection,
    format: ApiFormat,
    model: &str,
) -> (Gateway, Answer) {
    let client = client(conn, "alice").await;
    let gateway = gateway(conn);
    let answer = send(
        &gateway,
        request(format, Some(&client.key), chat(model, false)),
    )
    .await;
    (gateway, answer)
}

/// One request in `format`, streamed or not, through one provider; checks the answer, what
/// the upstream received, the usage row, the candidate row and the counters.
async fn round_trip(db: &TestDb, format: ApiFormat, stream: bool) {
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| b.usage = USAGE);
    let global = global_model(conn, "sonnet", pricing()).await;
    let route = route(
        conn,
        "prov-a",
        10,
        format,
        &base_url(&mock, format),
        30,
        &global,
        "sonnet-upstream-v1",
    )
    .await;
    let client = client(conn, "alice").await;
    let gateway = gateway(conn);

    let answer = send(
        &gateway,
        request(format, Some(&client.key), chat("sonnet", stream)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("x-tollgate-provider"), "prov-a");
    assert_eq!(answer.header("x-tollgate-model"), "sonnet-upstream-v1");
    assert_eq!(answer.header("x-tollgate-attempts"), "1");
    let request_id = answer.header("x-request-id").to_owned();
    let text = answer.text();
    assert!(!text.contains(UPSTREAM_SECRET));
    if stream {
        assert!(
            answer
                .header("content-type")
                .starts_with("text/event-stream")
        );
        match format {
            ApiFormat::OpenAi => {
                assert!(text.contains("data: [DONE]"), "{text}");
                // The gateway asked for usage on the client's behalf and removed that chunk.
                assert!(
                    !text.contains("prompt_tokens"),
                    "usage chunk leaked: {text}"
                );
            }
            ApiFormat::Claude => assert!(text.contains("message_stop"), "{text}"),
        }
    } else {
        assert!(answer.json()["usage"].is_object());
    }

    let received = mock.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(upstream.body["model"], "sonnet-upstream-v1");
    assert_eq!(upstream.body["messages"][0]["content"], "hi");
    match format {
        ApiFormat::OpenAi => {
            assert_eq!(upstream.path, "/v1/chat/completions");
            assert_eq!(
                upstream.header("authorization"),
                Some(format!("Bearer {UPSTREAM_SECRET}").as_str())
            );
            if stream {
                assert_eq!(upstream.body["stream_options"]["include_usage"], true);
            }
        }
        ApiFormat::Claude => {
            assert_eq!(upstream.path, "/v1/messages");
            assert_eq!(upstream.header("x-api-key"), Some(UPSTREAM_SECRET));
            assert_eq!(upstream.header("anthropic-version"), Some("2023-06-01"));
            assert_eq!(upstream.header("authorization"), None);
        }
    }
    // The client's own credentials never go upstream.
    assert!(
        upstream
            .headers
            .iter()
            .all(|(_, v)| !v.contains(&client.key))
    );

    gateway.flush_usage().await;
    let row = usage_of(conn, &request_id).await;
    let tokens = expected_tokens(format);
    assert_eq!(
        (
            row.input_tokens,
            row.output_tokens,
            row.cache_creation_input_tokens,
            row.cache_read_input_tokens
        ),
        (
            i32::try_from(tokens.input).unwrap(),
            i32::try_from(tokens.output).unwrap(),
            i32::try_from(tokens.cache_creation).unwrap(),
            i32::try_from(tokens.cache_read).unwrap()
        )
    );
    let cost = expected_cost(format, tokens);
    assert!(close(row.input_cost_usd, cost.input_cost));
    assert!(close(row.output_cost_usd, cost.output_cost));
    assert!(close(row.cache_creation_cost_usd, cost.cache_creation_cost));
    assert!(close(row.cache_read_cost_usd, cost.cache_read_cost));
    assert!(
        close(row.total_cost_usd, cost.total_cost),
        "{} vs {}",
        row.total_cost_usd,
        cost.total_cost
    );
    assert!(close(row.actual_total_cost_usd, cost.actual_total_cost));
    assert!(row.total_cost_usd > 0.0);
    assert_eq!(row.status, UsageStatus::Completed);
    assert_eq!(row.status_code, Some(200));
    assert_eq!(row.is_stream, stream);
    assert_eq!(row.model, "sonnet");
    assert_eq!(row.global_model.as_deref(), Some("sonnet"));
    assert_eq!(row.target_model.as_deref(), Some("sonnet-upstream-v1"));
    assert_eq!(row.provider, "prov-a");
    assert_eq!(row.provider_id.as_deref(), Some(route.provider_id.as_str()));
    assert_eq!(
        row.provider_endpoint_id.as_deref(),
        Some(route.endpoint_id.as_str())
    );
    assert_eq!(
        row.provider_api_key_id.as_deref(),
        Some(route.key_id.as_str())
    );
    assert_eq!(row.api_format, format.as_str());
    assert!(row.response_time_ms.is_some() && row.first_byte_time_ms.is_some());
    let candidates = candidates_of(conn, &request_id).await;
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].status, CandidateStatus::Success);
    let (key, user) = counters(conn, &client).await;
    assert_eq!(key.total_requests, 1);
    assert!(close(key.total_cost_usd, cost.total_cost));
    assert!(key.last_used_at.is_some());
    assert!(close(user.used_usd, cost.total_cost) && close(user.total_usd, cost.total_cost));
}

db_cases!(round_trip:
    openai_whole_response(ApiFormat::OpenAi, false),
    openai_stream(ApiFormat::OpenAi, true),
    claude_whole_response(ApiFormat::Claude, false),
    claude_stream(ApiFormat::Claude, true),
);

db_test!(async fn price_follows_the_resolved_global_model_for_a_provider_name(db) {
    // Asking by the provider's model name is priced by the global model it resolves to.
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| b.usage = USAGE);
    let global = global_model(conn, "sonnet", pricing()).await;
    openai_route(conn, "prov-a", &mock, &global, "sonnet-upstream-v1").await;
    let (gateway, answer) = alice_asks(conn, ApiFormat::OpenAi, "sonnet-upstream-v1").await;
    assert_eq!(answer.status, StatusCode::OK);
    gateway.flush_usage().await;
    let row = usage_of(conn, answer.header("x-request-id")).await;
    assert_eq!(row.model, "sonnet-upstream-v1");
    assert_eq!(row.global_model.as_deref(), Some("sonnet"));
    assert!(close(row.total_cost_usd, expected_cost(ApiFormat::OpenAi, expected_tokens(ApiFormat::OpenAi)).total_cost));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_relayed_chunk_by_chunk() {
    let db = TestDb::sqlite().await;
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| {
        b.chunk_delay = Duration::from_millis(30);
        b.chunks = 4;
    });
    let global = global_model(conn, "m", pricing()).await;
    openai_route(conn, "p", &mock, &global, "m").await;
    let client = client(conn, "alice").await;
    let gateway = gateway(conn);
    let body = serde_json::json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": []});
    let response = gateway
        .router()
        .oneshot(request(
            ApiFormat::OpenAi,
            Some(&client.key),
            body.to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let frames: Vec<_> = response
        .into_body()
        .into_data_stream()
        .map(|frame| frame.unwrap())
        .collect()
        .await;
    // The mock paces 8 events; a buffering relay would deliver them as one frame.
    assert!(frames.len() >= 4, "only {} frames", frames.len());
    let text: String = frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    // The client asked for usage itself, so the usage chunk stays.
    assert!(text.contains("\"prompt_tokens\""), "{text}");
}

/// What makes the first provider fail.
#[derive(Clone, Copy, Debug)]
enum Failure {
    Status(u16),
    Timeout,
    ConnectionRefused,
}

/// Provider A fails in the given way; provider B answers. Checks the answer came from B and
/// the candidate rows record both attempts.
async fn falls_back(db: &TestDb, failure: Failure) {
    let conn = &db.conn;
    let first = MockUpstream::start().await.unwrap();
    let second = MockUpstream::start().await.unwrap();
    second.set(|b| b.usage = USAGE);
    let first_url = match failure {
        Failure::Status(code) => {
            first.set(|b| b.status = code);
            first.openai_base_url()
        }
        Failure::Timeout => {
            first.set(|b| b.latency = Duration::from_secs(4));
            first.openai_base_url()
        }
        Failure::ConnectionRefused => format!("http://127.0.0.1:{}/v1", closed_port()),
    };
    let global = global_model(conn, "m", pricing()).await;
    let a = route(
        conn,
        "prov-a",
        10,
        ApiFormat::OpenAi,
        &first_url,
        1,
        &global,
        "m-a",
    )
    .await;
    let b = route(
        conn,
        "prov-b",
        20,
        ApiFormat::OpenAi,
        &second.openai_base_url(),
        30,
        &global,
        "m-b",
    )
    .await;

    let (gateway, answer) = alice_asks(conn, ApiFormat::OpenAi, "m").await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{failure:?}: {}",
        answer.text()
    );
    assert_eq!(answer.header("x-tollgate-provider"), "prov-b");
    assert_eq!(answer.header("x-tollgate-model"), "m-b");
    assert_eq!(answer.header("x-tollgate-attempts"), "2");
    assert!(!answer.text().contains(UPSTREAM_SECRET));
    assert_eq!(second.request_count(), 1);

    gateway.flush_usage().await;
    let request_id = answer.header("x-request-id");
    let rows = candidates_of(conn, request_id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].candidate_index, rows[0].status),
        (0, CandidateStatus::Failed)
    );
    assert_eq!(rows[0].provider_id.as_deref(), Some(a.provider_id.as_str()));
    assert_eq!(
        (rows[1].candidate_index, rows[1].status),
        (1, CandidateStatus::Success)
    );
    assert_eq!(rows[1].provider_id.as_deref(), Some(b.provider_id.as_str()));
    match failure {
        Failure::Status(code) => {
            assert_eq!(rows[0].status_code, Some(i32::from(code)));
        }
        Failure::Timeout => assert_eq!(rows[0].error_type.as_deref(), Some("timeout")),
        Failure::ConnectionRefused => {
            assert_eq!(rows[0].error_type.as_deref(), Some("connect_error"));
        }
    }
    for row in &rows {
        assert!(
            !row.error_message
                .as_deref()
                .unwrap_or("")
                .contains(UPSTREAM_SECRET)
        );
    }
    let usage = usage_of(conn, request_id).await;
    assert_eq!(usage.provider, "prov-b");
    assert_eq!(usage.status, UsageStatus::Completed);
    assert_eq!(usage.output_tokens, i32::try_from(USAGE.output).unwrap());
}

db_cases!(falls_back:
    falls_back_on_500(Failure::Status(500)),
    falls_back_on_429(Failure::Status(429)),
    falls_back_on_401_from_upstream(Failure::Status(401)),
    falls_back_on_timeout(Failure::Timeout),
    falls_back_on_connection_refused(Failure::ConnectionRefused),
);

db_test!(async fn upstream_400_is_returned_and_not_retried(db) {
    let conn = &db.conn;
    let first = MockUpstream::start().await.unwrap();
    let second = MockUpstream::start().await.unwrap();
    first.set(|b| b.status = 400);
    let global = global_model(conn, "m", pricing()).await;
    route(conn, "prov-a", 10, ApiFormat::Claude, &first.claude_base_url(), 30, &global, "m").await;
    route(conn, "prov-b", 20, ApiFormat::Claude, &second.claude_base_url(), 30, &global, "m").await;
    let (gateway, answer) = alice_asks(conn, ApiFormat::Claude, "m").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["message"], "mock upstream error");
    assert_eq!(answer.header("x-tollgate-attempts"), "1");
    assert_eq!(second.request_count(), 0);
    gateway.flush_usage().await;
    let request_id = answer.header("x-request-id");
    let rows = candidates_of(conn, request_id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, CandidateStatus::Failed);
    assert_eq!(rows[0].status_code, Some(400));
    let usage = usage_of(conn, request_id).await;
    assert_eq!(usage.status, UsageStatus::Failed);
    assert_eq!(usage.status_code, Some(400));
    assert_eq!(usage.total_cost_usd, 0.0);
});

db_test!(async fn every_candidate_failing_is_a_502_with_every_attempt_recorded(db) {
    let conn = &db.conn;
    let first = MockUpstream::start().await.unwrap();
    first.set(|b| b.status = 503);
    let global = global_model(conn, "m", pricing()).await;
    openai_route(conn, "prov-a", &first, &global, "m").await;
    route(conn, "prov-b", 20, ApiFormat::OpenAi, &format!("http://127.0.0.1:{}/v1", closed_port()), 30, &global, "m").await;
    let (gateway, answer) = alice_asks(conn, ApiFormat::OpenAi, "m").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.json()["error"]["code"], "upstream_error");
    assert_eq!(answer.header("x-tollgate-attempts"), "2");
    gateway.flush_usage().await;
    let rows = candidates_of(conn, answer.header("x-request-id")).await;
    assert_eq!(rows.iter().filter(|r| r.status == CandidateStatus::Failed).count(), 2);
});

db_test!(async fn skipped_candidates_are_recorded_and_no_usable_one_is_503(db) {
    let conn = &db.conn;
    let global = global_model(conn, "m", pricing()).await;
    // A provider with a model and an endpoint but no key.
    let provider = fixtures::insert(conn, fixtures::provider("keyless", 10)).await;
    fixtures::insert(conn, fixtures::endpoint(&provider.id, ApiFormat::OpenAi, "http://127.0.0.1:9/v1")).await;
    fixtures::insert(conn, fixtures::model(&provider.id, &global.id, "m")).await;
    let (gateway, answer) = alice_asks(conn, ApiFormat::OpenAi, "m").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"]["code"], "no_available_provider");
    gateway.flush_usage().await;
    let rows = candidates_of(conn, answer.header("x-request-id")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, CandidateStatus::Skipped);
    assert_eq!(rows[0].skip_reason.as_deref(), Some("no_active_key"));
});

db_test!(async fn client_keys_are_checked_in_the_endpoints_error_shape(db) {
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    let global = global_model(conn, "m", pricing()).await;
    openai_route(conn, "p", &mock, &global, "m").await;
    route(conn, "q", 10, ApiFormat::Claude, &mock.claude_base_url(), 30, &global, "m").await;
    let good = client(conn, "alice").await;
    let inactive = client(conn, "bob").await;
    let expired = client(conn, "carol").await;
    let orphaned = client(conn, "dave").await;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
    let (key, _) = counters(conn, &inactive).await;
    let mut key = key.into_active_model();
    key.is_active = Set(false);
    key.update(conn).await.unwrap();
    let (key, _) = counters(conn, &expired).await;
    let mut key = key.into_active_model();
    key.expires_at = Set(Some(tollgate_entities::now_utc() - time::Duration::hours(1)));
    key.update(conn).await.unwrap();
    let (_, user) = counters(conn, &orphaned).await;
    let mut user = user.into_active_model();
    user.is_active = Set(false);
    user.update(conn).await.unwrap();
    let gateway = gateway(conn);

    for format in [ApiFormat::OpenAi, ApiFormat::Claude] {
        let cases = [
            ("missing", None),
            ("wrong", Some("tg-not-a-key")),
            ("inactive", Some(inactive.key.as_str())),
            ("expired", Some(expired.key.as_str())),
            ("inactive user", Some(orphaned.key.as_str())),
        ];
        for (case, key) in cases {
            let answer = send(&gateway, request(format, key, chat("m", false))).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{format} {case}");
            let body = answer.json();
            match format {
                ApiFormat::OpenAi => {
                    assert_eq!(body["error"]["type"], "authentication_error", "{case}");
                    assert_eq!(body["error"]["code"], "invalid_api_key", "{case}");
                    assert!(body["error"]["message"].is_string());
                }
                ApiFormat::Claude => {
                    assert_eq!(body["type"], "error", "{case}");
                    assert_eq!(body["error"]["type"], "authentication_error", "{case}");
                }
            }
        }
        let answer = send(&gateway, request(format, Some(&good.key), chat("m", false))).await;
        assert_eq!(answer.status, StatusCode::OK, "{format} good key");
    }
    assert_eq!(mock.request_count(), 2, "rejected requests never reach an upstream");
});

db_test!(async fn request_errors_have_clear_statuses_and_messages(db) {
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    let global = global_model(conn, "m", pricing()).await;
    openai_route(conn, "p", &mock, &global, "m").await;
    let client = client(conn, "alice").await;
    let gateway = gateway(conn);
    let key = Some(client.key.as_str());

    let answer = send(&gateway, request(ApiFormat::OpenAi, key, chat("no-such-model", false))).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "model_not_found");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("no-such-model"));

    let answer = send(&gateway, request(ApiFormat::Claude, key, chat("no-such-model", false))).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["type"], "not_found_error");

    let answer = send(&gateway, request(ApiFormat::OpenAi, key, "{\"model\": \"m\", ")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("invalid JSON body"), "{message}");

    let answer = send(&gateway, request(ApiFormat::OpenAi, key, "{\"messages\": []}")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.text().contains("`model`"));

    let answer = send(&gateway, request(ApiFormat::OpenAi, key, chat("bad\u{7}name", false))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());

    let oversized = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(tollgate_server::DEFAULT_BODY_LIMIT)
    );
    let answer = send(&gateway, request(ApiFormat::Claude, key, oversized)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"]["type"], "request_too_large");
    assert_eq!(mock.request_count(), 0);
    let text = answer.text();
    assert!(!text.contains("panicked") && !text.contains("src/"), "{text}");
});

db_test!(async fn models_lists_usable_global_models(db) {
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    let served = global_model(conn, "served", pricing()).await;
    openai_route(conn, "p", &mock, &served, "served").await;
    global_model(conn, "unrouted", pricing()).await;
    let client = client(conn, "alice").await;
    let gateway = gateway(conn);
    let answer = send(
        &gateway,
        axum::http::Request::get("/v1/models")
            .header("authorization", format!("Bearer {}", client.key))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["served"]);
    let anonymous = send(&gateway, axum::http::Request::get("/v1/models").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let db = TestDb::sqlite().await;
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    let global = global_model(conn, "m", pricing()).await;
    openai_route(conn, "metrics-provider", &mock, &global, "m").await;
    let (gateway, answer) = alice_asks(conn, ApiFormat::OpenAi, "m").await;
    assert_eq!(answer.status, StatusCode::OK);
    gateway.flush_usage().await;
    let get = |path: &str| {
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(send(&gateway, get("/health")).await.status, StatusCode::OK);
    assert_eq!(send(&gateway, get("/ready")).await.status, StatusCode::OK);
    let metrics = send(&gateway, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text();
    for name in [
        "gateway_requests_total{api_format=\"OPENAI\",status=\"200\"}",
        "gateway_upstream_attempts_total{provider=\"metrics-provider\",outcome=\"success\"}",
        "gateway_overhead_seconds_bucket",
        "usage_writer_queue_depth",
        "cache_requests_total",
        "model_mapping_resolution_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        !text.contains("client_key:hash"),
        "raw keys must not become labels"
    );
}
