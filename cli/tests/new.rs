//! `tonic-msgpack new`: the scaffolded crate builds without warnings and its own tests (the
//! generated client against the server, directly and through the gateway) pass.

use std::path::Path;
use std::process::Command;

#[test]
fn a_new_service_crate_builds_and_its_tests_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crate_dir = dir.path().join("billing-service");
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["new", "billing-service", "--path"])
        .arg(&crate_dir)
        .output()
        .expect("run tonic-msgpack new");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "Cargo.toml",
        "build.rs",
        "gateway.toml",
        "proto/billing_service/v1/billing_service.proto",
        "src/lib.rs",
        "src/main.rs",
        "tests/service.rs",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} was not created");
    }

    // Its own target directory (kept between runs) so this cargo does not wait on the lock of
    // the cargo running this test.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-crate-target");
    let output = Command::new(env!("CARGO"))
        .arg("test")
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        // The generated crate has no profile of its own: keep its build as small as ours.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test in the new crate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo test failed:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("test direct ... ok") && stdout.contains("test through_the_gateway ... ok"),
        "{stdout}"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning"))
        .collect();
    assert!(
        warnings.is_empty(),
        "the generated crate has warnings:\n{stderr}"
    );

    // A second `new` into the same place is refused, naming the directory.
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["new", "billing-service", "--path"])
        .arg(&crate_dir)
        .output()
        .expect("run tonic-msgpack new");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists and is not empty"));
}
