//! `tonic-msgpack call` against real servers on 127.0.0.1:0: schema-less (trait methods take
//! their arguments as JSON) and with `--proto` (a proto whose messages a `#[derive(Message)]`
//! struct mirrors), for unary, server streaming (NDJSON out), client streaming (NDJSON in),
//! metadata and error statuses.

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

/// Runs `tonic-msgpack call ADDR METHOD args…` with `stdin`.
fn call(method: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .arg("call")
        .arg(server().to_string())
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
        stderr(&output).contains("calltest.v1.Note.count: -1 is out of range"),
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
            "--json: calltest.v1.Note.at: invalid timestamp: \"2024-01-01T00:00:99Z\" is not an RFC 3339 timestamp"
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
