//! The `tonic-msgpack routes` / `list` commands, and the golden route file
//! `fixtures/routes_expected.rs` (which the gateway's tests compile and serve).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run tonic-msgpack")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn golden_route_file_is_up_to_date() {
    let output = run(bin()
        .arg("routes")
        .arg("--traits")
        .arg(fixtures().join("routes_input_traits.rs"))
        .arg("--out")
        .arg(fixtures().join("routes_expected.rs"))
        .arg("--check"));
    assert!(
        output.status.success(),
        "fixtures/routes_expected.rs is stale (regenerate it with `cargo run -p tonic-msgpack-cli -- routes --traits cli/tests/fixtures/routes_input_traits.rs --out cli/tests/fixtures/routes_expected.rs`):\n{}",
        stderr(&output)
    );
}

#[test]
fn routes_writes_then_check_catches_a_stale_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let traits = dir.path().join("services.rs");
    let out = dir.path().join("routes.rs");
    let original =
        std::fs::read_to_string(fixtures().join("routes_input_traits.rs")).expect("fixture");
    std::fs::write(&traits, &original).expect("write traits");

    let output = run(bin()
        .arg("routes")
        .arg("--traits")
        .arg(&traits)
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read_to_string(&out).expect("routes file");
    assert!(written.starts_with("// @generated"), "{written}");
    assert!(
        written.contains(
            "Route::new(\"demo.v1.Calculator\", \"Countdown\", CallKind::ServerStreaming)"
        ),
        "{written}"
    );
    assert!(
        written.contains("Route::new(\"demo.v1.Calculator\", \"Echo\", CallKind::Bidirectional)"),
        "{written}"
    );
    assert!(!written.contains("Helper"), "{written}");

    let check = || {
        run(bin()
            .arg("routes")
            .arg("--traits")
            .arg(&traits)
            .arg("--out")
            .arg(&out)
            .arg("--check"))
    };
    let output = check();
    assert!(
        output.status.success(),
        "fresh file passes: {}",
        stderr(&output)
    );

    // A new method makes the committed file stale: non-zero exit and a diff naming it.
    let changed = original.replace(
        "    async fn add(",
        "    async fn multiply(&self, a: i64, b: i64) -> Result<i64, Status>;\n    async fn add(",
    );
    std::fs::write(&traits, changed).expect("write traits");
    let output = check();
    assert!(!output.status.success());
    let diff = stderr(&output);
    assert!(
        diff.contains("+") && diff.contains("\"Multiply\""),
        "{diff}"
    );
    assert!(diff.contains("stale"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(&out).expect("unchanged"),
        written,
        "--check never writes"
    );

    // A missing file is stale too.
    let output = run(bin()
        .arg("routes")
        .arg("--traits")
        .arg(&traits)
        .arg("--out")
        .arg(dir.path().join("missing.rs"))
        .arg("--check"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("does not exist"));
}

#[test]
fn list_prints_paths_and_kinds() {
    let output = run(bin()
        .arg("list")
        .arg("--traits")
        .arg(fixtures().join("routes_input_traits.rs")));
    assert!(output.status.success(), "{}", stderr(&output));
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing.contains("demo.v1.Calculator (compact, 4 methods)"),
        "{listing}"
    );
    assert!(listing.contains("/demo.v1.Calculator/Sum"), "{listing}");
    assert!(listing.contains("client_streaming"), "{listing}");
    assert!(listing.contains("Greeter (named, 1 method)"), "{listing}");
    assert!(listing.contains("/Greeter/SayHello"), "{listing}");
}

#[test]
fn list_reads_proto_directories_and_trait_files_together() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../example-app");
    let output = run(bin()
        .arg("list")
        .arg("--proto")
        .arg(example.join("proto"))
        .arg("--traits")
        .arg(example.join("src/calculator.rs")));
    assert!(output.status.success(), "{}", stderr(&output));
    let listing = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "demo.v1.Greeter (compact, 4 methods)",
        "/demo.v1.Greeter/Chat",
        "bidi_streaming",
        "demo.v1.Calculator (compact, 5 methods)",
        "/demo.v1.Calculator/RunningTotal",
        "GET /v1/add/{a}/{b}",
    ] {
        assert!(
            listing.contains(expected),
            "missing {expected:?} in:\n{listing}"
        );
    }

    // A broken proto names the file, line and column.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken.proto"),
        "syntax = \"proto3\";\nmessage A {\n  Missing m = 1;\n}\n",
    )
    .expect("write");
    let output = run(bin().arg("list").arg("--proto").arg(dir.path()));
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("broken.proto:3:3"), "{error}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.rs");
    std::fs::write(
        &broken,
        "#[msgpack_service]\npub trait Oops {\n    fn x(&self) -> ;\n}\n",
    )
    .expect("write");
    for args in [
        vec!["list".to_owned()],
        vec![
            "list".into(),
            "--traits".into(),
            dir.path().join("nope.rs").display().to_string(),
        ],
        vec![
            "list".into(),
            "--traits".into(),
            broken.display().to_string(),
        ],
    ] {
        let output = run(bin().args(&args));
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.starts_with("error: "), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }
    let output = run(bin().arg("list").arg("--traits").arg(&broken));
    assert!(
        stderr(&output).contains("broken.rs:3:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn typed_routes_need_and_use_module_mappings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("routes.rs");
    let routes = |extra: &[&str]| {
        run(bin()
            .arg("routes")
            .arg("--traits")
            .arg(fixtures().join("routes_input_traits.rs"))
            .arg("--proto")
            .arg(fixtures().join("call.proto").parent().expect("fixtures"))
            .arg("--out")
            .arg(&out)
            .arg("--typed-transcoders")
            .args(extra))
    };
    let output = routes(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--proto-module"),
        "{}",
        stderr(&output)
    );

    let output = routes(&[
        "--proto-module",
        "=crate::protos",
        "--proto-module",
        "calltest.v1=crate::notes",
        "--trait-module",
        "Calculator=crate::calc",
        "--trait-module",
        "Greeter=crate::calc::greeting",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let written: String = std::fs::read_to_string(&out)
        .expect("routes file")
        .split_whitespace()
        .collect();
    for expected in [
        "Transcoder::typed::<crate::notes::Note,crate::notes::Note",
        "Transcoder::typed::<crate::protos::snap::v1::Note,",
        "Transcoder::typed::<crate::calc::__calculator_msgpack::__AddJson,crate::calc::__calculator_msgpack::__AddResponse",
        "Transcoder::typed_named::<crate::calc::greeting::__greeter_msgpack::__SayHelloJson,",
    ] {
        assert!(written.contains(expected), "{expected}: {written}");
    }
}
