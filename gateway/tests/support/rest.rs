//! Shared by the REST and gRPC-Web gateway tests: a typed `#[msgpack_service]` upstream on
//! `127.0.0.1:0`, its route table with typed transcoders and HTTP bindings, a gateway, and a
//! small HTTP/1.1 client that reads response bodies frame by frame.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_msgpack::{Message, ServerStream, Streaming, msgpack_service};

use super::start_gateway;
pub use super::{LIMIT, RunningGateway};
use tonic_msgpack_gateway::{CallKind, HttpBinding, Route, RouteTable, Transcoder};

/// What `GetItem` asks for.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ItemRequest {
    pub shelf: String,
    pub id: u32,
    pub verbose: bool,
    pub tags: Vec<String>,
}

/// An item: a compact message whose JSON uses proto JSON names (`unitPrice`).
#[derive(Debug, Default, Clone, PartialEq, Message)]
pub struct Item {
    #[msgpack(key = 0)]
    pub shelf: String,
    #[msgpack(key = 1)]
    pub id: u32,
    #[msgpack(key = 2)]
    pub unit_price: u32,
    #[msgpack(key = 3)]
    pub tags: Vec<String>,
    #[msgpack(key = 4)]
    pub caller: String,
}

/// The body of `PutItem`.
#[derive(Debug, Default, Clone, PartialEq, Message)]
pub struct ItemBody {
    #[msgpack(key = 0)]
    pub name: String,
    #[msgpack(key = 1)]
    pub unit_price: u32,
}

/// `PUT /v1/items/{id}` with `body: "item"`.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PutRequest {
    pub id: u32,
    pub item: ItemBody,
}

/// `Fail`: answers with this status.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FailArgs {
    pub code: i32,
    pub message: String,
}

/// `Count`: `n` ticks; after the first it waits for the test's gate. From 1000 on: one tick,
/// then `ABORTED`.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CountArgs {
    pub n: u32,
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tick {
    pub i: u32,
}

/// A shop over MessagePack.
#[msgpack_service(package = "rest.v1")]
pub trait Shop {
    /// One item; echoes `x-user` and `authorization` (and `cookie`, which must not arrive).
    async fn get_item(&self, req: ItemRequest, metadata: &MetadataMap) -> Result<Item, Status>;
    /// Stores an item.
    async fn put_item(&self, req: PutRequest) -> Result<Item, Status>;
    /// Fails with the status asked for.
    async fn fail(&self, req: FailArgs) -> Result<Item, Status>;
    /// Ticks; the second waits for the gate.
    async fn count(&self, req: CountArgs) -> Result<ServerStream<Tick>, Status>;
    /// Client streaming (not served as REST).
    async fn upload(&self, items: Streaming<Item>) -> Result<u32, Status>;
}

/// The implementation; `gate` releases `Count` after its first tick.
#[derive(Clone, Default)]
pub struct ShopImpl {
    pub gate: Arc<Notify>,
}

fn header(metadata: &MetadataMap, name: &str) -> String {
    metadata
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

impl Shop for ShopImpl {
    async fn get_item(&self, req: ItemRequest, metadata: &MetadataMap) -> Result<Item, Status> {
        let caller = format!(
            "user={} auth={} cookie={} verbose={}",
            header(metadata, "x-user"),
            header(metadata, "authorization"),
            header(metadata, "cookie"),
            req.verbose
        );
        Ok(Item {
            shelf: req.shelf,
            id: req.id,
            unit_price: req.id * 100,
            tags: req.tags,
            caller,
        })
    }

    async fn put_item(&self, req: PutRequest) -> Result<Item, Status> {
        Ok(Item {
            shelf: req.item.name,
            id: req.id,
            unit_price: req.item.unit_price,
            tags: Vec::new(),
            caller: String::new(),
        })
    }

    async fn fail(&self, req: FailArgs) -> Result<Item, Status> {
        Err(Status::new(Code::from_i32(req.code), req.message))
    }

    async fn count(&self, req: CountArgs) -> Result<ServerStream<Tick>, Status> {
        let gate = self.gate.clone();
        let n = req.n;
        Ok(Box::pin(futures_util::stream::unfold(0u32, move |i| {
            let gate = gate.clone();
            async move {
                if i == n {
                    return None;
                }
                if i == 1 && n >= 1000 {
                    // n >= 1000: one tick, then an error.
                    return Some((Err(Status::aborted("stopped after one tick")), n));
                }
                if i == 1 {
                    // Bounded: a test that never opens the gate still ends.
                    let _ = tokio::time::timeout(LIMIT, gate.notified()).await;
                }
                Some((Ok(Tick { i }), i + 1))
            }
        })))
    }

    async fn upload(&self, mut items: Streaming<Item>) -> Result<u32, Status> {
        let mut count = 0;
        while items.message().await?.is_some() {
            count += 1;
        }
        Ok(count)
    }
}

/// Serves a `ShopImpl` on `127.0.0.1:0`; returns its address and the gate.
pub async fn start_shop() -> (SocketAddr, Arc<Notify>) {
    let shop = ShopImpl::default();
    let gate = shop.gate.clone();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ShopServer::new(shop))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, gate)
}

/// The routes, as generated stubs with typed transcoders would declare them.
pub fn shop_routes() -> RouteTable {
    let route = |method: &str, kind| Route::new("rest.v1.Shop", method, kind);
    RouteTable::from_routes([
        route("GetItem", CallKind::Unary)
            .transcoder(Transcoder::typed::<ItemRequest, Item>())
            .http(HttpBinding::new(
                "GET",
                "/v1/shelves/{shelf}/items/{id}",
                None,
            )),
        route("PutItem", CallKind::Unary)
            .transcoder(Transcoder::typed::<PutRequest, Item>())
            .http(HttpBinding::new("PUT", "/v1/items/{id}", Some("item"))),
        route("Fail", CallKind::Unary).transcoder(Transcoder::typed::<FailArgs, Item>()),
        route("Count", CallKind::ServerStreaming)
            .transcoder(Transcoder::typed::<CountArgs, Tick>())
            .http(HttpBinding::new("GET", "/v1/count/{n}", None)),
        route("Upload", CallKind::ClientStreaming).transcoder(Transcoder::typed::<Item, u32>()),
        // A route from stubs without transcoders.
        Route::new("rest.v1.Plain", "Get", CallKind::Unary).upstream("rest.v1.Shop"),
    ])
}

/// A gateway for the shop at `upstream`, with `extra` TOML appended to the config.
pub async fn shop_gateway(upstream: SocketAddr, extra: &str) -> RunningGateway {
    let toml =
        format!("[upstreams.\"rest.v1.Shop\"]\nendpoints = [\"http://{upstream}\"]\n{extra}\n");
    start_gateway(&toml, shop_routes()).await
}

/// Sends one HTTP/1.1 request on a new connection; the body is read by the caller.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> http::Response<Incoming> {
    tokio::time::timeout(LIMIT, async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http/1.1 handshake");
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "gateway.test");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        sender.send_request(request).await.expect("response")
    })
    .await
    .expect("response within the limit")
}

/// Reads the whole body.
pub async fn body_bytes(response: http::Response<Incoming>) -> Bytes {
    tokio::time::timeout(LIMIT, response.into_body().collect())
        .await
        .expect("body within the limit")
        .expect("body")
        .to_bytes()
}

/// Sends a request and returns the status and the body as JSON.
pub async fn json_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let response = send(addr, method, path, headers, body.to_owned()).await;
    let status = response.status().as_u16();
    let bytes = body_bytes(response).await;
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("{method} {path}: not JSON ({err}): {bytes:?}"));
    (status, json)
}

/// A gRPC frame: uncompressed flag, big-endian length, payload.
pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits gRPC(-Web) frames: (flag, payload).
pub fn frames(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        assert!(data.len() >= 5 + len, "truncated frame in {data:?}");
        out.push((data[0], data[5..5 + len].to_vec()));
        data = &data[5 + len..];
    }
    assert!(data.is_empty(), "trailing bytes {data:?}");
    out
}

/// A gateway in front of the shop at `shop` (REST, gRPC-Web) and the `test.Alpha`/`test.Beta`
/// services at `grpc` (a `grpc::Upstream` URI: the well-behaved gRPC client's calls), with
/// `extra` TOML (e.g. `[rest]`, `[limits]`) appended.
pub async fn shop_and_grpc_gateway(shop: SocketAddr, grpc: &str, extra: &str) -> RunningGateway {
    let toml = format!(
        "[upstreams.\"rest.v1.Shop\"]\nendpoints = [\"http://{shop}\"]\n{}{extra}\n",
        super::grpc::two_services(grpc, "")
    );
    start_gateway(&toml, shop_routes().merge(super::grpc::routes())).await
}

/// The shop as a `.proto` with its HTTP bindings: the descriptor set a descriptor-only gateway
/// serves REST from (the same messages and layout as the Rust types above).
pub const SHOP_PROTO: &str = r#"
syntax = "proto3";
package rest.v1;
import "google/api/annotations.proto";
import "google/protobuf/wrappers.proto";

service Shop {
  rpc GetItem(ItemRequest) returns (Item) {
    option (google.api.http) = { get: "/v1/shelves/{shelf}/items/{id}" };
  }
  rpc PutItem(PutRequest) returns (Item) {
    option (google.api.http) = { put: "/v1/items/{id}" body: "item" };
  }
  rpc Fail(FailArgs) returns (Item);
  rpc Count(CountArgs) returns (stream Tick) {
    option (google.api.http) = { get: "/v1/count/{n}" };
  }
  rpc Upload(stream Item) returns (google.protobuf.UInt32Value);
}
message ItemRequest { string shelf = 1; uint32 id = 2; bool verbose = 3; repeated string tags = 4; }
message Item { string shelf = 1; uint32 id = 2; uint32 unit_price = 3; repeated string tags = 4; string caller = 5; }
message ItemBody { string name = 1; uint32 unit_price = 2; }
message PutRequest { uint32 id = 1; ItemBody item = 2; }
message FailArgs { int32 code = 1; string message = 2; }
message CountArgs { uint32 n = 1; }
message Tick { uint32 i = 1; }
"#;

struct ShopSources;

impl protox::file::FileResolver for ShopSources {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match name {
            "shop.proto" => protox::file::File::from_source(name, SHOP_PROTO),
            "google/api/annotations.proto" => protox::file::File::from_source(
                name,
                include_str!("../../../codegen/proto/google/api/annotations.proto"),
            ),
            "google/api/http.proto" => protox::file::File::from_source(
                name,
                include_str!("../../../codegen/proto/google/api/http.proto"),
            ),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The encoded descriptor set of [`SHOP_PROTO`], imports included.
pub fn shop_descriptor_set() -> Vec<u8> {
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(ShopSources);
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file("shop.proto")
        .expect("shop.proto compiles");
    compiler.encode_file_descriptor_set()
}

/// How a REST test's gateway knows the shop's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// In-process, with the typed route stubs ([`shop_routes`]).
    Typed,
    /// The stand-alone `tonic-msgpack-gateway` binary with `descriptors = [...]` only.
    Descriptors,
    /// The binary with `protos = ["dir"]` only: the shop's `.proto`, compiled at start.
    Protos,
}

/// A gateway for REST tests, in-process or a child process; stopped when dropped.
pub struct ShopGateway {
    pub addr: SocketAddr,
    admin: Option<SocketAddr>,
    _running: Box<dyn std::any::Any + Send>,
}

impl ShopGateway {
    /// The admin address; panics when `admin_listen` is off.
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("admin_listen is on")
    }
}

/// Kills the gateway process when the test ends, whatever happens; removes its files.
struct Process(std::process::Child, tempfile::TempDir);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gateway for the shop at `upstream` set up as `setup`, with `extra` TOML appended to the
/// upstream's section (as [`shop_gateway`]).
pub async fn shop_gateway_as(setup: Setup, upstream: SocketAddr, extra: &str) -> ShopGateway {
    if setup == Setup::Typed {
        let gateway = shop_gateway(upstream, extra).await;
        return ShopGateway {
            addr: gateway.addr,
            admin: gateway.admin,
            _running: Box::new(gateway),
        };
    }
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = if setup == Setup::Protos {
        let protos = dir.path().join("proto");
        std::fs::create_dir(&protos).expect("mkdir");
        std::fs::write(protos.join("shop.proto"), SHOP_PROTO).expect("write shop.proto");
        format!("protos = [{:?}]", protos.display().to_string())
    } else {
        let descriptors = dir.path().join("shop.binpb");
        std::fs::write(&descriptors, shop_descriptor_set()).expect("write descriptors");
        format!("descriptors = [{:?}]", descriptors.display().to_string())
    };
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{schema}\n\
             [upstreams.\"rest.v1.Shop\"]\nendpoints = [\"http://{upstream}\"]\n{extra}\n"
        ),
    )
    .expect("write config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tonic-msgpack-gateway"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the gateway binary");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child, dir);
    // `listening on ADDR` then `admin on ADDR`; read on a thread of its own, bounded.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            let _ = reader.read_line(line);
        }
        let _ = tx.send(lines);
        // Keep reading: a closed pipe would make the binary's next print fail.
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|read| read > 0) {
            rest.clear();
        }
    });
    let [listening, admin] = tokio::time::timeout(LIMIT, rx)
        .await
        .expect("the binary starts in time")
        .expect("its first lines");
    let address = |line: &str, prefix: &str| -> SocketAddr {
        line.trim()
            .strip_prefix(prefix)
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from the gateway binary: {line:?}"))
    };
    ShopGateway {
        addr: address(&listening, "listening on "),
        admin: Some(address(&admin, "admin on ")),
        _running: Box::new(process),
    }
}
