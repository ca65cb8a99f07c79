//! Health probes: status codes and bodies, dependency checks up and down, timeouts, caching.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sightline_sdk::Health;
use sightline_sdk::health::{Status, url_address};
use tower::ServiceExt;

async fn probe(health: &Health, path: &str) -> (StatusCode, Value) {
    let req = Request::get(path).body(Body::empty()).expect("request");
    let response = health.router().oneshot(req).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).expect("json body"))
}

#[tokio::test]
async fn live_answers_while_the_runtime_runs() {
    let health = Health::builder().build();
    let (status, body) = probe(&health, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["runtime"]["status"], "ok");
    assert!(body["checks"]["runtime"]["duration_ms"].is_number());
}

#[tokio::test]
async fn startup_flips_with_started() {
    let health = Health::builder().build();
    let (status, body) = probe(&health, "/health/startup").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["startup"]["error"], "start-up not complete");
    health.clone().started();
    let (status, body) = probe(&health, "/health/startup").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert!(body["checks"]["startup"].get("error").is_none());
}

#[tokio::test]
async fn ready_reflects_dependencies_up_and_down() {
    let up = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up_addr = up.local_addr().expect("addr").to_string();
    let down_addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let all_up = Health::builder()
        .tcp_check("redis", up_addr.clone())
        .url_check("postgres", &format!("postgres://u:p@{up_addr}/orders"))
        .check("custom", || async { Ok(()) })
        .build();
    let (status, body) = probe(&all_up, "/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    for name in ["redis", "postgres", "custom"] {
        assert_eq!(body["checks"][name]["status"], "ok");
        assert!(body["checks"][name].get("error").is_none());
        assert!(body["checks"][name]["duration_ms"].is_number());
    }

    let one_down = Health::builder()
        .tcp_check("redis", up_addr)
        .tcp_check("postgres", down_addr.clone())
        .check("custom", || async { Err("quota exhausted".to_owned()) })
        .build();
    let (status, body) = probe(&one_down, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
    assert_eq!(body["checks"]["postgres"]["status"], "fail");
    let error = body["checks"]["postgres"]["error"].as_str().expect("error");
    assert!(
        error.starts_with(&format!("connect {down_addr}")),
        "{error}"
    );
    assert_eq!(body["checks"]["custom"]["error"], "quota exhausted");
    drop(up);
}

#[tokio::test]
async fn ready_with_no_checks_is_ok() {
    let (status, body) = probe(&Health::builder().build(), "/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"status": "ok", "checks": {}}));
}

#[tokio::test]
async fn slow_checks_time_out() {
    let health = Health::builder()
        .timeout(Duration::from_millis(50))
        .check("slow", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
        .build();
    let start = std::time::Instant::now();
    let report = health.ready().await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(report.status, Status::Fail);
    assert_eq!(
        report.checks["slow"].error.as_deref(),
        Some("timed out after 50 ms")
    );
}

#[tokio::test]
async fn results_are_cached_and_a_probe_storm_runs_a_check_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let health = Health::builder()
        .cache_ttl(Duration::from_millis(300))
        .check("db", move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err("down".to_owned())
            }
        })
        .build();
    let storm = (0..50).map(|_| health.ready());
    let reports = futures::future::join_all(storm).await;
    assert!(reports.iter().all(|r| r.status == Status::Fail));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "concurrent probes share one run"
    );
    health.ready().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "fresh result reused");
    tokio::time::sleep(Duration::from_millis(350)).await;
    health.ready().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "expired result re-checked");
}

#[test]
fn url_addresses() {
    assert_eq!(url_address("redis://cache:6379/0"), "cache:6379");
    assert_eq!(url_address("redis://cache"), "cache:6379");
    assert_eq!(url_address("rediss://:pw@cache"), "cache:6380");
    assert_eq!(
        url_address("postgres://u:p@db/orders?sslmode=disable"),
        "db:5432"
    );
    assert_eq!(url_address("postgresql://db:6000"), "db:6000");
    assert_eq!(url_address("postgres://[::1]/x"), "[::1]:5432");
    assert_eq!(url_address("postgres://[::1]:7/x"), "[::1]:7");
    assert_eq!(url_address("db:5432"), "db:5432");
}

/// A one-shot server answering every connection with `reply` after reading a request.
async fn fake(reply: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply).await;
        }
    });
    addr
}

#[tokio::test]
async fn redis_and_postgres_checks_speak_their_protocols() {
    use sightline_sdk::health::{postgres_hello, redis_ping};
    assert_eq!(redis_ping(fake(b"+PONG\r\n").await).await, Ok(()));
    assert!(
        redis_ping(fake(b"HTTP/1.1 400 Bad Request\r\n").await)
            .await
            .is_err()
    );
    // AuthenticationCleartextPassword: up, whatever the password.
    let auth = b"R\0\0\0\x08\0\0\0\x03";
    assert_eq!(postgres_hello(fake(auth).await).await, Ok(()));
    // A failed login is still a server taking connections.
    let bad_login = b"E\0\0\0\x20SFATAL\0C28P01\0Mpassword failed\0\0";
    assert_eq!(postgres_hello(fake(bad_login).await).await, Ok(()));
    let starting = b"E\0\0\0\x2aSFATAL\0C57P03\0Mthe database system is starting up\0\0";
    let error = postgres_hello(fake(starting).await)
        .await
        .expect_err("starting");
    assert!(
        error.ends_with("rejects connections: the database system is starting up"),
        "{error}"
    );
    assert!(postgres_hello(fake(b"+PONG").await).await.is_err());
}

/// Against a real PostgreSQL when its server is installed (`.ci/run` installs it): a
/// cluster made by `initdb` in a temporary directory, started on a free loopback port (as
/// the `postgres` user when the test runs as root, since PostgreSQL refuses root) and
/// stopped by its PID. Ready is 200 while it runs and 503 once it is killed.
#[tokio::test]
async fn postgres_check_against_a_real_postgresql() {
    let Some(bin) = postgres_bin_dir() else {
        assert!(std::env::var("CI").is_err(), "CI must install postgresql");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sightline-sdk-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let as_root = run_output("id", &["-u"]).trim() == "0";
    if as_root {
        run_output(
            "chown",
            &["postgres:postgres", dir.to_str().expect("utf-8 path")],
        );
    }
    let data = dir.join("data");
    let data = data.to_str().expect("utf-8 path");
    let command = |program: &str| {
        let path = bin.join(program);
        let mut command = if as_root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
                .arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    let status = command("initdb")
        .args(["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    // setpriv execs, so the PID is the postmaster's own.
    let mut postmaster = command("postgres")
        .args(["-D", data, "-p", &port.to_string(), "-F"])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", &format!("unix_socket_directories={}", dir.display())])
        .spawn()
        .expect("start postgres");

    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let health = Health::builder()
        .postgres_check("postgres", &url)
        .cache_ttl(Duration::ZERO)
        .build();
    let mut ready = (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
    for _ in 0..200 {
        ready = probe(&health, "/health/ready").await;
        if ready.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A role that does not exist still proves the server takes connections.
    let unknown_role = sightline_sdk::health::postgres_hello(format!(
        "postgres://nobody:secret@127.0.0.1:{port}/nowhere"
    ))
    .await;
    let _ = postmaster.kill();
    let _ = postmaster.wait();
    assert_eq!(ready.0, StatusCode::OK, "{}", ready.1);
    assert_eq!(ready.1["checks"]["postgres"]["status"], "ok");
    assert_eq!(unknown_role, Ok(()));

    let (status, body) = probe(&health, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["checks"]["postgres"]["error"].as_str().expect("error");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The directory of PostgreSQL's server programs: on `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin_dir() -> Option<std::path::PathBuf> {
    if let Ok(path) = which("postgres") {
        let path = std::fs::canonicalize(path).ok()?;
        return path.parent().map(std::path::Path::to_path_buf);
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn run_output(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(output.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Against a real Redis when `redis-server` is installed (`.ci/run` installs it): started
/// here on a free loopback port and stopped by its PID.
#[tokio::test]
async fn redis_check_against_a_real_redis() {
    let Ok(path) = which("redis-server") else {
        assert!(std::env::var("CI").is_err(), "CI must install redis-server");
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut child = std::process::Command::new(path)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    let url = format!("redis://127.0.0.1:{port}/0");
    let mut result = Err(String::new());
    for _ in 0..100 {
        result = sightline_sdk::health::redis_ping(sightline_sdk::health::url_address(&url)).await;
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(result, Ok(()));
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
