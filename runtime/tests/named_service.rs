//! `format = "named"`: user structs travel as maps keyed by field name; compact peers still
//! decode (decoders accept both layouts).

mod support;

use serde::{Deserialize, Serialize};
use support::raw::{RawClient, frame};
use tonic::Status;
use tonic_msgpack::msgpack_service;

/// A user type, plain serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal.
    pub x: i32,
    /// Vertical.
    pub y: i32,
}

/// Geometry with named structs.
#[msgpack_service(name = "Geometry", format = "named")]
pub trait GeometryService {
    /// Mirrors a point.
    async fn mirror(&self, point: Point) -> Result<Point, Status>;
}

struct Geometry;

impl GeometryService for Geometry {
    async fn mirror(&self, point: Point) -> Result<Point, Status> {
        Ok(Point {
            x: point.y,
            y: point.x,
        })
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GeometryServer::new(Geometry))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[tokio::test]
async fn named_structs_are_maps_on_the_wire() {
    let addr = serve().await;
    let mut client = GeometryClient::connect(addr.clone())
        .await
        .expect("connect");
    assert_eq!(
        client.mirror(Point { x: 1, y: 2 }).await.expect("mirror"),
        Point { x: 2, y: 1 }
    );

    // No package: the path is `/Geometry/Mirror` (MagicOnion style).
    let mut raw = RawClient::connect(&addr).await;
    let request = tonic_msgpack::to_vec(&Point { x: 1, y: 2 }).expect("encode"); // compact [1, 2]
    let response = raw.call("/Geometry/Mirror", frame(&request), &[]).await;
    assert_eq!(response.grpc_status, Some(0), "{response:?}");
    // {"x": 2, "y": 1}
    assert_eq!(
        response.messages[0].as_ref(),
        &[0x82, 0xa1, b'x', 0x02, 0xa1, b'y', 0x01]
    );
}
