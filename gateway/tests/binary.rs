//! The stand-alone `tonic-msgpack-gateway` binary, started as a process from a config file
//! alone: all four call kinds pass through it by upstream name, and `--check` names a bad key.

mod support;

use std::process::{Command, Stdio};

use support::grpc::*;
use support::process::{binary, config_file, serving};
use tonic::Request;

/// Both test services, an admin listener on `127.0.0.1:0`, then `extra`.
fn two_services_admin(upstream: &Upstream, extra: &str) -> String {
    format!(
        "admin_listen = \"127.0.0.1:0\"\n{}{extra}",
        two_services(&upstream.uri(), "")
    )
}

#[tokio::test]
async fn four_call_kinds_through_the_binary() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), &two_services_admin(&upstream, ""));
    let child = binary()
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let (_process, addr) = serving(child).await;
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

/// A process's open-files limits (soft, hard; `unlimited` as `u64::MAX`) and the size of its
/// descriptor table, from /proc.
#[cfg(target_os = "linux")]
fn descriptors_of(pid: u32) -> (u64, u64, u64) {
    let read =
        |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let limits = read("limits");
    let mut open_files = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|limit| limit.parse().unwrap_or(u64::MAX));
    let (soft, hard) = (
        open_files.next().unwrap_or(0),
        open_files.next().unwrap_or(0),
    );
    let table = read("status")
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or(0);
    (soft, hard, table)
}

/// Started under a soft open-files limit of 512 with `max_connections = 2000`, the binary
/// raises the limit to what those connections need and grows its descriptor table for them
/// before any client comes (growing it during a flood stalled every open connection's calls).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn room_for_max_connections_is_made_at_start() {
    let wanted = 2000 + 256;
    let (_, hard_limit, _) = descriptors_of(std::process::id());
    assert!(
        hard_limit > wanted,
        "a hard limit of {hard_limit} leaves no room to test"
    );
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let services = two_services_admin(&upstream, "[limits]\nmax_connections = 2000\n");
    let config = config_file(dir.path(), &services);
    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 512 && exec \"$0\" --config \"$1\"")
        .arg(binary().get_program())
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let pid = child.id();
    let (_process, addr) = serving(child).await;
    let mut seen = descriptors_of(pid);
    for _ in 0..100 {
        if seen.0 > wanted && seen.2 > wanted {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = descriptors_of(pid);
    }
    let (soft, _, table) = seen;
    assert!(
        soft > wanted,
        "soft open-files limit {soft}, {wanted} needed"
    );
    assert!(
        table > wanted,
        "descriptor table of {table}, {wanted} needed"
    );
    // And it serves.
    let channel = channel(&format!("http://{addr}")).await;
    let response = unary(&channel, "/test.Alpha/Unary", Request::new("hi".into()))
        .await
        .expect("unary");
    assert_eq!(response.get_ref(), "test.Alpha:hi");
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
