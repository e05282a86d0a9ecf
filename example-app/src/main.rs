//! tonic-msgpack example.
//!
//! - `cargo run -p example-app`: starts both services and the gateway on free loopback ports,
//!   calls every method through the gateway (all four call kinds, an error, REST), prints what
//!   happens and exits.
//! - `cargo run -p example-app -- serve --listen 127.0.0.1:50051`: runs the gateway on
//!   `--listen` and the services on `--services-listen` until Ctrl-C or SIGTERM (both drain).
//! - With `OTEL_EXPORTER_OTLP_ENDPOINT` set (e.g. `http://127.0.0.1:4317`), `serve` and
//!   `services` export OpenTelemetry traces there over OTLP/gRPC: the services' spans
//!   (`OTEL_SERVICE_NAME`, default `example-services`) and, for `serve`, the gateway's
//!   (`[tracing]`), so a call shows client → gateway → service in one trace.
//! - `cargo run -p example-app -- check-greeter http://127.0.0.1:50060`: calls all four Greeter
//!   kinds on any server with the Greeter contract (the interop suite points it at Python).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use example_app::calculator::CalculatorClient;
use example_app::proto::HelloRequest;
use example_app::proto::greeter_client::GreeterClient;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_msgpack_gateway::{Config, Gateway, UpstreamConfig};

#[derive(Debug, Parser)]
#[command(about = "tonic-msgpack example: a proto service, a trait service and the gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the services and the gateway until Ctrl-C or SIGTERM (in-flight calls finish first).
    Serve {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Where both services listen (directly, without the gateway).
        #[arg(long, default_value = "127.0.0.1:0")]
        services_listen: SocketAddr,
        /// A gateway config (TOML); its upstreams replace the built-in ones (without any, both
        /// services at `--services-listen`, e.g. a config with only `[cors]`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the example services only (no gateway) until Ctrl-C or SIGTERM: what the
    /// services' container image runs, one Deployment per service behind the gateway.
    Services {
        /// Where the services listen.
        #[arg(long, default_value = "127.0.0.1:50060")]
        listen: SocketAddr,
        /// Serve one service only (default: both).
        #[arg(long, value_enum)]
        only: Option<Only>,
        /// How long in-flight calls may run on after the signal.
        #[arg(long, default_value = "10", value_name = "SECONDS")]
        grace_seconds: u64,
    },
    /// Call all four Greeter kinds on ADDR and check the answers; exits non-zero on a mismatch.
    CheckGreeter {
        /// The server, e.g. `http://127.0.0.1:50060`.
        addr: String,
    },
}

/// One of the example services.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Only {
    /// `demo.v1.Greeter` (from greeter.proto).
    Greeter,
    /// `demo.v1.Calculator` (from a Rust trait).
    Calculator,
}

// The gateway binary's allocator, so `serve` measures what users of the gateway run.
#[global_allocator]
static ALLOCATOR: tonic_msgpack_gateway::Jemalloc = tonic_msgpack_gateway::Jemalloc;

fn main() -> anyhow::Result<()> {
    tonic_msgpack_gateway::return_memory_in_background();
    // The gateway's runtime: a single event loop on one CPU, one worker per CPU otherwise.
    tonic_msgpack_gateway::runtime(None)?.block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => demo().await,
        Some(Command::Serve {
            listen,
            services_listen,
            config,
        }) => serve(listen, services_listen, config).await,
        Some(Command::Services {
            listen,
            only,
            grace_seconds,
        }) => services(listen, only, Duration::from_secs(grace_seconds)).await,
        Some(Command::CheckGreeter { addr }) => check_greeter(&addr).await,
    }
}

/// The gateway config for services at `services`: one upstream per service.
fn gateway_config(listen: SocketAddr, services: SocketAddr) -> anyhow::Result<Config> {
    let endpoint: http::Uri = format!("http://{services}").parse()?;
    let mut config = Config {
        listen,
        grace_period: Duration::from_secs(5),
        ..Config::default()
    };
    for service in ["demo.v1.Greeter", "demo.v1.Calculator"] {
        config = config.upstream(service, UpstreamConfig::new([endpoint.clone()]));
    }
    Ok(config)
}

/// The gateway's public address, its admin address (when `admin_listen` is on) and its task.
type Started = (SocketAddr, Option<SocketAddr>, tokio::task::JoinHandle<()>);

async fn start_gateway(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Started> {
    let gateway = Gateway::builder()
        .config(config)
        .routes(example_app::routes::table())
        .descriptor_set(example_app::DESCRIPTORS)
        .build()
        .await
        .context("cannot build the gateway")?;
    let listener = gateway.bind().await.context("cannot bind the gateway")?;
    let addr = listener.local_addr()?;
    if let Some(bridge) = gateway.bind_bridge()? {
        println!("protobuf bridge listening on {bridge} (protobuf clients, server reflection)");
    }
    let admin = gateway.admin_addr();
    let task = tokio::spawn(async move {
        if let Err(error) = gateway.serve_on(listener, shutdown).await {
            eprintln!("gateway stopped: {error}");
        }
    });
    Ok((addr, admin, task))
}

/// The OTLP collector of `OTEL_EXPORTER_OTLP_ENDPOINT`, when set.
fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, installs the global tracer provider the services'
/// trace layer records with (batch export over OTLP/gRPC); keep it to flush at exit.
fn service_tracing() -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    let Some(endpoint) = otlp_endpoint() else {
        return Ok(None);
    };
    // The exporter reads the endpoint (and OTEL_EXPORTER_OTLP_* options) from the environment.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .with_context(|| format!("cannot export traces to {endpoint}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "example-services".into());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    println!("exporting traces to {endpoint}");
    Ok(Some(provider))
}

/// Sends the last spans before the process ends (blocking: off the runtime's threads).
async fn flush_traces(provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>) {
    if let Some(provider) = provider {
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

async fn serve(
    listen: SocketAddr,
    services_listen: SocketAddr,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let traces = service_tracing()?;
    let services = example_app::spawn_services(services_listen)
        .await
        .with_context(|| format!("cannot listen on {services_listen}"))?;
    println!("services (Greeter, Calculator) listening on {services}");
    let config = match config {
        Some(path) => {
            let mut config = Config::from_file(&path)?;
            config.listen = listen;
            if config.upstreams.is_empty() {
                config.upstreams = gateway_config(listen, services)?.upstreams;
            }
            // A `[protobuf_bridge]` section is all it takes: the descriptors are built in.
            config.reflection |= config.protobuf_bridge.is_some();
            config
        }
        None => gateway_config(listen, services)?,
    };
    let mut config = config;
    // The gateway's spans go to the same collector, unless its config says otherwise.
    if let (Some(endpoint), false) = (otlp_endpoint(), config.tracing.enabled) {
        config.tracing.enabled = true;
        config.tracing.otlp_endpoint = endpoint;
    }
    // Installed now, before anything is served: SIGTERM (what Kubernetes and docker send) and
    // Ctrl-C both stop accepting and let in-flight calls finish for `grace_period`.
    let shutdown = tonic_msgpack_gateway::shutdown_signal()?;
    let (addr, admin, gateway) = start_gateway(config, shutdown).await?;
    println!("gateway listening on {addr} (gRPC, REST, gRPC-Web)");
    if let Some(admin) = admin {
        println!("admin endpoints on {admin} (/healthz, /readyz, /metrics, /routes)");
    }
    gateway.await?;
    println!("gateway stopped");
    flush_traces(traces).await;
    Ok(())
}

/// Serves the example services until Ctrl-C or SIGTERM, then lets open calls finish for up to
/// `grace` (tonic alone would wait for them without a bound).
async fn services(listen: SocketAddr, only: Option<Only>, grace: Duration) -> anyhow::Result<()> {
    let routes = match only {
        None => example_app::services(),
        Some(Only::Greeter) => {
            tonic::service::Routes::new(example_app::proto::greeter_server::GreeterServer::new(
                example_app::greeter::GreeterService,
            ))
            .add_service(example_app::health())
        }
        Some(Only::Calculator) => {
            tonic::service::Routes::new(example_app::calculator::CalculatorServer::new(
                example_app::calculator::CalculatorService,
            ))
            .add_service(example_app::health())
        }
    };
    let traces = service_tracing()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let signal = tonic_msgpack_gateway::shutdown_signal()?;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal.await;
        let _ = stopping.send(());
    };
    println!("services listening on {}", listener.local_addr()?);
    let server = tonic::transport::Server::builder()
        .layer(tonic_msgpack::trace::TraceLayer::new())
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        );
    let grace_over = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace_over => eprintln!("grace period over; closing the remaining calls"),
    }
    println!("services stopped");
    flush_traces(traces).await;
    Ok(())
}

fn hello(name: &str, count: u32) -> HelloRequest {
    HelloRequest {
        name: name.to_owned(),
        count,
    }
}

async fn demo() -> anyhow::Result<()> {
    let services = example_app::spawn_services("127.0.0.1:0".parse()?).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut config = gateway_config("127.0.0.1:0".parse()?, services)?;
    config.admin_listen = Some("127.0.0.1:0".parse()?);
    let (gateway, admin, gateway_task) = start_gateway(config, async {
        let _ = stopped.await;
    })
    .await?;
    println!(
        "services on {services}, gateway on {gateway}; every call below goes through the gateway\n"
    );

    let channel = Channel::from_shared(format!("http://{gateway}"))?
        .connect()
        .await
        .context("cannot connect to the gateway")?;
    let mut greeter = GreeterClient::new(channel.clone());
    let mut calculator = CalculatorClient::new(channel);

    println!("demo.v1.Greeter (from greeter.proto)");
    let reply = greeter.say_hello(hello("Ada", 0)).await?.into_inner();
    println!(
        "  unary            SayHello(Ada)            -> {:?} #{}",
        reply.message, reply.index
    );
    let mut stream = greeter
        .stream_greetings(hello("Grace", 3))
        .await?
        .into_inner();
    while let Some(reply) = stream.message().await? {
        println!(
            "  server streaming StreamGreetings(Grace, 3) -> {:?} #{}",
            reply.message, reply.index
        );
    }
    let names = ["Alan", "Barbara", "Edsger"].map(|name| hello(name, 0));
    let reply = greeter
        .collect_names(tokio_stream::iter(names))
        .await?
        .into_inner();
    println!(
        "  client streaming CollectNames(3 names)     -> {:?} #{}",
        reply.message, reply.index
    );
    let requests = ["Ken", "Dennis"].map(|name| hello(name, 0));
    let mut chat = greeter
        .chat(tokio_stream::iter(requests))
        .await?
        .into_inner();
    while let Some(reply) = chat.message().await? {
        println!(
            "  bidirectional    Chat                      -> {:?} #{}",
            reply.message, reply.index
        );
    }
    let Err(error) = greeter.say_hello(hello("", 0)).await else {
        anyhow::bail!("SayHello with an empty name should have failed");
    };
    println!(
        "  error            SayHello(\"\")             -> {:?}: {}",
        error.code(),
        error.message()
    );

    println!("\ndemo.v1.Calculator (from a Rust trait)");
    println!(
        "  unary            add(40, 2)               -> {}",
        calculator.add(40, 2).await?
    );
    let sum = calculator.sum(tokio_stream::iter([1, 2, 3, 4])).await?;
    println!("  client streaming sum(1, 2, 3, 4)          -> {sum}");
    let countdown: Vec<u32> = calculator
        .countdown(3)
        .await?
        .map(|n| n.unwrap_or_default())
        .collect()
        .await;
    println!("  server streaming countdown(3)             -> {countdown:?}");
    let mut totals = calculator
        .running_total(tokio_stream::iter([5, 10, -3]))
        .await?;
    let mut seen = Vec::new();
    while let Some(total) = totals.message().await? {
        seen.push(total);
    }
    println!("  bidirectional    running_total(5, 10, -3) -> {seen:?}");
    calculator.ping().await?;
    println!("  unary            ping()                   -> ()");
    let Err(error) = calculator.add(i64::MAX, 1).await else {
        anyhow::bail!("add(i64::MAX, 1) should have overflowed");
    };
    println!(
        "  error            add(i64::MAX, 1)         -> {:?}: {}",
        error.code(),
        error.message()
    );

    rest_calls(gateway).await?;
    if let Some(admin) = admin {
        let (status, _, reply) = http_call(admin, "GET", "/healthz", "").await?;
        println!(
            "\nadmin port {admin}: GET /healthz -> {status} {}",
            reply.trim()
        );
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), gateway_task)
        .await
        .context("the gateway did not stop within 10 s")??;
    println!("\ndone: every call kind worked through the gateway");
    Ok(())
}

/// REST/JSON through the same port: the gateway transcodes JSON ⇄ MessagePack.
async fn rest_calls(gateway: SocketAddr) -> anyhow::Result<()> {
    println!("\nREST/JSON through the gateway (same port)");
    let calls = [
        ("POST", "/demo.v1.Greeter/SayHello", r#"{"name": "Ada"}"#),
        (
            "POST",
            "/demo.v1.Greeter/StreamGreetings",
            r#"{"name": "Grace", "count": 2}"#,
        ),
        ("GET", "/v1/add/40/2", ""),
        (
            "POST",
            "/demo.v1.Calculator/Add",
            r#"{"a": 9223372036854775807, "b": 1}"#,
        ),
        ("POST", "/demo.v1.Greeter/SayHello", r#"{"name": 42}"#),
    ];
    for (method, path, body) in calls {
        let (status, content_type, reply) = http_call(gateway, method, path, body).await?;
        let reply = reply.trim().replace('\n', "\n      ");
        println!("  {method:<4} {path:<34} {body:<40} -> {status} {content_type}\n      {reply}");
    }
    Ok(())
}

/// One HTTP/1.1 request over a fresh connection (the example needs no HTTP client crate);
/// returns the status, the content type and the (de-chunked) body.
async fn http_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .context("no HTTP response within 10 s")??;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP status line")?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, header("content-type").unwrap_or_default(), body))
}

/// Joins the chunks of a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Calls all four Greeter kinds on `addr` and checks every answer.
async fn check_greeter(addr: &str) -> anyhow::Result<()> {
    let mut client = GreeterClient::connect(addr.to_owned())
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let now = std::time::SystemTime::now();
    let recent = |at: Option<tonic_msgpack::wkt::Timestamp>| -> anyhow::Result<()> {
        let at: std::time::SystemTime = at.context("reply without `at`")?.into();
        let skew = at
            .duration_since(now)
            .or_else(|e| Ok::<_, anyhow::Error>(e.duration()))?;
        ensure!(
            skew < Duration::from_secs(60),
            "`at` is {skew:?} away from now"
        );
        Ok(())
    };

    let reply = client.say_hello(hello("Ada", 0)).await?.into_inner();
    ensure!(
        reply.message == "Hello, Ada!" && reply.index == 0,
        "SayHello: {reply:?}"
    );
    recent(reply.at)?;
    println!("ok   SayHello");

    let mut stream = client.stream_greetings(hello("Bob", 3)).await?.into_inner();
    let mut indexes = Vec::new();
    while let Some(reply) = stream.message().await? {
        ensure!(reply.message == "Hello, Bob!", "StreamGreetings: {reply:?}");
        recent(reply.at)?;
        indexes.push(reply.index);
    }
    ensure!(indexes == [0, 1, 2], "StreamGreetings indexes: {indexes:?}");
    println!("ok   StreamGreetings");

    let names = ["Ann", "Ben", "Cy"].map(|name| hello(name, 0));
    let reply = client
        .collect_names(tokio_stream::iter(names))
        .await?
        .into_inner();
    ensure!(
        reply.message == "Ann, Ben, Cy" && reply.index == 3,
        "CollectNames: {reply:?}"
    );
    println!("ok   CollectNames");

    let requests = ["X", "Y"].map(|name| hello(name, 0));
    let mut chat = client
        .chat(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut replies = Vec::new();
    while let Some(reply) = chat.message().await? {
        replies.push((reply.message, reply.index));
    }
    let expected = vec![("Hello, X!".to_owned(), 0), ("Hello, Y!".to_owned(), 1)];
    ensure!(replies == expected, "Chat: {replies:?}");
    println!("ok   Chat");

    let error = match client.say_hello(hello("", 0)).await {
        Ok(reply) => bail!("SayHello(\"\") answered {reply:?}"),
        Err(error) => error,
    };
    ensure!(
        error.code() == tonic::Code::InvalidArgument,
        "SayHello(\"\"): {error:?}"
    );
    let error = match client.stream_greetings(hello("Z", 1001)).await {
        Ok(mut stream) => match stream.get_mut().message().await {
            Err(error) => error,
            Ok(reply) => bail!("StreamGreetings(count 1001) answered {reply:?}"),
        },
        Err(error) => error,
    };
    ensure!(
        error.code() == tonic::Code::InvalidArgument,
        "count 1001: {error:?}"
    );
    println!("ok   errors (empty name, count over 1000)");
    println!("check-greeter: all checks passed against {addr}");
    Ok(())
}
