//! The stand-alone `tonic-msgpack-gateway` binary, started as a process from a config file
//! alone: all four call kinds pass through it by upstream name, and `--check` names a bad key.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::grpc::*;
use tonic::Request;

/// Kills the gateway process when the test ends, whatever happens.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tonic-msgpack-gateway"))
}

#[tokio::test]
async fn four_call_kinds_through_the_binary() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{}",
            two_services(&upstream.uri(), "")
        ),
    )
    .expect("write config");
    let mut child = binary()
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let stdout = child.stdout.take().expect("stdout");
    let _process = Process(child);
    // The first line names the bound address; a blocking read on its own thread, bounded.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading: a closed pipe would make the binary's next print fail.
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
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let channel = channel(&format!("http://{addr}")).await;

    let response = unary(&channel, "/test.Alpha/Unary", Request::new("hi".into()))
        .await
        .expect("unary");
    assert_eq!(response.get_ref(), "test.Alpha:hi");
    let messages = server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("server streaming");
    assert_eq!(messages.len(), 5);

    let response = client_streaming(&channel, "/test.Alpha/ClientStream", &["a", "b"])
        .await
        .expect("client streaming");
    assert_eq!(response.get_ref(), "test.Alpha:a,b");

    let (tx, mut responses) = bidi(&channel, "/test.Beta/Bidi").await;
    tx.send("one".to_owned()).await.expect("send");
    let answer = tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("in time")
        .expect("message")
        .expect("not the end");
    assert_eq!(answer, "test.Beta:ONE");

    // A path no upstream is named after is not forwarded.
    let unknown = unary(&channel, "/test.Gamma/Unary", Request::new("x".into()))
        .await
        .expect_err("no such upstream");
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);
}

#[test]
fn check_names_the_bad_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[upstreams.a]\nendpoints = [\"localhost:1\"]\n").expect("write");
    let output = binary()
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upstreams.a.endpoints[0]"), "{stderr}");

    std::fs::write(
        &config,
        "[upstreams.a]\nendpoints = [\"http://127.0.0.1:1\"]\n",
    )
    .expect("write");
    let output = binary()
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .expect("run the binary");
    assert!(output.status.success(), "{output:?}");
}
