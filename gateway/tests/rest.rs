//! REST/JSON through the gateway: every binding form, NDJSON streaming read incrementally, the
//! gRPC → HTTP status table, bad input, metadata forwarding and routes REST cannot serve.
//!
//! Every case runs twice: in-process with the typed route stubs (`typed::`), and against the
//! stand-alone `tonic-msgpack-gateway` binary configured with the shop's descriptor set only
//! (`descriptors::`) or its `.proto` only (`protos::`, compiled at start), which transcodes by
//! descriptor.

mod support;

use http_body_util::BodyExt;
use serde_json::json;
use support::rest::*;

async fn every_binding_form_and_metadata(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;

    // Default binding: POST /{package}.{Service}/{Method}, the whole body is the message;
    // `authorization` and `x-*` headers reach the upstream as metadata, others do not.
    let (status, body) = json_call(
        gw.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer t0k"),
            ("x-user", "ada"),
            ("cookie", "secret=1"),
        ],
        r#"{"shelf": "top", "id": 7, "tags": ["a"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "shelf": "top", "id": 7, "unitPrice": 700, "tags": ["a"],
            "caller": "user=ada auth=Bearer t0k cookie=- verbose=false"
        })
    );

    // GET with path variables and query parameters (repeated → array, booleans, numbers).
    let (status, body) = json_call(
        gw.addr,
        "GET",
        "/v1/shelves/low%20shelf/items/42?verbose=true&tags=x&tags=y%2Bz",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shelf"], "low shelf");
    assert_eq!(body["id"], 42);
    assert_eq!(body["tags"], json!(["x", "y+z"]));
    assert_eq!(body["caller"], "user=- auth=- cookie=- verbose=true");

    // A path value that reads as a number fills a string field as text.
    let (status, body) = json_call(gw.addr, "GET", "/v1/shelves/007/items/1", &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shelf"], "007");

    // `body: "item"`: the JSON body is that field, the rest comes from the path.
    let (status, body) = json_call(
        gw.addr,
        "PUT",
        "/v1/items/9",
        &[("content-type", "application/json")],
        r#"{"name": "pen", "unitPrice": 3}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shelf"], "pen");
    assert_eq!(body["id"], 9);
    assert_eq!(body["unitPrice"], 3);

    // REST calls count in the route's metrics.
    let response = send(gw.admin(), "GET", "/metrics", &[], "").await;
    let text = String::from_utf8(body_bytes(response).await.to_vec()).expect("utf-8");
    assert!(
        text.contains("gateway_calls_total{route=\"/rest.v1.Shop/GetItem\"} 3"),
        "{text}"
    );
}

async fn ndjson_lines_arrive_as_the_upstream_sends_them(setup: Setup) {
    let (upstream, gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;
    for (method, path, body) in [
        ("GET", "/v1/count/3", ""),
        ("POST", "/rest.v1.Shop/Count", r#"{"n": 3}"#),
    ] {
        let response = send(gw.addr, method, path, &[], body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/x-ndjson"[..])
        );
        let mut body = response.into_body();
        let mut received = Vec::new();
        let mut next_line = async || loop {
            if let Some(end) = received.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = received.drain(..=end).collect();
                return Some(String::from_utf8(line).expect("utf-8"));
            }
            let frame = tokio::time::timeout(LIMIT, body.frame())
                .await
                .expect("a line within the limit");
            match frame {
                Some(frame) => {
                    if let Ok(data) = frame.expect("frame").into_data() {
                        received.extend_from_slice(&data);
                    }
                }
                None => return None,
            }
        };
        // The first line arrives while the upstream is still waiting for the gate.
        assert_eq!(next_line().await.as_deref(), Some("{\"i\":0}\n"));
        gate.notify_one();
        assert_eq!(next_line().await.as_deref(), Some("{\"i\":1}\n"));
        assert_eq!(next_line().await.as_deref(), Some("{\"i\":2}\n"));
        assert_eq!(next_line().await, None);
    }
}

async fn ndjson_error_after_messages_is_a_last_error_line(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;
    let response = send(gw.addr, "GET", "/v1/count/1000", &[], "").await;
    assert_eq!(response.status(), 200);
    let body = String::from_utf8(body_bytes(response).await.to_vec()).expect("utf-8");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"i": 0}),
            json!({"error": {"code": 10, "message": "stopped after one tick"}})
        ]
    );
}

async fn grpc_status_maps_to_http_status_with_a_json_error(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;
    // grpc-gateway's table.
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in table {
        let message = format!("failed with {code}: ünïcode, 100% & \"quotes\"");
        let request = json!({ "code": code, "message": message }).to_string();
        let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/Fail", &[], &request).await;
        assert_eq!(status, http, "code {code}: {body}");
        assert_eq!(body, json!({ "code": code, "message": message }));
    }
}

async fn bad_input_is_a_json_400_naming_the_field(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "[rest]\nmax_body_bytes = 256\n").await;
    let post = |body: &'static str| json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], body);

    let (status, body) = post(r#"{"shelf": "a", "id": }"#).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 3);
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("invalid JSON") && message.contains("line 1"),
        "{message}"
    );

    let (status, body) = post(r#"{"shelf": "a", "id": "seven"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "id", "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("\"id\""),
        "{body}"
    );

    let (status, body) = post(r#"{"shelf": 5}"#).await;
    assert_eq!((status, &body["field"]), (400, &json!("shelf")), "{body}");

    let (status, body) = post(r#"[1, 2]"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("JSON object"),
        "{body}"
    );

    // Unknown fields are ignored by default.
    let (status, body) = post(r#"{"shelf": "a", "nmae": "x"}"#).await;
    assert_eq!(status, 200, "{body}");

    // A path variable of the wrong type names the field.
    let (status, body) = json_call(gw.addr, "GET", "/v1/shelves/a/items/seven", &[], "").await;
    assert_eq!((status, &body["field"]), (400, &json!("id")), "{body}");

    // Oversized body: 413 with a JSON error, nothing sent upstream.
    let big = format!(r#"{{"shelf": "{}"}}"#, "x".repeat(1000));
    let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("rest.max_body_bytes"),
        "{body}"
    );

    // Nesting deeper than `rest.max_json_depth`: refused before anything is built.
    let deep = format!(r#"{{"tags": {}{}}}"#, "[".repeat(100), "]".repeat(100));
    let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], &deep).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("rest.max_json_depth"),
        "{body}"
    );
    // A repeated field of the wrong element type names the element.
    let (status, body) = post(r#"{"tags": ["a", 5]}"#).await;
    assert_eq!((status, &body["field"]), (400, &json!("tags[1]")), "{body}");

    // With `unknown_fields = "reject"`, an unknown field is a 400 naming it.
    let strict = shop_gateway_as(setup, upstream, "[rest]\nunknown_fields = \"reject\"\n").await;
    let (status, body) = json_call(
        strict.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[],
        r#"{"shelf": "a", "nmae": "x"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "nmae");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("unknown field \"nmae\""),
        "{body}"
    );
    let (status, body) = json_call(
        strict.addr,
        "GET",
        "/v1/shelves/a/items/1?colour=red",
        &[],
        "",
    )
    .await;
    assert_eq!((status, &body["field"]), (400, &json!("colour")), "{body}");

    // Nothing above broke the gateway: a good call still answers.
    let (status, body) = json_call(gw.addr, "GET", "/v1/shelves/a/items/1", &[], "").await;
    assert_eq!(status, 200, "{body}");
}

async fn routes_rest_cannot_serve(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;

    let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/Upload", &[], "{}").await;
    assert_eq!((status, &body["code"]), (501, &json!(12)), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("/rest.v1.Shop/Upload") && message.contains("client-streaming"),
        "{message}"
    );

    // Typed route stubs may lack a transcoder; a descriptor always gives one.
    if setup == Setup::Typed {
        let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Plain/Get", &[], "{}").await;
        assert_eq!((status, &body["code"]), (501, &json!(12)), "{body}");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("no REST transcoder"),
            "{body}"
        );
    }

    let (status, _) = json_call(gw.addr, "GET", "/v1/nowhere", &[], "").await;
    assert_eq!(status, 404);
    // A binding's path with another method is not a match.
    let (status, _) = json_call(gw.addr, "DELETE", "/v1/count/3", &[], "").await;
    assert_eq!(status, 404);

    // Upstream down: 503 with a JSON error.
    // Bound but not listening, and kept for the whole test: connecting is refused, and no
    // other test's server can be given the port meanwhile (as it could a port just closed).
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let down = reserved.local_addr().expect("addr");
    let gw = shop_gateway_as(setup, down, "connect_timeout = \"200ms\"").await;
    let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], "{}").await;
    assert_eq!((status, &body["code"]), (503, &json!(14)), "{body}");
    drop(reserved);
}

#[tokio::test]
async fn a_bad_path_template_fails_the_build_naming_the_route() {
    use tonic_msgpack_gateway::{CallKind, Gateway, HttpBinding, Route, RouteTable, Transcoder};
    let routes = RouteTable::from_routes([Route::new("rest.v1.Shop", "GetItem", CallKind::Unary)
        .transcoder(Transcoder::typed::<ItemRequest, Item>())
        .http(HttpBinding::new("GET", "/v1/{name=shelves/*}", None))]);
    let err = Gateway::builder()
        .routes(routes)
        .build()
        .await
        .expect_err("unsupported pattern");
    let message = err.to_string();
    assert!(
        message.contains("/rest.v1.Shop/GetItem") && message.contains("{name=shelves/*}"),
        "{message}"
    );
}

async fn headers_named_in_connection_are_not_forwarded(setup: Setup) {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway_as(setup, upstream, "").await;
    // `Connection: x-user` makes `x-user` a header for the gateway alone.
    let (status, body) = json_call(
        gw.addr,
        "GET",
        "/v1/shelves/a/items/1",
        &[
            ("connection", "keep-alive, X-User"),
            ("x-user", "ada"),
            ("authorization", "Bearer t0k"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["caller"],
        "user=- auth=Bearer t0k cookie=- verbose=false"
    );
}

/// Each case above as a test of its own, once per setup.
macro_rules! per_setup {
    ($setup:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                super::$name(Setup::$setup).await;
            }
        )*
    };
}

mod typed {
    use super::Setup;
    per_setup!(Typed:
        every_binding_form_and_metadata,
        ndjson_lines_arrive_as_the_upstream_sends_them,
        ndjson_error_after_messages_is_a_last_error_line,
        grpc_status_maps_to_http_status_with_a_json_error,
        bad_input_is_a_json_400_naming_the_field,
        routes_rest_cannot_serve,
        headers_named_in_connection_are_not_forwarded,
    );
}

mod descriptors {
    use super::Setup;
    per_setup!(Descriptors:
        every_binding_form_and_metadata,
        ndjson_lines_arrive_as_the_upstream_sends_them,
        ndjson_error_after_messages_is_a_last_error_line,
        grpc_status_maps_to_http_status_with_a_json_error,
        bad_input_is_a_json_400_naming_the_field,
        routes_rest_cannot_serve,
        headers_named_in_connection_are_not_forwarded,
    );
}

mod protos {
    use super::Setup;
    per_setup!(Protos:
        every_binding_form_and_metadata,
        ndjson_lines_arrive_as_the_upstream_sends_them,
        ndjson_error_after_messages_is_a_last_error_line,
        grpc_status_maps_to_http_status_with_a_json_error,
        bad_input_is_a_json_400_naming_the_field,
        routes_rest_cannot_serve,
        headers_named_in_connection_are_not_forwarded,
    );
}
