//! The example services answer the standard health protocol (`grpc.health.v1.Health/Check`),
//! which the gateway's `health_check` asks.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn the_services_are_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(example_app::serve_services(listener, async move {
        let _ = stopped.await;
    }));
    let limit = Duration::from_secs(10);
    let channel = tokio::time::timeout(
        limit,
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect(),
    )
    .await
    .expect("connects in time")
    .expect("connects");
    let mut client = HealthClient::new(channel);
    let answer = tokio::time::timeout(
        limit,
        client.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("answers in time")
    .expect("Check answers");
    assert_eq!(answer.into_inner().status(), ServingStatus::Serving);
    let _ = stop.send(());
    tokio::time::timeout(limit, server)
        .await
        .expect("stops in time")
        .expect("server task")
        .expect("served");
}
