//! The invalidation matrix through HTTP: two gateway replicas share the database and Redis
//! (each with its own in-process tier and bus subscription); every change goes through
//! replica A's admin API, and the next client request through replica B routes (or fails)
//! according to it. It runs with two gateway processes (the built binary, PostgreSQL) and
//! with two in-process replicas (SQLite and PostgreSQL). "Next" allows the bus's delivery
//! time (behaviour.md 2.4: a replica applies what it has received), bounded here at 100 ms.

use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use tollgate_cache::{Cache, Config};
use tollgate_server::Gateway;
use tollgate_server::mock::MockUpstream;
use tollgate_testkit::{Backend, TestDb};
use tower::ServiceExt;

use crate::admin_support::{admin, global_body};
use crate::gateway_support::{
    KillOnDrop, UPSTREAM_SECRET, chat, client, closed_port, gateway_binary, wait_healthy,
};

const BUS: Duration = Duration::from_millis(100);

/// A gateway replica: in this process, or a child process of the built binary.
enum Replica {
    Local(Gateway),
    Process {
        base: String,
        http: reqwest::Client,
        _child: KillOnDrop,
    },
}

/// Status, `x-tollgate-provider` and JSON body of an answer.
struct Reply {
    status: u16,
    provider: Option<String>,
    body: Value,
}

impl Replica {
    async fn local(db: &TestDb, namespace: &str) -> Self {
        let config = Config {
            namespace: namespace.to_owned(),
            ..Config::default()
        };
        let cache = Cache::tiered(config, &tollgate_testkit::redis_url())
            .await
            .expect("tiered cache");
        Self::Local(
            Gateway::builder(db.conn.clone())
                .cache(cache)
                .build()
                .expect("gateway"),
        )
    }

    async fn process(db: &TestDb, admin_key: &str) -> Self {
        let binary = tokio::task::spawn_blocking(gateway_binary).await.unwrap();
        let port = closed_port();
        let log = std::env::temp_dir().join(format!("tollgate-matrix-{port}.log"));
        let child = KillOnDrop(
            Command::new(binary)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("DATABASE_URL", db.url())
                .env("REDIS_URL", tollgate_testkit::redis_url())
                .env("TOLLGATE_ADMIN_KEY", admin_key)
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap(),
        );
        tollgate_server::install_crypto_provider();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&http, &base, Duration::from_secs(30)).await;
        Self::Process {
            base,
            http,
            _child: child,
        }
    }

    async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
        let (status, provider, bytes) = match self {
            Self::Local(gateway) => {
                let mut builder = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json");
                builder = builder.header("accept", "application/json");
                let request = builder
                    .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
                    .unwrap();
                let response = gateway.router().oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let provider = header(response.headers());
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, provider, bytes.to_vec())
            }
            Self::Process { base, http, .. } => {
                let mut request = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(key);
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let provider = header(response.headers());
                (status, provider, response.bytes().await.unwrap().to_vec())
            }
        };
        Reply {
            status,
            provider,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// An admin call that must succeed; returns the body.
    async fn admin(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let reply = self.call(method.clone(), path, key, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }
}

fn header(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-tollgate-provider")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The matrix: replica `a` changes, replica `b` must follow. Names carry `tag` so runs that
/// share Redis's default namespace never meet.
struct Matrix<'a> {
    a: &'a Replica,
    b: &'a Replica,
    admin_key: String,
    client_key: String,
    tag: String,
}

impl Matrix<'_> {
    fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.tag)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.a.admin(method, path, &self.admin_key, body).await
    }

    /// Asserts B reaches `expected` (status, provider) for `model` within the bus bound.
    async fn expect(&self, model: &str, expected: (u16, Option<&str>)) {
        let model = self.name(model);
        let deadline = Instant::now() + BUS;
        loop {
            let body = json!(serde_json::from_str::<Value>(&chat(&model, false)).unwrap());
            let got = self
                .b
                .call(
                    Method::POST,
                    "/v1/chat/completions",
                    &self.client_key,
                    Some(body),
                )
                .await;
            if got.status == expected.0 && got.provider.as_deref() == expected.1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{model}: replica B answered {} {:?}, expected {expected:?}",
                got.status,
                got.provider
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn provider(&self, name: &str, priority: i32, upstream: &MockUpstream) -> String {
        let provider = self
            .admin(
                Method::POST,
                "/api/admin/providers",
                Some(json!({"name": self.name(name), "provider_priority": priority})),
            )
            .await;
        let pid = provider["id"].as_str().unwrap().to_owned();
        let endpoint = self
            .admin(
                Method::POST,
                &format!("/api/admin/providers/{pid}/endpoints"),
                Some(json!({"api_format": "OPENAI", "base_url": upstream.openai_base_url()})),
            )
            .await;
        let eid = endpoint["id"].as_str().unwrap();
        self.admin(
            Method::POST,
            &format!("/api/admin/endpoints/{eid}/keys"),
            Some(json!({"name": "k", "api_key": UPSTREAM_SECRET})),
        )
        .await;
        pid
    }

    async fn model(&self, pid: &str, gid: &str, name: &str) -> String {
        let created = self
            .admin(
                Method::POST,
                &format!("/api/admin/providers/{pid}/models"),
                Some(json!({"global_model_id": gid, "provider_model_name": self.name(name)})),
            )
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn run(&self) {
        let up_one = MockUpstream::start().await.unwrap();
        let up_two = MockUpstream::start().await.unwrap();
        let (one_name, two_name) = (self.name("one"), self.name("two"));
        let (one_p, two_p) = (Some(one_name.as_str()), Some(two_name.as_str()));
        let one = self.provider("one", 10, &up_one).await;
        let two = self.provider("two", 20, &up_two).await;
        let patch = |path: String, body: Value| async move {
            self.admin(Method::PATCH, &path, Some(body)).await
        };

        // Global model created: B had cached `Missing` (404); now it resolves (no route yet:
        // 503), then routes once a model exists.
        self.expect("fresh", (404, None)).await;
        let global = self
            .admin(
                Method::POST,
                "/api/admin/models/global",
                Some(global_body(&self.name("fresh"))),
            )
            .await;
        let gid = global["id"].as_str().unwrap().to_owned();
        self.expect("fresh", (503, None)).await;

        // Model created.
        self.model(&two, &gid, "fresh-two").await;
        self.expect("fresh", (200, two_p)).await;
        self.expect("fresh-two", (200, two_p)).await;
        let m_one = self.model(&one, &gid, "fresh-one").await;
        self.expect("fresh", (200, one_p)).await;

        // Model updated: renamed, the old name is gone, the new one routes.
        patch(
            format!("/api/admin/providers/{one}/models/{m_one}"),
            json!({"provider_model_name": self.name("fresh-uno")}),
        )
        .await;
        self.expect("fresh-one", (404, None)).await;
        self.expect("fresh-uno", (200, one_p)).await;

        // Model deactivated, reactivated, deleted.
        patch(
            format!("/api/admin/providers/{one}/models/{m_one}"),
            json!({"is_active": false}),
        )
        .await;
        self.expect("fresh", (200, two_p)).await;
        self.expect("fresh-uno", (404, None)).await;
        patch(
            format!("/api/admin/providers/{one}/models/{m_one}"),
            json!({"is_active": true}),
        )
        .await;
        self.expect("fresh", (200, one_p)).await;
        self.admin(
            Method::DELETE,
            &format!("/api/admin/providers/{one}/models/{m_one}"),
            None,
        )
        .await;
        self.expect("fresh", (200, two_p)).await;
        self.model(&one, &gid, "fresh-one").await;
        self.expect("fresh", (200, one_p)).await;

        // Provider updated (priority), deactivated, reactivated, deleted.
        patch(
            format!("/api/admin/providers/{two}"),
            json!({"provider_priority": 1}),
        )
        .await;
        self.expect("fresh", (200, two_p)).await;
        patch(
            format!("/api/admin/providers/{two}"),
            json!({"is_active": false}),
        )
        .await;
        self.expect("fresh", (200, one_p)).await;
        self.expect("fresh-two", (404, None)).await;
        patch(
            format!("/api/admin/providers/{two}"),
            json!({"is_active": true}),
        )
        .await;
        self.expect("fresh", (200, two_p)).await;
        self.admin(Method::DELETE, &format!("/api/admin/providers/{two}"), None)
            .await;
        self.expect("fresh", (200, one_p)).await;
        self.expect("fresh-two", (404, None)).await;

        // Global model updated (renamed), deactivated, reactivated, deleted.
        patch(
            format!("/api/admin/models/global/{gid}"),
            json!({"name": self.name("renamed")}),
        )
        .await;
        self.expect("fresh", (404, None)).await;
        self.expect("renamed", (200, one_p)).await;
        patch(
            format!("/api/admin/models/global/{gid}"),
            json!({"is_active": false}),
        )
        .await;
        self.expect("renamed", (404, None)).await;
        self.expect("fresh-one", (404, None)).await;
        patch(
            format!("/api/admin/models/global/{gid}"),
            json!({"is_active": true}),
        )
        .await;
        self.expect("fresh-one", (200, one_p)).await;
        self.admin(
            Method::DELETE,
            &format!("/api/admin/models/global/{gid}"),
            None,
        )
        .await;
        self.expect("renamed", (404, None)).await;
        self.expect("fresh-one", (404, None)).await;
    }
}

async fn in_process(backend: Backend) {
    let db = TestDb::new(backend).await;
    let namespace = format!("tollgate:matrix:{}:", uuid::Uuid::new_v4().simple());
    let a = Replica::local(&db, &namespace).await;
    let b = Replica::local(&db, &namespace).await;
    let root = admin(&db.conn, "root").await;
    let user = client(&db.conn, "caller").await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    Matrix {
        a: &a,
        b: &b,
        admin_key: root.key,
        client_key: user.key,
        tag,
    }
    .run()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_matrix_two_in_process_replicas_sqlite() {
    in_process(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_matrix_two_in_process_replicas_postgres() {
    in_process(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_matrix_two_gateway_processes_postgres() {
    let db = TestDb::postgres().await;
    let admin_key = format!("tg-admin-{}", uuid::Uuid::new_v4().simple());
    let a = Replica::process(&db, &admin_key).await;
    let b = Replica::process(&db, &admin_key).await;
    let user = client(&db.conn, "caller").await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    Matrix {
        a: &a,
        b: &b,
        admin_key,
        client_key: user.key,
        tag,
    }
    .run()
    .await;
}
