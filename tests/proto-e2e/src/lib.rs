//! Generated types of the end-to-end proto tests: `build.rs` compiles `proto/` with
//! `tonic_msgpack_build`, and this crate only includes the output.
#![allow(missing_docs)] // generated from protos without comments on every item

/// `package hello.v1`: built by the one-line `compile_protos("proto/hello.proto")`.
pub mod hello {
    pub mod v1 {
        tonic_msgpack::include_proto!("hello.v1");
    }
}

/// `package demo.v1` and `demo.v1.admin`.
pub mod demo {
    pub mod v1 {
        tonic_msgpack::include_proto!("demo.v1");

        pub mod admin {
            tonic_msgpack::include_proto!("demo.v1.admin");
        }
    }
}

/// `package common.v1` (a second include directory).
pub mod common {
    pub mod v1 {
        tonic_msgpack::include_proto!("common.v1");
    }
}

/// Two versions of one schema, for evolution tests.
pub mod evo {
    pub mod v1 {
        tonic_msgpack::include_proto!("evo.v1");
    }
    pub mod v2 {
        tonic_msgpack::include_proto!("evo.v2");
    }
}

/// Built with `.key_case(KeyCase::Camel)`: the named layout.
pub mod named {
    pub mod v1 {
        tonic_msgpack::include_proto!("named.v1");
    }
}

pub mod samples;
