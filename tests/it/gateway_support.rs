//! Shared helpers of the gateway tests: catalogue rows pointing at mock upstreams, client
//! keys, in-process requests, and the built gateway binary.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tollgate_catalogue::hash_client_key;
use tollgate_entities::{
    ApiFormat, TieredPricing, api_keys, global_models, request_candidates, usage, users,
};
use tollgate_server::Gateway;
use tollgate_testkit::fixtures;
use tower::ServiceExt;

/// The upstream secret every test provider key uses; it must never reach a client or a log.
pub(crate) const UPSTREAM_SECRET: &str = "sk-upstream-secret-do-not-leak";

/// A client key and its rows.
pub(crate) struct Client {
    pub(crate) key: String,
    pub(crate) key_id: String,
    pub(crate) user_id: String,
}

/// Inserts an active user with an active client key.
pub(crate) async fn client(conn: &DatabaseConnection, username: &str) -> Client {
    let user = fixtures::insert(conn, fixtures::user(username)).await;
    client_key(conn, user, "tg-test").await
}

/// Inserts an active client key `{prefix}-…` for the stored `user`.
pub(crate) async fn client_key(
    conn: &DatabaseConnection,
    user: users::Model,
    prefix: &str,
) -> Client {
    let key = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let row = fixtures::insert(conn, fixtures::api_key(&user.id, &hash_client_key(&key))).await;
    Client {
        key,
        key_id: row.id,
        user_id: user.id,
    }
}

/// An active global model with the given default pricing.
pub(crate) async fn global_model(
    conn: &DatabaseConnection,
    name: &str,
    pricing: TieredPricing,
) -> global_models::Model {
    let mut model = fixtures::global_model(name);
    model.default_tiered_pricing = pricing;
    fixtures::insert(conn, model).await
}

/// A provider with one endpoint of `format` at `base_url`, one key and a model for `global`.
pub(crate) struct Route {
    pub(crate) provider_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) key_id: String,
}

/// Inserts a routed provider; `timeout` is the endpoint's, in seconds.
#[expect(
    clippy::too_many_arguments,
    reason = "a test fixture with every knob spelled out"
)]
pub(crate) async fn route(
    conn: &DatabaseConnection,
    provider: &str,
    priority: i32,
    format: ApiFormat,
    base_url: &str,
    timeout: i32,
    global: &global_models::Model,
    upstream_name: &str,
) -> Route {
    let provider = fixtures::insert(conn, fixtures::provider(provider, priority)).await;
    let mut endpoint = fixtures::endpoint(&provider.id, format, base_url);
    endpoint.timeout = timeout;
    let endpoint = fixtures::insert(conn, endpoint).await;
    let key = fixtures::insert(conn, fixtures::provider_key(&endpoint.id, UPSTREAM_SECRET)).await;
    fixtures::insert(
        conn,
        fixtures::model(&provider.id, &global.id, upstream_name),
    )
    .await;
    Route {
        provider_id: provider.id,
        endpoint_id: endpoint.id,
        key_id: key.id,
    }
}

/// [`route`] as most tests want it: an OpenAI endpoint on `mock`, priority 10, timeout 30 s.
pub(crate) async fn openai_route(
    conn: &DatabaseConnection,
    provider: &str,
    mock: &tollgate_server::mock::MockUpstream,
    global: &global_models::Model,
    upstream_name: &str,
) -> Route {
    let base_url = mock.openai_base_url();
    route(
        conn,
        provider,
        10,
        ApiFormat::OpenAi,
        &base_url,
        30,
        global,
        upstream_name,
    )
    .await
}

/// A gateway over `conn` with default settings and the process's Prometheus recorder.
pub(crate) fn gateway(conn: &DatabaseConnection) -> Gateway {
    let mut builder = Gateway::builder(conn.clone());
    if let Some(handle) = tollgate_server::prometheus() {
        builder = builder.metrics(handle);
    }
    builder.build().expect("gateway builds")
}

/// A response, read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing"))
    }
}

/// `POST path` with JSON `body` and the format's client-key header (`None`: no header).
pub(crate) fn request(
    format: ApiFormat,
    key: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let path = match format {
        ApiFormat::OpenAi => "/v1/chat/completions",
        ApiFormat::Claude => "/v1/messages",
    };
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(key) = key {
        builder = match format {
            ApiFormat::OpenAi => builder.header("authorization", format!("Bearer {key}")),
            ApiFormat::Claude => builder.header("x-api-key", key),
        };
    }
    builder.body(body.into()).unwrap()
}

/// Sends one request through the router in process and reads the whole answer.
pub(crate) async fn send(gateway: &Gateway, request: Request<Body>) -> Answer {
    let response = gateway.router().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// A chat body for `model`.
pub(crate) fn chat(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string()
}

/// The usage row of `request_id`.
pub(crate) async fn usage_of(conn: &DatabaseConnection, request_id: &str) -> usage::Model {
    usage::Entity::find()
        .filter(usage::Column::RequestId.eq(request_id))
        .one(conn)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no usage row for {request_id}"))
}

/// The candidate rows of `request_id`, by candidate index.
pub(crate) async fn candidates_of(
    conn: &DatabaseConnection,
    request_id: &str,
) -> Vec<request_candidates::Model> {
    request_candidates::Entity::find()
        .filter(request_candidates::Column::RequestId.eq(request_id))
        .order_by_asc(request_candidates::Column::CandidateIndex)
        .all(conn)
        .await
        .unwrap()
}

/// A client key's row and its owner's row.
pub(crate) async fn counters(
    conn: &DatabaseConnection,
    client: &Client,
) -> (api_keys::Model, users::Model) {
    let key = api_keys::Entity::find_by_id(client.key_id.clone())
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    let user = users::Entity::find_by_id(client.user_id.clone())
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    (key, user)
}

/// A localhost port nothing listens on (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Floats equal to 12 significant digits.
pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// The built `tollgate-gateway` binary, rebuilt first when it is stale (`cargo build` is a
/// no-op when it is fresh).
pub(crate) fn gateway_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> -> target/<profile>/tollgate-gateway
    let profile_dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        "tollgate-gateway",
        "--bin",
        "tollgate-gateway",
    ]);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "building tollgate-gateway failed");
    let binary = profile_dir.join("tollgate-gateway");
    assert!(
        binary.exists(),
        "{} not found after cargo build",
        binary.display()
    );
    binary
}

/// The gateway binary run in `dir` with its `listen` address, logging warnings only to a
/// discarded stderr, and neither Redis nor a listen address from the test's environment.
pub(crate) fn gateway_in(dir: &std::path::Path, listen: &str) -> std::process::Command {
    let mut command = std::process::Command::new(gateway_binary());
    command
        .args(["--listen", listen])
        .current_dir(dir)
        .env_remove("REDIS_URL")
        .env_remove("TOLLGATE_LISTEN")
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null());
    command
}

/// Polls `GET /health` until it answers or `wait` passes.
pub(crate) async fn wait_healthy(http: &reqwest::Client, base: &str, wait: Duration) {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Ok(response) = http.get(format!("{base}/health")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gateway at {base} did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A spawned process that is killed when dropped, so a failing test leaves nothing running.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls for the usage row of `request_id` for up to `wait`; `None` when none appeared.
pub(crate) async fn wait_for_usage(
    conn: &DatabaseConnection,
    request_id: &str,
    wait: Duration,
) -> Option<usage::Model> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let row = usage::Entity::find()
            .filter(usage::Column::RequestId.eq(request_id))
            .one(conn)
            .await
            .unwrap();
        if row.is_some() || std::time::Instant::now() >= deadline {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a canary's usage row may take: a few of the writer's batch intervals.
pub(crate) const CANARY_WAIT: Duration = Duration::from_secs(5);

/// The check that follows every fault case: a request from a fresh user for `model` (which
/// must be routed to a healthy upstream) answers 200 and its usage row is written within
/// [`CANARY_WAIT`], so the fault did not stop the ledger for anyone else.
pub(crate) async fn assert_canary_recorded(
    gateway: &Gateway,
    conn: &DatabaseConnection,
    format: ApiFormat,
    model: &str,
) -> usage::Model {
    let canary = client(conn, &format!("canary-{}", uuid::Uuid::new_v4().simple())).await;
    let answer = send(
        gateway,
        request(format, Some(&canary.key), chat(model, false)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "canary: {}", answer.text());
    let request_id = answer.header("x-request-id").to_owned();
    let row = wait_for_usage(conn, &request_id, CANARY_WAIT)
        .await
        .unwrap_or_else(|| panic!("canary {request_id}: no usage row within {CANARY_WAIT:?}"));
    assert_eq!(row.user_id.as_deref(), Some(canary.user_id.as_str()));
    row
}
