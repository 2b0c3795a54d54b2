//! Server binaries as child processes, on ports the OS picks.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print its listening line. Generous: CI runs
/// the suite on two cores with everything else in parallel.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of a workspace binary built into the same target directory as
/// the running test (`target/<profile>/NAME`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/test-hash -> target/<profile>/
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "binary `{name}` not found at {}: run `cargo test --workspace --all-features --no-run` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A server binary running as a child process. Killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `name` on a free port (`MCP_PORT=0`, `MCP_HOST=127.0.0.1`) and
    /// waits for its `listening on ws://IP:PORT` line on stdout.
    pub fn start(name: &str, envs: &[(&str, &str)]) -> ServerProcess {
        Self::start_on_port(name, 0, envs)
    }

    /// Like [`ServerProcess::start`], with command-line arguments (`godot serve`).
    pub fn start_with_args(name: &str, args: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
        Self::launch(name, args, 0, envs)
    }

    /// Starts `name` on `port`; used to restart a server where its clients
    /// expect it. Retries briefly while the old socket is still being released.
    pub fn start_on_port(name: &str, port: u16, envs: &[(&str, &str)]) -> ServerProcess {
        Self::launch(name, &[], port, envs)
    }

    fn launch(name: &str, args: &[&str], port: u16, envs: &[(&str, &str)]) -> ServerProcess {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut last_error = String::new();
        for _ in 0..50 {
            match spawn(name, &args, port, &envs) {
                Ok((child, addr)) => {
                    return ServerProcess { name: name.to_owned(), args, envs, child: Some(child), addr };
                }
                Err(e) if port != 0 => {
                    last_error = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{name} did not start on port {port}: {last_error}")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/mcp`, the Streamable HTTP endpoint on the same port.
    pub fn http_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (SIGKILL) and waits for it: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the server to stop (SIGTERM) and waits for its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        child.wait().expect("the server exits")
    }

    /// Starts the same binary again on the same port with the same
    /// environment, after [`ServerProcess::kill`] or [`ServerProcess::terminate`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let envs: Vec<(&str, &str)> = self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let again = ServerProcess::launch(&self.name, &args, self.addr.port(), &envs);
        *self = again;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(name: &str, args: &[String], port: u16, envs: &[(String, String)]) -> Result<(Child, SocketAddr), String> {
    let mut command = Command::new(binary(name));
    command
        .args(args)
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", port.to_string())
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.trim().strip_prefix("listening on ws://") {
                let _ = tx.send(addr.trim_end_matches('/').to_owned());
                break;
            }
        }
        // Keep draining so a chatty server never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(addr) => {
            let addr = addr.parse().map_err(|e| format!("{name} printed a bad address {addr:?}: {e}"))?;
            Ok((child, addr))
        }
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            Err(format!(
                "{name} exited or printed no `listening on ws://` line within {STARTUP_TIMEOUT:?} (status {status:?})"
            ))
        }
    }
}
