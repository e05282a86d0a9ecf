//! The gateway as the benchmarks run it (`bench/gateway.sh`): routes for `echo.Echo`, the
//! rest from a TOML config.
//!
//! `cargo run --release -p tonic-msgpack --features gateway --example gateway_bench -- gateway.toml [THREADS]`

use tonic_msgpack::gateway::{CallKind, Config, Gateway, Route, RouteTable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: gateway_bench CONFIG.toml [THREADS]")?;
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let config = Config::from_file(&path)?;
    let routes = RouteTable::from_routes([
        Route::new("echo.Echo", "UnaryEcho", CallKind::Unary),
        Route::new("echo.Echo", "StreamEcho", CallKind::ServerStreaming),
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        eprintln!(
            "gateway listening on {} with {threads} worker thread(s)",
            config.listen
        );
        Gateway::builder()
            .config(config)
            .routes(routes)
            .serve()
            .await
    })?;
    Ok(())
}
