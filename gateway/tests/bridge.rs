//! The protobuf bridge and server reflection against a real gateway and a real tonic
//! MessagePack service: a stock protobuf client (prost messages, tonic's prost codec) calls all
//! four kinds on the bridge listener and with `application/grpc+proto` on the main port, where
//! plain `application/grpc` still means MessagePack; statuses, metadata and limits pass as for
//! any call; reflection lists the services from the descriptors.

mod support;

use std::net::SocketAddr;

use http::uri::PathAndQuery;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};

use support::{LIMIT, RunningGateway, start_gateway};

/// The MessagePack service behind the gateway.
#[msgpack_service(package = "bridge.v1")]
pub trait Calc {
    /// `a + b`, `OUT_OF_RANGE` on overflow.
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// `from` down to 0.
    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status>;
    /// The sum of the stream.
    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status>;
    /// The running total.
    async fn running(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status>;
    /// The caller's `x-caller` metadata.
    async fn whoami(&self, meta: &MetadataMap) -> Result<String, Status>;
}

struct CalcService;

impl Calc for CalcService {
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        a.checked_add(b)
            .ok_or_else(|| Status::out_of_range(format!("{a} + {b} overflows")))
    }

    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status> {
        Ok(Box::pin(tokio_stream::iter((0..=from).rev().map(Ok))))
    }

    async fn sum(&self, mut values: Streaming<i64>) -> Result<i64, Status> {
        let mut total = 0i64;
        while let Some(value) = values.message().await? {
            total += value;
        }
        Ok(total)
    }

    async fn running(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status> {
        let mut total = 0i64;
        Ok(Box::pin(values.map(move |value| {
            total += value?;
            Ok(total)
        })))
    }

    async fn whoami(&self, meta: &MetadataMap) -> Result<String, Status> {
        Ok(meta
            .get("x-caller")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("nobody")
            .to_owned())
    }
}

/// The descriptors `tonic-msgpack schema` writes for `Calc` (its synthesized messages, with
/// their layouts), compiled here so the test needs no build crate.
const CALC_PROTO: &str = r#"
syntax = "proto3";
package bridge.v1;
import "google/protobuf/empty.proto";
import "tonic_msgpack/options.proto";
service Calc {
  rpc Add(AddRequest) returns (AddResponse);
  rpc Countdown(CountdownRequest) returns (stream CountdownResponse);
  rpc Sum(stream SumRequest) returns (SumResponse);
  rpc Running(stream RunningRequest) returns (stream RunningResponse);
  rpc Whoami(google.protobuf.Empty) returns (WhoamiResponse);
}
message AddRequest { option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS; int64 a = 1; int64 b = 2; }
message AddResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; int64 value = 1; }
message CountdownRequest { option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS; uint32 from = 1; }
message CountdownResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; uint32 value = 1; }
message SumRequest { option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS; int64 values = 1; }
message SumResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; int64 value = 1; }
message RunningRequest { option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS; int64 values = 1; }
message RunningResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; int64 value = 1; }
message WhoamiResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; string value = 1; }
"#;

const OPTIONS_PROTO: &str = include_str!("../../codegen/proto/tonic_msgpack/options.proto");

struct Sources;

impl protox::file::FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match name {
            "calc.proto" => protox::file::File::from_source(name, CALC_PROTO),
            "tonic_msgpack/options.proto" => protox::file::File::from_source(name, OPTIONS_PROTO),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

fn descriptor_set() -> Vec<u8> {
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Sources);
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file("calc.proto")
        .expect("calc.proto compiles");
    compiler.encode_file_descriptor_set()
}

// The stock protobuf client's messages.
#[derive(Clone, PartialEq, prost::Message)]
struct AddRequest {
    #[prost(int64, tag = "1")]
    a: i64,
    #[prost(int64, tag = "2")]
    b: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct I64Value {
    #[prost(int64, tag = "1")]
    value: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct U32Value {
    #[prost(uint32, tag = "1")]
    value: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// The service on `127.0.0.1:0` and a gateway with the bridge and reflection in front of it.
struct Setup {
    gateway: RunningGateway,
    _descriptors: tempfile::TempDir,
}

async fn setup(extra: &str) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the service");
    let upstream = listener.local_addr().expect("service addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CalcServer::new(CalcService))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("calc.binpb");
    std::fs::write(&file, descriptor_set()).expect("write the descriptors");
    let toml = format!(
        "descriptors = [{file:?}]\nreflection = true\n{extra}\n[route_prefixes]\n\"/bridge.v1.Calc/\" = \"bridge.v1.Calc\"\n[upstreams.\"bridge.v1.Calc\"]\nendpoints = [\"http://{upstream}\"]\n[protobuf_bridge]\nlisten = \"127.0.0.1:0\"\n",
        file = file.display().to_string(),
    );
    let gateway = start_gateway(&toml, tonic_msgpack_gateway::RouteTable::default()).await;
    Setup {
        gateway,
        _descriptors: dir,
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    support::grpc::channel(&format!("http://{addr}")).await
}

type ProtoCodec<A, B> = tonic_prost::ProstCodec<A, B>;

fn path(method: &str) -> PathAndQuery {
    PathAndQuery::try_from(format!("/bridge.v1.Calc/{method}")).expect("path")
}

/// A protobuf unary call on any tonic transport.
async fn unary<T, Req, Res>(
    transport: T,
    method: &str,
    request: Request<Req>,
) -> Result<Res, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    Req: prost::Message + Send + Sync + 'static,
    Res: prost::Message + Default + Send + Sync + 'static,
{
    let mut client = tonic::client::Grpc::new(transport);
    tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.into().to_string()))?;
        client
            .unary(request, path(method), ProtoCodec::<Req, Res>::default())
            .await
            .map(tonic::Response::into_inner)
    })
    .await
    .expect("the call ends within the limit")
}

#[tokio::test]
async fn a_protobuf_client_calls_every_kind_on_the_bridge_listener() {
    let setup = setup("").await;
    let channel = connect(setup.gateway.bridge.expect("bridge listener")).await;

    let sum: I64Value = unary(
        channel.clone(),
        "Add",
        Request::new(AddRequest { a: 40, b: 2 }),
    )
    .await
    .expect("Add");
    assert_eq!(sum.value, 42);

    let mut client = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, async {
        client.ready().await.expect("ready");
        let countdown: Vec<u32> = client
            .server_streaming(
                Request::new(U32Value { value: 3 }),
                path("Countdown"),
                ProtoCodec::<U32Value, U32Value>::default(),
            )
            .await
            .expect("Countdown")
            .into_inner()
            .map(|reply| reply.expect("a message").value)
            .collect()
            .await;
        assert_eq!(countdown, [3, 2, 1, 0]);

        client.ready().await.expect("ready");
        let values = tokio_stream::iter([1i64, 2, 3, 4].map(|value| I64Value { value }));
        let total = client
            .client_streaming(
                Request::new(values),
                path("Sum"),
                ProtoCodec::<I64Value, I64Value>::default(),
            )
            .await
            .expect("Sum")
            .into_inner();
        assert_eq!(total.value, 10);

        client.ready().await.expect("ready");
        let values = tokio_stream::iter([5i64, 10, -3].map(|value| I64Value { value }));
        let running: Vec<i64> = client
            .streaming(
                Request::new(values),
                path("Running"),
                ProtoCodec::<I64Value, I64Value>::default(),
            )
            .await
            .expect("Running")
            .into_inner()
            .map(|reply| reply.expect("a message").value)
            .collect()
            .await;
        assert_eq!(running, [5, 15, 12]);
    })
    .await
    .expect("the calls end within the limit");
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn statuses_and_metadata_pass_untouched() {
    let setup = setup("").await;
    let channel = connect(setup.gateway.bridge.expect("bridge listener")).await;
    let error = unary::<_, _, I64Value>(
        channel.clone(),
        "Add",
        Request::new(AddRequest { a: i64::MAX, b: 1 }),
    )
    .await
    .expect_err("overflow");
    assert_eq!(error.code(), Code::OutOfRange);
    assert_eq!(error.message(), "9223372036854775807 + 1 overflows");

    let mut request = Request::new(Empty {});
    request
        .metadata_mut()
        .insert("x-caller", "ada".parse().expect("metadata"));
    let who: Text = unary(channel.clone(), "Whoami", request)
        .await
        .expect("Whoami");
    assert_eq!(who.value, "ada");

    let error = unary::<_, _, Empty>(channel.clone(), "Missing", Request::new(Empty {}))
        .await
        .expect_err("no such method");
    assert_eq!(error.code(), Code::Unimplemented);
    assert!(
        error
            .message()
            .contains("no descriptor for /bridge.v1.Calc/Missing"),
        "{error:?}"
    );

    // Not protobuf for AddRequest (field 1 as a length-delimited run of a varint field):
    // the client's fault, named.
    let error = unary::<_, _, I64Value>(channel, "Add", Request::new(Text { value: "x".into() }))
        .await
        .expect_err("bad protobuf");
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert!(
        error.message().starts_with("bridge.v1.AddRequest"),
        "{error:?}"
    );
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn the_main_port_bridges_grpc_proto_and_keeps_plain_grpc_msgpack() {
    let setup = setup("").await;
    let channel = connect(setup.gateway.addr).await;
    // `application/grpc+proto` on the main port: bridged.
    let proto = tower::ServiceBuilder::new()
        .map_request(|mut req: http::Request<tonic::body::Body>| {
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc+proto"),
            );
            req
        })
        .service(channel.clone());
    let sum: I64Value = unary(proto, "Add", Request::new(AddRequest { a: 1, b: 2 }))
        .await
        .expect("Add over application/grpc+proto");
    assert_eq!(sum.value, 3);

    // Plain `application/grpc` on the main port: MessagePack, passed through as before.
    let mut client = CalcClient::new(channel);
    let sum = tokio::time::timeout(LIMIT, client.add(20, 22))
        .await
        .expect("within the limit")
        .expect("MessagePack Add");
    assert_eq!(sum, 42);
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn bridged_calls_meet_the_same_auth_as_any_call() {
    let setup = setup("[auth]\ndefault_policy = \"deny\"\n").await;
    let channel = connect(setup.gateway.bridge.expect("bridge listener")).await;
    let error = unary::<_, _, I64Value>(channel, "Add", Request::new(AddRequest { a: 1, b: 1 }))
        .await
        .expect_err("denied");
    assert!(
        matches!(error.code(), Code::Unauthenticated | Code::PermissionDenied),
        "{error:?}"
    );
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_the_services_of_the_descriptors() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let setup = setup("").await;
    for addr in [
        setup.gateway.bridge.expect("bridge listener"),
        setup.gateway.addr,
    ] {
        let mut client = ServerReflectionClient::new(connect(addr).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = tokio::time::timeout(
            LIMIT,
            client.server_reflection_info(tokio_stream::iter([request])),
        )
        .await
        .expect("within the limit")
        .expect("reflection answers")
        .into_inner();
        let reply = tokio::time::timeout(LIMIT, replies.next())
            .await
            .expect("within the limit")
            .expect("one reply")
            .expect("a message");
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("{addr}: not a service list: {reply:?}");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"bridge.v1.Calc"), "{addr}: {names:?}");
    }
    setup.gateway.shutdown().await;
}

#[tokio::test]
async fn the_admin_listener_serves_the_openapi_document_of_the_descriptors() {
    let setup = setup("openapi_path = \"/openapi.json\"").await;
    let (status, body) = support::grpc::http_get(setup.gateway.admin(), "/openapi.json").await;
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let add = &document["paths"]["/bridge.v1.Calc/Add"]["post"];
    assert_eq!(add["operationId"], "bridge.v1.Calc.Add");
    assert_eq!(
        add["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/bridge.v1.AddRequest"
    );
    assert_eq!(
        document["components"]["schemas"]["bridge.v1.AddRequest"]["required"],
        serde_json::json!(["a", "b"])
    );
    // A trait result is the value itself; server streaming is NDJSON; client streaming has
    // no REST form.
    assert_eq!(
        add["responses"]["200"]["content"]["application/json"]["schema"]["format"],
        "int64"
    );
    assert!(
        document["paths"]["/bridge.v1.Calc/Countdown"]["post"]["responses"]["200"]["content"]
            ["application/x-ndjson"]
            .is_object()
    );
    assert!(document["paths"]["/bridge.v1.Calc/Sum"].is_null());
    setup.gateway.shutdown().await;
}
