//! The contract loop of a `tonic-msgpack new` crate: `ci/contract.sh` (what its CI workflow
//! runs) fails on stale clients and on a wire-breaking edit against `origin/main`, passes on a
//! safe one, and `--write` regenerates the clients. Runs the script with this build's CLI in a
//! throwaway git repository; nothing is compiled.

use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    // `timeout` bounds every step: each takes well under a second.
    Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("TONIC_MSGPACK", env!("CARGO_BIN_EXE_tonic-msgpack"))
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"))
}

fn ok(output: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

fn fails(output: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{what} should fail:\n{text}");
    text
}

#[test]
fn contract_script_checks_the_wire_and_the_clients() {
    let temp = tempfile::tempdir().expect("temp dir");
    let repo = temp.path();
    let crate_dir = repo.join("billing-service");
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["new", "billing-service", "--path"])
        .arg(&crate_dir)
        .output()
        .expect("run tonic-msgpack new");
    ok(&output, "tonic-msgpack new");
    let workflow = std::fs::read_to_string(crate_dir.join(".github/workflows/contract.yml"))
        .expect("the workflow");
    assert!(workflow.contains("run: bash ci/contract.sh"), "{workflow}");
    assert!(workflow.contains("fetch-depth: 0"), "{workflow}");
    assert!(workflow.contains("cargo install --locked"), "{workflow}");

    ok(&run(repo, "git", &["init", "-q", "-b", "main"]), "git init");
    ok(&run(repo, "git", &["add", "-A"]), "git add");
    ok(
        &run(repo, "git", &["commit", "-q", "-m", "new"]),
        "git commit",
    );
    // What a CI checkout has: the main branch as origin/main.
    ok(
        &run(
            repo,
            "git",
            &["update-ref", "refs/remotes/origin/main", "HEAD"],
        ),
        "git update-ref",
    );

    let check = || run(&crate_dir, "bash", &["ci/contract.sh"]);
    let write = || {
        ok(
            &run(&crate_dir, "bash", &["ci/contract.sh", "--write"]),
            "--write",
        )
    };

    // No clients committed yet.
    let text = fails(&check(), "the check without clients");
    assert!(text.contains("0 error(s), 0 warning(s)"), "{text}");
    assert!(
        text.contains("contract: clients/ is stale; run `bash ci/contract.sh --write`"),
        "{text}"
    );
    write();
    for client in [
        "clients/csharp/BillingService.cs",
        "clients/python/billing_service.py",
        "clients/typescript/billing_service.ts",
    ] {
        assert!(crate_dir.join(client).is_file(), "{client} was not written");
    }
    let text = ok(&check(), "the check with fresh clients");
    assert!(text.contains("contract: ok"), "{text}");

    // A wire-breaking edit: field 2 changes type.
    let proto_path = crate_dir.join("proto/billing_service/v1/billing_service.proto");
    let proto = std::fs::read_to_string(&proto_path).expect("the proto");
    assert!(proto.contains("  uint32 count = 2;\n"));
    std::fs::write(
        &proto_path,
        proto.replace("  uint32 count = 2;\n", "  string count = 2;\n"),
    )
    .expect("edit");
    let text = fails(&check(), "the check after a breaking edit");
    assert!(
        text.contains("error[field-type-changed] proto/billing_service/v1/billing_service.proto:"),
        "{text}"
    );

    // A safe edit: a field at a new number. The wire check passes; the clients must follow.
    std::fs::write(
        &proto_path,
        proto.replace(
            "  uint32 count = 2;\n",
            "  uint32 count = 2;\n  // Who asks.\n  string caller = 3;\n",
        ),
    )
    .expect("edit");
    let text = fails(&check(), "the check with stale clients");
    assert!(
        text.contains("0 error(s), 0 warning(s), 1 safe change(s)"),
        "{text}"
    );
    assert!(text.contains("clients/ is stale"), "{text}");
    write();
    let python = std::fs::read_to_string(crate_dir.join("clients/python/billing_service.py"))
        .expect("python client");
    assert!(
        python.contains("caller: str"),
        "the regenerated client has the new field"
    );
    let text = ok(&check(), "the check after --write");
    assert!(text.contains("contract: ok"), "{text}");
}
