//! `example-app serve` and `example-app services` on SIGTERM: an open Chat stream keeps
//! working while the process drains, ends with OK, and the process exits within its grace
//! period, as on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use example_app::proto::HelloRequest;
use example_app::proto::greeter_client::GreeterClient;

/// Every await on the network is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// Kills the process when the test ends, whatever happens.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts example-app with `args` and returns it with the address on the first stdout line
/// that starts with `prefix`.
async fn start(args: &[&str], prefix: &'static str) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start example-app");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut tx = Some(tx);
        let mut line = String::new();
        // Keep reading to the end: a closed pipe would make the next print fail.
        while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
            line.clear();
        }
    });
    let addr = tokio::time::timeout(LIMIT, rx)
        .await
        .expect("example-app starts in time")
        .expect("the address line");
    (Process(child), addr)
}

fn hello(name: &str) -> HelloRequest {
    HelloRequest {
        name: name.to_owned(),
        count: 0,
    }
}

/// Opens Chat on `addr`, sends SIGTERM mid-stream, and checks the stream and the exit.
async fn chat_survives_sigterm(mut process: Process, addr: &str, grace: Duration) {
    let mut client = tokio::time::timeout(LIMIT, GreeterClient::connect(format!("http://{addr}")))
        .await
        .expect("connect in time")
        .expect("connect");
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = tokio::time::timeout(
        LIMIT,
        client.chat(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
    .await
    .expect("in time")
    .expect("chat")
    .into_inner();
    let mut exchange = async |name: &str| {
        requests.send(hello(name)).await.expect("send");
        tokio::time::timeout(LIMIT, replies.message())
            .await
            .expect("in time")
            .expect("a reply, not an error")
            .expect("not the end")
            .message
    };
    assert_eq!(exchange("Ada").await, "Hello, Ada!");

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(exchange("Grace").await, "Hello, Grace!");
    assert!(
        process.0.try_wait().expect("try_wait").is_none(),
        "the process waits for the open stream"
    );

    drop(requests);
    let end = tokio::time::timeout(LIMIT, replies.message())
        .await
        .expect("in time");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
    let status = loop {
        if let Some(status) = process.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < grace,
            "exited within the {grace:?} grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn serve_drains_on_sigterm() {
    let (process, addr) = start(
        &["serve", "--listen", "127.0.0.1:0"],
        "gateway listening on ",
    )
    .await;
    // `serve` gives the gateway a 5 s grace period.
    chat_survives_sigterm(process, &addr, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn services_drain_on_sigterm() {
    let (process, addr) = start(
        &[
            "services",
            "--listen",
            "127.0.0.1:0",
            "--only",
            "greeter",
            "--grace-seconds",
            "5",
        ],
        "services listening on ",
    )
    .await;
    chat_survives_sigterm(process, &addr, Duration::from_secs(5)).await;
}
