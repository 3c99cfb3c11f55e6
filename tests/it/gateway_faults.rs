//! Fault injection against the gateway (behaviour.md 7, 8 and 8b): scripted upstreams that
//! stall, reset, redirect, overflow or lie about usage, clients that hang up at every stage,
//! and SIGTERM with a stalled stream open. After each case another user's request must still
//! get its usage row.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_entities::{ApiFormat, CandidateStatus, TieredPricing, UsageStatus, usage};
use tollgate_server::mock::{MockUpstream, MockUsage};
use tollgate_server::{Gateway, Limits};
use tollgate_testkit::{TestDb, db_test};
use tower::ServiceExt;

use crate::fault_upstream::{self as script, FaultUpstream, Step};
use crate::gateway_support::{
    Client, Route, UPSTREAM_SECRET, assert_canary_recorded, candidates_of, chat, client,
    closed_port, gateway_binary, global_model, request, route, send, usage_of, wait_for_usage,
    wait_healthy,
};

const FORMATS: [ApiFormat; 2] = [ApiFormat::OpenAi, ApiFormat::Claude];

/// What the healthy fallback provider reports.
const HEALTHY: MockUsage = MockUsage {
    input: 111,
    output: 22,
    cache_creation: 0,
    cache_read: 0,
};

/// Bounds of the fault gateway: a 1 MiB answer cap and a 2 s grace after a hang-up.
fn limits() -> Limits {
    Limits {
        max_response_bytes: 1 << 20,
        stream_grace: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn fault_gateway(conn: &DatabaseConnection) -> Gateway {
    let mut builder = Gateway::builder(conn.clone()).limits(limits());
    if let Some(handle) = tollgate_server::prometheus() {
        builder = builder.metrics(handle);
    }
    builder.build().expect("gateway builds")
}

fn pricing() -> TieredPricing {
    TieredPricing::fixed(3.0, 15.0)
}

/// One format's routes: global model `model` served by the scripted upstream (priority 10)
/// and a healthy mock (priority 20); `canary` served by the healthy mock alone; a fresh
/// client. Names carry a random tag, so several setups share a database and a gateway
/// (and each has key health of its own).
struct Setup {
    format: ApiFormat,
    model: String,
    canary: String,
    faulty_name: String,
    healthy_name: String,
    faulty: Route,
    healthy: Route,
    client: Client,
    fault: FaultUpstream,
    mock: MockUpstream,
}

impl Setup {
    async fn new(
        conn: &DatabaseConnection,
        format: ApiFormat,
        timeout: i32,
        steps: Vec<Step>,
    ) -> Self {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let fault = FaultUpstream::start(steps).await;
        let mock = MockUpstream::start().await.unwrap();
        mock.set(|b| b.usage = HEALTHY);
        let model = format!("m-{tag}");
        let canary = format!("canary-{tag}");
        let faulty_name = format!("faulty-{tag}");
        let healthy_name = format!("healthy-{tag}");
        let global = global_model(conn, &model, pricing()).await;
        let canary_global = global_model(conn, &canary, pricing()).await;
        let mock_url = match format {
            ApiFormat::OpenAi => mock.openai_base_url(),
            ApiFormat::Claude => mock.claude_base_url(),
        };
        let faulty = route(
            conn,
            &faulty_name,
            10,
            format,
            &fault.base_url(format),
            timeout,
            &global,
            "fault-upstream-model",
        )
        .await;
        let healthy = route(
            conn,
            &healthy_name,
            20,
            format,
            &mock_url,
            30,
            &global,
            "healthy-upstream-model",
        )
        .await;
        route(
            conn,
            &format!("canary-{tag}"),
            10,
            format,
            &mock_url,
            30,
            &canary_global,
            "canary-upstream-model",
        )
        .await;
        let client = client(conn, &format!("user-{tag}")).await;
        Self {
            format,
            model,
            canary,
            faulty_name,
            healthy_name,
            faulty,
            healthy,
            client,
            fault,
            mock,
        }
    }

    fn request(&self, stream: bool) -> axum::http::Request<axum::body::Body> {
        request(
            self.format,
            Some(&self.client.key),
            chat(&self.model, stream),
        )
    }

    async fn canary(&self, gateway: &Gateway, conn: &DatabaseConnection) {
        let row = assert_canary_recorded(gateway, conn, self.format, &self.canary).await;
        assert_eq!(row.status, UsageStatus::Completed);
    }
}

/// Sends `s`'s request, which must fail on the scripted upstream with `error_type` (and
/// `status_code`) and be answered by the healthy one; checks the answer, the candidate rows,
/// the usage row and the canary.
async fn assert_falls_back(
    gateway: &Gateway,
    conn: &DatabaseConnection,
    s: &Setup,
    stream: bool,
    error_type: &str,
    status_code: Option<i32>,
) {
    let case = format!("{} stream={stream} {error_type}", s.format);
    let answer = send(gateway, s.request(stream)).await;
    assert_eq!(answer.status, StatusCode::OK, "{case}: {}", answer.text());
    assert_eq!(
        answer.header("x-tollgate-provider"),
        s.healthy_name,
        "{case}"
    );
    assert_eq!(answer.header("x-tollgate-attempts"), "2", "{case}");
    let text = answer.text();
    assert!(
        !text.contains("FAULT"),
        "{case}: faulty bytes relayed: {text}"
    );
    assert!(text.contains("mock upstream"), "{case}: {text}");
    if stream {
        let end = match s.format {
            ApiFormat::OpenAi => "data: [DONE]",
            ApiFormat::Claude => "message_stop",
        };
        assert!(text.contains(end), "{case}: {text}");
    }
    let received = s.fault.requests();
    assert_eq!(received.len(), 1, "{case}: faulty upstream called once");
    let path = match s.format {
        ApiFormat::OpenAi => "/v1/chat/completions",
        ApiFormat::Claude => "/v1/messages",
    };
    assert_eq!(received[0].path, path, "{case}");
    assert!(
        received[0].mentions(UPSTREAM_SECRET),
        "{case}: the configured endpoint gets the key"
    );
    assert_eq!(
        s.mock.request_count(),
        1,
        "{case}: healthy upstream called once"
    );

    gateway.flush_usage().await;
    let request_id = answer.header("x-request-id");
    let rows = candidates_of(conn, request_id).await;
    assert_eq!(rows.len(), 2, "{case}: {rows:?}");
    assert_eq!(rows[0].status, CandidateStatus::Failed, "{case}: {rows:?}");
    assert_eq!(
        rows[0].provider_id.as_deref(),
        Some(s.faulty.provider_id.as_str())
    );
    assert_eq!(
        rows[0].error_type.as_deref(),
        Some(error_type),
        "{case}: {rows:?}"
    );
    assert_eq!(rows[0].status_code, status_code, "{case}: {rows:?}");
    assert!(
        rows[0]
            .error_message
            .as_deref()
            .is_some_and(|m| !m.is_empty() && !m.contains(UPSTREAM_SECRET)),
        "{case}: {rows:?}"
    );
    assert_eq!(rows[1].status, CandidateStatus::Success, "{case}: {rows:?}");
    assert_eq!(
        rows[1].provider_id.as_deref(),
        Some(s.healthy.provider_id.as_str())
    );
    let row = usage_of(conn, request_id).await;
    assert_eq!(row.status, UsageStatus::Completed, "{case}");
    assert_eq!(row.status_code, Some(200), "{case}");
    assert_eq!(row.error_message, None, "{case}");
    assert_eq!(row.provider, s.healthy_name, "{case}");
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (111, 22),
        "{case}: the healthy upstream's usage"
    );
    assert_eq!(row.is_stream, stream);
    s.canary(gateway, conn).await;
}

/// A scripted failure before the first byte of a stream, in both formats.
async fn stream_fails_before_first_byte(
    db: &TestDb,
    timeout: i32,
    error_type: &str,
    build: impl Fn(ApiFormat) -> Vec<Step>,
) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        let s = Setup::new(conn, format, timeout, build(format)).await;
        assert_falls_back(&gateway, conn, &s, true, error_type, None).await;
    }
}

db_test!(async fn stall_after_headers_falls_back(db) {
    stream_fails_before_first_byte(db, 1, "timeout", |_| vec![script::stream_head(), Step::StallForever]).await;
});

db_test!(async fn whole_answer_that_stalls_or_trickles_past_the_timeout_falls_back(db) {
    whole_answer_past_the_timeout(db).await;
});

/// The endpoint's timeout (1 s) bounds the whole body of an answer that is not streamed: a
/// body that stops, and a body that trickles a byte every 300 ms, are failed attempts.
async fn whole_answer_past_the_timeout(db: &TestDb) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        let body = script::answer_body(format, "FAULT slow", script::usage_block(format, 3, 3));
        let body = body.to_string().into_bytes();
        let mut stalled = script::raw_answer(200, "application/json", &body);
        stalled[1] = Step::Send(body[..10].to_vec());
        stalled.push(Step::StallForever);
        let mut trickle = script::raw_answer(200, "application/json", &body);
        trickle.pop();
        for byte in &body {
            trickle.push(Step::Send(vec![*byte]));
            trickle.push(Step::Sleep(Duration::from_millis(300)));
        }
        for steps in [stalled, trickle] {
            let s = Setup::new(conn, format, 1, steps).await;
            assert_falls_back(&gateway, conn, &s, false, "timeout", None).await;
        }
    }
}

db_test!(async fn reset_before_headers_falls_back(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        for stream in [false, true] {
            let s = Setup::new(conn, format, 2, vec![Step::Reset]).await;
            assert_falls_back(&gateway, conn, &s, stream, "transport_error", None).await;
        }
    }
});

db_test!(async fn reset_after_headers_before_the_first_event_falls_back(db) {
    stream_fails_before_first_byte(db, 2, "transport_error", |_| vec![script::stream_head(), Step::Reset]).await;
});

db_test!(async fn reset_in_the_middle_of_the_first_event_falls_back(db) {
    stream_fails_before_first_byte(db, 2, "transport_error", |_| {
        vec![script::stream_head(), Step::Chunk(b"data: {\"choices\":[{\"delta\":".to_vec()), Step::Reset]
    }).await;
});

db_test!(async fn stream_that_ends_before_its_first_event_falls_back(db) {
    stream_fails_before_first_byte(db, 2, "invalid_stream", |_| vec![script::stream_head(), Step::EndChunks]).await;
});

db_test!(async fn first_event_that_is_not_json_falls_back(db) {
    stream_fails_before_first_byte(db, 2, "invalid_stream", |_| {
        vec![script::stream_head(), script::sse(None, "{FAULT not json"), Step::StallForever]
    }).await;
});

db_test!(async fn first_event_that_is_an_error_object_falls_back(db) {
    stream_fails_before_first_byte(db, 2, "invalid_stream", |format| {
        vec![script::stream_head(), script::error_event(format), Step::StallForever]
    }).await;
});

/// The last server-sent event of `text` and the JSON of its `data:`.
fn last_event(text: &str) -> (String, serde_json::Value) {
    let event = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .last()
        .unwrap_or_else(|| panic!("no event in {text:?}"))
        .to_owned();
    let data = event
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line in the last event {event:?}"));
    let json = serde_json::from_str(data)
        .unwrap_or_else(|e| panic!("last event's data is not JSON ({e}): {event:?}"));
    (event, json)
}

/// Checks that a stream ended with the format's well-formed error event.
fn assert_error_ending(format: ApiFormat, text: &str) {
    assert!(
        text.ends_with("\n\n"),
        "the stream ends mid-event: {text:?}"
    );
    let (event, json) = last_event(text);
    match format {
        ApiFormat::OpenAi => {
            assert!(event.starts_with("data: "), "{event:?}");
            let message = json["error"]["message"].as_str();
            assert!(message.is_some_and(|m| !m.is_empty()), "{event:?}");
            assert!(
                !text.contains("[DONE]"),
                "a cut stream claims to be done: {text:?}"
            );
        }
        ApiFormat::Claude => {
            assert!(event.starts_with("event: error\n"), "{event:?}");
            assert_eq!(json["type"], "error", "{event:?}");
            assert_eq!(json["error"]["type"], "api_error", "{event:?}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(!text.contains("message_stop"), "{text:?}");
        }
    }
}

/// The start of a stream whose client has seen `FAULT partial` (Anthropic's
/// `message_start` reports 321 input tokens and 1 output token).
fn partial_stream(format: ApiFormat) -> Vec<Step> {
    let mut steps = vec![script::stream_head()];
    steps.extend(script::stream_start(
        format,
        serde_json::json!({"input_tokens": 321, "output_tokens": 1}),
    ));
    steps.push(script::text_event(format, "FAULT partial"));
    steps
}

/// The tokens a stream cut after [`partial_stream`] must record: Anthropic's `message_start`
/// counts; nothing for OpenAI, whose usage comes last.
fn partial_tokens(format: ApiFormat) -> (i32, i32) {
    match format {
        ApiFormat::OpenAi => (0, 0),
        ApiFormat::Claude => (321, 1),
    }
}

/// A stream that fails after its first byte (`tail` follows [`partial_stream`]): the client
/// gets the partial answer and the format's error event, within `bound` of its first
/// frame; nothing is retried; the usage row is failed with the tokens seen.
async fn assert_cut_mid_stream(db: &TestDb, tail: Vec<Step>, message: &str, bound: Duration) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        let mut steps = partial_stream(format);
        steps.extend(tail.clone());
        let s = Setup::new(conn, format, 1, steps).await;
        let response = gateway.router().oneshot(s.request(true)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{format}");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut frames = response.into_body().into_data_stream();
        let mut body = Vec::new();
        let mut first_at = None;
        let read = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(frame) = frames.next().await {
                first_at.get_or_insert_with(Instant::now);
                body.extend_from_slice(&frame.unwrap());
            }
        })
        .await;
        assert!(read.is_ok(), "{format}: the stream never ended");
        let elapsed = first_at.expect("a first frame").elapsed();
        assert!(
            elapsed < bound,
            "{format}: the stream ended {elapsed:?} after its first frame (bound {bound:?})"
        );
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(text.contains("FAULT partial"), "{format}: {text:?}");
        assert_error_ending(format, &text);
        assert_eq!(
            s.mock.request_count(),
            0,
            "{format}: retried after the first byte"
        );

        gateway.flush_usage().await;
        let row = usage_of(conn, &request_id).await;
        assert_eq!(row.status, UsageStatus::Failed, "{format}");
        assert_eq!(
            row.status_code,
            Some(200),
            "{format}: the status the client got"
        );
        let error = row.error_message.clone().unwrap_or_default();
        assert!(error.contains(message), "{format}: error_message {error:?}");
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            partial_tokens(format),
            "{format}: the tokens seen before the cut"
        );
        assert_eq!(row.provider, s.faulty_name);
        let rows = candidates_of(conn, &request_id).await;
        assert_eq!(rows.len(), 1, "{format}: {rows:?}");
        assert_eq!(
            rows[0].status,
            CandidateStatus::Failed,
            "{format}: {rows:?}"
        );
        assert_eq!(rows[0].error_type.as_deref(), Some("stream_error"));
        s.canary(&gateway, conn).await;
    }
}

db_test!(async fn stall_mid_stream_ends_with_the_formats_error_event(db) {
    // Endpoint timeout 1 s: the stream must end within timeout + 1 s of its first frame.
    assert_cut_mid_stream(db, vec![Step::StallForever], "sent nothing", Duration::from_secs(2)).await;
});

db_test!(async fn reset_mid_stream_ends_with_the_formats_error_event(db) {
    assert_cut_mid_stream(db, vec![Step::Sleep(Duration::from_millis(200)), Step::Reset], "upstream stream failed", Duration::from_secs(2)).await;
});

db_test!(async fn truncated_chunked_stream_ends_with_the_formats_error_event(db) {
    // A FIN before the last chunk: the body is incomplete, not a clean end.
    assert_cut_mid_stream(db, vec![Step::Close], "upstream stream failed", Duration::from_secs(2)).await;
});

db_test!(async fn redirects_are_failed_attempts_and_never_followed(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        let target = FaultUpstream::start(script::answer(format, "FAULT redirected", script::usage_block(format, 9, 9))).await;
        let path = match format {
            ApiFormat::OpenAi => "/v1/chat/completions",
            ApiFormat::Claude => "/v1/messages",
        };
        let location = format!("{}{path}", target.origin());
        for status in [301, 302, 303, 307, 308] {
            for stream in [false, true] {
                let s = Setup::new(conn, format, 2, script::redirect(status, &location)).await;
                assert_falls_back(&gateway, conn, &s, stream, "redirect", Some(i32::from(status))).await;
            }
        }
        assert_eq!(target.request_count(), 0, "{format}: a redirect was followed");
        assert!(target.requests().iter().all(|r| !r.mentions(UPSTREAM_SECRET)));
    }
});

db_test!(async fn an_answer_over_the_size_cap_is_a_failed_attempt(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        for chunked in [false, true] {
            // Valid JSON after 2 MiB of whitespace: only the 1 MiB cap can refuse it.
            let s = Setup::new(conn, format, 5, script::huge_answer(format, 2 << 20, chunked)).await;
            assert_falls_back(&gateway, conn, &s, false, "response_too_large", Some(200)).await;
        }
    }
});

db_test!(async fn a_40_mib_answer_is_refused_under_the_default_cap(db) {
    forty_mib_answer(db).await;
});

/// The default cap (32 MiB) with a 40 MiB answer, without and with a length.
async fn forty_mib_answer(db: &TestDb) {
    let conn = &db.conn;
    let mut builder = Gateway::builder(conn.clone());
    if let Some(handle) = tollgate_server::prometheus() {
        builder = builder.metrics(handle);
    }
    let gateway = builder.build().unwrap();
    for chunked in [false, true] {
        let huge = script::huge_answer(ApiFormat::OpenAi, 40 << 20, chunked);
        let s = Setup::new(conn, ApiFormat::OpenAi, 20, huge).await;
        assert_falls_back(&gateway, conn, &s, false, "response_too_large", Some(200)).await;
    }
}

/// Usage blocks no upstream should send, in `format`'s field names.
fn absurd_usages(format: ApiFormat) -> Vec<serde_json::Value> {
    let (input, output, cache) = match format {
        ApiFormat::OpenAi => ("prompt_tokens", "completion_tokens", "total_tokens"),
        ApiFormat::Claude => ("input_tokens", "output_tokens", "cache_read_input_tokens"),
    };
    let pair = |a: serde_json::Value, b: serde_json::Value| {
        let mut block = serde_json::Map::new();
        block.insert(input.to_owned(), a);
        block.insert(output.to_owned(), b);
        block
    };
    let mut blocks: Vec<serde_json::Value> = [
        (serde_json::json!(-5), serde_json::json!(-1)),
        (serde_json::json!(1e12), serde_json::json!(3.7)),
        (serde_json::json!("12"), serde_json::Value::Null),
        (serde_json::json!({"a": 1}), serde_json::json!([1, 2])),
        (
            serde_json::json!(9_999_999_999_999_i64),
            serde_json::json!(2_147_483_648_i64),
        ),
        (serde_json::json!(i64::MAX), serde_json::json!(i64::MAX)),
        (serde_json::json!(u64::MAX), serde_json::json!(-1e308)),
        (
            serde_json::json!(2_147_483_647),
            serde_json::json!(2_147_483_647),
        ),
    ]
    .into_iter()
    .map(|(a, b)| serde_json::Value::Object(pair(a, b)))
    .collect();
    let mut with_cache = pair(serde_json::json!(5), serde_json::json!(5));
    with_cache.insert(cache.to_owned(), serde_json::json!(i64::MAX));
    blocks.push(serde_json::Value::Object(with_cache));
    if format == ApiFormat::OpenAi {
        blocks.push(serde_json::json!({input: 5, output: 5,
            "prompt_tokens_details": {"cached_tokens": i64::MAX}}));
        blocks.push(serde_json::json!({input: 5, output: 5,
            "prompt_tokens_details": {"cached_tokens": -9}}));
    } else {
        blocks.push(serde_json::json!({input: i64::MAX, output: 1,
            "cache_creation_input_tokens": i64::MAX, "cache_read_input_tokens": i64::MAX}));
    }
    blocks.extend([
        serde_json::json!("garbage"),
        serde_json::json!([1, 2, 3]),
        serde_json::json!(42),
        serde_json::json!({}),
    ]);
    blocks
}

/// Every token column within `0..=i32::MAX` and every cost finite and ≥ 0.
fn assert_row_bounded(row: &usage::Model, case: &str) {
    for (name, tokens) in [
        ("input", row.input_tokens),
        ("output", row.output_tokens),
        ("total", row.total_tokens),
        ("cache_creation", row.cache_creation_input_tokens),
        ("cache_read", row.cache_read_input_tokens),
    ] {
        assert!(
            (0..=i32::MAX).contains(&tokens),
            "{case}: {name} = {tokens}"
        );
    }
    for (name, cost) in [
        ("input", row.input_cost_usd),
        ("output", row.output_cost_usd),
        ("cache_creation", row.cache_creation_cost_usd),
        ("cache_read", row.cache_read_cost_usd),
        ("cache", row.cache_cost_usd),
        ("request", row.request_cost_usd),
        ("total", row.total_cost_usd),
        ("actual_input", row.actual_input_cost_usd),
        ("actual_output", row.actual_output_cost_usd),
        ("actual_cache_creation", row.actual_cache_creation_cost_usd),
        ("actual_cache_read", row.actual_cache_read_cost_usd),
        ("actual_request", row.actual_request_cost_usd),
        ("actual_total", row.actual_total_cost_usd),
    ] {
        assert!(
            cost.is_finite() && cost >= 0.0,
            "{case}: {name} cost = {cost}"
        );
    }
}

db_test!(async fn absurd_usage_blocks_are_recorded_within_bounds(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    for format in FORMATS {
        let s = Setup::new(conn, format, 5, Vec::new()).await;
        for usage in absurd_usages(format) {
            for stream in [false, true] {
                let case = format!("{format} stream={stream} usage={usage}");
                s.fault.set(if stream {
                    script::whole_stream(format, "FAULT answer", usage.clone())
                } else {
                    script::answer(format, "FAULT answer", usage.clone())
                });
                let answer = send(&gateway, s.request(stream)).await;
                assert_eq!(answer.status, StatusCode::OK, "{case}: {}", answer.text());
                assert_eq!(answer.header("x-tollgate-provider"), s.faulty_name, "{case}");
                assert!(answer.text().contains("FAULT answer"), "{case}");
                gateway.flush_usage().await;
                let row = wait_for_usage(conn, answer.header("x-request-id"), Duration::from_secs(5))
                    .await
                    .unwrap_or_else(|| panic!("{case}: no usage row"));
                assert_eq!(row.status, UsageStatus::Completed, "{case}");
                assert_row_bounded(&row, &case);
            }
        }
        assert_eq!(s.mock.request_count(), 0);
        s.canary(&gateway, conn).await;
    }
});

// ---- Clients that hang up, over a real socket ----

/// The gateway's router served over TCP on 127.0.0.1 until dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(gateway: &Gateway) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = gateway.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server { addr, task }
}

/// Opens a connection and writes `s`'s request on it, by hand.
async fn raw_request(addr: SocketAddr, s: &Setup, stream: bool) -> TcpStream {
    let body = chat(&s.model, stream);
    let (path, auth) = match s.format {
        ApiFormat::OpenAi => (
            "/v1/chat/completions",
            format!("authorization: Bearer {}", s.client.key),
        ),
        ApiFormat::Claude => ("/v1/messages", format!("x-api-key: {}", s.client.key)),
    };
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body.as_bytes()).await.unwrap();
    tcp
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(tcp: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut piece = [0_u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = tcp.read(&mut piece).await.unwrap();
            assert!(
                n > 0,
                "connection closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&piece[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "{needle:?} did not arrive: {:?}",
        String::from_utf8_lossy(&seen)
    );
    String::from_utf8_lossy(&seen).into_owned()
}

fn request_id_of(head: &str) -> String {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-request-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no x-request-id in {head:?}"))
}

/// Polls until the scripted upstream has received `count` requests.
async fn wait_for_upstream(fault: &FaultUpstream, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fault.request_count() < count {
        assert!(Instant::now() < deadline, "the upstream was never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn user_rows(conn: &DatabaseConnection, user_id: &str) -> Vec<usage::Model> {
    usage::Entity::find()
        .filter(usage::Column::UserId.eq(user_id))
        .all(conn)
        .await
        .unwrap()
}

/// Waits (a few seconds) for the hung-up request's usage row, then checks it is the user's
/// only one and that it records a 499.
async fn the_one_hung_up_row(
    gateway: &Gateway,
    conn: &DatabaseConnection,
    s: &Setup,
) -> usage::Model {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !user_rows(conn, &s.client.user_id).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no usage row for the hung-up request",
            s.format
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.flush_usage().await;
    let rows = user_rows(conn, &s.client.user_id).await;
    assert_eq!(
        rows.len(),
        1,
        "{}: one request, one usage row: {rows:?}",
        s.format
    );
    let row = rows.into_iter().next().unwrap();
    assert_eq!(row.status, UsageStatus::Failed, "{}", s.format);
    assert_eq!(row.status_code, Some(499), "{}", s.format);
    assert_eq!(
        row.error_message.as_deref(),
        Some("client disconnected"),
        "{}",
        s.format
    );
    assert_eq!(row.provider, s.faulty_name);
    let candidates = candidates_of(conn, &row.request_id).await;
    assert_eq!(candidates.len(), 1, "{}: {candidates:?}", s.format);
    assert_ne!(candidates[0].status, CandidateStatus::Pending);
    assert_ne!(candidates[0].status, CandidateStatus::Streaming);
    row
}

fn metadata(row: &usage::Model) -> serde_json::Map<String, serde_json::Value> {
    row.request_metadata
        .clone()
        .map(|m| m.0)
        .unwrap_or_default()
}

/// A client that hangs up while a slow upstream has not answered yet (a whole answer, or a
/// stream before its first byte) still leaves one 499 row with the upstream's tokens.
async fn client_gone_before_the_first_byte(db: &TestDb, stream: bool) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    let server = serve(&gateway).await;
    for format in FORMATS {
        let mut steps = vec![Step::Sleep(Duration::from_millis(1500))];
        let usage = script::usage_block(format, 40, 7);
        steps.extend(if stream {
            script::whole_stream(format, "FAULT late", usage)
        } else {
            script::answer(format, "FAULT late", usage)
        });
        let s = Setup::new(conn, format, 5, steps).await;
        let tcp = raw_request(server.addr, &s, stream).await;
        wait_for_upstream(&s.fault, 1).await;
        drop(tcp);
        let row = the_one_hung_up_row(&gateway, conn, &s).await;
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            (40, 7),
            "{format}: the upstream's tokens"
        );
        assert!(row.total_cost_usd > 0.0, "{format}: hanging up is not free");
        assert_eq!(s.mock.request_count(), 0, "{format}: no fallback");
        s.canary(&gateway, conn).await;
    }
}

db_test!(async fn client_gone_before_the_headers_of_a_slow_answer(db) {
    client_gone_before_the_first_byte(db, false).await;
});

db_test!(async fn client_gone_before_the_first_byte_of_a_stream(db) {
    client_gone_before_the_first_byte(db, true).await;
});

/// A stream whose client hangs up once `FAULT partial` arrived; `tail` follows. Returns the
/// request's only usage row.
async fn hang_up_mid_stream(
    gateway: &Gateway,
    conn: &DatabaseConnection,
    server: &Server,
    s: &Setup,
) -> usage::Model {
    let mut tcp = raw_request(server.addr, s, true).await;
    let seen = read_until(&mut tcp, "FAULT partial").await;
    let request_id = request_id_of(&seen);
    drop(tcp);
    let row = wait_for_usage(conn, &request_id, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{}: no usage row for {request_id}", s.format));
    let same = the_one_hung_up_row(gateway, conn, s).await;
    assert_eq!(same.request_id, request_id);
    row
}

/// Anthropic's `message_start` usage in the hang-up cases: input known, output 1.
fn start_usage() -> serde_json::Value {
    serde_json::json!({"input_tokens": 40, "output_tokens": 1})
}

db_test!(async fn client_gone_mid_stream_still_gets_the_usage_block_read(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    let server = serve(&gateway).await;
    for format in FORMATS {
        // The usage block comes 1 s after the client left: inside the 2 s grace.
        let mut steps = vec![script::stream_head()];
        steps.extend(script::stream_start(format, start_usage()));
        steps.push(script::text_event(format, "FAULT partial"));
        steps.push(Step::Sleep(Duration::from_secs(1)));
        let usage = match format {
            ApiFormat::OpenAi => script::usage_block(format, 40, 7),
            ApiFormat::Claude => serde_json::json!({"output_tokens": 7}),
        };
        steps.extend(script::stream_finish(format, usage));
        let s = Setup::new(conn, format, 5, steps).await;
        let row = hang_up_mid_stream(&gateway, conn, &server, &s).await;
        assert_eq!((row.input_tokens, row.output_tokens), (40, 7), "{format}: the upstream's tokens, not 0");
        assert!(!metadata(&row).contains_key("tokens_estimated"), "{format}: {:?}", row.request_metadata);
        s.canary(&gateway, conn).await;
    }
});

db_test!(async fn client_gone_mid_stream_without_a_usage_block_is_estimated(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    let server = serve(&gateway).await;
    for format in FORMATS {
        // The upstream never says another word: the grace ends, the gateway hangs up.
        let mut steps = vec![script::stream_head()];
        steps.extend(script::stream_start(format, start_usage()));
        steps.push(script::text_event(format, "FAULT partial, and a few more words of answer"));
        steps.push(Step::StallForever);
        let s = Setup::new(conn, format, 30, steps).await;
        let row = hang_up_mid_stream(&gateway, conn, &server, &s).await;
        assert!(row.input_tokens > 0 && row.output_tokens > 0, "{format}: estimated tokens: {row:?}");
        if format == ApiFormat::Claude {
            assert_eq!(row.input_tokens, 40, "the upstream's own input count wins");
            assert!(row.output_tokens > 1, "output estimated from the relayed text");
        }
        assert!(row.total_cost_usd > 0.0, "{format}: hanging up is not free");
        assert!(metadata(&row).contains_key("tokens_estimated"), "{format}: {:?}", row.request_metadata);
        // After the grace the gateway cancels the upstream request.
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.fault.hangups() == 0 {
            assert!(Instant::now() < deadline, "{format}: the gateway never hung up the upstream");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.canary(&gateway, conn).await;
    }
});

db_test!(async fn client_gone_mid_stream_that_then_ends_without_usage_is_estimated(db) {
    let conn = &db.conn;
    let gateway = fault_gateway(conn);
    let server = serve(&gateway).await;
    for format in FORMATS {
        // The upstream ends its stream inside the grace, but never sends a usage block.
        let mut steps = vec![script::stream_head()];
        steps.extend(script::stream_start(format, serde_json::Value::Null));
        steps.push(script::text_event(format, "FAULT partial, and a few more words of answer"));
        steps.push(Step::Sleep(Duration::from_millis(500)));
        steps.extend(script::stream_finish(format, serde_json::Value::Null));
        let s = Setup::new(conn, format, 30, steps).await;
        let row = hang_up_mid_stream(&gateway, conn, &server, &s).await;
        assert!(row.input_tokens > 0 && row.output_tokens > 0, "{format}: estimated tokens: {row:?}");
        assert!(metadata(&row).contains_key("tokens_estimated"), "{format}: {:?}", row.request_metadata);
        s.canary(&gateway, conn).await;
    }
});

// ---- SIGTERM on the binary with stalled streams open ----

fn write_catalogue(
    path: &Path,
    fault: &FaultUpstream,
    mock: &MockUpstream,
    streamer: &str,
    bystander: &str,
) {
    let key = |name: &str| serde_json::json!({"name": name, "api_key": UPSTREAM_SECRET});
    let pricing = serde_json::json!({"tiers": [
        {"up_to": null, "input_price_per_1m": 3.0, "output_price_per_1m": 15.0}]});
    let catalogue = serde_json::json!({
        "global_models": [
            {"name": "m", "default_tiered_pricing": pricing},
            {"name": "canary", "default_tiered_pricing": pricing},
        ],
        "providers": [
            {"name": "faulty", "priority": 10, "endpoints": [
                {"api_format": "OPENAI", "base_url": fault.base_url(ApiFormat::OpenAi), "timeout": 60, "keys": [key("a")]},
                {"api_format": "CLAUDE", "base_url": fault.base_url(ApiFormat::Claude), "timeout": 60, "keys": [key("b")]},
            ], "models": [{"global_model": "m", "provider_model_name": "m-fault"}]},
            {"name": "healthy", "priority": 10, "endpoints": [
                {"api_format": "OPENAI", "base_url": mock.openai_base_url(), "keys": [key("c")]},
            ], "models": [{"global_model": "canary", "provider_model_name": "canary"}]},
        ],
        "users": [
            {"username": "streamer", "api_keys": [{"name": "k", "key": streamer}]},
            {"username": "bystander", "api_keys": [{"name": "k", "key": bystander}]},
        ],
    });
    std::fs::write(path, catalogue.to_string()).unwrap();
}

fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Opens a stream through the binary; returns its request id and a task reading it whole.
async fn open_stream(
    http: &reqwest::Client,
    base: &str,
    format: ApiFormat,
    key: &str,
) -> (String, tokio::task::JoinHandle<String>) {
    let builder = match format {
        ApiFormat::OpenAi => http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key),
        ApiFormat::Claude => http
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", key),
    };
    let mut response = builder
        .header("content-type", "application/json")
        .body(chat("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut text = String::new();
    while !text.contains("FAULT partial") {
        let chunk = response.chunk().await.unwrap().expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let reader = tokio::spawn(async move {
        while let Ok(Some(chunk)) = response.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });
    (id, reader)
}

async fn sigterm_with_stalled_streams(db: &TestDb) {
    let binary = tokio::task::spawn_blocking(gateway_binary).await.unwrap();
    let conn = &db.conn;
    let fault = FaultUpstream::start(Vec::new()).await;
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| b.usage = HEALTHY);
    let dir =
        std::env::temp_dir().join(format!("tollgate-faults-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let streamer = format!("tg-client-{}", uuid::Uuid::new_v4().simple());
    let bystander = format!("tg-client-{}", uuid::Uuid::new_v4().simple());
    let catalogue = dir.join("catalog.json");
    write_catalogue(&catalogue, &fault, &mock, &streamer, &bystander);
    let port = closed_port();
    let child = Command::new(&binary)
        .arg("--catalog")
        .arg(&catalogue)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db.url())
        .env(
            "TOLLGATE_ADMIN_KEY",
            format!("tg-admin-{}", uuid::Uuid::new_v4().simple()),
        )
        .env("TOLLGATE_SHUTDOWN_TIMEOUT_SECS", "4")
        .env_remove("REDIS_URL")
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("gateway.log")).unwrap())
        .spawn()
        .unwrap();
    let mut child = crate::gateway_support::KillOnDrop(child);
    tollgate_server::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &base, Duration::from_secs(30)).await;

    // One stalled stream per format; the endpoint timeout (60 s) cannot end them.
    let mut streams = Vec::new();
    for (n, format) in FORMATS.into_iter().enumerate() {
        let mut steps = partial_stream(format);
        steps.push(Step::StallForever);
        fault.set(steps);
        let (id, reader) = open_stream(&http, &base, format, &streamer).await;
        assert_eq!(fault.request_count(), n + 1);
        streams.push((format, id, reader));
    }
    // The ledger still works for someone else while the streams hang.
    let answer = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&bystander)
        .header("content-type", "application/json")
        .body(chat("canary", false))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let canary_id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let canary = wait_for_usage(conn, &canary_id, Duration::from_secs(5)).await;
    assert!(
        canary.is_some(),
        "the bystander's usage row was not written while streams hung"
    );

    let signalled = Instant::now();
    terminate(child.id());
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "the gateway exited with {status}");
    assert!(
        took < Duration::from_secs(5),
        "the gateway took {took:?} to exit (bound 4 s, plus 1 s for the process to end)"
    );

    for (format, id, reader) in streams {
        let text = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the client's stream ended")
            .unwrap();
        assert!(text.contains("FAULT partial"), "{format}: {text:?}");
        assert_error_ending(format, &text);
        let row = usage_of(conn, &id).await;
        assert_eq!(row.status, UsageStatus::Failed, "{format}");
        let error = row.error_message.clone().unwrap_or_default();
        assert!(error.contains("shutting down"), "{format}: {error:?}");
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            partial_tokens(format),
            "{format}"
        );
        let rows = candidates_of(conn, &id).await;
        assert_eq!(rows.len(), 1, "{format}: {rows:?}");
        assert_eq!(rows[0].status, CandidateStatus::Failed, "{format}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

db_test!(async fn sigterm_ends_stalled_streams_with_an_error_event_and_records_them(db) {
    sigterm_with_stalled_streams(db).await;
});
