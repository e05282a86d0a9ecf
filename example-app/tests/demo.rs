//! The README's main command: `cargo run -p example-app` exits 0 after showing every call kind,
//! an error, and REST through the gateway.

use std::process::Command;

#[test]
fn the_demo_runs_every_call_kind_through_the_gateway() {
    let output = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .output()
        .expect("run example-app");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        r#"SayHello(Ada)            -> "Hello, Ada!" #0"#,
        r#"StreamGreetings(Grace, 3) -> "Hello, Grace!" #2"#,
        r#"CollectNames(3 names)     -> "Alan, Barbara, Edsger" #3"#,
        r#"Chat                      -> "Hello, Dennis!" #1"#,
        "SayHello(\"\")             -> InvalidArgument",
        "add(40, 2)               -> 42",
        "sum(1, 2, 3, 4)          -> 10",
        "countdown(3)             -> [3, 2, 1, 0]",
        "running_total(5, 10, -3) -> [5, 15, 12]",
        "add(i64::MAX, 1)         -> OutOfRange",
        "-> 200 application/x-ndjson",
        r#"{"code":11,"message":"9223372036854775807 + 1 overflows a 64-bit integer"}"#,
        r#""field":"name""#,
        "done: every call kind worked through the gateway",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
