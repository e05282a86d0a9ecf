//! Compile-fail cases of `#[derive(Message)]`, one file per mistake, and a passing case.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
