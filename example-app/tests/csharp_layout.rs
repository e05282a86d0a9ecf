//! The generated greeter types and the Calculator trait service produce exactly the bytes
//! MessagePack-CSharp writes for the C# classes in `docs/csharp.md`.
//!
//! The expected bytes follow MessagePack-CSharp's rules (pinned by the vectors in
//! `runtime/tests/csharp_vectors.rs`): a `[MessagePackObject]` class with `[Key(n)]` members is
//! an array of max key + 1 elements, `string` is str, `uint` the smallest int, `DateTime` the
//! timestamp extension (ext -1) in its smallest form; MagicOnion sends two arguments as an
//! array, one bare, none as nil.
//!
//! ```csharp
//! [MessagePackObject] public class HelloRequest {
//!     [Key(0)] public string Name { get; set; }
//!     [Key(1)] public uint Count { get; set; }
//! }
//! [MessagePackObject] public class HelloReply {
//!     [Key(0)] public string Message { get; set; }
//!     [Key(1)] public uint Index { get; set; }
//!     [Key(2)] public DateTime At { get; set; }
//! }
//! ```

use example_app::calculator::__calculator_msgpack::{__AddRequest, __AddResponse, __PingRequest};
use example_app::proto::{HelloReply, HelloRequest};
use example_app::routes;
use tonic_msgpack::wkt::Timestamp;
use tonic_msgpack::{decode_frame, to_vec};
use tonic_msgpack_gateway::CallKind;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// `new HelloRequest { Name = "Ada", Count = 3 }` → `["Ada", 3]`.
#[test]
fn hello_request_is_the_csharp_key_array() {
    let request = HelloRequest {
        name: "Ada".into(),
        count: 3,
    };
    let csharp = "92 a3 41 64 61 03";
    assert_eq!(hex(&to_vec(&request).expect("encode")), csharp);
    assert_eq!(
        decode_frame::<HelloRequest>(&unhex(csharp)).expect("decode"),
        request
    );
    // A C# string left null is nil; it reads as "" here. A C# reader maps our "" to "".
    assert_eq!(
        decode_frame::<HelloRequest>(&unhex("92 c0 00")).expect("nil name"),
        HelloRequest::default()
    );
}

/// `new HelloReply { Message = "Hello, Ada!", Index = 1, At = <UTC DateTime> }`: the
/// DateTime is ext -1 in the smallest of its three forms, exactly as MessagePack-CSharp picks.
#[test]
fn hello_reply_with_datetime_is_the_csharp_key_array() {
    let cases = [
        // 2023-11-14T22:13:20Z, whole seconds: timestamp32.
        (
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            },
            "d6 ff 65 53 f1 00",
        ),
        // 2023-11-14T22:13:20.5Z: timestamp64 (nanoseconds << 34 | seconds).
        (
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 500_000_000,
            },
            "d7 ff 77 35 94 00 65 53 f1 00",
        ),
        // 1969-12-31T23:59:59.9999999Z (one .NET tick before the epoch): timestamp96.
        (
            Timestamp {
                seconds: -1,
                nanos: 999_999_900,
            },
            "c7 0c ff 3b 9a c9 9c ff ff ff ff ff ff ff ff",
        ),
    ];
    for (at, ext) in cases {
        let reply = HelloReply {
            message: "Hello, Ada!".into(),
            index: 1,
            at: Some(at),
        };
        // ["Hello, Ada!", 1, at]
        let csharp = format!("93 ab 48 65 6c 6c 6f 2c 20 41 64 61 21 01 {ext}");
        assert_eq!(hex(&to_vec(&reply).expect("encode")), csharp, "{at}");
        assert_eq!(
            decode_frame::<HelloReply>(&unhex(&csharp)).expect("decode"),
            reply
        );
    }
    // An unset `at` is nil: a C# `DateTime` member cannot read nil, a `DateTime?` can.
    let unset = HelloReply {
        message: String::new(),
        index: 0,
        at: None,
    };
    assert_eq!(hex(&to_vec(&unset).expect("encode")), "93 a0 00 c0");
}

/// The Calculator trait service speaks MagicOnion's argument convention.
#[test]
fn calculator_bodies_are_magiconion_arguments() {
    // Add(long a, long b): two arguments are an array, DynamicArgumentTuple<long, long>.
    let add: __AddRequest = (40, 2);
    assert_eq!(hex(&to_vec(&add).expect("encode")), "92 28 02");
    assert_eq!(
        decode_frame::<__AddRequest>(&unhex("92 28 02")).expect("decode"),
        add
    );
    // The long result is the bare value.
    let sum: __AddResponse = 42;
    assert_eq!(hex(&to_vec(&sum).expect("encode")), "2a");
    // Ping(): no arguments is nil, and so is the void result.
    let ping: __PingRequest = ();
    assert_eq!(hex(&to_vec(&ping).expect("encode")), "c0");
}

/// The gRPC paths and call kinds the C# `Method<TRequest, TResponse>` definitions use.
#[test]
fn paths_and_call_kinds_match_the_csharp_methods() {
    let table = routes::table();
    for (path, kind) in [
        ("/demo.v1.Greeter/SayHello", CallKind::Unary),
        (
            "/demo.v1.Greeter/StreamGreetings",
            CallKind::ServerStreaming,
        ),
        ("/demo.v1.Greeter/CollectNames", CallKind::ClientStreaming),
        ("/demo.v1.Greeter/Chat", CallKind::Bidirectional),
        ("/demo.v1.Calculator/Add", CallKind::Unary),
        ("/demo.v1.Calculator/Ping", CallKind::Unary),
    ] {
        let route = table
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not routed"));
        assert_eq!(route.kind, kind, "{path}");
    }
}
