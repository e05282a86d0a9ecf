//! The gateway as the benchmarks run it (`bench/gateway.sh`): routes for `echo.Echo`, the
//! rest from a TOML config.
//!
//! `cargo run --release -p tonic-msgpack-gateway --example gateway_bench -- gateway.toml [THREADS]`
//! (THREADS: tokio worker threads, default 1; 0 for a current-thread runtime)

use tonic_msgpack_gateway::{CallKind, Config, Gateway, Route, RouteTable};

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
    // THREADS = 0: a current-thread runtime (one thread, no work stealing).
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
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
