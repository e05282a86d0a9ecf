//! gRPC-Web through the gateway over HTTP/1.1 (what browsers speak): the exact request and
//! response bytes for unary and server streaming, the base64 `-text` variant, an error status,
//! and CORS (preflight answered by the gateway, exposed headers on the actual response).

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use support::rest::*;

const CORS: &str = "[cors]\nallowed_origins = [\"https://app.example\"]\nmax_age = \"5m\"\n";

fn item_request(shelf: &str, id: u32) -> Vec<u8> {
    tonic_msgpack::to_vec(&ItemRequest {
        shelf: shelf.into(),
        id,
        verbose: false,
        tags: vec!["t".into()],
    })
    .expect("encode")
}

fn expected_item(shelf: &str, id: u32, caller: &str) -> Vec<u8> {
    tonic_msgpack::to_vec(&Item {
        shelf: shelf.into(),
        id,
        unit_price: id * 100,
        tags: vec!["t".into()],
        caller: caller.into(),
    })
    .expect("encode")
}

/// The trailers frame's `name:value` lines.
fn trailer_lines(payload: &[u8]) -> Vec<String> {
    String::from_utf8(payload.to_vec())
        .expect("ascii trailers")
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn grpc_web_unary_bytes_over_http1() {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway(upstream, CORS).await;

    let request = frame(0x00, &item_request("web", 5));
    let response = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("x-user", "browser"),
            ("origin", "https://app.example"),
        ],
        request,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_11);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/grpc-web+proto"[..])
    );
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://app.example"[..])
    );
    let exposed = headers
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let body = body_bytes(response).await;
    let frames = frames(&body);
    assert_eq!(frames.len(), 2, "{body:?}");
    // The message frame is exactly what the upstream encoded.
    assert_eq!(frames[0].0, 0x00);
    assert_eq!(
        frames[0].1,
        expected_item("web", 5, "user=browser auth=- cookie=- verbose=false")
    );
    // Then the trailers frame (flag 0x80) with the status.
    assert_eq!(frames[1].0, 0x80);
    assert!(
        trailer_lines(&frames[1].1).contains(&"grpc-status:0".to_owned()),
        "{:?}",
        trailer_lines(&frames[1].1)
    );
}

#[tokio::test]
async fn grpc_web_server_streaming_and_text() {
    let (upstream, gate) = start_shop().await;
    let gw = shop_gateway(upstream, "").await;
    gate.notify_one();

    let request = frame(
        0x00,
        &tonic_msgpack::to_vec(&CountArgs { n: 3 }).expect("encode"),
    );
    let response = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/Count",
        &[("content-type", "application/grpc-web")],
        request.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = body_bytes(response).await;
    let frames = frames(&body);
    assert_eq!(frames.len(), 4, "{body:?}");
    for (i, (flag, payload)) in frames[..3].iter().enumerate() {
        assert_eq!(*flag, 0x00);
        let expected = tonic_msgpack::to_vec(&Tick { i: i as u32 }).expect("encode");
        assert_eq!(payload, &expected, "message {i}");
    }
    assert_eq!(frames[3].0, 0x80);
    assert!(trailer_lines(&frames[3].1).contains(&"grpc-status:0".to_owned()));

    // `-text`: the same exchange in base64.
    gate.notify_one();
    let response = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/Count",
        &[
            ("content-type", "application/grpc-web-text"),
            ("accept", "application/grpc-web-text"),
        ],
        BASE64.encode(&request),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/grpc-web-text+proto"[..])
    );
    let text_headers = response.headers().clone();
    let text = body_bytes(response).await;
    assert!(!text.is_empty(), "{text_headers:?}");
    // Each chunk is base64 on its own (with padding); decode them one by one.
    let mut decoded = Vec::new();
    let text = String::from_utf8(text.to_vec()).expect("base64 text");
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |i| {
            i + rest[i..].chars().take_while(|&c| c == '=').count()
        });
        decoded.extend(BASE64.decode(&rest[..end]).expect("base64"));
        rest = &rest[end..];
    }
    assert_eq!(decoded, body.to_vec(), "the same frames as binary gRPC-Web");
}

#[tokio::test]
async fn grpc_web_error_status() {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway(upstream, "").await;
    let request = frame(
        0x00,
        &tonic_msgpack::to_vec(&FailArgs {
            code: 5,
            message: "no such item".into(),
        })
        .expect("encode"),
    );
    let response = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/Fail",
        &[("content-type", "application/grpc-web")],
        request,
    )
    .await;
    assert_eq!(response.status(), 200);
    // A trailers-only answer: the status is in the headers or in a trailers frame.
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.as_bytes().to_vec());
    let body = body_bytes(response).await;
    match in_headers {
        Some(code) => assert_eq!(code, b"5"),
        None => {
            let frames = frames(&body);
            let last = frames.last().expect("a trailers frame");
            assert_eq!(last.0, 0x80);
            let lines = trailer_lines(&last.1);
            assert!(lines.contains(&"grpc-status:5".to_owned()), "{lines:?}");
            assert!(
                lines.contains(&"grpc-message:no such item".to_owned())
                    || lines.iter().any(|l| l.starts_with("grpc-message:no")),
                "{lines:?}"
            );
        }
    }
}

#[tokio::test]
async fn cors_preflight_is_answered_by_the_gateway() {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway(upstream, CORS).await;

    for path in ["/rest.v1.Shop/GetItem", "/v1/shelves/a/items/1"] {
        let response = send(
            gw.addr,
            "OPTIONS",
            path,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization",
                ),
            ],
            "",
        )
        .await;
        assert!(response.status().is_success(), "{}", response.status());
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("access-control-allow-origin"), "https://app.example");
        assert!(header("access-control-allow-methods").contains("POST"));
        let allowed = header("access-control-allow-headers");
        for name in [
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "authorization",
        ] {
            assert!(allowed.contains(name), "{allowed}");
        }
        assert_eq!(header("access-control-max-age"), "300");
    }

    // Another origin gets no CORS grant.
    let response = send(
        gw.addr,
        "OPTIONS",
        "/rest.v1.Shop/GetItem",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // REST answers carry CORS headers too.
    let response = send(
        gw.addr,
        "GET",
        "/v1/shelves/a/items/1",
        &[("origin", "https://app.example")],
        "",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://app.example"[..])
    );

    // Without a [cors] section, a preflight is not answered with a grant.
    let plain = shop_gateway(upstream, "").await;
    let response = send(
        plain.addr,
        "OPTIONS",
        "/rest.v1.Shop/GetItem",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Decodes a `-text` answer: each chunk is base64 on its own, with its padding.
fn decode_text(text: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(text).expect("base64 text");
    let mut decoded = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |i| {
            i + rest[i..].chars().take_while(|&c| c == '=').count()
        });
        decoded.extend(BASE64.decode(&rest[..end]).expect("base64"));
        rest = &rest[end..];
    }
    decoded
}

/// The gRPC status of a gRPC-Web answer: in the headers (trailers-only) or in the trailers
/// frame.
async fn web_status(response: http::Response<hyper::body::Incoming>) -> (String, String) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(code) = header("grpc-status") {
        let message = header("grpc-message").unwrap_or_default();
        return (code, message);
    }
    let text = header("content-type").is_some_and(|value| value.contains("text"));
    let mut body = body_bytes(response).await.to_vec();
    if text {
        body = decode_text(&body);
    }
    let frames = frames(&body);
    let (flag, payload) = frames.last().expect("a trailers frame");
    assert_eq!(*flag, 0x80);
    let lines = trailer_lines(payload);
    let find = |name: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .to_owned()
    };
    (find("grpc-status"), find("grpc-message"))
}

/// Finding 9: a client's bad gRPC-Web body was reported as the upstream's UNAVAILABLE.
#[tokio::test]
async fn client_faults_are_invalid_argument() {
    let (upstream, _gate) = start_shop().await;
    let gw = shop_gateway(upstream, "").await;
    let good = frame(0x00, &item_request("web", 5));
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 2);
    let mut trailing = BASE64.encode(&good);
    trailing.push('A');
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "application/grpc-web-text",
            b"!!!!not base64".to_vec(),
            "malformed",
        ),
        ("application/grpc-web-text", trailing.into_bytes(), "base64"),
        (
            "application/grpc-web+proto",
            truncated,
            "ends inside a message",
        ),
        ("application/grpc-web", frame(0x80, b"x"), "flags 0x80"),
        ("application/grpc-web", frame(0x02, b"x"), "flags 0x02"),
    ];
    for (content_type, body, expected) in cases {
        let response = send(
            gw.addr,
            "POST",
            "/rest.v1.Shop/GetItem",
            &[("content-type", content_type)],
            body,
        )
        .await;
        assert_eq!(response.status(), 200, "{content_type} {expected}");
        let (code, message) = web_status(response).await;
        assert_eq!(code, "3", "{content_type} {expected}: {message}");
        let message = percent_encoding::percent_decode_str(&message).decode_utf8_lossy();
        assert!(
            message.contains("malformed gRPC-Web request") && message.contains(expected),
            "{content_type}: {message}"
        );
    }

    // A content type tonic-web cannot translate: 415, nothing forwarded.
    let response = send(
        gw.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[("content-type", "application/grpc-web+json")],
        good.clone(),
    )
    .await;
    assert_eq!(response.status(), 415);

    // The same gateway and upstream connection still serve good calls.
    for content_type in ["application/grpc-web", "application/grpc-web-text"] {
        let body = if content_type.contains("text") {
            BASE64.encode(&good).into_bytes()
        } else {
            good.clone()
        };
        let response = send(
            gw.addr,
            "POST",
            "/rest.v1.Shop/GetItem",
            &[("content-type", content_type)],
            body,
        )
        .await;
        let (code, message) = web_status(response).await;
        assert_eq!(code, "0", "{content_type}: {message}");
    }
}
