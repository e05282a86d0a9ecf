//! A crate whose build.rs is the one line `compile_protos("proto/hello.proto")` builds and
//! serves: a real tonic server on 127.0.0.1:0, called with the generated client, all four call
//! kinds, plus a service whose messages use every feature.

use std::pin::Pin;

use futures_util::StreamExt;
use proto_e2e::demo::v1::kitchen_client::KitchenClient;
use proto_e2e::demo::v1::kitchen_server::{Kitchen, KitchenServer};
use proto_e2e::demo::v1::{Everything, everything};
use proto_e2e::hello::v1::greeter_client::GreeterClient;
use proto_e2e::hello::v1::greeter_server::{Greeter, GreeterServer};
use proto_e2e::hello::v1::{HelloReply, HelloRequest};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

type ReplyStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<HelloReply, Status>> + Send>>;

struct Hello;

fn reply(message: String, index: i32) -> HelloReply {
    HelloReply { message, index }
}

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let req = request.into_inner();
        Ok(Response::new(reply(
            format!("Hello, {}!", req.name),
            req.count,
        )))
    }

    type CountToStream = ReplyStream;

    async fn count_to(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let req = request.into_inner();
        let replies = (1..=req.count).map(move |i| Ok(reply(req.name.clone(), i)));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn collect(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(req) = stream.next().await {
            names.push(req?.name);
        }
        Ok(Response::new(reply(names.join(","), names.len() as i32)))
    }

    type ChatStream = ReplyStream;

    async fn chat(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let stream = request.into_inner();
        let replies = stream.map(|req| req.map(|req| reply(req.name.to_uppercase(), req.count)));
        Ok(Response::new(Box::pin(replies)))
    }

    async fn ping(&self, _: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
}

struct Echo;

#[tonic::async_trait]
impl Kitchen for Echo {
    async fn echo(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn convert(
        &self,
        request: Request<proto_e2e::common::v1::Money>,
    ) -> Result<Response<proto_e2e::common::v1::Money>, Status> {
        let mut money = request.into_inner();
        money.currency = "USD".into();
        Ok(Response::new(money))
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(Hello))
            .add_service(KitchenServer::new(Echo))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[tokio::test]
async fn all_four_call_kinds() {
    let addr = serve().await;
    let mut client = GreeterClient::connect(addr).await.unwrap();

    let hello = client
        .say_hello(HelloRequest {
            name: "Ann".into(),
            count: 7,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hello, reply("Hello, Ann!".into(), 7));

    let counted: Vec<_> = client
        .count_to(HelloRequest {
            name: "n".into(),
            count: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .map(|r| r.unwrap().index)
        .collect()
        .await;
    assert_eq!(counted, [1, 2, 3]);

    let names = ["a", "b", "c"].map(|n| HelloRequest {
        name: n.into(),
        count: 0,
    });
    let collected = client
        .collect(tokio_stream::iter(names.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(collected, reply("a,b,c".into(), 3));

    let chatted: Vec<_> = client
        .chat(tokio_stream::iter(names))
        .await
        .unwrap()
        .into_inner()
        .map(|r| r.unwrap().message)
        .collect()
        .await;
    assert_eq!(chatted, ["A", "B", "C"]);

    client.ping(()).await.unwrap();
}

#[tokio::test]
async fn every_feature_over_the_wire() {
    let addr = serve().await;
    let mut client = KitchenClient::connect(addr).await.unwrap();
    let value = Everything {
        text: "t".into(),
        data: vec![1, 2, 3],
        choice: Some(everything::Choice::ChoiceNumber(-4)),
        at: Some(tonic_msgpack::wkt::Timestamp::now()),
        wrapped_int: Some(0),
        colors: vec![1, 2, 1000],
        ..Everything::default()
    };
    let echoed = client.echo(value.clone()).await.unwrap().into_inner();
    assert_eq!(echoed, value);
    let money = client
        .convert(proto_e2e::common::v1::Money {
            currency: "EUR".into(),
            units: 1,
            nanos: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(money.currency, "USD");
}
