//! `[auth]` and `[rate_limits]` against a real gateway and real upstreams: API keys, JWT bearer
//! tokens (HS256 with a secret, RS256 and ES256 from a JWKS file that is reloaded), per-route
//! rules and the default policy, forged identity metadata, REST answers, token buckets, and
//! what `/metrics` and `/routes` say.

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

/// An RSA key made for these tests (ring cannot generate RSA keys).
const TEST_ONLY_RSA_KEY: &str = include_str!("fixtures/test-only-rsa2048.key");

/// A signing key and its public half as a JWK.
struct SigningKey {
    encoding: EncodingKey,
    alg: Algorithm,
    jwk: serde_json::Value,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWK of `key`'s public half (RSA or EC P-256), read from its SubjectPublicKeyInfo.
fn signing_key(key: &rcgen::KeyPair, kid: &str) -> SigningKey {
    use rcgen::PublicKeyData as _;
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::PublicKey;
    let spki = key.subject_public_key_info();
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).expect("SPKI");
    let pem = key.serialize_pem();
    match info.parsed().expect("public key") {
        PublicKey::RSA(rsa) => {
            let trim = |bytes: &[u8]| {
                let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                b64url(&bytes[start..])
            };
            SigningKey {
                encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
                alg: Algorithm::RS256,
                jwk: serde_json::json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": trim(rsa.modulus), "e": trim(rsa.exponent)}),
            }
        }
        PublicKey::EC(point) => {
            // Uncompressed: 0x04 || x || y.
            let data = point.data();
            assert_eq!(data.len(), 65, "a P-256 point");
            SigningKey {
                encoding: EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC PEM"),
                alg: Algorithm::ES256,
                jwk: serde_json::json!({"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig",
                    "crv": "P-256", "x": b64url(&data[1..33]), "y": b64url(&data[33..])}),
            }
        }
        other => panic!("unexpected key {other:?}"),
    }
}

impl SigningKey {
    /// `authorization: Bearer …` for a token signed by this key, naming `kid`.
    fn bearer(&self, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).expect("token");
        format!("Bearer {token}")
    }
}

fn jwks(keys: &[&SigningKey]) -> String {
    serde_json::json!({"keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>()})
        .to_string()
}

#[cfg(unix)]
#[tokio::test]
async fn rs256_and_es256_tokens_from_a_reloaded_jwks_file() {
    // The gateway reloads key files on SIGHUP; registering it here too makes sure the signal
    // can never end the test process.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("SIGHUP handler");
    let rsa = signing_key(
        &rcgen::KeyPair::from_pem(TEST_ONLY_RSA_KEY).expect("RSA key"),
        "rsa-1",
    );
    let p256 = || rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
    let ec = signing_key(&p256(), "ec-1");
    let rotated = signing_key(&p256(), "ec-2");
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&rsa, &ec])).expect("write JWKS");

    let upstream = Upstream::start().await;
    let toml = format!(
        r#"{services}
[auth]
default_policy = "deny"
[auth.jwt]
jwks_file = "{jwks}"
issuer = "https://login.test"
audience = "gateway"
[auth.jwt.forward_claims]
sub = "x-req"
[[auth.rules]]
target = "test.Alpha"
scopes = ["read"]
"#,
        services = two_services(&upstream.uri(), ""),
        jwks = jwks_file.display(),
    );
    let gw = gateway(&toml, routes()).await;
    let channel = channel(&gw.uri()).await;
    let claims = |sub: &str, scope: &str| {
        serde_json::json!({"sub": sub, "iss": "https://login.test", "aud": "gateway",
            "exp": now() + 60, "scope": scope})
    };
    let call = |bearer: String| {
        let channel = channel.clone();
        async move {
            unary(
                &channel,
                "/test.Alpha/Unary",
                request(&[("authorization", &bearer)]),
            )
            .await
            .map(|response| {
                response
                    .metadata()
                    .get("x-resp")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            })
            .map_err(|status| status.code())
        }
    };

    // Both algorithms verify; the subject goes upstream.
    assert_eq!(
        call(rsa.bearer("rsa-1", claims("rita", "read"))).await,
        Ok(Some("rita".to_owned()))
    );
    assert_eq!(
        call(ec.bearer("ec-1", claims("eve", "read write"))).await,
        Ok(Some("eve".to_owned()))
    );
    // A valid token without the scope; a key not in the file; a kid naming another key; a
    // wrong issuer; expired.
    assert_eq!(
        call(rsa.bearer("rsa-1", claims("rita", "write"))).await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(
        call(rotated.bearer("ec-2", claims("mallory", "read"))).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        call(rotated.bearer("ec-1", claims("mallory", "read"))).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        call(ec.bearer("rsa-1", claims("eve", "read"))).await,
        Err(Code::Unauthenticated)
    );
    let mut foreign = claims("eve", "read");
    foreign["iss"] = "https://elsewhere.test".into();
    assert_eq!(
        call(ec.bearer("ec-1", foreign)).await,
        Err(Code::Unauthenticated)
    );
    let mut expired = claims("eve", "read");
    expired["exp"] = (now() - 600).into();
    assert_eq!(
        call(ec.bearer("ec-1", expired)).await,
        Err(Code::Unauthenticated)
    );

    // Key rotation: the file now holds only the new key. Without a restart, tokens of the
    // new key verify and those of the removed ones no longer do.
    std::fs::write(&jwks_file, jwks(&[&rotated])).expect("rewrite JWKS");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
    while call(rotated.bearer("ec-2", claims("nina", "read")))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated JWKS was not used within 8 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(rsa.bearer("rsa-1", claims("rita", "read"))).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        call(ec.bearer("ec-1", claims("eve", "read"))).await,
        Err(Code::Unauthenticated)
    );

    // A broken file keeps the keys in use.
    std::fs::write(&jwks_file, "{ not json").expect("break JWKS");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        call(rotated.bearer("ec-2", claims("nina", "read"))).await,
        Ok(Some("nina".to_owned()))
    );
}

#[tokio::test]
async fn a_stream_takes_one_token_and_grpc_web_is_checked_like_grpc() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, SECRET).expect("write secret");
    let limits = r#"
[[rate_limits.routes]]
target = "/test.Alpha/ServerStream"
requests = 1
per = "1m"
"#;
    let gw = gateway(&config(&upstream.uri(), &secret, limits), routes()).await;
    let channel = channel(&gw.uri()).await;

    // Five messages from one call take one token: the whole stream arrives, the next call
    // is over the limit.
    let mut first = request(&[("x-api-key", "reader-key")]);
    *first.get_mut() = "s".to_owned();
    let messages = server_streaming(&channel, "/test.Alpha/ServerStream", first)
        .await
        .expect("within the bucket");
    assert_eq!(messages.len(), 5);
    let err = server_streaming(
        &channel,
        "/test.Alpha/ServerStream",
        request(&[("x-api-key", "reader-key")]),
    )
    .await
    .expect_err("second stream");
    assert_eq!(err.code(), Code::ResourceExhausted);

    // gRPC-Web meets the same gate: no key, then a key without the scope.
    let frame = [0u8, 0, 0, 0, 2, 0xa1, b'w'];
    let web = |key: Option<&'static str>| {
        let mut headers = vec![
            ("content-type", "application/grpc-web"),
            ("x-grpc-web", "1"),
        ];
        if let Some(key) = key {
            headers.push(("x-api-key", key));
        }
        let addr = gw.addr;
        async move {
            let response =
                support::rest::send(addr, "POST", "/test.Beta/Unary", &headers, frame.to_vec())
                    .await;
            let status = response.headers().get("grpc-status").cloned();
            let body = support::rest::body_bytes(response).await;
            // Trailers-only answers carry grpc-status as a header; others in the body.
            status
                .and_then(|value| value.to_str().ok().map(str::to_owned))
                .or_else(|| {
                    let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
                    let at = text.find("grpc-status:")? + "grpc-status:".len();
                    Some(
                        text[at..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect(),
                    )
                })
        }
    };
    assert_eq!(
        web(None).await.as_deref(),
        Some("16"),
        "UNAUTHENTICATED without a key"
    );
    assert_eq!(
        web(Some("reader-key")).await.as_deref(),
        Some("7"),
        "PERMISSION_DENIED without the admin scope"
    );
    assert_eq!(web(Some("admin-key")).await.as_deref(), Some("0"));
}

#[tokio::test]
async fn anonymous_callers_are_limited_by_address_without_an_auth_section() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "{}\n[rate_limits]\nper_caller = {{ requests = 2, per = \"1m\" }}\n",
        two_services(&upstream.uri(), "")
    );
    let gw = gateway(&toml, routes()).await;
    let channel = channel(&gw.uri()).await;
    for method in ["/test.Alpha/Unary", "/test.Beta/Unary"] {
        unary(&channel, method, request(&[]))
            .await
            .expect("within the caller's bucket");
    }
    // Credentials mean nothing without [auth]: the bucket is still the client's address.
    let limited = unary(
        &channel,
        "/test.Alpha/Unary",
        request(&[("x-api-key", "reader-key")]),
    )
    .await
    .expect_err("third call from the same address");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    let (_, metrics) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metrics.contains("gateway_rate_limit_rejected_total 1"),
        "{metrics}"
    );
}
