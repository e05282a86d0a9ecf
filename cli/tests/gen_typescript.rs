//! `tonic-msgpack gen typescript`: golden files for the example app (both clients and the
//! browser-only module), `everything.proto` and the vector-shaped contract. (`interop/run.sh`
//! compiles them with `tsc --strict`, calls every example method through the gateway with the
//! generated gRPC-Web and grpc-js clients, and round-trips the Rust side's bytes.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(dir: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["gen", "typescript"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run tonic-msgpack");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Compares with the golden file; on a difference, rewrites it and fails.
fn golden(path: &Path, text: &str) {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current != text {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write golden");
        panic!(
            "{} was stale and has been rewritten; review the diff and rerun",
            path.display()
        );
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(from, to).expect("copy");
}

fn data() -> PathBuf {
    manifest().join("tests/data/gen/typescript")
}

#[test]
fn example_app_golden() {
    let text = generate(&manifest().join("../example-app"), &[]);
    golden(&data().join("example-app.ts"), &text);
    assert!(text.contains("export class GreeterWebClient {"));
    assert!(text.contains("export class GreeterClient {"));
    assert!(text.contains("import * as grpc from \"@grpc/grpc-js\";"));
    // Trait arguments: two travel as an array, 64-bit integers as bigint.
    assert!(text.contains(
        "  add(a: bigint, b: bigint, options: WebCallOptions = {}): Promise<bigint> {\n    return this.transport.unary(CalculatorMethods.add, [a, b], options);"
    ));
    assert!(
        text.contains(
            "      w.array(2);\n      w.int64(request[0]);\n      w.int64(request[1]);\n"
        )
    );
    assert!(text.contains("  ping(options: NodeCallOptions = {}): Promise<null> {"));
    // Client streaming and bidi exist only on the Node client.
    assert!(text.contains("  // collectNames: client-streaming calls are not possible over gRPC-Web; use GreeterClient (Node).\n"));
    assert!(text.contains("  runningTotal(requests: Iterable<bigint> | AsyncIterable<bigint>, options: NodeCallOptions = {}): AsyncIterable<bigint> {"));
}

#[test]
fn example_app_web_only_golden() {
    let text = generate(&manifest().join("../example-app"), &["--clients", "web"]);
    golden(&data().join("example-app.web.ts"), &text);
    assert!(text.contains("export class CalculatorWebClient {"));
    // A browser bundle must not pull in grpc-js.
    assert!(!text.contains("@grpc/grpc-js\""));
    assert!(!text.contains("class GreeterClient"));
    let none = generate(&manifest().join("../example-app"), &["--clients", "none"]);
    assert!(!none.contains("WebClient {") && !none.contains("grpc.Client"));
    assert!(none.contains("export const GreeterMethods = {"));
}

#[test]
fn everything_golden() {
    let temp = tempfile::tempdir().expect("tempdir");
    let e2e = manifest().join("../tests/proto-e2e");
    copy(
        &e2e.join("proto/demo/everything.proto"),
        &temp.path().join("demo/everything.proto"),
    );
    copy(
        &e2e.join("proto-common/common/v1/common.proto"),
        &temp.path().join("common/v1/common.proto"),
    );
    let text = generate(temp.path(), &[]);
    golden(&data().join("everything.ts"), &text);
    // The compact layout: 42 slots (the highest number), reserved 35 as nil, float as float32,
    // 64-bit integers as bigint, maps as Map with typed keys.
    assert!(text.contains("    w.array(42);\n"));
    assert!(text.contains("    w.float32(value.fl);\n"));
    assert!(text.contains("    w.float64(value.db);\n"));
    assert!(text.contains("  u64: bigint;\n"));
    assert!(text.contains("  blobMap: Map<number, Uint8Array>;\n"));
    assert!(text.contains("    w.int64(value.choiceNumber);\n"));
    assert!(text.contains("  choiceNumber: bigint | null;\n"));
    assert!(text.contains("    w.nil();\n    if (value.deep == null) {\n"));
}

#[test]
fn vectors_golden() {
    let text = generate(&manifest().join("tests/data/gen/vectors"), &[]);
    golden(&data().join("vectors.ts"), &text);
    // Named layout keys as the trait's structs write them.
    assert!(text.contains("    w.string(\"Foo\");\n"));
    assert!(text.contains("    w.string(\"foo\");\n"));
}

#[test]
fn named_oneof_golden() {
    let temp = tempfile::tempdir().expect("tempdir");
    copy(
        &manifest().join("../tests/proto-e2e/proto/named.proto"),
        &temp.path().join("named.proto"),
    );
    let text = generate(
        temp.path(),
        &["--key-case", "camelCase", "--clients", "none"],
    );
    golden(&data().join("named.ts"), &text);
    // Wire rule 7 as the Rust side writes it: the fields, then of the oneof only the member
    // that is set (interop/typescript/roundtrip.ts checks the bytes).
    assert!(
        text.contains(
            "    w.map(3 + (value.avatarUrl != null ? 1 : 0) + (value.avatarPng != null ? 1 : 0));\n"
        ),
        "{text}"
    );
}

#[test]
fn named_key_case_flag() {
    let text = generate(
        &manifest().join("../example-app"),
        &["--key-case", "camelCase", "--clients", "none"],
    );
    assert!(text.contains("/** `demo.v1.HelloReply` (named: a map, keys camelCase). */"));
    assert!(text.contains("    w.map(3);\n    w.string(\"message\");\n"));
}

#[test]
fn runtime_names_golden() {
    // Messages named like the runtime's types or the globals it uses get a `_` suffix;
    // bool and uint64 map keys, a service named `Timestamp`.
    let text = generate(&data().join("names"), &[]);
    golden(&data().join("names.ts"), &text);
    assert!(text.contains("export interface Status_ {"));
    assert!(text.contains("export interface Response_ {"));
    assert!(text.contains("  status: Status_ | null;\n"));
    assert!(text.contains("  byFlag: Map<boolean, string>;\n"));
    assert!(text.contains("[keyBool(k0), asString(v0)]"));
    assert!(text.contains("  byId: Map<bigint, Status_>;\n"));
    assert!(text.contains("export class TimestampWebClient {"));
}

#[test]
fn colliding_services_are_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    for package in ["a", "b"] {
        let dir = temp.path().join(package);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("greeter.proto"),
            format!(
                "syntax = \"proto3\";\npackage {package}.v1;\nmessage Req{package} {{}}\nservice Greeter {{ rpc Hi(Req{package}) returns (Req{package}); }}\n"
            ),
        )
        .expect("write proto");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["gen", "typescript"])
        .arg(temp.path())
        .output()
        .expect("run tonic-msgpack");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "the services `a.v1.Greeter` and `b.v1.Greeter` would both declare `GreeterWebClient`; generate them into separate modules"
        ),
        "{stderr}"
    );
}
