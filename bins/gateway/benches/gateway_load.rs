//! Load benchmark of the built gateway binary against the mock upstream: added latency
//! (gateway minus direct-to-mock, interleaved sequential rounds), throughput at 50
//! concurrent connections, and the gateway's resident memory. The mock runs in a process
//! of its own (this binary re-executed with `--serve-mock`), like a real provider: sharing
//! the load generator's runtime would make the direct baseline unrealistically cheap.
//!
//! `cargo bench -p tollgate-gateway --bench gateway_load` (add `-- --quick` for a short run;
//! set `TOLLGATE_BENCH_GATEWAY` to the path of another gateway build to measure that one).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_server::mock::MockUpstream;

const BODY: &str =
    r#"{"model":"bench-model","max_tokens":16,"messages":[{"role":"user","content":"Say hello"}]}"#;
const CLIENT_KEY: &str = "tg-bench-client-key";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short sample"
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[expect(
    clippy::expect_used,
    reason = "a benchmark harness aborts on set-up failure"
)]
fn main() {
    if std::env::args().any(|a| a == "--serve-mock") {
        serve_mock();
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, load_secs) = if quick { (1_000, 3) } else { (10_000, 10) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(rounds, Duration::from_secs(load_secs)));
}

/// The mock upstream as a process: prints its port, then serves until killed.
#[expect(
    clippy::expect_used,
    reason = "a benchmark harness aborts on set-up failure"
)]
fn serve_mock() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mock = MockUpstream::start().await.expect("mock");
        mock.set(|b| b.record = false);
        println!("{}", mock.addr().port());
        std::future::pending::<()>().await;
    });
}

/// Starts the mock process; returns it and its port.
#[expect(
    clippy::expect_used,
    reason = "a benchmark harness aborts on set-up failure"
)]
fn start_mock_process() -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--serve-mock")
        .stdout(Stdio::piped())
        .spawn()
        .expect("mock process starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("mock port");
    (child, line.trim().parse().expect("a port number"))
}

#[expect(
    clippy::expect_used,
    reason = "a benchmark harness aborts on set-up failure"
)]
async fn run(rounds: usize, load_for: Duration) {
    tollgate_server::install_crypto_provider();
    let (mut mock, mock_port) = start_mock_process();
    let mock_base = format!("http://127.0.0.1:{mock_port}/v1");
    let dir = std::env::temp_dir().join(format!("tollgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let catalogue = serde_json::json!({
        "global_models": [{"name": "bench-model", "default_tiered_pricing": {"tiers": [
            {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 2.0}]}}],
        "providers": [{"name": "mock", "endpoints": [{"api_format": "OPENAI",
            "base_url": mock_base, "keys": [{"name": "k", "api_key": "sk-bench"}]}],
            "models": [{"global_model": "bench-model", "provider_model_name": "bench-upstream"}]}],
        "users": [{"username": "bench", "api_keys": [{"name": "k", "key": CLIENT_KEY}]}],
    });
    let catalogue_path = dir.join("catalog.json");
    std::fs::write(&catalogue_path, catalogue.to_string()).expect("catalogue file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let database = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    // `TOLLGATE_BENCH_GATEWAY=PATH` measures another build of the gateway, e.g. one built
    // with `--no-default-features` (glibc's malloc) for the allocator comparison.
    let binary = std::env::var_os("TOLLGATE_BENCH_GATEWAY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tollgate-gateway").into());
    let mut gateway = Command::new(binary)
        .arg("--catalog")
        .arg(&catalogue_path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &database)
        .env("TOLLGATE_ADMIN_KEY", "tg-bench-admin")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("gateway binary starts");
    let pid = gateway.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let started = Instant::now();
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let through_gateway = format!("{base}/v1/chat/completions");
    let direct = format!("{mock_base}/chat/completions");
    let send = |url: &str, key: &str| {
        http.post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(BODY)
            .send()
    };

    // Warm-up: connections, caches, allocator.
    for _ in 0..500 {
        let _ = send(&through_gateway, CLIENT_KEY)
            .await
            .expect("gateway")
            .bytes()
            .await;
        let _ = send(&direct, "sk-bench").await.expect("mock").bytes().await;
    }

    // Interleaved sequential rounds.
    let mut via = Vec::with_capacity(rounds);
    let mut straight = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let response = send(&through_gateway, CLIENT_KEY).await.expect("gateway");
        assert!(
            response.status().is_success(),
            "gateway answered {}",
            response.status()
        );
        let _ = response.bytes().await;
        via.push(t.elapsed());
        let t = Instant::now();
        let _ = send(&direct, "sk-bench").await.expect("mock").bytes().await;
        straight.push(t.elapsed());
    }
    let mut added: Vec<Duration> = via
        .iter()
        .zip(&straight)
        .map(|(g, d)| g.saturating_sub(*d))
        .collect();
    added.sort_unstable();
    via.sort_unstable();
    straight.sort_unstable();
    let (g50, g99) = (percentile(&via, 0.5), percentile(&via, 0.99));
    let (d50, d99) = (percentile(&straight, 0.5), percentile(&straight, 0.99));

    // Throughput: 50 concurrent connections, each sending back to back.
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + load_for;
    let load_started = Instant::now();
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let http = reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("client");
            let url = through_gateway.clone();
            let done = done.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let ok = match http
                        .post(&url)
                        .bearer_auth(CLIENT_KEY)
                        .header("content-type", "application/json")
                        .body(BODY)
                        .send()
                        .await
                    {
                        Ok(response) => {
                            let ok = response.status().is_success();
                            ok && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = load_started.elapsed();
    let completed = done.load(Ordering::Relaxed);
    #[expect(clippy::cast_precision_loss, reason = "request counts are small")]
    let throughput = completed as f64 / elapsed.as_secs_f64();
    let rss = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let writer_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("usage_writer_") || l.starts_with("gateway_overhead_seconds_"))
        .collect();

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = gateway.wait();
    let _ = mock.kill();
    let _ = mock.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "gateway load benchmark ({rounds} interleaved rounds, {}s at 50 connections)",
        load_for.as_secs()
    );
    println!("| measure | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| direct to mock | {:.0} µs | {:.0} µs |",
        micros(d50),
        micros(d99)
    );
    println!(
        "| through gateway | {:.0} µs | {:.0} µs |",
        micros(g50),
        micros(g99)
    );
    println!(
        "| added by gateway | {:.0} µs | {:.0} µs |",
        micros(g50) - micros(d50),
        micros(g99) - micros(d99)
    );
    println!(
        "| per-round difference (gateway − direct of the same round) | {:.0} µs | {:.0} µs |",
        micros(percentile(&added, 0.5)),
        micros(percentile(&added, 0.99))
    );
    println!(
        "throughput: {throughput:.0} req/s ({completed} ok, {} failed in {:.1} s)",
        failed.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
    println!(
        "gateway RSS after the load: {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    for line in writer_lines {
        println!("{line}");
    }
}
