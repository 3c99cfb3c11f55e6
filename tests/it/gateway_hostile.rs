//! Hostile client requests through the whole in-process gateway (behaviour.md 7): arbitrary
//! bodies, field values and headers never make it panic or answer 5xx, every answer is JSON
//! in the endpoint's error shape or the upstream's answer, and the ledger keeps recording.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::{Just, Strategy, any, prop, prop_oneof};
use proptest::test_runner::{Config, TestRunner};
use tollgate_entities::{ApiFormat, TieredPricing};
use tollgate_server::mock::MockUpstream;
use tollgate_testkit::TestDb;

use crate::gateway_support::{
    assert_canary_recorded, client, gateway, global_model, request, route, send,
};

/// Any JSON value, nested a little, with strings that include NUL and control characters.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::String),
        Just(serde_json::Value::String("routed".to_owned())),
        Just(serde_json::Value::String("bad\u{0}name".to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A request body: usually an object with the fields the gateway reads set to anything,
/// sometimes raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("model".to_owned()),
        Just("stream".to_owned()),
        Just("stream_options".to_owned()),
        Just("messages".to_owned()),
        Just("max_tokens".to_owned()),
        "[a-z_]{1,12}",
    ];
    prop_oneof![
        4 => prop::collection::btree_map(field, json_value(), 0..6).prop_map(|map| {
            serde_json::to_vec(&serde_json::Value::Object(map.into_iter().collect()))
                .unwrap_or_default()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn arbitrary_client_requests_never_get_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, mock, gateway, key) = runtime.block_on(async {
        let db = TestDb::sqlite().await;
        let mock = MockUpstream::start().await.unwrap();
        mock.set(|b| b.record = false);
        let global = global_model(&db.conn, "routed", TieredPricing::fixed(1.0, 2.0)).await;
        for format in [ApiFormat::OpenAi, ApiFormat::Claude] {
            let base_url = match format {
                ApiFormat::OpenAi => mock.openai_base_url(),
                ApiFormat::Claude => mock.claude_base_url(),
            };
            let name = format!("prov-{}", format.as_str());
            route(&db.conn, &name, 10, format, &base_url, 5, &global, "up").await;
        }
        let gateway = gateway(&db.conn);
        let key = client(&db.conn, "hostile").await.key;
        (db, mock, gateway, key)
    });
    let mut runner = TestRunner::new(Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (body(), any::<bool>(), prop::option::of(".{0,20}"));
    runner
        .run(&strategy, |(body, claude, content_type)| {
            let format = if claude {
                ApiFormat::Claude
            } else {
                ApiFormat::OpenAi
            };
            let mut http = request(format, Some(&key), Body::from(body.clone()));
            if let Some(content_type) = content_type
                && let Ok(value) = content_type.parse()
            {
                http.headers_mut().insert("content-type", value);
            }
            let answer = runtime.block_on(send(&gateway, http));
            assert!(
                answer.status.as_u16() < 500,
                "{} for {}",
                answer.status,
                String::from_utf8_lossy(&body)
            );
            if answer.status != StatusCode::OK {
                let json = answer.json();
                match format {
                    ApiFormat::OpenAi => assert!(json["error"]["message"].is_string(), "{json}"),
                    ApiFormat::Claude => assert_eq!(json["type"], "error", "{json}"),
                }
            }
            Ok(())
        })
        .unwrap();
    // Hostile traffic did not stop the ledger.
    runtime.block_on(async {
        assert_canary_recorded(&gateway, &db.conn, ApiFormat::OpenAi, "routed").await;
        drop(mock);
    });
}

#[test]
fn hostile_headers_never_get_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_db, gateway) = runtime.block_on(async {
        let db = TestDb::sqlite().await;
        let gateway = gateway(&db.conn);
        (db, gateway)
    });
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..80),
        prop_oneof![
            Just("authorization"),
            Just("x-api-key"),
            Just("anthropic-version"),
            Just("content-type"),
            Just("content-length"),
        ],
        any::<bool>(),
    );
    runner
        .run(&strategy, |(value, name, claude)| {
            let path = if claude {
                "/v1/messages"
            } else {
                "/v1/chat/completions"
            };
            let Ok(value) = axum::http::HeaderValue::from_bytes(&value) else {
                return Ok(());
            };
            let http = Request::post(path)
                .header(name, value)
                .body(Body::from(r#"{"model":"x"}"#))
                .unwrap();
            let answer = runtime.block_on(send(&gateway, http));
            assert!(answer.status.as_u16() < 500, "{} for {name}", answer.status);
            Ok(())
        })
        .unwrap();
}
