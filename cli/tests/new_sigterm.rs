//! The `main` of a crate made by `tonic-msgpack new`, built and started as a process: on
//! SIGTERM its gateway stops accepting, a call already open through it still completes, and
//! the process exits within the gateway's grace period, as on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// The test decodes replies without their types (the generated crate is built, not linked).
use tonic_msgpack::codegen::serde::de::IgnoredAny;

/// Every wait on the process or the network is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// Kills the process when the test ends, whatever happens.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn the_new_main_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crate_dir = dir.path().join("sigterm-service");
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["new", "sigterm-service", "--path"])
        .arg(&crate_dir)
        .output()
        .expect("run tonic-msgpack new");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Free ports instead of the scaffolded fixed ones (tests run in parallel).
    let service_addr = format!("127.0.0.1:{}", free_port());
    let config = crate_dir.join("gateway.toml");
    let text = std::fs::read_to_string(&config).expect("read gateway.toml");
    let text = text
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0")
        .replace("127.0.0.1:50061", &service_addr);
    std::fs::write(&config, format!("grace_period = \"5s\"\n{text}")).expect("write");

    // The same target directory as the `new` test: dependencies are built once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-crate-target");
    let output = Command::new(env!("CARGO"))
        .arg("build")
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        // The generated crate has no profile of its own: keep its build as small as ours.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo build in the new crate");
    assert!(
        output.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut child = Command::new(target.join("debug").join("sigterm-service"))
        .arg(&config)
        .arg(&service_addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the new crate's binary");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let mut process = Process(child);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut tx = Some(tx);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
            if let Some(addr) = line.trim().strip_prefix("gateway listening on ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
            line.clear();
        }
    });
    let gateway = tokio::time::timeout(LIMIT, rx)
        .await
        .expect("the binary starts in time")
        .expect("the gateway's address");

    // `Repeat` through the gateway, its request message held back: the call is open (headers
    // sent, the service waiting for the message) when SIGTERM arrives.
    let channel = tokio::time::timeout(
        LIMIT,
        tonic::transport::Endpoint::from_shared(format!("http://{gateway}"))
            .expect("uri")
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let (requests, held) = tokio::sync::mpsc::channel::<(String, u32)>(1);
    let call = tokio::spawn(async move {
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.expect("ready");
        let path = "/sigterm_service.v1.SigtermService/Repeat"
            .parse()
            .expect("path");
        let codec = tonic_msgpack::MsgPackCodec::<(String, u32), IgnoredAny>::default();
        let request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(held));
        let mut replies = client.streaming(request, path, codec).await?.into_inner();
        let mut count = 0;
        while replies.message().await?.is_some() {
            count += 1;
        }
        Ok::<_, tonic::Status>(count)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        process.0.try_wait().expect("try_wait").is_none(),
        "the process waits for the open call"
    );
    requests
        .send(("hi".to_owned(), 3))
        .await
        .expect("send the held message");
    drop(requests);
    let replies = tokio::time::timeout(LIMIT, call)
        .await
        .expect("the call ends in time")
        .expect("call task");
    match replies {
        Ok(count) => assert_eq!(count, 3, "every reply of the open call arrives"),
        Err(status) => panic!("the open call failed: {status:?}"),
    }

    let status = loop {
        if let Some(status) = process.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "exited within the 5 s grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
}
