//! The route file `tonic-msgpack routes` generates (golden copy in the codegen crate, kept
//! fresh by its `--check` test) compiles against this crate and yields the expected table.

#[allow(unreachable_pub)]
mod generated {
    include!("../../cli/tests/fixtures/routes_expected.rs");
}

use tonic_msgpack_gateway::{CallKind, Format};

#[test]
fn generated_table_has_every_method() {
    let table = generated::table();
    assert_eq!(table.len(), 5);
    let echo = table.get("/demo.v1.Calculator/Echo").expect("echo route");
    assert_eq!(echo.kind, CallKind::Bidirectional);
    assert_eq!(echo.upstream, "demo.v1.Calculator");
    let hello = table.get("/Greeter/SayHello").expect("hello route");
    assert_eq!(hello.format, Format::Named);
    assert_eq!(hello.kind, CallKind::Unary);
}
