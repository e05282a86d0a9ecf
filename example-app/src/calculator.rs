//! The trait-defined service: `demo.v1.Calculator`, compact format.

use tokio_stream::StreamExt;
use tonic::Status;
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};

/// Integer arithmetic over MessagePack.
#[msgpack_service(package = "demo.v1")]
pub trait Calculator {
    /// `a + b`; `OUT_OF_RANGE` on overflow.
    #[rpc(http = "GET /v1/add/{a}/{b}")]
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// The sum of a stream of numbers.
    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status>;
    /// `from`, `from - 1`, …, `0`.
    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status>;
    /// The running total after each number.
    async fn running_total(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status>;
    /// Nothing in, nothing out: a liveness check.
    async fn ping(&self) -> Result<(), Status>;
}

/// The example implementation.
#[derive(Debug, Default, Clone, Copy)]
pub struct CalculatorService;

fn checked_add(total: i64, value: i64) -> Result<i64, Status> {
    total.checked_add(value).ok_or_else(|| {
        Status::out_of_range(format!("{total} + {value} overflows a 64-bit integer"))
    })
}

impl Calculator for CalculatorService {
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        checked_add(a, b)
    }

    async fn sum(&self, mut values: Streaming<i64>) -> Result<i64, Status> {
        let mut total = 0;
        while let Some(value) = values.message().await? {
            total = checked_add(total, value)?;
        }
        Ok(total)
    }

    async fn countdown(&self, from: u32) -> Result<ServerStream<u32>, Status> {
        Ok(Box::pin(tokio_stream::iter((0..=from).rev().map(Ok))))
    }

    async fn running_total(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, Status> {
        let mut total = 0i64;
        Ok(Box::pin(values.map(move |value| {
            total = checked_add(total, value?)?;
            Ok(total)
        })))
    }

    async fn ping(&self) -> Result<(), Status> {
        Ok(())
    }
}
