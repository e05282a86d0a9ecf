//! REST/JSON vs gRPC through the gateway (`bench/rest.sh`): a typed MessagePack echo service
//! and a gateway whose route has a typed transcoder, in one binary.
//!
//! ```text
//! cargo run --release -p tonic-msgpack-gateway --example rest_bench -- upstream 127.0.0.1:50051
//! cargo run --release -p tonic-msgpack-gateway --example rest_bench -- gateway gateway.toml [THREADS]
//! ```
//!
//! - gRPC: `POST /bench.Echo/Echo`, one MessagePack `[message]` (compact struct) in, the same out.
//! - REST: `POST /bench.Echo/Echo` (default binding) or `POST /v1/echo` with `{"message": "..."}`.
//!
//! THREADS: tokio worker threads of the gateway; 0 (default) for a current-thread runtime.

use tonic::Status;
use tonic_msgpack::msgpack_service;
use tonic_msgpack_gateway::{
    CallKind, Config, Gateway, HttpBinding, Route, RouteTable, Transcoder,
};

/// The message: a struct, so its JSON is an object.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EchoMessage {
    /// Echoed back.
    pub message: String,
}

/// Echoes a message.
#[msgpack_service(package = "bench")]
pub trait Echo {
    /// The same message back.
    async fn echo(&self, req: EchoMessage) -> Result<EchoMessage, Status>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, req: EchoMessage) -> Result<EchoMessage, Status> {
        Ok(req)
    }
}

fn routes() -> RouteTable {
    RouteTable::from_routes([Route::new("bench.Echo", "Echo", CallKind::Unary)
        .transcoder(Transcoder::typed::<EchoMessage, EchoMessage>())
        .http(HttpBinding::new("POST", "/v1/echo", Some("*")))])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: rest_bench upstream ADDR | rest_bench gateway CONFIG.toml [THREADS]";
    let mut args = std::env::args().skip(1);
    let role = args.next().ok_or(usage)?;
    let target = args.next().ok_or(usage)?;
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    match role.as_str() {
        "upstream" => {
            let addr: std::net::SocketAddr = target.parse()?;
            eprintln!("bench.Echo listening on {addr}");
            runtime.block_on(
                tonic::transport::Server::builder()
                    .add_service(EchoServer::new(EchoImpl))
                    .serve(addr),
            )?;
        }
        "gateway" => {
            let config = Config::from_file(&target)?;
            eprintln!("gateway listening on {}", config.listen);
            runtime.block_on(Gateway::builder().config(config).routes(routes()).serve())?;
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
