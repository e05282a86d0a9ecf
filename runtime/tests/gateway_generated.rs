//! The route file `tonic-msgpack routes` generates (golden copy in the codegen crate, kept
//! fresh by its `--check` test) compiles against this crate and yields the expected table.
#![cfg(feature = "gateway")]

#[allow(unreachable_pub)]
mod generated {
    include!("../../codegen/tests/fixtures/gateway_routes.rs");
}

use tonic_msgpack::gateway::{CallKind, MessageFormat};

#[test]
fn generated_table_has_every_method() {
    let table = generated::table();
    assert_eq!(table.len(), 5);
    let echo = table.get("/demo.v1.Calculator/Echo").expect("echo route");
    assert_eq!(echo.kind, CallKind::Bidirectional);
    assert_eq!(echo.upstream, "demo.v1.Calculator");
    let hello = table.get("/Greeter/SayHello").expect("hello route");
    assert_eq!(hello.format, MessageFormat::Named);
    assert_eq!(hello.kind, CallKind::Unary);
}
