//! The build.rs API on bad input: readable `file:line:col` errors, the sparse check, and the
//! service model loaded from protos.

use std::path::Path;

use tonic_msgpack_build::configure;
use tonic_msgpack_build::load::proto_services as load_services;
use tonic_msgpack_build::model::CallKind;

fn compile(source: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.proto"), source).unwrap();
    let err = configure()
        .out_dir(dir.path().join("out"))
        .emit_rerun_if_changed(false)
        .compile_protos(&["broken.proto"], &[dir.path()])
        .unwrap_err();
    err.to_string()
}

#[test]
fn syntax_error_points_at_file_line_col() {
    let err = compile("syntax = \"proto3\";\n\nmessage A {\n  string name = 1\n}\n");
    assert_eq!(err, "broken.proto:5:1: expected ';' or '[', but found '}'");
}

#[test]
fn unknown_type_points_at_the_field() {
    let err = compile("syntax = \"proto3\";\nmessage A {\n  Missing thing = 1;\n}\n");
    assert_eq!(err, "broken.proto:3:3: name 'Missing' is not defined");
}

#[test]
fn missing_import_is_named() {
    let err = compile("syntax = \"proto3\";\nimport \"nope/x.proto\";\n");
    assert_eq!(err, "broken.proto:2:1: import 'nope/x.proto' not found");
}

#[test]
fn sparse_compact_message_asks_for_named() {
    let err = compile(
        "syntax = \"proto3\";\npackage s;\nmessage Sparse {\n  int32 a = 1;\n  int32 b = 100;\n}\n",
    );
    assert_eq!(
        err,
        "message s.Sparse: field numbers go up to 100 for 2 fields, over 4x sparse for the compact layout; \
         use `.format(Format::Named)` in build.rs or renumber the fields"
    );
}

#[test]
fn services_come_with_kinds_types_docs_and_http_bindings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let services = load_services(
        &[
            root.join("proto/hello.proto"),
            root.join("proto/demo/everything.proto"),
        ],
        &[root.join("proto"), root.join("proto-common")],
    )
    .unwrap();
    let names: Vec<_> = services.iter().map(|s| s.full_name()).collect();
    assert_eq!(names, ["hello.v1.Greeter", "demo.v1.Kitchen"]);

    let greeter = &services[0];
    assert_eq!(greeter.docs, ["Greets people."]);
    let kinds: Vec<_> = greeter.methods.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            CallKind::Unary,
            CallKind::ServerStreaming,
            CallKind::ClientStreaming,
            CallKind::Bidirectional,
            CallKind::Unary
        ]
    );
    let hello = &greeter.methods[0];
    assert_eq!(hello.rust_name, "say_hello");
    assert_eq!(hello.input_type, "super::HelloRequest");
    assert_eq!(hello.input_proto.as_deref(), Some(".hello.v1.HelloRequest"));
    assert_eq!(hello.docs, ["Says hello."]);
    assert_eq!(greeter.method_path(hello), "/hello.v1.Greeter/SayHello");
    let http = hello.http.as_ref().unwrap();
    assert_eq!(
        (
            http.method.as_str(),
            http.path.as_str(),
            http.body.as_deref()
        ),
        ("POST", "/v1/hello", Some("*"))
    );
    let count = greeter.methods[1].http.as_ref().unwrap();
    assert_eq!(
        (
            count.method.as_str(),
            count.path.as_str(),
            count.body.as_deref()
        ),
        ("GET", "/v1/count/{name}", None)
    );
    assert_eq!(greeter.methods[2].http, None);
    assert_eq!(greeter.methods[4].input_type, "()");

    let kitchen = &services[1];
    let convert = &kitchen.methods[1];
    assert_eq!(convert.input_type, "super::super::super::common::v1::Money");
    let http = convert.http.as_ref().unwrap();
    assert_eq!(
        (http.method.as_str(), http.path.as_str()),
        ("HEAD", "/v1/convert")
    );
}
