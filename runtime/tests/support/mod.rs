//! Shared by this crate's test files: a `#[msgpack_service]` and a server for it on
//! `127.0.0.1:0`, a raw HTTP/2 client ([`raw`]) and [`hex`] for byte assertions.
#![allow(dead_code, unreachable_pub)]

pub mod raw;

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};

/// Arithmetic over MessagePack.
#[msgpack_service(package = "demo.v1")]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// Sums a stream.
    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status>;
    /// Counts down to zero.
    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status>;
    /// Running totals of a stream.
    async fn running_total(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status>;
    /// Nothing in, nothing out.
    async fn ping(&self) -> Result<(), Status>;
    /// Echoes a request header.
    #[rpc(name = "WhoAmI")]
    async fn who(&self, metadata: &MetadataMap) -> Result<String, Status>;
    /// Sleeps, for deadline tests.
    async fn sleep(&self, millis: u64) -> Result<(), Status>;
}

/// The implementation under test.
pub struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        a.checked_add(b)
            .ok_or_else(|| Status::out_of_range("overflow"))
    }

    async fn sum(&self, mut values: Streaming<i64>) -> Result<i64, Status> {
        let mut total = 0i64;
        while let Some(value) = values.message().await? {
            total += value;
        }
        Ok(total)
    }

    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status> {
        Ok(Box::pin(tokio_stream::iter((0..=from).rev().map(Ok))))
    }

    async fn running_total(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status> {
        let mut total = 0;
        Ok(Box::pin(values.map(move |value| {
            total += value?;
            Ok(total)
        })))
    }

    async fn ping(&self) -> Result<(), Status> {
        Ok(())
    }

    async fn who(&self, metadata: &MetadataMap) -> Result<String, Status> {
        let user = metadata
            .get("x-user")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("anonymous");
        Ok(user.to_owned())
    }

    async fn sleep(&self, millis: u64) -> Result<(), Status> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(())
    }
}

/// Serves `Calc` (gzip accepted and sent) and returns its `http://` address.
pub async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                CalculatorServer::new(Calc)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .send_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// `bytes` as lowercase hex without separators, the form golden vectors are written in.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
