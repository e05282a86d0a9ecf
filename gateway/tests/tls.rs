//! TLS end to end, with certificates made here by rcgen: every call kind through a TLS
//! gateway, REST over TLS, mTLS (refused without a certificate, identity forwarded upstream and
//! given to `[auth]`, handshake failures counted in `/metrics`), RSA, ECDSA and Ed25519 server
//! keys, certificates and client CAs reloaded without a restart, and `https://` upstreams with
//! their own CA (and a wrong one failing with UNAVAILABLE).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::grpc::{self, LIMIT, Upstream, path, routes, two_services};
use support::rest::{shop_routes, start_shop};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};
use tonic::{Code, Request, Status};
use tonic_msgpack::MsgPackCodec;

type Codec = MsgPackCodec<String, String>;

/// A test CA that issues server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA cert");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1, its subject `CN=<name>`.
    fn server(&self, name: &str) -> Leaf {
        self.leaf(
            name,
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject is `CN=<name>`.
    fn client(&self, name: &str) -> Leaf {
        self.leaf(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server certificate for `localhost` and 127.0.0.1 with `key` (any kind rcgen signs).
    fn server_with_key(&self, name: &str, key: KeyPair) -> Leaf {
        self.leaf_with_key(
            key,
            name,
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn leaf(&self, name: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        self.leaf_with_key(KeyPair::generate().expect("key"), name, names, usage)
    }

    fn leaf_with_key(
        &self,
        key: KeyPair,
        name: &str,
        names: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A `[tls]` section for `leaf`, written into `dir`, plus `extra` lines.
fn tls_section(dir: &Path, leaf: &Leaf, extra: &str) -> String {
    let cert = write(dir, "server.pem", &leaf.cert);
    let key = write(dir, "server.key", &leaf.key);
    format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n{extra}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// A tonic channel to `addr` over TLS, trusting `ca`, as `identity` when given.
async fn tls_channel(
    addr: SocketAddr,
    ca: &str,
    identity: Option<&Leaf>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert, &leaf.key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config");
    tokio::time::timeout(LIMIT, endpoint.connect())
        .await
        .expect("connect within the limit")
        .map_err(|err| format!("{err:?}"))
}

async fn client_streaming(channel: &Channel, messages: Vec<String>) -> Result<String, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let request = Request::new(tokio_stream::iter(messages));
        let response = client
            .client_streaming(request, path("/test.Alpha/ClientStream"), Codec::default())
            .await?;
        Ok(response.into_inner())
    })
    .await
    .expect("call ends within the limit")
}

async fn bidi(channel: &Channel, messages: Vec<String>) -> Result<Vec<String>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let request = Request::new(tokio_stream::iter(messages));
        let mut stream = client
            .streaming(request, path("/test.Alpha/Bidi"), Codec::default())
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(message) = stream.next().await {
            out.push(message?);
        }
        Ok(out)
    })
    .await
    .expect("call ends within the limit")
}

/// A unary call with `x-req: value`; the upstream echoes it as `x-resp`.
async fn unary_with_x_req(channel: &Channel, value: &str) -> Result<Option<String>, Status> {
    let mut request = Request::new("hi".to_owned());
    request
        .metadata_mut()
        .insert("x-req", value.parse().expect("value"));
    let response = grpc::unary(channel, "/test.Alpha/Unary", request).await?;
    Ok(response
        .metadata()
        .get("x-resp")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned))
}

#[tokio::test]
async fn every_call_kind_through_a_tls_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let upstream = Upstream::start().await;
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), "")
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let channel = tls_channel(gateway.addr, &ca.pem, None)
        .await
        .expect("TLS connect");

    let unary = grpc::unary(&channel, "/test.Alpha/Unary", Request::new("a".into()))
        .await
        .expect("unary");
    assert_eq!(unary.get_ref(), "test.Alpha:a");
    let streamed = grpc::server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("server streaming");
    assert_eq!(streamed.len(), 5);
    assert_eq!(streamed[4], "test.Beta:s:4");
    let joined = client_streaming(&channel, vec!["x".into(), "y".into()])
        .await
        .expect("client streaming");
    assert_eq!(joined, "test.Alpha:x,y");
    let echoed = bidi(&channel, vec!["p".into(), "q".into()])
        .await
        .expect("bidi");
    assert_eq!(echoed, ["test.Alpha:P", "test.Alpha:Q"]);

    // A client that does not trust the gateway's CA is refused at the handshake.
    let stranger = Ca::new("other CA");
    let refused = match tls_channel(gateway.addr, &stranger.pem, None).await {
        Err(_) => true,
        Ok(channel) => grpc::unary(&channel, "/test.Alpha/Unary", Request::new("a".into()))
            .await
            .is_err(),
    };
    assert!(refused, "a client trusting another CA must not get through");
    // Cleartext on the TLS port gets nothing.
    let (status, _) = support::grpc::http_get(gateway.addr, "/healthz").await;
    assert_eq!(status, 0, "no HTTP answer in the clear on a TLS port");
    gateway.shutdown().await;
}

/// An HTTP/1.1 GET over TLS (ALPN `http/1.1`): (status, body, negotiated ALPN).
async fn https_get(addr: SocketAddr, ca: &str, path: &str) -> (u16, String, Option<Vec<u8>>) {
    let (status, _, body, alpn) = https_request(addr, ca, "GET", path, &[], Vec::new()).await;
    (status, String::from_utf8_lossy(&body).into_owned(), alpn)
}

/// An HTTP/1.1 request over TLS (ALPN `http/1.1`): (status, headers, body, negotiated ALPN).
async fn https_request(
    addr: SocketAddr,
    ca: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Vec<u8>, Option<Vec<u8>>) {
    tokio::time::timeout(LIMIT, async {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http/1.1 handshake");
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, headers, body.to_vec(), alpn)
    })
    .await
    .expect("request within the limit")
}

#[tokio::test]
async fn rest_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let (shop, _gate) = start_shop().await;
    let toml = format!(
        "[upstreams.\"rest.v1.Shop\"]\nendpoints = [\"http://{shop}\"]\n{}",
        tls_section(dir.path(), &ca.server("gateway"), "")
    );
    let gateway = support::start_gateway(&toml, shop_routes()).await;
    let (status, body, alpn) = https_get(gateway.addr, &ca.pem, "/v1/shelves/3/items/7").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(alpn.as_deref(), Some(b"http/1.1".as_slice()));
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(json.is_object(), "{json}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn mtls_required_refuses_clients_without_a_certificate_and_forwards_the_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let clients = Ca::new("client CA");
    let client_ca = write(dir.path(), "clients.pem", &clients.pem);
    let upstream = Upstream::start().await;
    let extra = format!(
        "client_ca_file = {:?}\nidentity_header = \"x-req\"",
        client_ca.display().to_string()
    );
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), &extra)
    );
    let gateway = grpc::gateway(&toml, routes()).await;

    // No certificate: refused at the handshake (TLS 1.3 reports it on the first read).
    let refused = match tls_channel(gateway.addr, &ca.pem, None).await {
        Err(_) => true,
        Ok(channel) => unary_with_x_req(&channel, "anyone").await.is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    // A certificate from another CA: refused too.
    let stranger = Ca::new("stranger").client("mallory");
    let refused = match tls_channel(gateway.addr, &ca.pem, Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => unary_with_x_req(&channel, "anyone").await.is_err(),
    };
    assert!(refused, "a certificate from an unknown CA must be refused");

    // With one: its subject replaces whatever the client put in the identity header.
    let alice = clients.client("alice");
    let channel = tls_channel(gateway.addr, &ca.pem, Some(&alice))
        .await
        .expect("mTLS connect");
    let seen = unary_with_x_req(&channel, "CN=forged")
        .await
        .expect("call with a certificate");
    assert_eq!(seen.as_deref(), Some("CN=alice"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn optional_client_certificates_feed_auth_and_forged_identities_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let clients = Ca::new("client CA");
    let client_ca = write(dir.path(), "clients.pem", &clients.pem);
    let upstream = Upstream::start().await;
    let extra = format!(
        "client_ca_file = {:?}\nclient_auth = \"optional\"\nidentity_header = \"x-req\"",
        client_ca.display().to_string()
    );
    let auth = "[auth]\ndefault_policy = \"deny\"\n[auth.certificate_scopes]\n\"CN=billing\" = [\"write\"]\n[[auth.rules]]\ntarget = \"test.Alpha\"\nscopes = [\"write\"]\n[[auth.rules]]\ntarget = \"test.Beta\"\naccess = \"public\"\n";
    let toml = format!(
        "{}{auth}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), &extra)
    );
    let gateway = grpc::gateway(&toml, routes()).await;

    // Without a certificate: connected, but not authenticated for test.Alpha, and a forged
    // identity header never reaches the upstream.
    let anonymous = tls_channel(gateway.addr, &ca.pem, None)
        .await
        .expect("connect without a certificate");
    let err = unary_with_x_req(&anonymous, "CN=billing")
        .await
        .expect_err("no certificate, no scope");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let mut request = Request::new("hi".to_owned());
    request
        .metadata_mut()
        .insert("x-req", "CN=billing".parse().expect("value"));
    let response = grpc::unary(&anonymous, "/test.Beta/Unary", request)
        .await
        .expect("public method");
    assert_eq!(
        response.metadata().get("x-resp"),
        None,
        "forged identity removed"
    );

    // With the certificate whose subject has the scope: allowed, identity forwarded.
    let billing = clients.client("billing");
    let channel = tls_channel(gateway.addr, &ca.pem, Some(&billing))
        .await
        .expect("mTLS connect");
    let seen = unary_with_x_req(&channel, "CN=forged")
        .await
        .expect("the certificate's scope allows the call");
    assert_eq!(seen.as_deref(), Some("CN=billing"));
    // Another verified certificate without the scope: PERMISSION_DENIED.
    let other = clients.client("other");
    let channel = tls_channel(gateway.addr, &ca.pem, Some(&other))
        .await
        .expect("mTLS connect");
    let err = unary_with_x_req(&channel, "x").await.expect_err("no scope");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    gateway.shutdown().await;
}

/// The leaf certificate a new TLS connection to `addr` is shown (trusting any of `cas`).
async fn served_certificate(addr: SocketAddr, cas: &[&str]) -> Vec<u8> {
    tokio::time::timeout(LIMIT, async {
        let mut roots = rustls::RootCertStore::empty();
        for ca in cas {
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.expect("CA PEM")).expect("CA");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        let (_, session) = stream.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("a certificate")
            .as_ref()
            .to_vec()
    })
    .await
    .expect("handshake within the limit")
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .as_ref()
        .to_vec()
}

#[cfg(unix)]
#[tokio::test]
async fn certificates_are_reloaded_without_a_restart() {
    // SIGHUP is caught by the gateway's upkeep task; registering it here too makes sure the
    // signal can never end the test process.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("SIGHUP handler");
    let dir = tempfile::tempdir().expect("tempdir");
    let first_ca = Ca::new("first CA");
    let first = first_ca.server("gateway-1");
    let upstream = Upstream::start().await;
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &first, "")
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let old = tls_channel(gateway.addr, &first_ca.pem, None)
        .await
        .expect("connect");
    grpc::unary(&old, "/test.Alpha/Unary", Request::new("1".into()))
        .await
        .expect("call");
    assert_eq!(
        served_certificate(gateway.addr, &[&first_ca.pem]).await,
        der(&first.cert)
    );

    // A bidi stream open across the reload: one message before, one after.
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(4);
    let mut client = tonic::client::Grpc::new(old.clone());
    let mut open = tokio::time::timeout(LIMIT, async {
        client.ready().await.expect("ready");
        client
            .streaming(
                Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver)),
                path("/test.Alpha/Bidi"),
                Codec::default(),
            )
            .await
            .expect("bidi starts")
            .into_inner()
    })
    .await
    .expect("stream within the limit");
    sender.send("before".into()).await.expect("send");
    let echoed = tokio::time::timeout(LIMIT, open.message())
        .await
        .expect("reply within the limit")
        .expect("reply");
    assert_eq!(echoed.as_deref(), Some("test.Alpha:BEFORE"));

    // New files from another CA (the key first: a half-written pair is retried next tick).
    let second_ca = Ca::new("second CA");
    let second = second_ca.server("gateway-2");
    write(dir.path(), "server.key", &second.key);
    write(dir.path(), "server.pem", &second.cert);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let both = [first_ca.pem.as_str(), second_ca.pem.as_str()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        if served_certificate(gateway.addr, &both).await == der(&second.cert) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 8 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new client trusting only the new CA gets through; the old connection still works.
    let new = tls_channel(gateway.addr, &second_ca.pem, None)
        .await
        .expect("connect with the new CA");
    grpc::unary(&new, "/test.Alpha/Unary", Request::new("2".into()))
        .await
        .expect("call on a new connection");
    grpc::unary(&old, "/test.Alpha/Unary", Request::new("3".into()))
        .await
        .expect("the open connection is untouched");
    sender.send("after".into()).await.expect("send");
    let echoed = tokio::time::timeout(LIMIT, open.message())
        .await
        .expect("reply within the limit")
        .expect("the open stream keeps working");
    assert_eq!(echoed.as_deref(), Some("test.Alpha:AFTER"));
    drop(sender);
    let end = tokio::time::timeout(LIMIT, open.message())
        .await
        .expect("end within the limit")
        .expect("a clean end");
    assert_eq!(end, None);

    // A broken file keeps the current certificate.
    write(dir.path(), "server.pem", "garbage");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_certificate(gateway.addr, &both).await,
        der(&second.cert)
    );
    gateway.shutdown().await;
}

/// The test services behind TLS (tonic's `ServerTlsConfig`), optionally requiring client
/// certificates from `client_ca`.
async fn tls_upstream(leaf: &Leaf, client_ca: Option<&str>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(&leaf.cert, &leaf.key));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(ca));
    }
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .expect("tls")
        .add_service(grpc::TestService::<0>)
        .add_service(grpc::TestService::<1>)
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

/// Log lines written while it is the current thread's subscriber (the test runtime runs the
/// gateway's tasks on the test's thread).
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn https_upstreams_with_their_own_ca_and_a_wrong_ca_fails() {
    let log = CapturedLog::default();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream_ca = Ca::new("upstream CA");
    let gateway_clients = Ca::new("gateway client CA");
    let addr = tls_upstream(&upstream_ca.server("upstream"), Some(&gateway_clients.pem)).await;
    let ca_file = write(dir.path(), "upstream-ca.pem", &upstream_ca.pem);
    let client = gateway_clients.client("gateway");
    let client_cert = write(dir.path(), "gw.pem", &client.cert);
    let client_key = write(dir.path(), "gw.key", &client.key);
    let wrong_ca = write(dir.path(), "wrong.pem", &Ca::new("wrong").pem);
    let endpoint = format!("https://localhost:{}", addr.port());
    let toml = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{endpoint}\"]\nca_file = {:?}\nclient_cert_file = {:?}\nclient_key_file = {:?}\n\
         [upstreams.\"test.Beta\"]\nendpoints = [\"{endpoint}\"]\nca_file = {:?}\nconnect_timeout = \"500ms\"\n",
        ca_file.display().to_string(),
        client_cert.display().to_string(),
        client_key.display().to_string(),
        wrong_ca.display().to_string(),
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let channel = grpc::channel(&gateway.uri()).await;
    let reply = grpc::unary(&channel, "/test.Alpha/Unary", Request::new("tls".into()))
        .await
        .expect("through an https upstream");
    assert_eq!(reply.get_ref(), "test.Alpha:tls");
    let streamed = grpc::server_streaming(
        &channel,
        "/test.Alpha/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("server streaming through an https upstream");
    assert_eq!(streamed.len(), 5);
    // test.Beta trusts the wrong CA: never connected, never in the clear.
    let err = grpc::unary(&channel, "/test.Beta/Unary", Request::new("x".into()))
        .await
        .expect_err("the upstream's certificate does not verify");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // A log line names the verification error (rustls: "invalid peer certificate: …").
    let lines = log.text();
    assert!(
        lines
            .lines()
            .any(|line| line.contains("invalid peer certificate")),
        "{lines}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn bad_tls_files_are_startup_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere.pem");
    let junk = write(dir.path(), "junk.pem", "junk");
    let build = |toml: String| async move {
        let config = tonic_msgpack_gateway::Config::from_toml(&toml).expect("parses");
        tonic_msgpack_gateway::Gateway::builder()
            .config(config)
            .build()
            .await
            .expect_err("bad TLS files")
            .to_string()
    };
    let err = build(format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        missing.display().to_string(),
        junk.display().to_string()
    ))
    .await;
    assert!(
        err.contains("tls.cert_file") && err.contains("nowhere.pem"),
        "{err}"
    );
    let upstream = format!(
        "[upstreams.a]\nendpoints = [\"https://localhost:1\"]\nca_file = {:?}\n",
        junk.display().to_string()
    );
    let err = build(upstream).await;
    assert!(
        err.contains("upstreams.a.ca_file") && err.contains("junk.pem"),
        "{err}"
    );
    let err = tonic_msgpack_gateway::Config::from_toml(
        "[upstreams.a]\nendpoints = [\"http://x:1\"]\nca_file = \"ca.pem\"\n",
    )
    .expect_err("ca_file without https")
    .to_string();
    assert!(err.contains("upstreams.a.ca_file"), "{err}");
}

/// An RSA key made for these tests (ring cannot generate RSA keys).
const TEST_ONLY_RSA_KEY: &str = include_str!("fixtures/test-only-rsa2048.key");

#[tokio::test]
async fn rsa_ecdsa_and_ed25519_server_keys_each_complete_a_handshake() {
    let ca = Ca::new("test CA");
    let upstream = Upstream::start().await;
    let keys = [
        ("rsa-2048", KeyPair::from_pem(TEST_ONLY_RSA_KEY)),
        (
            "ecdsa-p256",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        ),
        (
            "ecdsa-p384",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        ),
        ("ed25519", KeyPair::generate_for(&rcgen::PKCS_ED25519)),
    ];
    for (kind, key) in keys {
        let dir = tempfile::tempdir().expect("tempdir");
        let leaf = ca.server_with_key(kind, key.expect(kind));
        let toml = format!(
            "{}{}",
            two_services(&upstream.uri(), ""),
            tls_section(dir.path(), &leaf, "")
        );
        let gateway = grpc::gateway(&toml, routes()).await;
        assert_eq!(
            served_certificate(gateway.addr, &[&ca.pem]).await,
            der(&leaf.cert),
            "{kind}"
        );
        let channel = tls_channel(gateway.addr, &ca.pem, None)
            .await
            .unwrap_or_else(|err| panic!("{kind}: {err}"));
        let reply = grpc::unary(&channel, "/test.Alpha/Unary", Request::new(kind.into()))
            .await
            .unwrap_or_else(|err| panic!("{kind}: {err:?}"));
        assert_eq!(reply.get_ref(), &format!("test.Alpha:{kind}"));
        gateway.shutdown().await;
    }
}

/// Whether a client presenting `identity` cannot call through `addr`: refused at the
/// handshake (TLS 1.3 reports a refused client certificate on the first read).
async fn refused(addr: SocketAddr, ca: &str, identity: Option<&Leaf>) -> bool {
    match tls_channel(addr, ca, identity).await {
        Err(_) => true,
        Ok(channel) => unary_with_x_req(&channel, "x").await.is_err(),
    }
}

/// The value of an unlabelled counter in `/metrics`.
async fn counter(admin: SocketAddr, name: &str) -> u64 {
    let (_, metrics) = grpc::http_get(admin, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[cfg(unix)]
#[tokio::test]
async fn client_cas_are_reloaded_without_a_restart_and_refusals_are_counted() {
    // As in `certificates_are_reloaded_without_a_restart`: SIGHUP must never end the tests.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("SIGHUP handler");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let first = Ca::new("first client CA");
    let second = Ca::new("second client CA");
    let client_ca = write(dir.path(), "clients.pem", &first.pem);
    let upstream = Upstream::start().await;
    let extra = format!(
        "client_ca_file = {:?}\nidentity_header = \"x-req\"",
        client_ca.display().to_string()
    );
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), &extra)
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let failures = "gateway_tls_handshake_failures_total";
    assert_eq!(counter(gateway.admin(), failures).await, 0);

    let alice = first.client("alice");
    let bob = second.client("bob");
    let old = tls_channel(gateway.addr, &ca.pem, Some(&alice))
        .await
        .expect("alice connects");
    assert_eq!(
        unary_with_x_req(&old, "x").await.expect("alice").as_deref(),
        Some("CN=alice")
    );
    assert!(
        refused(gateway.addr, &ca.pem, Some(&bob)).await,
        "bob's CA is not trusted yet"
    );
    assert!(refused(gateway.addr, &ca.pem, None).await, "no certificate");
    assert!(
        counter(gateway.admin(), failures).await >= 2,
        "each refused handshake is counted"
    );

    // The second CA replaces the first: bob gets in, alice's new connections do not, and her
    // open connection is untouched.
    write(dir.path(), "clients.pem", &second.pem);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while refused(gateway.addr, &ca.pem, Some(&bob)).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new client CA was not used within 8 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = tls_channel(gateway.addr, &ca.pem, Some(&bob))
        .await
        .expect("bob connects");
    assert_eq!(
        unary_with_x_req(&channel, "x")
            .await
            .expect("bob")
            .as_deref(),
        Some("CN=bob")
    );
    assert!(
        refused(gateway.addr, &ca.pem, Some(&alice)).await,
        "alice's CA is gone"
    );
    assert_eq!(
        unary_with_x_req(&old, "x")
            .await
            .expect("open connection")
            .as_deref(),
        Some("CN=alice")
    );

    // A broken file keeps the CAs in use.
    write(dir.path(), "clients.pem", "garbage");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !refused(gateway.addr, &ca.pem, Some(&bob)).await,
        "bob still gets in"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn grpc_web_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let upstream = Upstream::start().await;
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), "")
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    // One gRPC-Web frame: flag 0, length, the MessagePack string "w".
    let message = [0xa1, b'w'];
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let (status, headers, body, alpn) = https_request(
        gateway.addr,
        &ca.pem,
        "POST",
        "/test.Alpha/Unary",
        &[
            ("content-type", "application/grpc-web"),
            ("x-grpc-web", "1"),
        ],
        frame,
    )
    .await;
    assert_eq!(status, 200, "{headers:?}");
    assert_eq!(alpn.as_deref(), Some(b"http/1.1".as_slice()));
    // The reply frame ("test.Alpha:w") and then the trailers frame with grpc-status 0.
    let reply = b"test.Alpha:w";
    assert!(body.len() > 5 + 1 + reply.len(), "{body:?}");
    assert_eq!(body[0], 0, "a message frame first: {body:?}");
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(&body[6..5 + length], reply);
    let trailers = &body[5 + length..];
    assert_eq!(trailers[0], 0x80, "then the trailers frame: {body:?}");
    let text = String::from_utf8_lossy(&trailers[5..]).to_ascii_lowercase();
    assert!(text.contains("grpc-status:0"), "{text}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn expired_client_certificates_are_refused_at_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let clients = Ca::new("client CA");
    let client_ca = write(dir.path(), "clients.pem", &clients.pem);
    let upstream = Upstream::start().await;
    let extra = format!(
        "client_ca_file = {:?}\nidentity_header = \"x-req\"",
        client_ca.display().to_string()
    );
    let toml = format!(
        "{}{}",
        two_services(&upstream.uri(), ""),
        tls_section(dir.path(), &ca.server("gateway"), &extra)
    );
    let gateway = grpc::gateway(&toml, routes()).await;

    // Issued by the trusted CA, but valid only in 2020.
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "expired");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    let expired = Leaf {
        cert: params.signed_by(&key, &clients.issuer).expect("leaf").pem(),
        key: key.serialize_pem(),
    };
    assert!(
        refused(gateway.addr, &ca.pem, Some(&expired)).await,
        "an expired client certificate must be refused"
    );
    // The same CA's current certificate gets through.
    let channel = tls_channel(gateway.addr, &ca.pem, Some(&clients.client("current")))
        .await
        .expect("mTLS connect");
    assert_eq!(
        unary_with_x_req(&channel, "x")
            .await
            .expect("call")
            .as_deref(),
        Some("CN=current")
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn https_endpoints_never_send_cleartext() {
    // A raw listener stands in for the upstream: the first bytes the gateway sends must be a
    // TLS handshake record (0x16 0x03 ..), never the HTTP/2 preface in the clear.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let toml = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"https://127.0.0.1:{port}\"]\nconnect_timeout = \"2s\"\n"
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let channel = grpc::channel(&gateway.uri()).await;
    let call = tokio::spawn(async move {
        grpc::unary(&channel, "/test.Alpha/Unary", Request::new("secret".into())).await
    });
    let (mut stream, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("the gateway connects within the limit")
        .expect("accept");
    let mut first = [0u8; 5];
    tokio::time::timeout(
        LIMIT,
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut first),
    )
    .await
    .expect("bytes within the limit")
    .expect("read");
    assert_eq!(first[0], 0x16, "a TLS handshake record, got {first:?}");
    assert_eq!(first[1], 0x03, "a TLS version, got {first:?}");
    assert_ne!(&first, b"PRI *", "never the HTTP/2 preface in the clear");
    drop(stream);
    drop(listener);
    let result = tokio::time::timeout(LIMIT, call)
        .await
        .expect("the call ends within the limit")
        .expect("join");
    let err = result.expect_err("no TLS server there");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    gateway.shutdown().await;
}

/// A `#[msgpack_service]` trait on the wire as `test.Alpha` (the routes of the support
/// module), so its generated client can call every kind through a TLS gateway.
#[tonic_msgpack::msgpack_service(package = "test", name = "Alpha")]
pub trait Tally {
    /// `a + b`.
    #[rpc(name = "Unary")]
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// `from` down to 0.
    #[rpc(name = "ServerStream")]
    async fn countdown(&self, from: u32) -> Result<tonic_msgpack::ServerStream<u32>, Status>;
    /// The sum of the stream.
    #[rpc(name = "ClientStream")]
    async fn sum(&self, values: tonic_msgpack::Streaming<i64>) -> Result<i64, Status>;
    /// The running total of the stream.
    #[rpc(name = "Bidi")]
    async fn running_total(
        &self,
        values: tonic_msgpack::Streaming<i64>,
    ) -> Result<tonic_msgpack::ServerStream<i64>, Status>;
}

struct Tallies;

impl Tally for Tallies {
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        a.checked_add(b)
            .ok_or_else(|| Status::out_of_range("overflow"))
    }

    async fn countdown(&self, from: u32) -> Result<tonic_msgpack::ServerStream<u32>, Status> {
        Ok(Box::pin(tokio_stream::iter((0..=from).rev().map(Ok))))
    }

    async fn sum(&self, mut values: tonic_msgpack::Streaming<i64>) -> Result<i64, Status> {
        let mut total = 0;
        while let Some(value) = values.message().await? {
            total += value;
        }
        Ok(total)
    }

    async fn running_total(
        &self,
        values: tonic_msgpack::Streaming<i64>,
    ) -> Result<tonic_msgpack::ServerStream<i64>, Status> {
        let mut total = 0;
        Ok(Box::pin(values.map(move |value| {
            total += value?;
            Ok(total)
        })))
    }
}

#[tokio::test]
async fn the_generated_client_through_a_tls_gateway() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AlphaServer::new(Tallies))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("test CA");
    let toml = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{upstream}\"]\n{}",
        tls_section(dir.path(), &ca.server("gateway"), "")
    );
    let gateway = grpc::gateway(&toml, routes()).await;
    let channel = tls_channel(gateway.addr, &ca.pem, None)
        .await
        .expect("TLS connect");
    let mut client = AlphaClient::new(channel);
    tokio::time::timeout(LIMIT, async {
        assert_eq!(client.add(40, 2).await.expect("unary"), 42);
        let countdown: Vec<u32> = client
            .countdown(3)
            .await
            .expect("server streaming")
            .map(|n| n.expect("message"))
            .collect()
            .await;
        assert_eq!(countdown, [3, 2, 1, 0]);
        let sum = client
            .sum(tokio_stream::iter([1, 2, 3, 4]))
            .await
            .expect("client streaming");
        assert_eq!(sum, 10);
        let mut totals = client
            .running_total(tokio_stream::iter([5, 10, -3]))
            .await
            .expect("bidi");
        let mut seen = Vec::new();
        while let Some(total) = totals.message().await.expect("message") {
            seen.push(total);
        }
        assert_eq!(seen, [5, 15, 12]);
        let err = client.add(i64::MAX, 1).await.expect_err("overflow");
        assert_eq!(err.code(), Code::OutOfRange);
    })
    .await
    .expect("calls within the limit");
    gateway.shutdown().await;
}
