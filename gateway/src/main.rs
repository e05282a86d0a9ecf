//! `tonic-msgpack-gateway --config gateway.toml`: a gateway from a config file alone.
//!
//! With no generated route table, calls are passed through by path: `/{upstream}/…` goes to
//! the upstream of that name (name upstreams after their services, `demo.v1.Calculator`), and
//! `[route_prefixes]` adds more. gRPC and gRPC-Web work for every call kind; REST needs typed
//! routes compiled into a gateway of your own (`Gateway::builder().routes(routes::table())`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tonic_msgpack_gateway::{Config, Gateway};

#[derive(Parser)]
#[command(name = "tonic-msgpack-gateway", version, about)]
struct Args {
    /// The TOML config file (listen address, upstreams, limits).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Check the config and exit without serving.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_file(&args.config)?;
    if args.check {
        println!("{}: ok", args.config.display());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let gateway = Gateway::builder()
            .config(config)
            .route_by_upstream_name(true)
            .build()
            .await?;
        let listener = gateway.bind().await?;
        let addr = listener.local_addr().context("listener address")?;
        // Tests and scripts read these lines to find `:0` ports. A closed stdout must not
        // stop a running gateway, so write errors are ignored (println! would panic).
        let admin = match gateway.admin_addr() {
            Some(admin) => format!("admin on {admin}"),
            None => "admin off".to_owned(),
        };
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {addr}\n{admin}").and_then(|()| stdout.flush());
        gateway
            .serve_on(listener, tonic_msgpack_gateway::shutdown_signal()?)
            .await?;
        Ok(())
    })
}
