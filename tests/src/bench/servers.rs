//! The servers under test: our registry (release build) and the CNCF
//! reference (Debian's `docker-registry`), each on a free loopback port with
//! a temporary data directory, plus their CPU time and memory from /proc.

use super::client::Target;
use anyhow::{bail, Context as _, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process started by the harness; killed on drop.
pub struct Server {
    pub target: Target,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Child,
}

/// CPU and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// Peak resident set (VmHWM), KiB.
    pub hwm_kib: u64,
    /// Current resident set (VmRSS), KiB.
    pub rss_kib: u64,
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `start` on a free port, again on another one (up to five times) if
/// the server exits during startup: the port is free when chosen, but
/// another process may take it before the server binds it.
fn on_free_port(mut start: impl FnMut(u16) -> Result<Server>) -> Result<Server> {
    let mut last = None;
    for _ in 0..5 {
        match start(free_port()?) {
            Ok(s) => return Ok(s),
            Err(e) if e.downcast_ref::<ExitedEarly>().is_some() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("five attempts").context("five ports in a row"))
}

/// A server process that exited before it answered `GET /v2/`.
#[derive(Debug)]
struct ExitedEarly(String);

impl std::fmt::Display for ExitedEarly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExitedEarly {}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn proc_stats(pid: u32) -> Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcStats {
        cpu_secs: ticks / clock_ticks(),
        hwm_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
    })
}

/// Reset the peak RSS (VmHWM) of a process to its current RSS.
pub fn reset_peak(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("reset VmHWM of {pid} (needs root)"))
}

impl Server {
    /// Our registry binary, default backend (local disk + SQLite).
    pub fn start_ours(bin: &Path, root: &Path) -> Result<Server> {
        Self::start_ours_with(bin, root, "ours", &[])
    }

    /// [`Server::start_ours`] named `name`, with extra environment.
    pub fn start_ours_with(
        bin: &Path,
        root: &Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> Result<Server> {
        let data_dir = root.join("data");
        on_free_port(|port| {
            let mut cmd = Command::new(bin);
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--log-format", "json"]);
            for (k, _) in std::env::vars() {
                if k.starts_with("REGISTRY_") || k == "RUST_LOG" {
                    cmd.env_remove(k);
                }
            }
            cmd.env("REGISTRY_SHUTDOWN_DRAIN_SECS", "0");
            cmd.envs(env.iter().copied());
            Self::spawn(name, cmd, port, data_dir.clone(), root.join("registry.log"))
        })
    }

    /// The reference: Debian's shipped configuration (in-memory blob
    /// descriptor cache, deletes enabled, default logging) with a temporary
    /// filesystem root and a loopback address. It reads `REGISTRY_*`
    /// variables as configuration, so it gets an empty environment.
    pub fn start_reference(bin: &str, root: &Path) -> Result<Server> {
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir)?;
        let conf = root.join("config.yml");
        on_free_port(|port| {
            std::fs::write(
                &conf,
                format!(
                    "version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n    \
                     blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
                     enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  headers:\n    \
                     X-Content-Type-Options: [nosniff]\n",
                    data_dir.display()
                ),
            )?;
            let mut cmd = Command::new(bin);
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .arg("serve")
                .arg(&conf);
            Self::spawn(
                "reference",
                cmd,
                port,
                data_dir.clone(),
                root.join("registry.log"),
            )
        })
    }

    fn spawn(
        name: &str,
        mut cmd: Command,
        port: u16,
        data_dir: PathBuf,
        log_path: PathBuf,
    ) -> Result<Server> {
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name} ({cmd:?})"))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut server = Server {
            target: Target {
                name: name.to_string(),
                addr,
            },
            data_dir,
            log_path,
            child,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(ExitedEarly(format!(
                    "{} exited during startup ({status}); log: {}",
                    self.target.name,
                    tail(&self.log_path)
                ))
                .into());
            }
            if probe(self.target.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {READY_TIMEOUT:?}; log: {}",
                    self.target.name,
                    tail(&self.log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stats(&self) -> Result<ProcStats> {
        proc_stats(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /v2/` answers 200 (or 401: up, with authentication on).
fn probe(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && matches!(&buf[9..12], b"200" | b"401")
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
