//! The proto-defined service: `demo.v1.Greeter` from `proto/demo/v1/greeter.proto`.

use std::time::SystemTime;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};
use tonic_msgpack::ServerStream;

use crate::proto::greeter_server::Greeter;
use crate::proto::{HelloReply, HelloRequest};

/// The most replies `StreamGreetings` sends for one request.
pub const MAX_GREETINGS: u32 = 1000;

/// The example implementation.
#[derive(Debug, Default, Clone, Copy)]
pub struct GreeterService;

fn greeting(request: &HelloRequest, index: u32) -> Result<HelloReply, Status> {
    if request.name.is_empty() {
        return Err(Status::invalid_argument(
            "demo.v1.HelloRequest.name: must not be empty",
        ));
    }
    Ok(HelloReply {
        message: format!("Hello, {}!", request.name),
        index,
        at: Some(SystemTime::now().into()),
    })
}

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        greeting(request.get_ref(), 0).map(Response::new)
    }

    type StreamGreetingsStream = ServerStream<HelloReply>;

    async fn stream_greetings(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Self::StreamGreetingsStream>, Status> {
        let request = request.into_inner();
        if request.count > MAX_GREETINGS {
            return Err(Status::invalid_argument(format!(
                "demo.v1.HelloRequest.count: {} is over the limit of {MAX_GREETINGS}",
                request.count
            )));
        }
        // Validate once up front so an empty name fails the call, not the first message.
        greeting(&request, 0)?;
        let replies = (0..request.count).map(move |index| greeting(&request, index));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn collect_names(
        &self,
        request: Request<tonic::Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut requests = tonic_msgpack::Streaming::new(request.into_inner());
        let mut names = Vec::new();
        while let Some(request) = requests.message().await? {
            greeting(&request, 0)?;
            names.push(request.name);
        }
        Ok(Response::new(HelloReply {
            index: u32::try_from(names.len()).unwrap_or(u32::MAX),
            message: names.join(", "),
            at: Some(SystemTime::now().into()),
        }))
    }

    type ChatStream = ServerStream<HelloReply>;

    async fn chat(
        &self,
        request: Request<tonic::Streaming<HelloRequest>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let requests = tonic_msgpack::Streaming::new(request.into_inner());
        let mut position = 0u32;
        let replies = requests.map(move |request| {
            let reply = greeting(&request?, position);
            position += 1;
            reply
        });
        // Stop after the first error so a bad message ends the call.
        let mut failed = false;
        let replies = replies.take_while(move |reply| {
            let keep = !failed;
            failed = reply.is_err();
            keep
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
