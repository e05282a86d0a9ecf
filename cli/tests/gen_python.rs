//! `tonic-msgpack gen python`: golden files for the example app, `everything.proto` and the
//! vector-shaped contract; the generated module the Python interop client uses is up to date.
//! (`interop/run.sh` runs `mypy --strict` over the generated code and calls every method of the
//! example services with it, checking the Rust side's bytes round-trip unchanged.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(dir: &Path) -> String {
    generate_with(dir, &[])
}

fn generate_with(dir: &Path, flags: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["gen", "python"])
        .arg(dir)
        .args(flags)
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

#[test]
fn example_app_module_is_up_to_date() {
    // The same command as interop/run.sh's check: the whole example-app directory.
    let text = generate(&manifest().join("../example-app"));
    golden(
        &manifest().join("../interop/python/demo_contract.py"),
        &text,
    );
    assert!(text.contains("class GreeterClient:"));
    assert!(text.contains("def add(self, a: int, b: int, timeout: Optional[float] = None"));
    assert!(text.contains("def countdown(self, from_: int,"));
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
    let text = generate(temp.path());
    golden(
        &manifest().join("tests/data/gen/python/everything.py"),
        &text,
    );
    // The compact layout: 42 slots (the highest number), reserved 35 as nil, float as float32.
    assert!(text.contains("        w.array(42)\n"));
    assert!(text.contains("        w.f32(self.fl)\n"));
}

#[test]
fn named_golden() {
    let temp = tempfile::tempdir().expect("tempdir");
    copy(
        &manifest().join("../tests/proto-e2e/proto/named.proto"),
        &temp.path().join("named.proto"),
    );
    let text = generate_with(temp.path(), &["--key-case", "camelCase"]);
    golden(&manifest().join("tests/data/gen/python/named.py"), &text);
    // Wire rule 7 as the Rust side writes it: the fields, then of the oneof only the member
    // that is set (interop/python/generated_roundtrip.py checks the bytes).
    assert!(
        text.contains(
            "        w.map(3 + (self.avatar_url is not None) + (self.avatar_png is not None))\n"
        ),
        "{text}"
    );
}

#[test]
fn vectors_golden() {
    let text = generate(&manifest().join("tests/data/gen/vectors"));
    golden(&manifest().join("tests/data/gen/python/vectors.py"), &text);
    // Named layout keys as the trait's structs write them.
    assert!(text.contains("        w.value(\"Foo\")\n"));
    assert!(text.contains("        w.value(\"foo\")\n"));
}
