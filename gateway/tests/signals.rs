//! The `tonic-msgpack-gateway` binary on SIGTERM: it stops accepting, lets an open bidi stream
//! finish normally, and exits within its grace period, exactly as on Ctrl-C.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::grpc::*;

/// Kills the gateway process when the test ends, whatever happens.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`TERM`, `HUP`) to `pid` with kill(1).
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits (bounded) for the process to exit.
async fn exited_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_drains_an_open_stream_and_exits_within_the_grace_period() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ngrace_period = \"5s\"\n{}",
            two_services(&upstream.uri(), "")
        ),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack-gateway"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let mut process = Process(child);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|read| read > 0) {
            rest.clear();
        }
    });
    let line = tokio::time::timeout(LIMIT, rx)
        .await
        .expect("the binary starts in time")
        .expect("a line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
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
    assert_eq!(exchange("before").await, "test.Beta:BEFORE");

    let signalled = Instant::now();
    send_signal(pid, "TERM");
    // Give the signal time to arrive: the stream must still carry messages while draining.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(exchange("during").await, "test.Beta:DURING");
    assert!(
        process.0.try_wait().expect("try_wait").is_none(),
        "the gateway waits for the open stream"
    );
    // New connections are no longer accepted.
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect(),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a new connection after SIGTERM is refused"
    );

    // The client ends its side: the stream ends with OK, then the gateway exits.
    drop(requests);
    let end = tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("in time");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
    let status = exited_within(&mut process.0, Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exited within the 5 s grace period"
    );
}
