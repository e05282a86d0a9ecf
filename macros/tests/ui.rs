//! Compile-fail cases of `#[msgpack_service]` and `#[derive(Message)]`, one file per mistake,
//! and passing cases: `tests/ui/<macro>/{pass,fail}/`.
//!
//! The `.stderr` files are compiler output, so they are pinned to the toolchain in
//! `rust-toolchain.toml`. After a deliberate change, regenerate them with
//! `TRYBUILD=overwrite cargo test -p tonic-msgpack-macros --test ui` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/msgpack_service/pass/*.rs");
    cases.compile_fail("tests/ui/msgpack_service/fail/*.rs");
    cases.pass("tests/ui/message/pass/*.rs");
    cases.compile_fail("tests/ui/message/fail/*.rs");
}
