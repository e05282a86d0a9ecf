//! `#[msgpack_service]` end to end: all four call kinds over real TCP with the generated client.

mod support;

use std::time::Duration;

use support::{CalculatorClient, serve};
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test]
async fn all_four_call_kinds() {
    let mut client = CalculatorClient::connect(serve().await)
        .await
        .expect("connect");

    assert_eq!(client.add(40, 2).await.expect("add"), 42);
    let overflow = client.add(i64::MAX, 1).await.expect_err("overflow");
    assert_eq!(overflow.code(), Code::OutOfRange);

    let total = client
        .sum(tokio_stream::iter([1, 2, 3, 4]))
        .await
        .expect("sum");
    assert_eq!(total, 10);

    let countdown: Vec<u32> = client
        .countdown(3)
        .await
        .expect("countdown")
        .map(|item| item.expect("item"))
        .collect()
        .await;
    assert_eq!(countdown, vec![3, 2, 1, 0]);

    let totals: Vec<i64> = client
        .running_total(tokio_stream::iter([5, -2, 10]))
        .await
        .expect("running_total")
        .map(|item| item.expect("item"))
        .collect()
        .await;
    assert_eq!(totals, vec![5, 3, 13]);

    client.ping().await.expect("ping");
}

#[tokio::test]
async fn metadata_reaches_the_method() {
    let mut client = CalculatorClient::connect(serve().await)
        .await
        .expect("connect");
    assert_eq!(client.who().await.expect("who"), "anonymous");
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("x-user", "ada".parse().expect("ascii"));
    let response = client.raw().who(request).await.expect("who");
    assert_eq!(response.into_inner(), "ada");
}

#[tokio::test]
async fn deadline_exceeded() {
    let mut client = CalculatorClient::connect(serve().await)
        .await
        .expect("connect");

    // tonic's own client timeout also ends the call (tonic reports it as CANCELLED).
    let mut request = tonic::Request::new(2_000u64);
    request.set_timeout(Duration::from_millis(50));
    let started = std::time::Instant::now();
    let error = client.raw().sleep(request).await.expect_err("deadline");
    assert!(
        matches!(error.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // The connection is still good.
    assert_eq!(client.add(1, 1).await.expect("add"), 2);
}

#[tokio::test]
async fn gzip_both_ways() {
    let channel = tonic::transport::Endpoint::from_shared(serve().await)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = CalculatorClient::new(channel)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    assert_eq!(client.add(20, 22).await.expect("add"), 42);
    let totals: Vec<i64> = client
        .running_total(tokio_stream::iter(vec![1; 100]))
        .await
        .expect("running_total")
        .map(|item| item.expect("item"))
        .collect()
        .await;
    assert_eq!(totals.last(), Some(&100));
}
