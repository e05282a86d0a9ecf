//! The gateway tests' one support module: a running gateway on `127.0.0.1:0` (here), real
//! tonic upstreams and raw gRPC clients (`grpc`), and a typed REST/gRPC-Web upstream with a small
//! HTTP/1.1 client (`rest`).
#![allow(dead_code, unreachable_pub, unused_imports, missing_docs)]

pub mod grpc;
pub mod process;
pub mod rest;
pub mod scale;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic_msgpack_gateway::{Config, Gateway, RouteTable};

/// Every test ends by itself: each await on the network is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A running gateway on `127.0.0.1:0`; dropping it shuts it down.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// Where the admin endpoints answer (`admin_listen`, `127.0.0.1:0` unless the TOML sets it).
    pub admin: Option<SocketAddr>,
    /// The protobuf bridge's listener (`[protobuf_bridge]`), when configured.
    pub bridge: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningGateway {
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin address; panics when `admin_listen` is off.
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("admin_listen is on")
    }

    /// Signals shutdown and waits for the gateway to stop.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("gateway stops within the limit")
                .expect("gateway task");
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a gateway from a TOML config (its `listen` is ignored; `admin_listen` is
/// `127.0.0.1:0` unless the TOML sets it) with `routes`.
pub async fn start_gateway(config_toml: &str, routes: RouteTable) -> RunningGateway {
    let mut config = Config::from_toml(config_toml).expect("valid config");
    if !config_toml.contains("admin_listen") {
        config.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let gateway = Gateway::builder()
        .config(config)
        .routes(routes)
        .build()
        .await
        .expect("gateway builds");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let addr = listener.local_addr().expect("gateway addr");
    let admin = gateway.bind_admin().expect("bind admin");
    let bridge = gateway.bind_bridge().expect("bind the protobuf bridge");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        gateway
            .serve_on(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("gateway serves");
    });
    RunningGateway {
        addr,
        admin,
        bridge,
        shutdown: Some(tx),
        task: Some(task),
    }
}
