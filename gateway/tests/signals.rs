//! The `tonic-msgpack-gateway` binary on SIGTERM: it stops accepting, lets an open bidi stream
//! finish normally, and exits within its grace period, exactly as on Ctrl-C.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::grpc::*;
use support::process::{binary, config_file, send_signal, serving};

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
    let toml = format!(
        "grace_period = \"5s\"\n{}",
        two_services(&upstream.uri(), "")
    );
    let child = binary()
        .arg("--config")
        .arg(config_file(dir.path(), &toml))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let pid = child.id();
    let (mut process, addr) = serving(child).await;
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
