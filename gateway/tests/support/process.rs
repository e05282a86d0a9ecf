//! The stand-alone `tonic-msgpack-gateway` binary as a child process: started from a config
//! file, its address read from its first line, killed when the test ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::LIMIT;

/// Kills the gateway process when the test ends, whatever happens.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary, to be given its arguments.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tonic-msgpack-gateway"))
}

/// Sends `signal` (`TERM`, `HUP`) to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// `dir/gateway.toml`: a public listener on `127.0.0.1:0`, then `toml`.
pub fn config_file(dir: &Path, toml: &str) -> PathBuf {
    let config = dir.join("gateway.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\n{toml}")).expect("write config");
    config
}

/// The gateway process (started with a piped stdout) and the address it listens on, from its
/// first line, once it serves.
pub async fn serving(mut child: Child) -> (Process, String) {
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    // A blocking read on its own thread, bounded.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading: a closed pipe would make the binary's next print fail.
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|read| read > 0) {
            rest.clear();
        }
    });
    let line = tokio::time::timeout(LIMIT, rx)
        .await
        .expect("the binary starts in time")
        .expect("a line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    (process, addr.to_owned())
}
