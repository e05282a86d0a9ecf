//! `tonic-msgpack call` against real servers on 127.0.0.1:0: schema-less (trait methods take
//! their arguments as JSON) and with `--proto` (a proto whose messages a `#[derive(Message)]`
//! struct mirrors), for unary, server streaming (NDJSON out), client streaming (NDJSON in),
//! metadata and error statuses; over TLS (`--ca`, `https://`) and mTLS (`--cert`/`--key`)
//! against tonic's own rustls server with certificates made by rcgen.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use tokio_stream::StreamExt as _;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_msgpack::wkt::Timestamp;
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};

/// `calltest.v1.Mood` of fixtures/call.proto.
#[derive(Debug, Default, Clone, Copy, PartialEq, tonic_msgpack::Message)]
pub enum Mood {
    /// `MOOD_UNSPECIFIED`.
    #[default]
    Unspecified = 0,
    /// `HAPPY`.
    Happy = 1,
}

/// `calltest.v1.Note` of fixtures/call.proto: keys are field numbers - 1.
#[derive(Debug, Default, Clone, PartialEq, tonic_msgpack::Message)]
pub struct Note {
    #[msgpack(key = 0)]
    title: String,
    #[msgpack(key = 1)]
    count: u32,
    #[msgpack(key = 2)]
    tags: Vec<String>,
    #[msgpack(key = 4)]
    mood: Mood,
    #[msgpack(key = 5)]
    at: Option<Timestamp>,
    #[msgpack(key = 6)]
    data: Vec<u8>,
}

/// Serves fixtures/call.proto.
#[msgpack_service(package = "calltest.v1")]
pub trait Notes {
    /// Echoes the note with `count + 1`; `INVALID_ARGUMENT` without a title.
    async fn save(&self, note: Note) -> Result<Note, Status>;
    /// `count` copies of the note, numbered.
    async fn repeat(&self, note: Note) -> Result<ServerStream<Note>, Status>;
    /// Titles concatenated, counts added.
    async fn join(&self, notes: Streaming<Note>) -> Result<Note, Status>;
}

/// Schema-less calls.
#[msgpack_service(package = "calltest.v1")]
pub trait Calc {
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// `from` down to 0.
    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status>;
    /// The sum of the stream.
    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status>;
    /// The `x-user` header.
    async fn whoami(&self, metadata: &MetadataMap) -> Result<String, Status>;
}

struct Service;

impl Notes for Service {
    async fn save(&self, mut note: Note) -> Result<Note, Status> {
        if note.title.is_empty() {
            return Err(Status::invalid_argument("title: must not be empty"));
        }
        note.count += 1;
        Ok(note)
    }

    /// `count` copies of the note, numbered.
    async fn repeat(&self, note: Note) -> Result<ServerStream<Note>, Status> {
        let notes = (0..note.count).map(move |index| {
            Ok(Note {
                count: index,
                ..note.clone()
            })
        });
        Ok(Box::pin(tokio_stream::iter(notes)))
    }

    async fn join(&self, mut notes: Streaming<Note>) -> Result<Note, Status> {
        let mut joined = Note::default();
        while let Some(note) = notes.message().await? {
            joined.title.push_str(&note.title);
            joined.count += note.count;
        }
        Ok(joined)
    }
}

impl Calc for Service {
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        a.checked_add(b)
            .ok_or_else(|| Status::out_of_range(format!("{a} + {b} overflows")))
    }

    /// `from` down to 0.
    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status> {
        Ok(Box::pin(tokio_stream::iter((0..=from).rev().map(Ok))))
    }

    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status> {
        let mut values = values;
        let mut total = 0i64;
        while let Some(value) = values.next().await {
            total += value?;
        }
        Ok(total)
    }

    async fn whoami(&self, metadata: &MetadataMap) -> Result<String, Status> {
        metadata
            .get("x-user")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Status::unauthenticated("no x-user"))
    }
}

/// One server for every test, on its own thread and runtime.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                sender
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                tonic::transport::Server::builder()
                    .add_service(NotesServer::new(Service))
                    .add_service(CalcServer::new(Service))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                    .await
                    .expect("serve");
            });
        });
        receiver.recv().expect("server address")
    })
}

fn proto() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/call.proto")
}

/// Runs `tonic-msgpack call ADDR METHOD args…` with `stdin` against the plaintext server.
fn call(method: &str, args: &[&str], stdin: &str) -> Output {
    call_at(&server().to_string(), method, args, stdin)
}

/// Runs `tonic-msgpack call ADDR METHOD args…` with `stdin`.
fn call_at(addr: &str, method: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .arg("call")
        .arg(addr)
        .arg(method)
        .args(args)
        .arg("--timeout")
        .arg("10s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tonic-msgpack");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn schema_less_unary_takes_the_arguments_as_json() {
    assert_eq!(
        ok(call("/calltest.v1.Calc/Add", &["--json", "[1, 2]"], "")),
        "3\n"
    );
    assert_eq!(
        ok(call(
            "/calltest.v1.Calc/Whoami",
            &["--json", "null", "-H", "x-user: ann"],
            ""
        )),
        "\"ann\"\n"
    );
}

#[test]
fn schema_less_streams_are_ndjson() {
    assert_eq!(
        ok(call("/calltest.v1.Calc/Countdown", &["--json", "3"], "")),
        "3\n2\n1\n0\n"
    );
    assert_eq!(
        ok(call("/calltest.v1.Calc/Sum", &[], "1\n2\n\n39\n")),
        "42\n"
    );
}

#[test]
fn error_status_exits_with_one() {
    let output = call(
        "/calltest.v1.Calc/Add",
        &["--json", "[9223372036854775807, 1]"],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("ERROR: OutOfRange 9223372036854775807 + 1 overflows"),
        "{}",
        stderr(&output)
    );
    let output = call("/calltest.v1.Calc/Nope", &["--json", "1"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("ERROR: Unimplemented"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_input_is_reported_with_its_position() {
    let output = call("/calltest.v1.Calc/Add", &["--json", "[1,"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--json: invalid JSON") && stderr(&output).contains("column"),
        "{}",
        stderr(&output)
    );
    let output = call("/calltest.v1.Calc/Sum", &[], "1\n{oops\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("stdin line 2"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));

    let proto = proto();
    let proto = proto.to_str().expect("UTF-8 path");
    let output = call(
        "/calltest.v1.Notes/Save",
        &["--proto", proto, "--json", r#"{"title":"a","count":-1}"#],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("calltest.v1.Note: field \"count\": -1 is out of range"),
        "{}",
        stderr(&output)
    );
    let output = call(
        "/calltest.v1.Notes/Save",
        &["--proto", proto, "--json", r#"{"nope":1}"#],
        "",
    );
    assert!(
        stderr(&output).contains("calltest.v1.Note: unknown field \"nope\""),
        "{}",
        stderr(&output)
    );
    let output = call(
        "/calltest.v1.Notes/Missing",
        &["--proto", proto, "--json", "{}"],
        "",
    );
    assert!(
        stderr(&output).contains("has no method `Missing` (methods: Save, Repeat, Join)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn timestamps_are_checked_as_the_runtime_checks_them() {
    let proto = proto();
    let proto = proto.to_str().expect("UTF-8 path");
    // Second 99 does not exist: refused before anything is sent, naming the field.
    let output = call(
        "/calltest.v1.Notes/Save",
        &[
            "--proto",
            proto,
            "--json",
            r#"{"title":"a","at":"2024-01-01T00:00:99Z"}"#,
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "--json: invalid JSON for calltest.v1.Note: field \"at\": \"2024-01-01T00:00:99Z\" is not an RFC 3339 timestamp"
        ),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));

    // A leap second and an offset are fine; the reply is in UTC.
    let reply = json_lines(&ok(call(
        "/calltest.v1.Notes/Save",
        &[
            "--proto",
            proto,
            "--json",
            r#"{"title":"a","at":"2016-12-31T23:59:60.25+01:00"}"#,
        ],
        "",
    )));
    assert_eq!(reply[0]["at"], "2016-12-31T23:00:00.250Z");
}

#[test]
fn proto_schema_converts_by_field_number() {
    let proto = proto();
    let proto = proto.to_str().expect("UTF-8 path");
    let note = r#"{"title":"a","count":2,"tags":["x","y"],"mood":"HAPPY","at":"2024-05-01T10:00:00.500Z","data":"AQI="}"#;
    let reply = json_lines(&ok(call(
        "/calltest.v1.Notes/Save",
        &["--proto", proto, "--json", note],
        "",
    )));
    let mut expected: serde_json::Value = serde_json::from_str(note).expect("json");
    expected["count"] = 3.into();
    assert_eq!(reply, vec![expected]);

    // Unary without --json: the request is stdin.
    let reply = json_lines(&ok(call(
        "/calltest.v1.Notes/Save",
        &["--proto", proto],
        r#"{"title": "b"}"#,
    )));
    assert_eq!(reply[0]["title"], "b");
    assert_eq!(reply[0]["count"], 1);

    let output = call(
        "/calltest.v1.Notes/Save",
        &["--proto", proto, "--json", "{}"],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("ERROR: InvalidArgument title: must not be empty"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn proto_schema_streams() {
    let proto = proto();
    let proto = proto.to_str().expect("UTF-8 path");
    let replies = json_lines(&ok(call(
        "/calltest.v1.Notes/Repeat",
        &["--proto", proto, "--json", r#"{"title":"r","count":3}"#],
        "",
    )));
    let counts: Vec<_> = replies.iter().map(|reply| reply["count"].clone()).collect();
    assert_eq!(counts, [0, 1, 2]);
    assert!(replies.iter().all(|reply| reply["title"] == "r"));

    let joined = json_lines(&ok(call(
        "/calltest.v1.Notes/Join",
        &["--proto", proto],
        "{\"title\":\"a\",\"count\":1}\n{\"title\":\"b\",\"count\":2}\n",
    )));
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["title"], "ab");
    assert_eq!(joined[0]["count"], 3);
}

/// Certificates made by rcgen for the TLS tests, written to files: a CA, a server certificate
/// for `localhost` and 127.0.0.1, a client CA and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
    server: (String, String),
    client_ca: String,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn make_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA cert");
    (cert.pem(), rcgen::Issuer::new(params, key))
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    names: Vec<String>,
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, ca) = make_ca("call test CA");
        let server = leaf(
            &ca,
            vec!["localhost".into(), "127.0.0.1".into()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_ca_pem, client_ca) = make_ca("call client CA");
        let client = leaf(
            &client_ca,
            vec!["client".into()],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        for (name, text) in [
            ("ca.pem", &ca_pem),
            ("client.pem", &client.0),
            ("client.key", &client.1),
            ("junk.pem", &"not a certificate\n".to_owned()),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        Pki {
            dir,
            server,
            client_ca: client_ca_pem,
        }
    })
}

/// The services over TLS: `(tls, mtls)`, the second requiring a client certificate from the
/// client CA. Both on one thread and runtime of their own.
fn tls_servers() -> (SocketAddr, SocketAddr) {
    static ADDRS: OnceLock<(SocketAddr, SocketAddr)> = OnceLock::new();
    *ADDRS.get_or_init(|| {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let pki = pki();
        let identity = Identity::from_pem(&pki.server.0, &pki.server.1);
        let plain_tls = ServerTlsConfig::new().identity(identity.clone());
        let mutual_tls = ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(Certificate::from_pem(&pki.client_ca));
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let mut addrs = Vec::new();
                let mut servers = Vec::new();
                for tls in [plain_tls, mutual_tls] {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    addrs.push(listener.local_addr().expect("addr"));
                    servers.push(tokio::spawn(
                        tonic::transport::Server::builder()
                            .tls_config(tls)
                            .expect("TLS config")
                            .add_service(CalcServer::new(Service))
                            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                                listener,
                            )),
                    ));
                }
                sender.send((addrs[0], addrs[1])).expect("send");
                for server in servers {
                    let _ = server.await;
                }
            });
        });
        receiver.recv().expect("server addresses")
    })
}

#[test]
fn tls_with_a_ca_file() {
    let (tls, _) = tls_servers();
    let pki = pki();
    let ca = pki.path("ca.pem");
    // A bare address with --ca: TLS, the name checked is the host.
    let local = format!("localhost:{}", tls.port());
    assert_eq!(
        ok(call_at(
            &local,
            "/calltest.v1.Calc/Add",
            &["--json", "[20, 22]", "--ca", &ca],
            ""
        )),
        "42\n"
    );
    // https:// by IP address (the certificate names 127.0.0.1), streaming and metadata.
    let https = format!("https://{tls}");
    assert_eq!(
        ok(call_at(
            &https,
            "/calltest.v1.Calc/Countdown",
            &["--json", "2", "--ca", &ca],
            ""
        )),
        "2\n1\n0\n"
    );
    assert_eq!(
        ok(call_at(
            &https,
            "/calltest.v1.Calc/Whoami",
            &[
                "--json",
                "null",
                "--ca",
                &ca,
                "-H",
                "authorization: Bearer abc",
                "-H",
                "x-user: ann"
            ],
            ""
        )),
        "\"ann\"\n"
    );

    // Without --ca the built-in roots do not know the test CA: refused, saying why.
    let output = call_at(&https, "/calltest.v1.Calc/Add", &["--json", "[1, 2]"], "");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot connect") && message.to_lowercase().contains("certificate"),
        "{message}"
    );
    // The wrong name for the certificate is refused too.
    let output = call_at(
        &https,
        "/calltest.v1.Calc/Add",
        &[
            "--json",
            "[1, 2]",
            "--ca",
            &ca,
            "--server-name",
            "elsewhere.example",
        ],
        "",
    );
    assert!(!output.status.success(), "{}", stdout(&output));
    // Cleartext to a TLS port gets no answer, and http:// with --ca is a contradiction.
    let output = call_at(
        &format!("http://{tls}"),
        "/calltest.v1.Calc/Add",
        &["--json", "[1, 2]", "--ca", &ca],
        "",
    );
    assert!(stderr(&output).contains("cleartext"), "{}", stderr(&output));
}

#[test]
fn mtls_with_a_client_certificate() {
    let (_, mtls) = tls_servers();
    let pki = pki();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let https = format!("https://{mtls}");
    assert_eq!(
        ok(call_at(
            &https,
            "/calltest.v1.Calc/Add",
            &[
                "--json", "[1, 2]", "--ca", &ca, "--cert", &cert, "--key", &key
            ],
            ""
        )),
        "3\n"
    );
    // Without the certificate the server refuses the handshake: the call fails.
    let output = call_at(
        &https,
        "/calltest.v1.Calc/Add",
        &["--json", "[1, 2]", "--ca", &ca],
        "",
    );
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    // --cert needs --key.
    let output = call_at(
        &https,
        "/calltest.v1.Calc/Add",
        &["--json", "[1, 2]", "--ca", &ca, "--cert", &cert],
        "",
    );
    assert!(stderr(&output).contains("--key"), "{}", stderr(&output));
}

#[test]
fn bad_tls_files_are_named() {
    let pki = pki();
    let addr = "localhost:1";
    let output = call_at(
        addr,
        "/calltest.v1.Calc/Add",
        &["--json", "1", "--ca", &pki.path("missing.pem")],
        "",
    );
    assert!(
        stderr(&output).contains("--ca: cannot read") && stderr(&output).contains("missing.pem"),
        "{}",
        stderr(&output)
    );
    let output = call_at(
        addr,
        "/calltest.v1.Calc/Add",
        &["--json", "1", "--ca", &pki.path("junk.pem")],
        "",
    );
    assert!(
        stderr(&output).contains("junk.pem") && stderr(&output).contains("no PEM CERTIFICATE"),
        "{}",
        stderr(&output)
    );
    let output = call_at(
        addr,
        "/calltest.v1.Calc/Add",
        &[
            "--json",
            "1",
            "--cert",
            &pki.path("client.pem"),
            "--key",
            &pki.path("ca.pem"),
        ],
        "",
    );
    assert!(
        stderr(&output).contains("--key") && stderr(&output).contains("no PEM private key"),
        "{}",
        stderr(&output)
    );
}

/// What docs/tls.md shows service authors: the generated client over TLS (trusting a CA), and
/// over mTLS with metadata added by an interceptor (how a bearer token or API key is sent).
#[tokio::test]
async fn the_generated_client_connects_over_tls() {
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let (tls, mtls) = tls_servers();
    let pki = pki();
    let read = |name: &str| std::fs::read_to_string(pki.path(name)).expect("read PEM");
    let limit = std::time::Duration::from_secs(10);

    let channel = Channel::from_shared(format!("https://localhost:{}", tls.port()))
        .expect("uri")
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("ca.pem"))))
        .expect("TLS config");
    let channel = tokio::time::timeout(limit, channel.connect())
        .await
        .expect("connect within the limit")
        .expect("TLS connect");
    let mut client = CalcClient::new(channel);
    let sum = tokio::time::timeout(limit, client.add(40, 2))
        .await
        .expect("call within the limit")
        .expect("add");
    assert_eq!(sum, 42);

    let tls_config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("client.pem"), read("client.key")));
    let channel = Channel::from_shared(format!("https://localhost:{}", mtls.port()))
        .expect("uri")
        .tls_config(tls_config)
        .expect("TLS config");
    let channel = tokio::time::timeout(limit, channel.connect())
        .await
        .expect("connect within the limit")
        .expect("mTLS connect");
    let with_user = |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("x-user", "from-interceptor".parse().expect("ASCII"));
        Ok(request)
    };
    let mut client = CalcClient::new(InterceptedService::new(channel, with_user));
    let user = tokio::time::timeout(limit, client.whoami())
        .await
        .expect("call within the limit")
        .expect("whoami");
    assert_eq!(user, "from-interceptor");
}
