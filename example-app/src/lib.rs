//! tonic-msgpack end to end: a proto-defined service ([`greeter`]), a trait-defined service
//! ([`calculator`]), the gateway in front of both, and a client that shows every call kind.

pub mod calculator;
pub mod greeter;

/// Types and tonic server/client generated from `proto/demo/v1/greeter.proto`.
pub mod proto {
    // greeter.proto has no comments for prost to turn into docs.
    #![allow(missing_docs)]
    tonic_msgpack::include_proto!("demo.v1");
}

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// One tonic server with both example services.
pub fn services() -> tonic::service::Routes {
    tonic::service::Routes::new(proto::greeter_server::GreeterServer::new(
        greeter::GreeterService,
    ))
    .add_service(calculator::CalculatorServer::new(
        calculator::CalculatorService,
    ))
}

/// Serves both services on `listener` until `shutdown` completes.
pub async fn serve_services(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(services())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// Binds `addr` and serves both services on it in the background; returns the bound address.
pub async fn spawn_services(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = serve_services(listener, std::future::pending()).await {
            eprintln!("services on {bound} stopped: {error}");
        }
    });
    Ok(bound)
}
