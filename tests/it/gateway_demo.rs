//! The README's run command: `tollgate-gateway --demo` from an empty directory prints
//! `curl` commands, and each of them succeeds against the running binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::gateway_support::{KillOnDrop, gateway_binary, gateway_in};

#[test]
fn demo_banner_commands_work() {
    let dir = std::env::temp_dir().join(format!("tollgate-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = KillOnDrop(
        gateway_in(&dir, "127.0.0.1:0")
            .arg("--demo")
            .env_remove("DATABASE_URL")
            .env_remove("TOLLGATE_ADMIN_KEY")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut commands = Vec::new();
    let mut banner = String::new();
    while commands.len() < 7 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no complete demo banner; got:\n{banner}"));
        banner.push_str(&line);
        banner.push('\n');
        if let Some(command) = line.trim_start().strip_prefix("curl ") {
            commands.push(format!("curl --fail --max-time 10 {command}"));
        }
    }
    assert!(
        dir.join("tollgate.db").exists(),
        "the embedded default is a SQLite file in the working directory"
    );
    let expectations = [
        "Hello from the tollgate mock upstream.",
        "data: [DONE]",
        "\"type\":\"message\"",
        "\"object\":\"list\"",
        "\"usable\":true",
        "\"all_time\"",
        "gateway_requests_total",
    ];
    assert_eq!(commands.len(), expectations.len());
    for (command, expected) in commands.iter().zip(expectations) {
        let output = Command::new("sh").arg("-c").arg(command).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "`{command}` failed: {text}");
        assert!(text.contains(expected), "`{command}` printed:\n{text}");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configuration_exits_with_one_line_naming_the_option() {
    let binary = gateway_binary();
    let unreachable = format!(
        "postgres://postgres@127.0.0.1:{}/x?sslmode=disable",
        crate::gateway_support::closed_port()
    );
    let cases: [(&[&str], &str, i32); 4] = [
        (&["--timezone", "Mars/Olympus"], "TOLLGATE_TIMEZONE", 2),
        (&["--database-url", "mysql://u:pw@h/db"], "DATABASE_URL", 2),
        (&["--redis-url", "redis://"], "REDIS_URL", 2),
        (&["--database-url", unreachable.as_str()], "DATABASE_URL", 1),
    ];
    for (args, option, code) in cases {
        let output = Command::new(&binary)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got:\n{stderr}"
        );
        assert!(stderr.contains(option), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains(":pw@"),
            "{args:?}: {stderr}"
        );
    }
}
