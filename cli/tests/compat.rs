//! `tonic-msgpack check-compat`: one fixture pair per rule (`tests/data/compat/<rule>/{old,new}`)
//! with its exact classification and message, the decoder behaviour the trailing-argument rule
//! rests on, a property test (a contract against itself, or plus fields at new numbers, has no
//! error), the example app's contracts against a broken copy, and `--against-git`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compat")
}

fn run_json(old: &Path, new: &Path) -> (Output, serde_json::Value) {
    let output = tool()
        .arg("check-compat")
        .arg(old)
        .arg(new)
        .args(["--format", "json"])
        .output()
        .expect("run tonic-msgpack");
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, json)
}

/// `(severity, rule, location relative to the fixture, message)`.
type Expected = (&'static str, &'static str, &'static str, &'static str);

const CASES: &[(&str, &[Expected])] = &[
    (
        "argument-appended",
        &[(
            "error",
            "argument-appended",
            "new/calc.rs:6:41",
            "argument `scale` was appended to `fx.v1.Calc/Add`: the request goes from an array of 2 to an array of 3 and the trait decoder requires every argument (an `Option` one too), so the new server rejects old clients' requests and old servers reject new clients' requests",
        )],
    ),
    (
        "argument-inserted",
        &[(
            "error",
            "argument-inserted",
            "new/calc.rs:6:33",
            "argument `scale` was inserted before `b` in `fx.v1.Calc/Add`: every later argument moves one position, so old clients' values reach the wrong arguments and the new server rejects their shorter requests",
        )],
    ),
    (
        "argument-removed",
        &[(
            "error",
            "argument-removed",
            "new/calc.rs:6:14",
            "argument `b` of `fx.v1.Calc/Add` was removed: the request goes from an array of 2 to a bare value, so the new server rejects old clients' requests and old servers reject new clients' requests",
        )],
    ),
    (
        "argument-renamed",
        &[(
            "warning",
            "argument-renamed",
            "new/calc.rs:6:33",
            "argument `b` of `fx.v1.Calc/Add` was renamed to `addend`: the MessagePack bytes are unchanged (arguments travel by position), but REST/JSON callers that send `{\"b\": …}` and HTTP templates naming it break",
        )],
    ),
    (
        "argument-reordered",
        &[(
            "error",
            "argument-reordered",
            "new/calc.rs:6:14",
            "arguments of `fx.v1.Calc/Add` were reordered from (a, b) to (b, a): arguments travel by position, so old clients' values reach the wrong arguments of the new server (silently when the types match, rejected when they do not)",
        )],
    ),
    (
        "argument-retyped",
        &[(
            "error",
            "argument-retyped",
            "new/calc.rs:6:33",
            "argument `b` of `fx.v1.Calc/Add` changed from int64 to string (int64 ↔ string: different MessagePack types): the new server rejects old clients' requests and old servers reject new clients' requests",
        )],
    ),
    (
        "call-kind-changed",
        &[(
            "error",
            "call-kind-changed",
            "new/shop.proto:4:3",
            "method `fx.v1.Shop/Get` changed from unary to server streaming: old clients and the new server disagree on how many messages each side sends, so calls fail both ways",
        )],
    ),
    (
        "enum-value-added",
        &[(
            "ok",
            "enum-value-added",
            "new/shop.proto:14:3",
            "enum value `MOOD_CALM` (3) was added to `fx.v1.Mood`: old clients read it as an unknown number",
        )],
    ),
    (
        "enum-value-removed",
        &[(
            "warning",
            "enum-value-removed",
            "old/shop.proto:13:3",
            "enum value `MOOD_SAD` (2) of `fx.v1.Mood` was removed: old clients may still send 2, which the new server no longer names; reserve the number so it is not reused",
        )],
    ),
    (
        "enum-value-renamed",
        &[(
            "warning",
            "enum-value-renamed",
            "new/shop.proto:13:3",
            "enum value 2 of `fx.v1.Mood` was renamed from `MOOD_SAD` to `MOOD_BLUE`: the bytes are unchanged (enums travel as numbers), but source code and REST/JSON callers that use the old name break",
        )],
    ),
    (
        "enum-value-renumbered",
        &[
            (
                "error",
                "enum-value-renumbered",
                "new/shop.proto:13:3",
                "enum value `MOOD_HAPPY` of `fx.v1.Mood` changed from 1 to 2: enums travel as numbers, so old and new peers read each other's `MOOD_HAPPY` as another value",
            ),
            (
                "error",
                "enum-value-renumbered",
                "new/shop.proto:12:3",
                "enum value `MOOD_SAD` of `fx.v1.Mood` changed from 2 to 1: enums travel as numbers, so old and new peers read each other's `MOOD_SAD` as another value",
            ),
        ],
    ),
    (
        "field-added",
        &[(
            "ok",
            "field-added",
            "new/shop.proto:9:3",
            "field `tags` (3) was added to `fx.v1.Item`: old clients ignore it, and the new server reads its default from old clients",
        )],
    ),
    (
        "field-number-reused",
        &[(
            "error",
            "field-number-reused",
            "new/shop.proto:9:3",
            "field number 2 of `fx.v1.Item` was `int64 count` and is now `bytes photo`: old clients' values land in the new field with another type, so the new server rejects old clients' messages and old clients reject the new server's",
        )],
    ),
    (
        "field-removed-reserved",
        &[(
            "ok",
            "field-removed",
            "new/shop.proto:6:1",
            "field `count` (2) of `fx.v1.Item` was removed and its number reserved: old clients' values are ignored and they read the default",
        )],
    ),
    (
        "field-removed",
        &[(
            "warning",
            "field-removed",
            "old/shop.proto:8:3",
            "field `count` (2) of `fx.v1.Item` was removed without reserving its number: old clients' values are ignored and they read the default, but a later field could reuse number 2 with another type (add `reserved 2;`)",
        )],
    ),
    (
        "field-renamed",
        &[(
            "warning",
            "field-renamed",
            "new/shop.proto:8:3",
            "field 2 of `fx.v1.Item` was renamed from `count` to `quantity`: the MessagePack bytes are unchanged (compact is by number), but generated code and REST/JSON callers that use the old name break",
        )],
    ),
    (
        "field-type-int-float",
        &[(
            "error",
            "field-type-changed",
            "new/shop.proto:8:3",
            "field `count` (2) of `fx.v1.Item` changed from int64 to float64 (int ↔ float: MessagePack ints and floats are different types): the new server rejects old clients' values and old clients reject the new server's",
        )],
    ),
    (
        "field-type-message-scalar",
        &[(
            "error",
            "field-type-changed",
            "new/shop.proto:8:3",
            "field `size` (2) of `fx.v1.Item` changed from message fx.v1.Size to int32 (message ↔ scalar: a nested array or map where a plain value was, or the reverse): the new server rejects old clients' values and old clients reject the new server's",
        )],
    ),
    (
        "field-type-narrowed",
        &[(
            "warning",
            "field-type-narrowed",
            "new/shop.proto:8:3",
            "field `count` (2) of `fx.v1.Item` changed from int64 to int32: values outside int32 that an old peer sends fail to decode",
        )],
    ),
    (
        "field-type-scalar-repeated",
        &[(
            "error",
            "field-type-changed",
            "new/shop.proto:8:3",
            "field `count` (2) of `fx.v1.Item` changed from int64 to repeated int64 (scalar ↔ repeated: an array where a single value was, or the reverse): the new server rejects old clients' values and old clients reject the new server's",
        )],
    ),
    (
        "field-type-string-bytes",
        &[(
            "error",
            "field-type-changed",
            "new/shop.proto:7:3",
            "field `name` (1) of `fx.v1.Item` changed from string to bytes (string ↔ bytes: MessagePack str and bin are different types): the new server rejects old clients' values and old clients reject the new server's",
        )],
    ),
    (
        "format-changed",
        &[(
            "error",
            "format-changed",
            "new/calc.rs:5:11",
            "service `fx.v1.Calc` changed its layout from compact (arrays by field number) to named (maps by key): old clients cannot decode the new server's replies and the new server rejects old clients' requests",
        )],
    ),
    (
        "http-added",
        &[(
            "ok",
            "http-added",
            "new/calc.rs:7:14",
            "REST binding `GET /v1/add/{a}/{b}` was added to `fx.v1.Calc/Add`: existing callers are not affected",
        )],
    ),
    (
        "http-changed",
        &[(
            "error",
            "http-changed",
            "new/shop.proto:5:3",
            "REST binding of `fx.v1.Shop/Get` changed from `GET /v1/items/{name}` to `POST /v1/items (body *)`: REST clients of the old contract get 404 or lose fields at a gateway with the new routes",
        )],
    ),
    (
        "http-removed",
        &[(
            "error",
            "http-removed",
            "new/calc.rs:6:14",
            "REST binding `GET /v1/add/{a}/{b}` of `fx.v1.Calc/Add` was removed: REST clients of the old contract get 404 from a gateway with the new routes",
        )],
    ),
    (
        "key-case-changed",
        &[(
            "error",
            "key-case-changed",
            "new/calc.rs:6:12",
            "message `Point` changed its key case from as written to camelCase: every key is spelled differently, so old clients' fields are ignored by the new server and the new server's fields by old clients (values silently become defaults)",
        )],
    ),
    (
        "method-added",
        &[(
            "ok",
            "method-added",
            "new/calc.rs:7:14",
            "method `fx.v1.Calc/Ping` was added: old clients are not affected (new clients calling it on an old server get UNIMPLEMENTED)",
        )],
    ),
    (
        "method-removed",
        &[(
            "error",
            "method-removed",
            "old/shop.proto:5:3",
            "method `fx.v1.Shop/Put` was removed: old clients calling it get UNIMPLEMENTED from the new server",
        )],
    ),
    (
        "method-renamed",
        &[(
            "error",
            "method-renamed",
            "new/calc.rs:6:14",
            "method `fx.v1.Calc/Add` was renamed to `Plus`: its gRPC path changes, so old clients get UNIMPLEMENTED from the new server and new clients get UNIMPLEMENTED from old servers",
        )],
    ),
    (
        "named-key-renamed",
        &[(
            "error",
            "named-key-renamed",
            "new/calc.rs:8:9",
            "key `y_pos` of `Point` (named layout) was renamed to `why_pos`: old clients' `y_pos` is ignored by the new server and the new server's `why_pos` by old clients, so the value silently becomes its default both ways",
        )],
    ),
    (
        "request-type-changed",
        &[(
            "error",
            "request-type-changed",
            "new/shop.proto:4:3",
            "request of `fx.v1.Shop/Get` changed from message fx.v1.Item to message fx.v1.Query (field `name`: string ↔ int64: different MessagePack types): the new server rejects old clients' requests, and old servers reject new clients' requests",
        )],
    ),
    (
        "return-type-changed",
        &[(
            "error",
            "return-type-changed",
            "new/calc.rs:6:14",
            "response of `fx.v1.Calc/Add` changed from int64 to string (int64 ↔ string: different MessagePack types): old clients cannot decode the new server's replies, and new clients cannot decode old servers' replies",
        )],
    ),
    ("unreachable-struct", &[]),
    (
        "service-added",
        &[(
            "ok",
            "service-added",
            "new/shop.proto:6:1",
            "service `fx.v1.Admin` was added: nothing existing changes (new clients calling it on an old server get UNIMPLEMENTED)",
        )],
    ),
    (
        "service-removed",
        &[(
            "error",
            "service-removed",
            "old/shop.proto:6:1",
            "service `fx.v1.Admin` was removed: old clients calling any of its methods get UNIMPLEMENTED from the new server",
        )],
    ),
    (
        "service-renamed",
        &[(
            "error",
            "service-renamed",
            "new/shop.proto:3:1",
            "service `fx.v1.Shop` was renamed to `fx.v1.Store`: the gRPC paths change, so old clients get UNIMPLEMENTED from the new server and new clients get UNIMPLEMENTED from old servers",
        )],
    ),
];

#[test]
fn every_rule_has_a_fixture_with_its_exact_classification_and_message() {
    let root = fixtures();
    let mut on_disk: Vec<String> = std::fs::read_dir(&root)
        .expect("fixtures")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(name, _)| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every fixture directory has a case here");
    for (name, expected) in CASES {
        let dir = root.join(name);
        let (output, json) = run_json(&dir.join("old"), &dir.join("new"));
        let prefix = format!("{}/", dir.display());
        let found: Vec<(String, String, String, String)> = json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let file = f["file"].as_str().expect("file");
                (
                    f["severity"].as_str().expect("severity").to_owned(),
                    f["rule"].as_str().expect("rule").to_owned(),
                    format!(
                        "{}:{}:{}",
                        file.strip_prefix(&prefix).unwrap_or(file),
                        f["line"],
                        f["column"]
                    ),
                    f["message"].as_str().expect("message").to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String, String)> = expected
            .iter()
            .map(|(s, r, l, m)| ((*s).into(), (*r).into(), (*l).into(), (*m).into()))
            .collect();
        assert_eq!(found, expected, "fixture {name}");
        let has_error = expected.iter().any(|(s, ..)| s == "error");
        assert_eq!(output.status.success(), !has_error, "exit status of {name}");
    }
}

#[test]
fn text_output_names_severity_rule_and_location() {
    let dir = fixtures().join("field-type-string-bytes");
    let output = tool()
        .arg("check-compat")
        .arg(dir.join("old"))
        .arg(dir.join("new"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let new = dir.join("new/shop.proto");
    assert!(
        text.starts_with(&format!(
            "error[field-type-changed] {}:7:3: field `name` (1)",
            new.display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with("1 error(s), 0 warning(s), 0 safe change(s)\n"),
        "{text}"
    );
}

/// The rule for an appended argument rests on what the runtime's decoder does with a trait's
/// argument tuple: it needs every element (an `Option` one too) and refuses extra ones.
#[test]
fn the_trait_decoder_rejects_a_missing_or_extra_trailing_argument() {
    let two = tonic_msgpack::to_vec(&(1i64, 2i64)).expect("encode");
    let three = tonic_msgpack::to_vec(&(1i64, 2i64, Some(3i64))).expect("encode");
    let missing = tonic_msgpack::decode_frame::<(i64, i64, Option<i64>)>(&two)
        .expect_err("a missing trailing Option argument");
    assert_eq!(missing.code(), tonic::Code::InvalidArgument, "{missing:?}");
    let extra = tonic_msgpack::decode_frame::<(i64, i64)>(&three).expect_err("an extra argument");
    assert_eq!(extra.code(), tonic::Code::InvalidArgument, "{extra:?}");
    // One argument → two changes the body from a bare value to an array.
    let bare = tonic_msgpack::to_vec(&7i64).expect("encode");
    assert!(tonic_msgpack::decode_frame::<(i64, Option<i64>)>(&bare).is_err());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// The example app's two contracts: `greeter.proto` and the Calculator trait.
fn example_contracts(dir: &Path) {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../example-app");
    copy_dir(&app.join("proto"), &dir.join("proto"));
    std::fs::copy(app.join("src/calculator.rs"), dir.join("calculator.rs")).expect("copy");
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

fn rules(json: &serde_json::Value, severity: &str) -> Vec<String> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["rule"].as_str().expect("rule").to_owned())
        .collect()
}

#[test]
fn the_example_contracts_against_a_broken_copy() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (temp.path().join("old"), temp.path().join("new"));
    example_contracts(&old);
    example_contracts(&new);

    let (output, json) = run_json(&old, &new);
    assert!(output.status.success());
    assert_eq!(
        json["findings"],
        serde_json::json!([]),
        "unchanged: nothing to report"
    );

    let greeter = new.join("proto/demo/v1/greeter.proto");
    edit(&greeter, "uint32 count = 2;", "string count = 2;");
    edit(
        &greeter,
        "google.protobuf.Timestamp at = 3;",
        "google.protobuf.Timestamp at = 3; string lang = 4;",
    );
    edit(
        &greeter,
        "  rpc Chat(stream HelloRequest) returns (stream HelloReply);\n",
        "",
    );
    let calculator = new.join("calculator.rs");
    edit(
        &calculator,
        "async fn add(&self, a: i64, b: i64)",
        "async fn add(&self, b: i64, a: i64)",
    );
    edit(
        &calculator,
        "async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status>;",
        "async fn countdown(&self, from: u32) -> Result<ServerStream<String>, Status>;",
    );
    edit(&calculator, "#[rpc(http = \"GET /v1/add/{a}/{b}\")]", "");

    let (output, json) = run_json(&old, &new);
    assert_eq!(output.status.code(), Some(1));
    let mut errors = rules(&json, "error");
    errors.sort();
    assert_eq!(
        errors,
        [
            "argument-reordered",
            "field-type-changed",
            "http-removed",
            "method-removed",
            "return-type-changed"
        ]
    );
    assert_eq!(rules(&json, "ok"), ["field-added"]);
    assert_eq!(json["errors"], 5);
}

#[test]
fn against_git_reads_the_old_side_from_a_revision() {
    let temp = tempfile::tempdir().expect("tempdir");
    let repo = temp.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git");
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q"]);
    let contracts = repo.join("contracts");
    example_contracts(&contracts);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    edit(
        &contracts.join("proto/demo/v1/greeter.proto"),
        "uint32 count = 2;",
        "repeated uint32 count = 2;",
    );
    let output = tool()
        .arg("check-compat")
        .arg(&contracts)
        .args(["--against-git", "HEAD"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("error[field-type-changed]")
            && text.contains("changed from uint32 to repeated uint32"),
        "{text}"
    );
    // Unchanged against the same revision: nothing but the summary.
    git(&["commit", "-q", "-am", "v2"]);
    let output = tool()
        .arg("check-compat")
        .arg(&contracts)
        .args(["--against-git", "HEAD"])
        .output()
        .expect("run");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0 error(s), 0 warning(s), 0 safe change(s)\n"
    );
}

/// A random proto contract: messages with fields of every kind, an enum, a service.
#[derive(Debug, Clone)]
struct RandomProto {
    messages: Vec<Vec<(u32, &'static str)>>,
    enum_values: u32,
    methods: Vec<(usize, usize, bool, bool)>,
}

const FIELD_TYPES: &[&str] = &[
    "string",
    "bytes",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint64",
    "fixed32",
    "double",
    "float",
    "bool",
    "repeated string",
    "repeated int64",
    "map<string, int64>",
    "Mood",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.StringValue",
    "optional int32",
];

fn random_proto() -> impl Strategy<Value = RandomProto> {
    let field = (1u32..40, 0..FIELD_TYPES.len()).prop_map(|(n, t)| (n, FIELD_TYPES[t]));
    let message = prop::collection::vec(field, 1..8).prop_map(|mut fields| {
        fields.sort_by_key(|(n, _)| *n);
        fields.dedup_by_key(|(n, _)| *n);
        fields
    });
    (
        prop::collection::vec(message, 1..5),
        1u32..6,
        prop::collection::vec((0usize..5, 0usize..5, any::<bool>(), any::<bool>()), 1..5),
    )
        .prop_map(|(messages, enum_values, methods)| RandomProto {
            messages,
            enum_values,
            methods,
        })
}

impl RandomProto {
    /// The `.proto` text; `extra` adds that many fields to every message past its highest number.
    fn render(&self, extra: u32) -> String {
        let mut out = String::from(
            "syntax = \"proto3\";\npackage prop.v1;\nimport \"google/protobuf/timestamp.proto\";\nimport \"google/protobuf/duration.proto\";\nimport \"google/protobuf/wrappers.proto\";\n",
        );
        out.push_str("enum Mood {\n");
        for v in 0..self.enum_values {
            out.push_str(&format!("  MOOD_{v} = {v};\n"));
        }
        out.push_str("}\n");
        for (i, fields) in self.messages.iter().enumerate() {
            out.push_str(&format!("message M{i} {{\n"));
            for (number, ty) in fields {
                out.push_str(&format!("  {ty} f{number} = {number};\n"));
            }
            let top = fields.iter().map(|(n, _)| *n).max().unwrap_or(0);
            for k in 1..=extra {
                let ty = FIELD_TYPES[(k as usize * 7) % FIELD_TYPES.len()];
                out.push_str(&format!("  {ty} added{k} = {};\n", top + k));
            }
            if i > 0 {
                out.push_str(&format!("  M{} parent = 100;\n", i - 1));
            }
            out.push_str("}\n");
        }
        out.push_str("service Svc {\n");
        for (m, (input, output, client, server)) in self.methods.iter().enumerate() {
            let n = self.messages.len();
            out.push_str(&format!(
                "  rpc Call{m}({}M{}) returns ({}M{});\n",
                if *client { "stream " } else { "" },
                input % n,
                if *server { "stream " } else { "" },
                output % n
            ));
        }
        out.push_str("}\n");
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_contract_against_itself_or_plus_new_fields_has_no_error(proto in random_proto(), extra in 1u32..4) {
        let temp = tempfile::tempdir().expect("tempdir");
        let (old, same, grown) = (temp.path().join("old"), temp.path().join("same"), temp.path().join("grown"));
        for dir in [&old, &same, &grown] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(old.join("c.proto"), proto.render(0)).expect("write");
        std::fs::write(same.join("c.proto"), proto.render(0)).expect("write");
        std::fs::write(grown.join("c.proto"), proto.render(extra)).expect("write");

        let (output, json) = run_json(&old, &same);
        prop_assert!(output.status.success(), "{json:#}");
        prop_assert_eq!(&json["findings"], &serde_json::json!([]));

        let (output, json) = run_json(&old, &grown);
        prop_assert!(output.status.success(), "{json:#}");
        prop_assert_eq!(&json["errors"], &serde_json::json!(0), "{:#}", json);
        prop_assert_eq!(&json["warnings"], &serde_json::json!(0), "{:#}", json);
        let added = rules(&json, "ok").iter().filter(|r| *r == "field-added").count();
        prop_assert_eq!(added, proto.messages.len() * extra as usize);
    }
}

#[test]
fn a_descriptor_set_is_a_contract_too() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (temp.path().join("old"), temp.path().join("new"));
    std::fs::create_dir_all(&old).expect("mkdir");
    example_contracts(&new);
    // The old side: only the descriptor set `tonic-msgpack schema` writes for the protos.
    let status = tool()
        .arg("schema")
        .arg("--proto")
        .arg(new.join("proto"))
        .arg("--out")
        .arg(old.join("services.binpb"))
        .output()
        .expect("run schema");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::remove_file(new.join("calculator.rs")).expect("rm");
    let greeter = new.join("proto/demo/v1/greeter.proto");
    edit(&greeter, "uint32 count = 2;", "bytes count = 2;");
    let (output, json) = run_json(&old, &new);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(rules(&json, "error"), ["field-type-changed"]);
    assert_eq!(json["findings"][0]["line"], 10);
}

#[test]
fn a_synthesized_trait_descriptor_matches_its_trait() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (temp.path().join("old"), temp.path().join("new"));
    std::fs::create_dir_all(&old).expect("mkdir");
    example_contracts(&new);
    std::fs::remove_dir_all(new.join("proto")).expect("rm");
    // The old side: the descriptor `tonic-msgpack schema` synthesizes for the trait (layout
    // options: arguments, value), which must read as the same contract as the trait itself.
    let status = tool()
        .arg("schema")
        .arg("--traits")
        .arg(new.join("calculator.rs"))
        .arg("--out")
        .arg(old.join("services.binpb"))
        .output()
        .expect("run schema");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (output, json) = run_json(&old, &new);
    assert!(output.status.success(), "{json:#}");
    assert_eq!(json["findings"], serde_json::json!([]));

    edit(
        &new.join("calculator.rs"),
        "async fn add(&self, a: i64, b: i64)",
        "async fn add(&self, b: i64, a: i64)",
    );
    let (output, json) = run_json(&old, &new);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(rules(&json, "error"), ["argument-reordered"]);
}
