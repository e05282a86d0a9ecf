//! Golden generated code: `fixtures/snapshot.proto` through the whole `.proto` pipeline. On a
//! difference the test rewrites `fixtures/_expected_snap.v1.rs` and fails, so the change shows
//! in review (prost-build's fixture pattern). The proto-e2e crate proves such code compiles.

use std::path::Path;

#[test]
fn generated_code_matches_the_fixture() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = tempfile::tempdir().unwrap();
    tonic_msgpack_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[fixtures.join("snapshot.proto")], &[&fixtures])
        .unwrap();
    let generated = std::fs::read_to_string(out.path().join("snap.v1.rs")).unwrap();
    let expected_path = fixtures.join("_expected_snap.v1.rs");
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if generated != expected {
        std::fs::write(&expected_path, &generated).unwrap();
        panic!(
            "generated code changed; {} was rewritten: review the diff and commit it",
            expected_path.display()
        );
    }
}

#[test]
fn gateway_routes_name_the_messages_by_absolute_paths() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let compile = |builder: tonic_msgpack_build::Builder| {
        let out = tempfile::tempdir().unwrap();
        builder
            .out_dir(out.path())
            .emit_rerun_if_changed(false)
            .gateway_routes(true)
            .compile_protos(&[fixtures.join("snapshot.proto")], &[&fixtures])
            .unwrap();
        let routes = std::fs::read_to_string(out.path().join("gateway_routes.rs")).unwrap();
        routes.split_whitespace().collect::<String>()
    };
    let default = compile(tonic_msgpack_build::configure());
    assert!(
        default.contains("Route::new(\"snap.v1.Notes\",\"Save\",CallKind::Unary)"),
        "{default}"
    );
    assert!(
        default.contains("Transcoder::typed::<crate::snap::v1::Note,crate::snap::v1::Note"),
        "{default}"
    );
    let mapped = compile(tonic_msgpack_build::configure().gateway_routes_module("crate::proto"));
    assert!(
        mapped.contains("Transcoder::typed::<crate::proto::Note,crate::proto::Note"),
        "{mapped}"
    );
}
