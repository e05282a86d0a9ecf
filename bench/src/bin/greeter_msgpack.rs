//! `demo.v1.Greeter` over tonic + msgpack (`bench/greeter.sh`).
//!
//! `greeter_msgpack ADDR [THREADS]`: the example app's handlers (a greeting with the current time;
//! `StreamGreetings` sends `count` replies) on a multi-thread runtime of THREADS workers.

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_msgpack_bench::msgpack_greeter::greeter_server::{Greeter, GreeterServer};
use tonic_msgpack_bench::msgpack_greeter::{HelloReply, HelloRequest};
use tonic_msgpack_bench::{MAX_GREETINGS, greeting, now};

type Replies = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

fn reply(request: &HelloRequest, index: u32) -> Result<HelloReply, Status> {
    if request.name.is_empty() {
        return Err(Status::invalid_argument(
            "demo.v1.HelloRequest.name: must not be empty",
        ));
    }
    let (seconds, nanos) = now();
    Ok(HelloReply {
        message: greeting(&request.name),
        index,
        at: Some(tonic_msgpack::wkt::Timestamp { seconds, nanos }),
    })
}

#[derive(Debug, Clone, Copy)]
struct Service;

#[tonic::async_trait]
impl Greeter for Service {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        reply(request.get_ref(), 0).map(Response::new)
    }

    type StreamGreetingsStream = Replies;

    async fn stream_greetings(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Replies>, Status> {
        let request = request.into_inner();
        if request.count > MAX_GREETINGS {
            return Err(Status::invalid_argument(
                "demo.v1.HelloRequest.count: over the limit",
            ));
        }
        reply(&request, 0)?;
        let replies = (0..request.count).map(move |index| reply(&request, index));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn collect_names(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(request) = stream.next().await {
            names.push(request?.name);
        }
        let all = HelloRequest {
            name: names.join(", "),
            count: 0,
        };
        reply(&all, 0).map(Response::new)
    }

    type ChatStream = Replies;

    async fn chat(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let replies = request
            .into_inner()
            .map(|request| request.and_then(|request| reply(&request, 0)));
        Ok(Response::new(Box::pin(replies)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_msgpack_bench::serve("greeter_msgpack", GreeterServer::new(Service))
}
