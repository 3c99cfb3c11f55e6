//! Usage durability and cache faults: a PostgreSQL restart in the middle of a run, SIGTERM
//! during load on the built binary, and Redis stopped mid-run. Each fault uses a private
//! server (never the shared ones on 5432 and 6379).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait};
use tollgate_accounting::WriterConfig;
use tollgate_catalogue::Secret;
use tollgate_entities::{ApiFormat, TieredPricing, usage};
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_server::Gateway;
use tollgate_server::mock::MockUpstream;
use tollgate_testkit::{PrivateRedis, TestDb};
use tower::ServiceExt;

use crate::gateway_support::{
    UPSTREAM_SECRET, chat, client, closed_port, gateway_binary, global_model, openai_route,
    request, wait_healthy,
};

/// Sends `count` OpenAI requests for `model` through the router, `parallel` at a time;
/// returns the status and request id of each.
async fn burst(
    gateway: &Gateway,
    key: &str,
    model: &str,
    count: usize,
    parallel: usize,
) -> Vec<(StatusCode, String)> {
    futures_util::stream::iter(0..count)
        .map(|_| {
            let router = gateway.router();
            let request = request(ApiFormat::OpenAi, Some(key), chat(model, false));
            async move {
                let response = router.oneshot(request).await.unwrap();
                let id = response.headers()["x-request-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let status = response.status();
                let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
                (status, id)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

async fn stored_request_ids(conn: &DatabaseConnection) -> Vec<String> {
    usage::Entity::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.request_id)
        .collect()
}

/// A PostgreSQL server of the test's own, in a temporary directory, on a free port.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres_user: bool,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL server binaries are required in {} (install postgresql; scripts/test.sh does)",
            bin.display()
        );
        let dir =
            std::env::temp_dir().join(format!("tollgate-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // initdb refuses to run as root: run the server as the `postgres` account then.
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(
                status.success(),
                "cannot hand {} to the postgres user",
                dir.display()
            );
        }
        let server = Self {
            dir,
            port: closed_port(),
            bin,
            as_postgres_user,
        };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.start_server();
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `program` of the PostgreSQL installation, run as the `postgres` user when needed.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop_server(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_has_one_usage_row_across_a_postgres_restart() {
    let pg = PrivatePostgres::start();
    let conn = tollgate_server::connect_database(&Secret::new(pg.url()))
        .await
        .unwrap();
    Migrator::up(&conn, None).await.unwrap();
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| {
        b.record = false;
        b.latency = Duration::from_millis(2);
    });
    let global = global_model(&conn, "m", TieredPricing::fixed(1.0, 2.0)).await;
    openai_route(&conn, "p", &mock, &global, "m").await;
    let client = client(&conn, "alice").await;
    let gateway = Gateway::builder(conn.clone())
        .writer(WriterConfig {
            batch_size: 50,
            retry_max: Duration::from_millis(300),
            ..WriterConfig::default()
        })
        .build()
        .unwrap();

    // Before, during and after the outage: 400 + 300 + 300 = 1,000 requests.
    let mut answers = burst(&gateway, &client.key, "m", 400, 8).await;
    pg.stop_server();
    answers.extend(burst(&gateway, &client.key, "m", 300, 8).await);
    pg.start_server();
    answers.extend(burst(&gateway, &client.key, "m", 300, 8).await);

    assert_eq!(answers.len(), 1000);
    assert!(
        answers.iter().all(|(status, _)| *status == StatusCode::OK),
        "a request failed during the outage"
    );
    tokio::time::timeout(Duration::from_secs(60), gateway.flush_usage())
        .await
        .expect("usage flushed after the restart");
    assert_eq!(gateway.usage_stats().dropped, 0);
    let stored = stored_request_ids(&conn).await;
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "a request has two usage rows");
    let sent: HashSet<&String> = answers.iter().map(|(_, id)| id).collect();
    assert_eq!(sent.len(), 1000);
    assert_eq!(unique, sent, "every request has exactly one usage row");
    let (key, _) = crate::gateway_support::counters(&conn, &client).await;
    assert_eq!(key.total_requests, 1000, "counters are added once per row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_redis_mid_run_fails_no_request() {
    let mut redis = PrivateRedis::start();
    let db = TestDb::sqlite().await;
    let conn = &db.conn;
    let mock = MockUpstream::start().await.unwrap();
    mock.set(|b| b.record = false);
    let global = global_model(conn, "m", TieredPricing::fixed(1.0, 2.0)).await;
    openai_route(conn, "p", &mock, &global, "m").await;
    let alice = client(conn, "alice").await;
    let cache = tollgate_cache::Cache::tiered(tollgate_cache::Config::default(), &redis.url())
        .await
        .unwrap();
    let gateway = Gateway::builder(conn.clone()).cache(cache).build().unwrap();

    let mut answers = burst(&gateway, &alice.key, "m", 100, 8).await;
    redis.stop();
    // Keep the old names (L1 hits) and add new ones (misses that go to Redis, then the DB).
    answers.extend(burst(&gateway, &alice.key, "m", 100, 8).await);
    let other = global_model(conn, "n", TieredPricing::fixed(1.0, 2.0)).await;
    openai_route(conn, "q", &mock, &other, "n").await;
    let bob = client(conn, "bob").await;
    answers.extend(burst(&gateway, &bob.key, "n", 100, 8).await);
    answers.extend(
        burst(&gateway, &alice.key, "no-such-model", 20, 4)
            .await
            .into_iter()
            .map(|(status, id)| {
                assert_eq!(status, StatusCode::NOT_FOUND);
                (StatusCode::OK, id)
            }),
    );

    assert!(
        answers.iter().all(|(status, _)| *status == StatusCode::OK),
        "a request failed after Redis stopped"
    );
    gateway.flush_usage().await;
    assert_eq!(stored_request_ids(conn).await.len(), answers.len());
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_catalogue(path: &Path, failing: &str, working: &str, client_key: &str) {
    let key = |name: &str| serde_json::json!({"name": name, "api_key": UPSTREAM_SECRET});
    let catalogue = serde_json::json!({
        "global_models": [{"name": "m", "default_tiered_pricing": {"tiers": [
            {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 2.0}]}}],
        "providers": [
            {"name": "failing", "priority": 1, "endpoints": [{"api_format": "OPENAI", "base_url": failing,
                "keys": [key("a")]}], "models": [{"global_model": "m", "provider_model_name": "m-fail"}]},
            {"name": "working", "priority": 2, "endpoints": [{"api_format": "OPENAI", "base_url": working,
                "keys": [key("b")]}], "models": [{"global_model": "m", "provider_model_name": "m-ok"}]},
        ],
        "users": [{"username": "loadtest", "api_keys": [{"name": "k", "key": client_key}]}],
    });
    std::fs::write(path, catalogue.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_load_flushes_every_accepted_request() {
    let binary = tokio::task::spawn_blocking(gateway_binary).await.unwrap();
    let db = TestDb::postgres().await;
    let redis_url = tollgate_testkit::redis_url();
    let failing = MockUpstream::start().await.unwrap();
    failing.set(|b| {
        b.status = 500;
        b.record = false;
    });
    let working = MockUpstream::start().await.unwrap();
    working.set(|b| {
        b.latency = Duration::from_millis(20);
        b.record = false;
    });
    let dir = std::env::temp_dir().join(format!(
        "tollgate-sigterm-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let client_key = format!("tg-client-{}", uuid::Uuid::new_v4().simple());
    let admin_key = format!("tg-admin-{}", uuid::Uuid::new_v4().simple());
    let catalogue = dir.join("catalog.json");
    write_catalogue(
        &catalogue,
        &failing.openai_base_url(),
        &working.openai_base_url(),
        &client_key,
    );
    let port = closed_port();
    let log = dir.join("gateway.log");
    let mut child = Command::new(&binary)
        .arg("--catalog")
        .arg(&catalogue)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db.url())
        .env("REDIS_URL", &redis_url)
        .env("TOLLGATE_ADMIN_KEY", &admin_key)
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    tollgate_server::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&http, &base, Duration::from_secs(30)).await;

    let completed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let completed = completed.clone();
        let http = http.clone();
        let url = format!("{base}/v1/chat/completions");
        let client_key = client_key.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..600)
                .map(|_| {
                    let request = http
                        .post(&url)
                        .bearer_auth(&client_key)
                        .body(chat("m", false));
                    let completed = completed.clone();
                    async move {
                        let response = request.send().await.ok()?;
                        let id = response
                            .headers()
                            .get("x-request-id")?
                            .to_str()
                            .ok()?
                            .to_owned();
                        let ok = response.status() == StatusCode::OK;
                        let body = response.bytes().await.ok()?;
                        completed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        (ok && !body.is_empty()).then_some(id)
                    }
                })
                .buffer_unordered(24)
                .filter_map(|id| async move { id })
                .collect::<Vec<String>>()
                .await
        })
    };
    while completed.load(std::sync::atomic::Ordering::Relaxed) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    terminate(&child);
    let accepted = load.await.unwrap();
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "gateway exited with {status}");
    assert!(
        accepted.len() >= 150,
        "only {} requests answered",
        accepted.len()
    );

    let stored: HashSet<String> = stored_request_ids(&db.conn).await.into_iter().collect();
    let missing: Vec<&String> = accepted.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered requests have no usage row after SIGTERM",
        missing.len()
    );

    // Nothing secret in the logs, even at debug level with failing upstream attempts.
    let logs = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(dir.join("stdout.log")).unwrap();
    assert!(
        logs.contains("upstream attempt failed"),
        "the failing provider was never tried"
    );
    for secret in [UPSTREAM_SECRET, client_key.as_str(), admin_key.as_str()] {
        assert!(
            !logs.contains(secret),
            "a secret appears in the gateway's logs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
