//! Compile-fail cases of `#[msgpack_service]` and `#[derive(Message)]`, one file per mistake,
//! and passing cases.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
