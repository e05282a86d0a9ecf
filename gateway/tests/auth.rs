//! `[auth]` and `[rate_limits]` against a real gateway and real upstreams: API keys, JWT bearer
//! tokens, per-route rules and the default policy, forged identity metadata, REST answers,
//! token buckets, and what `/metrics` and `/routes` say.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use support::grpc::*;
use tonic::{Code, Request};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Two services behind `/test.` (the prefix also reaches methods in no route), keys `reader`
/// and `admin`, JWTs for audience `gateway`, and rules: Alpha needs a caller, Beta's `Unary`
/// needs the `admin` scope, every other Beta method is public; the rest is denied.
fn config(upstream: &str, secret_file: &std::path::Path, extra: &str) -> String {
    format!(
        r#"{services}
[route_prefixes]
"/test." = "test.Alpha"

[auth]
default_policy = "deny"
[auth.jwt]
hs256_secret_file = "{secret}"
audience = "gateway"
[auth.jwt.forward_claims]
sub = "x-req"
[[auth.api_keys]]
id = "reader"
sha256 = "{reader}"
scopes = ["read"]
[[auth.api_keys]]
id = "admin"
sha256 = "{admin}"
scopes = ["read", "admin"]
[[auth.rules]]
target = "test.Alpha"
access = "authenticated"
[[auth.rules]]
target = "/test.Beta/"
access = "public"
[[auth.rules]]
target = "/test.Beta/Unary"
scopes = ["admin"]
{extra}"#,
        services = two_services(upstream, ""),
        secret = secret_file.display(),
        reader = sha256_hex("reader-key"),
        admin = sha256_hex("admin-key"),
    )
}

fn request(metadata: &[(&'static str, &str)]) -> Request<String> {
    let mut request = Request::new("hi".to_owned());
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("metadata value"));
    }
    request
}

#[tokio::test]
async fn keys_tokens_rules_and_default_deny() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write secret");
    let gw = gateway(&config(&upstream.uri(), &secret, ""), routes()).await;
    let channel = channel(&gw.uri()).await;
    let code = |result: Result<tonic::Response<String>, tonic::Status>| match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };

    // API keys and rules.
    let alpha = "/test.Alpha/Unary";
    let beta = "/test.Beta/Unary";
    assert_eq!(
        code(unary(&channel, alpha, request(&[])).await),
        Code::Unauthenticated
    );
    let reader = [("x-api-key", "reader-key")];
    let admin = [("authorization", "ApiKey admin-key")];
    assert_eq!(
        code(unary(&channel, alpha, request(&reader)).await),
        Code::Ok
    );
    assert_eq!(
        code(unary(&channel, beta, request(&reader)).await),
        Code::PermissionDenied
    );
    assert_eq!(code(unary(&channel, beta, request(&admin)).await), Code::Ok);
    assert_eq!(
        code(unary(&channel, alpha, request(&[("x-api-key", "guess")])).await),
        Code::Unauthenticated
    );
    // A public method without credentials, but never with bad ones.
    assert_eq!(
        code(unary(&channel, "/test.Beta/Deadline", request(&[])).await),
        Code::Ok
    );
    let refused = unary(
        &channel,
        "/test.Beta/Deadline",
        request(&[("x-api-key", "guess")]),
    )
    .await
    .expect_err("bad credentials");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        refused.message(),
        "authentication required",
        "no hint of the check"
    );

    // Default deny: a method under the prefix that no rule names.
    assert_eq!(
        code(unary(&channel, "/test.Hidden/Unary", request(&[])).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(unary(&channel, "/test.Hidden/Unary", request(&admin)).await),
        Code::PermissionDenied
    );

    // JWT: the subject goes upstream as `x-req` (echoed back as `x-resp`), replacing a forged one.
    let good = token(serde_json::json!({"sub": "ann", "aud": "gateway", "exp": now() + 60}));
    let bearer = format!("Bearer {good}");
    let response = unary(
        &channel,
        alpha,
        request(&[("authorization", &bearer), ("x-req", "forged-admin")]),
    )
    .await
    .expect("valid token");
    assert_eq!(
        response
            .metadata()
            .get("x-resp")
            .and_then(|v| v.to_str().ok()),
        Some("ann")
    );
    let forged = unary(
        &channel,
        alpha,
        request(&[("x-api-key", "reader-key"), ("x-req", "root")]),
    )
    .await
    .expect("api key");
    assert_eq!(
        forged.metadata().get("x-resp"),
        None,
        "a client's x-req is dropped"
    );
    for bad in [
        token(serde_json::json!({"sub": "ann", "aud": "gateway", "exp": now() - 600})),
        token(serde_json::json!({"sub": "ann", "aud": "elsewhere", "exp": now() + 60})),
        format!("{good}x"),
        "not.a.token".to_owned(),
    ] {
        let header = format!("Bearer {bad}");
        assert_eq!(
            code(unary(&channel, alpha, request(&[("authorization", &header)])).await),
            Code::Unauthenticated,
            "{bad}"
        );
    }

    // The admin port counts refusals and lists the rules.
    let (_, metrics) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metrics.contains("gateway_auth_unauthenticated_total")
            && metrics.contains("gateway_auth_permission_denied_total 2"),
        "{metrics}"
    );
    let (_, routes) = http_get(gw.admin(), "/routes").await;
    assert!(
        routes.contains("\"auth_rules\"") && routes.contains("scopes: admin"),
        "{routes}"
    );
}

#[tokio::test]
async fn rate_limits_per_caller_and_route() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, SECRET).expect("write secret");
    let limits = r#"
[[rate_limits.routes]]
target = "/test.Alpha/Unary"
requests = 2
per = "1m"
"#;
    let gw = gateway(&config(&upstream.uri(), &secret, limits), routes()).await;
    let channel = channel(&gw.uri()).await;
    let reader = [("x-api-key", "reader-key")];
    let admin = [("x-api-key", "admin-key")];
    for _ in 0..2 {
        unary(&channel, "/test.Alpha/Unary", request(&reader))
            .await
            .expect("within the bucket");
    }
    let limited = unary(&channel, "/test.Alpha/Unary", request(&reader))
        .await
        .expect_err("third call");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    // Another identity has its own bucket; other routes are not limited.
    unary(&channel, "/test.Alpha/Unary", request(&admin))
        .await
        .expect("another caller");
    unary(&channel, "/test.Alpha/Deadline", request(&reader))
        .await
        .expect("another route");
    let (_, metrics) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metrics.contains("gateway_rate_limit_rejected_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn rest_answers_401_403_and_429() {
    use support::rest::*;
    let (shop, _gate) = start_shop().await;
    let extra = format!(
        r#"
[auth]
[[auth.api_keys]]
id = "reader"
sha256 = "{reader}"
[[auth.rules]]
target = "rest.v1.Shop"
access = "authenticated"
[[auth.rules]]
target = "/rest.v1.Shop/Count"
scopes = ["admin"]
[rate_limits]
per_caller = {{ requests = 3, per = "1m" }}
"#,
        reader = sha256_hex("reader-key"),
    );
    let gw = shop_gateway(shop, &extra).await;
    let path = "/v1/shelves/s1/items/7";

    let response = send(gw.addr, "GET", path, &[], "").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body = body_bytes(response).await;
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json error");
    assert_eq!(json["code"], Code::Unauthenticated as i32);

    let key = [("x-api-key", "reader-key")];
    let response = send(gw.addr, "GET", path, &key, "").await;
    assert_eq!(response.status(), 200);
    let response = send(gw.addr, "GET", "/v1/count/2", &key, "").await;
    assert_eq!(response.status(), 403);

    // Three calls per minute per caller; refused calls take no token: one used, two left.
    for _ in 0..2 {
        assert_eq!(send(gw.addr, "GET", path, &key, "").await.status(), 200);
    }
    let limited = send(gw.addr, "GET", path, &key, "").await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
}
