//! `tonic-msgpack-gateway --config gateway.toml`: a gateway from a config file alone.
//!
//! With no generated route table, calls are passed through by path: `/{upstream}/…` goes to
//! the upstream of that name (name upstreams after their services, `demo.v1.Calculator`), and
//! `[route_prefixes]` adds more. gRPC and gRPC-Web work for every call kind; REST/JSON works
//! for the methods of the config's `descriptors = [...]`, transcoded by descriptor (or with
//! typed routes compiled into a gateway of your own, `Gateway::builder().routes(..)`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tonic_msgpack_gateway::{Config, Gateway, Reloader};

// Memory a burst of connections or streams took goes back to the system afterwards (glibc's
// malloc kept most of it).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tonic_msgpack_gateway::Jemalloc = tonic_msgpack_gateway::Jemalloc;

#[derive(Parser)]
#[command(name = "tonic-msgpack-gateway", version, about)]
struct Args {
    /// The TOML config file (listen address, upstreams, limits). Read again on SIGHUP: a valid
    /// new config replaces the running one without dropping connections or calls; an invalid
    /// one is refused (the log names the key) and the running one stays.
    #[arg(
        long,
        short,
        value_name = "FILE",
        required_unless_present = "check_config"
    )]
    config: Option<PathBuf>,
    /// Check the config and exit without serving.
    #[arg(long)]
    check: bool,
    /// Check FILE and exit without serving (the same as `--config FILE --check`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "check"])]
    check_config: Option<PathBuf>,
    /// Tokio worker threads; default: one per CPU this process may use (a single event loop,
    /// the fastest on one CPU, when that is one).
    #[arg(long, value_name = "N")]
    worker_threads: Option<usize>,
    /// Also reload when the config file changes (its modification time or size, checked every
    /// 2 s; a Kubernetes ConfigMap update is seen this way), not only on SIGHUP.
    #[arg(long)]
    watch: bool,
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
    tonic_msgpack_gateway::return_memory_in_background();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let (path, check) = match (args.check_config, args.config) {
        (Some(path), _) => (path, true),
        (None, Some(path)) => (path, args.check),
        (None, None) => anyhow::bail!("no config file: give --config FILE"),
    };
    // Stamped before it is read: a change made while the gateway starts (before `--watch`'s
    // first look) is then seen as one, not taken for the version that was loaded.
    let loaded = stamp(&path);
    let config = Config::from_file(&path)?;
    if check {
        println!("{}: ok", path.display());
        return Ok(());
    }
    let runtime =
        tonic_msgpack_gateway::runtime(args.worker_threads).context("cannot start the runtime")?;
    runtime.block_on(async {
        // Installed before the first line is printed: a SIGHUP's default action would end the
        // process, and scripts may send one as soon as they see the address.
        let reloads = Reloads::install(&path, args.watch, loaded)?;
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
        let reloading = tokio::spawn(reloads.run(gateway.reloader()));
        let served = gateway
            .serve_on(listener, tonic_msgpack_gateway::shutdown_signal()?)
            .await;
        reloading.abort();
        served?;
        Ok(())
    })
}

/// How often `--watch` looks at the config file.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What identifies a version of the config file (modification time and length).
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Config reloads: on SIGHUP, and with `--watch` when the file changes.
struct Reloads {
    path: PathBuf,
    /// The version of the file the running config came from.
    loaded: Stamp,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    watch: bool,
}

impl Reloads {
    fn install(path: &Path, watch: bool, loaded: Stamp) -> anyhow::Result<Self> {
        Ok(Reloads {
            path: path.to_owned(),
            loaded,
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("cannot install the SIGHUP handler")?,
            watch,
        })
    }

    /// Waits for a reason to reload (forever when there is none).
    async fn next(&mut self, seen: &mut Stamp) -> &'static str {
        let watch = async {
            if !self.watch {
                return std::future::pending().await;
            }
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let now = stamp(&self.path);
                if now != *seen {
                    *seen = now;
                    return "the file changed";
                }
            }
        };
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.hangup.recv() => "SIGHUP",
                reason = watch => reason,
            }
        }
        #[cfg(not(unix))]
        watch.await
    }

    async fn run(mut self, reloader: Reloader) {
        let mut seen = self.loaded;
        loop {
            let reason = self.next(&mut seen).await;
            let path = self.path.display();
            tracing::info!("{reason}: reloading {path}");
            let config = match Config::from_file(&self.path) {
                Ok(config) => config,
                Err(err) => {
                    tracing::error!("reload refused, the running config stays: {err}");
                    continue;
                }
            };
            match reloader.reload(config).await {
                Ok(done) => tracing::info!(
                    kept = ?done.kept,
                    connected = ?done.connected,
                    removed = ?done.removed,
                    "reloaded {path}"
                ),
                Err(err) => {
                    tracing::error!("reload refused, the running config stays: {path}: {err}")
                }
            }
        }
    }
}
