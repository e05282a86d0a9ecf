//! Config reload in the `tonic-msgpack-gateway` binary, started as a process: SIGHUP with a
//! changed endpoint list and a changed limit while a bidi stream is open. The stream survives
//! on its connection, new calls follow the new config, an unchanged upstream keeps its pool,
//! and a broken config is refused with a log line naming the key while the old one serves on.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::Ordering;

use support::grpc::*;
use support::process::{Process, binary, send_signal};
use tonic::Request;
use tonic::metadata::MetadataValue;

/// The gateway binary started on a config file, with its stderr lines.
struct Gateway {
    _process: Process,
    pid: u32,
    addr: String,
    admin: std::net::SocketAddr,
    logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Gateway {
    async fn start(config: &std::path::Path, args: &[&str]) -> Gateway {
        let mut child = binary()
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the gateway binary");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let pid = child.id();
        let process = Process(child);
        let (first, first_lines) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let (mut listening, mut admin) = (String::new(), String::new());
            let _ = reader.read_line(&mut listening);
            let _ = reader.read_line(&mut admin);
            let _ = first.send((listening, admin));
            // Keep reading: a closed pipe would make the binary's next print fail.
            let mut rest = String::new();
            while reader.read_line(&mut rest).is_ok_and(|read| read > 0) {
                rest.clear();
            }
        });
        let (log, logs) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if log.send(line).is_err() {
                    break;
                }
            }
        });
        let (listening, admin) = tokio::time::timeout(LIMIT, first_lines)
            .await
            .expect("the binary starts in time")
            .expect("the address lines");
        let addr = listening
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {listening:?}"))
            .to_owned();
        let admin = admin
            .trim()
            .strip_prefix("admin on ")
            .unwrap_or_else(|| panic!("unexpected second line: {admin:?}"))
            .parse()
            .expect("admin address");
        Gateway {
            _process: process,
            pid,
            addr,
            admin,
            logs,
        }
    }
}

/// Waits (bounded) for a stderr line containing `needle`; returns it.
async fn log_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
) -> String {
    tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.recv().await {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("stderr ended before a line with {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no log line with {needle:?} in time"))
}

/// A unary call to `test.Alpha` carrying `padding` bytes of metadata.
async fn alpha(
    channel: &tonic::transport::Channel,
    padding: usize,
) -> Result<String, tonic::Status> {
    let mut request = Request::new("hi".to_owned());
    let value: MetadataValue<_> = "x".repeat(padding).parse().expect("metadata");
    request.metadata_mut().insert("x-padding", value);
    unary(channel, "/test.Alpha/Unary", request)
        .await
        .map(|response| response.into_inner())
}

fn config(alpha: &str, beta: &str, extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}\n\
         [upstreams.\"test.Alpha\"]\nendpoints = [\"{alpha}\"]\n\
         [upstreams.\"test.Beta\"]\nendpoints = [\"{beta}\"]\n"
    )
}

#[tokio::test]
async fn sighup_reloads_without_dropping_streams_and_refuses_a_broken_config() {
    // The bidi stream lives on `stream_host` (test.Beta, never changed); test.Alpha moves from
    // `old_host` to `new_host`.
    let stream_host = Upstream::start().await;
    let mut old_host = Upstream::start().await;
    let new_host = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&old_host.uri(), &stream_host.uri(), "")).expect("write");

    let mut gateway = Gateway::start(&path, &[]).await;
    let (pid, addr) = (gateway.pid, gateway.addr.clone());
    let logs = &mut gateway.logs;
    // One client connection for everything below: a reload must not close it.
    let channel = channel(&format!("http://{addr}")).await;

    let (requests, mut responses) = bidi(&channel, "/test.Beta/Bidi").await;
    let mut exchange = async |text: &str| {
        requests.send(text.to_owned()).await.expect("send");
        tokio::time::timeout(LIMIT, responses.message())
            .await
            .expect("in time")
            .expect("a message, not an error")
            .expect("not the end")
    };
    assert_eq!(exchange("one").await, "test.Beta:ONE");
    assert_eq!(
        alpha(&channel, 8 * 1024)
            .await
            .expect("8 KiB of metadata is under the default limit"),
        "test.Alpha:hi"
    );
    let stream_host_connections = stream_host.accepted.load(Ordering::SeqCst);
    assert_eq!(new_host.accepted.load(Ordering::SeqCst), 0);

    // Reload: test.Alpha moves to `new_host`, and the header limit drops to 4 KiB.
    std::fs::write(
        &path,
        config(
            &new_host.uri(),
            &stream_host.uri(),
            "[limits]\nmax_header_list_bytes = 4096\n",
        ),
    )
    .expect("write");
    send_signal(pid, "HUP");
    let reloaded = log_line(logs, "reloaded").await;
    assert!(
        reloaded.contains("test.Beta") && reloaded.contains("test.Alpha"),
        "the log names what was kept and what was connected: {reloaded}"
    );

    assert_eq!(
        exchange("two").await,
        "test.Beta:TWO",
        "the stream survives"
    );
    // `old_host` gone: test.Alpha's calls go to `new_host` only.
    old_host.kill();
    assert_eq!(
        alpha(&channel, 16)
            .await
            .expect("test.Alpha on its new endpoint"),
        "test.Alpha:hi"
    );
    assert!(new_host.accepted.load(Ordering::SeqCst) > 0);
    let refused = alpha(&channel, 8 * 1024)
        .await
        .expect_err("over the new limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(
        stream_host.accepted.load(Ordering::SeqCst),
        stream_host_connections,
        "the unchanged upstream kept its pool: no new connection"
    );

    // A broken config: refused, the log names the key, the running config stays.
    std::fs::write(
        &path,
        config(
            "localhost:1",
            &stream_host.uri(),
            "[limits]\nmax_header_list_bytes = 4096\n",
        ),
    )
    .expect("write");
    send_signal(pid, "HUP");
    let refusal = log_line(logs, "reload refused").await;
    assert!(
        refusal.contains("upstreams.\"test.Alpha\".endpoints[0]"),
        "the log line names the key: {refusal}"
    );
    assert_eq!(
        alpha(&channel, 16).await.expect("the old config serves on"),
        "test.Alpha:hi"
    );
    assert_eq!(exchange("three").await, "test.Beta:THREE");

    drop(requests);
    let end = tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("in time");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
}

#[tokio::test]
async fn watch_reloads_when_the_file_changes() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&upstream.uri(), &upstream.uri(), "")).expect("write");
    let mut gateway = Gateway::start(&path, &["--watch"]).await;
    let (_, routes) = http_get(gateway.admin, "/routes").await;
    assert!(!routes.contains("test.Gamma"), "{routes}");

    // No signal: the file's change is enough (checked every 2 s).
    let gamma = format!(
        "[upstreams.\"test.Gamma\"]\nendpoints = [\"{}\"]\n",
        upstream.uri()
    );
    std::fs::write(&path, config(&upstream.uri(), &upstream.uri(), "") + &gamma).expect("write");
    log_line(&mut gateway.logs, "the file changed: reloading").await;
    let reloaded = log_line(&mut gateway.logs, "reloaded").await;
    assert!(reloaded.contains("test.Gamma"), "{reloaded}");
    // The admin endpoints follow the new state too.
    let (status, routes) = http_get(gateway.admin, "/routes").await;
    assert_eq!(status, 200);
    assert!(routes.contains("/test.Gamma/"), "{routes}");
    let channel = channel(&format!("http://{}", gateway.addr)).await;
    assert_eq!(
        alpha(&channel, 16).await.expect("still serving"),
        "test.Alpha:hi"
    );
}

/// A TCP forwarder to `target` that counts its open connections.
async fn counting_proxy(
    target: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

/// Waits (bounded) until `open` is `want`.
async fn open_becomes(open: &std::sync::atomic::AtomicUsize, want: usize, what: &str) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while open.load(Ordering::SeqCst) != want {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what}: {} open connections, want {want}",
        open.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_replaced_pool_serves_its_open_stream_then_closes() {
    let old_host = Upstream::start().await;
    let new_host = Upstream::start().await;
    let (proxy, open) = counting_proxy(old_host.addr).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    let through_proxy = format!("http://{proxy}");
    std::fs::write(&path, config(&through_proxy, &new_host.uri(), "")).expect("write");
    let mut gateway = Gateway::start(&path, &[]).await;
    open_becomes(&open, 1, "the pool connects at start").await;

    let channel = channel(&format!("http://{}", gateway.addr)).await;
    let (requests, mut responses) = bidi(&channel, "/test.Alpha/Bidi").await;
    let mut exchange = async |text: &str| {
        requests.send(text.to_owned()).await.expect("send");
        tokio::time::timeout(LIMIT, responses.message())
            .await
            .expect("in time")
            .expect("a message, not an error")
            .expect("not the end")
    };
    assert_eq!(exchange("one").await, "test.Alpha:ONE");

    // test.Alpha moves away from the proxied host while its stream is open.
    std::fs::write(&path, config(&new_host.uri(), &new_host.uri(), "")).expect("write");
    send_signal(gateway.pid, "HUP");
    log_line(&mut gateway.logs, "reloaded").await;
    assert_eq!(
        alpha(&channel, 16).await.expect("new calls"),
        "test.Alpha:hi"
    );
    assert_eq!(
        exchange("two").await,
        "test.Alpha:TWO",
        "the open stream goes on"
    );
    assert_eq!(
        open.load(Ordering::SeqCst),
        1,
        "the old pool stays while its stream is open"
    );

    drop(requests);
    let end = tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("in time");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
    open_becomes(&open, 0, "the old pool closes after its last call").await;
}

#[test]
fn check_config_validates_a_file_and_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    let check = |path: &std::path::Path| {
        binary()
            .arg("--check-config")
            .arg(path)
            .output()
            .expect("run the binary")
    };
    std::fs::write(
        &path,
        config("http://127.0.0.1:1", "dns://beta.example:50051", ""),
    )
    .expect("write");
    let output = check(&path);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok\n"));

    std::fs::write(&path, config("http://127.0.0.1:1", "localhost:1", "")).expect("write");
    let output = check(&path);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("upstreams.\"test.Beta\".endpoints[0]"),
        "{stderr}"
    );
}

#[tokio::test]
async fn reloads_under_load_fail_no_call() {
    let first = Upstream::start().await;
    let second = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&first.uri(), &first.uri(), "")).expect("write");
    let mut gateway = Gateway::start(&path, &[]).await;
    let channel = channel(&format!("http://{}", gateway.addr)).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (channel, stop) = (channel.clone(), stop.clone());
        callers.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match alpha(&channel, 16).await {
                    Ok(_) => ok += 1,
                    Err(status) => failed.push(status),
                }
            }
            (ok, failed)
        });
    }
    // Ten reloads, test.Alpha moving between the two hosts each time.
    for round in 0..10 {
        let host = if round % 2 == 0 { &second } else { &first };
        std::fs::write(&path, config(&host.uri(), &first.uri(), "")).expect("write");
        send_signal(gateway.pid, "HUP");
        log_line(&mut gateway.logs, "reloaded").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (mut calls, mut failures) = (0, Vec::new());
    while let Some(caller) = callers.join_next().await {
        let (ok, failed) = caller.expect("caller");
        calls += ok;
        failures.extend(failed);
    }
    eprintln!("{calls} calls across 10 reloads, {} failed", failures.len());
    assert!(calls >= 20, "only {calls} calls went through");
    assert!(
        failures.is_empty(),
        "{} of {} calls failed across reloads: {:?}",
        failures.len(),
        calls as usize + failures.len(),
        failures.first()
    );
    assert!(
        second.accepted.load(Ordering::SeqCst) > 0,
        "calls followed the reloads"
    );
}
