//! Observability against a real gateway and real upstreams: the access log (one JSON line per
//! call of every kind and protocol, no credentials in it) and `/metrics` (accepted by
//! `promtool check metrics`, exact counts after a known set of calls).

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::grpc::{Upstream, bidi, channel, client_streaming, http_get, server_streaming, unary};
use support::rest::{body_bytes, frame, send, shop_and_grpc_gateway, start_shop};
use support::scale::metric;
use tonic::Request;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The log's lines once there are `count` of them (the writer is asynchronous).
async fn lines(path: &Path, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= count || tokio::time::Instant::now() > deadline {
            assert_eq!(lines.len(), count, "access log lines:\n{text}");
            return lines
                .iter()
                .map(|line| {
                    serde_json::from_str(line)
                        .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn access_log(path: &Path, extra: &str) -> String {
    format!(
        "[access_log]\nenabled = true\npath = \"{}\"\n{extra}\n",
        path.display()
    )
}

fn grpc_web_item() -> Vec<u8> {
    let request = support::rest::ItemRequest {
        shelf: "web".into(),
        id: 5,
        verbose: false,
        tags: vec![],
    };
    frame(0x00, &tonic_msgpack::to_vec(&request).expect("encode"))
}

/// The line of `route` (exactly one).
fn line_of<'a>(lines: &'a [Value], route: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|line| line["route"] == route).collect();
    assert_eq!(found.len(), 1, "one line for {route}: {lines:#?}");
    found[0]
}

#[tokio::test]
async fn every_call_kind_and_protocol_logs_one_json_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let grpc = Upstream::start().await;
    let (shop, gate) = start_shop().await;
    let gw = shop_and_grpc_gateway(
        shop,
        &grpc.uri(),
        &access_log(&log, "off_routes = [\"/test.Beta/Unary\"]"),
    )
    .await;
    let channel = channel(&gw.uri()).await;

    let mut request = Request::new("hi".to_owned());
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().expect("value"));
    unary(&channel, "/test.Alpha/Unary", request)
        .await
        .expect("unary");
    // Switched off for this route: no line.
    unary(&channel, "/test.Beta/Unary", Request::new("x".into()))
        .await
        .expect("unary, not logged");
    server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("server streaming");
    client_streaming(&channel, "/test.Alpha/ClientStream", &["a", "b", "c"])
        .await
        .expect("client streaming");
    let (tx, mut responses) = bidi(&channel, "/test.Alpha/Bidi").await;
    tx.send("one".into()).await.expect("send");
    tx.send("two".into()).await.expect("send");
    drop(tx);
    let mut echoed = 0;
    while let Some(message) = tokio::time::timeout(support::LIMIT, responses.message())
        .await
        .expect("in time")
        .expect("bidi message")
    {
        assert!(
            message.ends_with("ONE") || message.ends_with("TWO"),
            "{message}"
        );
        echoed += 1;
    }
    assert_eq!(echoed, 2);
    let error = server_streaming(&channel, "/test.Alpha/StreamFail", Request::new("f".into()))
        .await
        .expect_err("the stream fails");

    let web = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
        ],
        grpc_web_item(),
    )
    .await;
    assert_eq!(web.status(), 200);
    assert!(!body_bytes(web).await.is_empty());
    let rest = send(gw.addr, "GET", "/v1/shelves/a/items/7", &[], Vec::new()).await;
    assert_eq!(rest.status(), 200);
    let rest_body = body_bytes(rest).await;
    // The shop's stream waits after its first tick until released.
    gate.notify_one();
    let stream = send(gw.addr, "GET", "/v1/count/3", &[], Vec::new()).await;
    assert_eq!(stream.status(), 200);
    let stream_body = body_bytes(stream).await;
    assert_eq!(stream_body.iter().filter(|&&byte| byte == b'\n').count(), 3);

    let lines = lines(&log, 8).await;
    for line in &lines {
        for field in [
            "time",
            "peer",
            "identity",
            "protocol",
            "route",
            "upstream",
            "endpoint",
            "http_status",
            "grpc_status",
            "duration_seconds",
            "request_bytes",
            "response_bytes",
            "retries",
            "trace_id",
        ] {
            assert!(line.get(field).is_some(), "no `{field}` in {line}");
        }
        assert!(
            line["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(
            line["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{line}"
        );
        assert!(
            line["duration_seconds"].as_f64().is_some_and(|d| d > 0.0),
            "{line}"
        );
        assert_eq!(line["retries"], 0, "{line}");
        assert_eq!(line["identity"], Value::Null, "{line}");
    }
    let grpc_endpoint = grpc.uri();
    let grpc_endpoint = grpc_endpoint.trim_end_matches('/');
    for (route, protocol, status) in [
        ("/test.Alpha/Unary", "grpc", "OK"),
        ("/test.Beta/ServerStream", "grpc", "OK"),
        ("/test.Alpha/ClientStream", "grpc", "OK"),
        ("/test.Alpha/Bidi", "grpc", "OK"),
        ("/test.Alpha/StreamFail", "grpc", "failed"),
    ] {
        let line = line_of(&lines, route);
        assert_eq!(line["protocol"], protocol, "{line}");
        assert_eq!(line["http_status"], 200, "{line}");
        assert_eq!(
            line["upstream"],
            route[1..].split('/').next().unwrap_or(""),
            "{line}"
        );
        assert!(
            line["endpoint"]
                .as_str()
                .is_some_and(|endpoint| endpoint.trim_end_matches('/') == grpc_endpoint),
            "{line}"
        );
        assert!(
            line["request_bytes"].as_u64().is_some_and(|n| n > 0),
            "{line}"
        );
        if route != "/test.Alpha/StreamFail" {
            assert_eq!(line["grpc_status"], status, "{line}");
            assert!(
                line["response_bytes"].as_u64().is_some_and(|n| n > 0),
                "{line}"
            );
        } else {
            assert_eq!(
                line["grpc_status"],
                support_code_name(error.code()),
                "{line}"
            );
        }
    }
    let unary_line = line_of(&lines, "/test.Alpha/Unary");
    assert_eq!(unary_line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // "hi" as MessagePack (3 bytes) in a 5-byte frame; "test.Alpha:hi" (14) in one.
    assert_eq!(unary_line["request_bytes"], 8);
    assert_eq!(unary_line["response_bytes"], 19);

    // gRPC-Web and REST share the shop's routes: told apart by protocol.
    let shop_lines: Vec<&Value> = lines
        .iter()
        .filter(|line| line["upstream"] == "rest.v1.Shop")
        .collect();
    assert_eq!(shop_lines.len(), 3, "{lines:#?}");
    for line in &shop_lines {
        assert!(
            line["endpoint"]
                .as_str()
                .is_some_and(|endpoint| endpoint.contains(&shop.to_string())),
            "{line}"
        );
    }
    let web = shop_lines
        .iter()
        .find(|line| line["protocol"] == "grpc-web")
        .expect("a gRPC-Web line");
    assert_eq!(web["route"], "/rest.v1.Shop/GetItem");
    assert_eq!(web["grpc_status"], "OK");
    let rest_unary = shop_lines
        .iter()
        .find(|line| line["protocol"] == "rest" && line["route"] == "/rest.v1.Shop/GetItem")
        .expect("a REST unary line");
    assert_eq!(rest_unary["grpc_status"], "OK");
    assert_eq!(rest_unary["http_status"], 200);
    assert_eq!(rest_unary["response_bytes"], rest_body.len());
    let rest_stream = shop_lines
        .iter()
        .find(|line| line["protocol"] == "rest" && line["route"] == "/rest.v1.Shop/Count")
        .expect("a REST stream line");
    assert_eq!(rest_stream["grpc_status"], "OK");
    assert_eq!(rest_stream["response_bytes"], stream_body.len());

    // Nothing dropped, every line counted.
    let (_, text) = http_get(gw.admin(), "/metrics").await;
    assert_eq!(
        metric(&text, "gateway_access_log_lines_total"),
        Some(8.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "gateway_access_log_dropped_total"),
        Some(0.0),
        "{text}"
    );
    gw.shutdown().await;
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn credentials_never_reach_the_access_log() {
    const KEY: &str = "sekrit-api-key-4711";
    const BEARER: &str = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VrcmV0LWJlYXJlcg.c2ln";
    const COOKIE: &str = "session=cookie-value-0815";
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let grpc = Upstream::start().await;
    let (shop, _gate) = start_shop().await;
    let auth = format!(
        "[auth]\ndefault_policy = \"allow\"\n[[auth.api_keys]]\nid = \"reader\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n[[auth.rules]]\ntarget = \"test.Alpha\"\naccess = \"authenticated\"\n",
        sha256_hex(KEY)
    );
    let gw = shop_and_grpc_gateway(
        shop,
        &grpc.uri(),
        &format!("{auth}{}", access_log(&log, "")),
    )
    .await;
    let channel = channel(&gw.uri()).await;
    let mut request = Request::new("secret-body-text".to_owned());
    for (name, value) in [("x-api-key", KEY), ("cookie", COOKIE)] {
        request
            .metadata_mut()
            .insert(name, value.parse().expect("value"));
    }
    let response = unary(&channel, "/test.Alpha/Unary", request)
        .await
        .expect("authenticated call");
    assert_eq!(response.get_ref(), "test.Alpha:secret-body-text");
    // Both credentials, the bearer token not a valid one: refused, and logged as such.
    let mut request = Request::new("x".to_owned());
    for (name, value) in [("x-api-key", KEY), ("authorization", BEARER)] {
        request
            .metadata_mut()
            .insert(name, value.parse().expect("value"));
    }
    let refused = unary(&channel, "/test.Alpha/Unary", request)
        .await
        .expect_err("a bad bearer token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let rest = send(
        gw.addr,
        "GET",
        "/v1/shelves/a/items/7",
        &[
            ("authorization", BEARER),
            ("x-api-key", KEY),
            ("cookie", COOKIE),
        ],
        Vec::new(),
    )
    .await;
    let _ = body_bytes(rest).await;

    let lines = lines(&log, 3).await;
    let text = std::fs::read_to_string(&log).expect("log");
    for secret in [
        KEY,
        "eyJhbGciOiJIUzI1NiJ9",
        "cookie-value-0815",
        "secret-body-text",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` in the access log:\n{text}"
        );
    }
    assert_eq!(lines[0]["identity"], "key:reader", "{text}");
    assert_eq!(lines[0]["grpc_status"], "OK", "{text}");
    assert_eq!(lines[1]["grpc_status"], "UNAUTHENTICATED", "{text}");
    assert_eq!(lines[1]["identity"], Value::Null, "{text}");
    gw.shutdown().await;
}

/// Runs `promtool check metrics` on `text`. CI installs promtool (Debian's `prometheus`), so a
/// missing promtool fails the test rather than skipping the check.
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => panic!(
            "promtool is needed to check /metrics and could not be started ({err}); install it with `apt-get install -y prometheus` (.ci/run does)"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_exactly() {
    let grpc = Upstream::start().await;
    let (shop, _gate) = start_shop().await;
    let gw = shop_and_grpc_gateway(shop, &grpc.uri(), "").await;
    let channel = channel(&gw.uri()).await;
    for _ in 0..3 {
        unary(&channel, "/test.Alpha/Unary", Request::new("hi".into()))
            .await
            .expect("unary");
    }
    let failed = server_streaming(&channel, "/test.Alpha/StreamFail", Request::new("f".into()))
        .await
        .expect_err("fails");
    server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("stream");
    let unknown = unary(&channel, "/test.Gamma/Nope", Request::new("x".into()))
        .await
        .expect_err("no route");
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);
    for id in [1, 2] {
        let rest = send(
            gw.addr,
            "GET",
            &format!("/v1/shelves/a/items/{id}"),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(rest.status(), 200);
        let _ = body_bytes(rest).await;
    }

    let (status, text) = http_get(gw.admin(), "/metrics").await;
    assert_eq!(status, 200);
    promtool_check(&text);
    let failed_code = support_code_name(failed.code());
    for (series, value) in [
        ("gateway_calls_total{route=\"/test.Alpha/Unary\"}", 3.0),
        (
            "gateway_calls_by_code_total{route=\"/test.Alpha/Unary\",code=\"OK\"}",
            3.0,
        ),
        (
            "gateway_call_duration_seconds_count{route=\"/test.Alpha/Unary\"}",
            3.0,
        ),
        (
            "gateway_call_duration_seconds_bucket{route=\"/test.Alpha/Unary\",le=\"+Inf\"}",
            3.0,
        ),
        // "hi": 3 bytes of MessagePack in a 5-byte frame, three times; "test.Alpha:hi": 14 + 5.
        (
            "gateway_request_bytes_total{route=\"/test.Alpha/Unary\"}",
            24.0,
        ),
        (
            "gateway_response_bytes_total{route=\"/test.Alpha/Unary\"}",
            57.0,
        ),
        (
            &format!(
                "gateway_calls_by_code_total{{route=\"/test.Alpha/StreamFail\",code=\"{failed_code}\"}}"
            ),
            1.0,
        ),
        (
            &format!(
                "gateway_call_errors_total{{route=\"/test.Alpha/StreamFail\",code=\"{failed_code}\"}}"
            ),
            1.0,
        ),
        (
            "gateway_calls_by_code_total{route=\"/test.Beta/ServerStream\",code=\"OK\"}",
            1.0,
        ),
        (
            "gateway_call_errors_total{route=\"unmatched\",code=\"UNIMPLEMENTED\"}",
            1.0,
        ),
        (
            "gateway_calls_by_code_total{route=\"/rest.v1.Shop/GetItem\",code=\"OK\"}",
            2.0,
        ),
        (
            "gateway_call_duration_seconds_count{route=\"/rest.v1.Shop/GetItem\"}",
            2.0,
        ),
        // Per upstream: the gRPC calls that reached test.Alpha (3 unary + 1 failing stream).
        (
            "gateway_upstream_call_duration_seconds_count{upstream=\"test.Alpha\"}",
            4.0,
        ),
        (
            "gateway_upstream_calls_total{upstream=\"test.Alpha\",code=\"OK\"}",
            3.0,
        ),
        (
            "gateway_upstream_call_duration_seconds_count{upstream=\"test.Beta\"}",
            1.0,
        ),
        // REST calls count for their upstream too.
        (
            "gateway_upstream_call_duration_seconds_count{upstream=\"rest.v1.Shop\"}",
            2.0,
        ),
        (
            "gateway_upstream_calls_total{upstream=\"rest.v1.Shop\",code=\"OK\"}",
            2.0,
        ),
        ("gateway_in_flight_calls", 0.0),
        ("gateway_access_log_dropped_total", 0.0),
        ("gateway_rate_limit_rejected_total", f64::NAN),
    ] {
        let found = metric(&text, series);
        if value.is_nan() {
            // Only shown with [rate_limits].
            assert_eq!(found, None, "{series}\n{text}");
        } else {
            assert_eq!(found, Some(value), "{series}\n{text}");
        }
    }
    // Every state of each endpoint is shown, 1 for the current one.
    let endpoint = grpc.uri();
    let states: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("gateway_upstream_endpoint_state{upstream=\"test.Alpha\""))
        .collect();
    assert_eq!(states.len(), 5, "{text}");
    assert!(
        states
            .iter()
            .any(|line| line.contains("state=\"healthy\"") && line.ends_with(" 1")),
        "{endpoint}: {states:#?}"
    );
    gw.shutdown().await;
}

fn support_code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DataLoss => "DATA_LOSS",
        _ => "OTHER",
    }
}
