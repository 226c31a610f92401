//! Running the `registry` binary under test.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

pub use crate::request_log::{parse_log_line, percent_decode, LogRequest};

/// How long the registry may take to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd registry may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped) registry process with a private data directory and
/// a JSON log file. Killed on drop.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Flags for `registry serve` beyond the listen address, data
    /// directory and log format.
    extra_args: Vec<String>,
    // Keeps the temporary directory alive as long as the registry.
    tmp: Option<TempDir>,
}

/// Path of the registry binary: `$REGISTRY_BIN`, or `registry` next to the
/// directory holding the running test executable (`target/debug/deps/..`),
/// or `<workspace>/target/debug/registry`.
pub fn registry_bin() -> PathBuf {
    if let Ok(p) = std::env::var("REGISTRY_BIN") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/<test>-<hash> -> target/debug/registry
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("registry"));
        }
    }
    candidates.push(crate::workspace_root().join("target/debug/registry"));
    for c in &candidates {
        if c.is_file() {
            warn_if_stale(c);
            return c.clone();
        }
    }
    panic!(
        "registry binary not found (looked at {candidates:?}); build it first with \
         `cargo build -p registry` (scripts/test-all.sh does this) or set REGISTRY_BIN"
    );
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else {
            e.metadata().ok().and_then(|m| m.modified().ok())
        };
        if t > newest {
            newest = t;
        }
    }
    newest
}

fn warn_if_stale(bin: &Path) {
    let root = crate::workspace_root();
    let Some(bin_time) = bin.metadata().ok().and_then(|m| m.modified().ok()) else {
        return;
    };
    for dir in ["registry/src", "storage/src"] {
        if let Some(src_time) = newest_mtime(&root.join(dir)) {
            if src_time > bin_time {
                eprintln!(
                    "warning: {} is older than {dir}; run `cargo build -p registry`",
                    bin.display()
                );
            }
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

impl Registry {
    /// Start a registry with a fresh data directory on a free port, and wait
    /// until `GET /v2/` answers 200.
    pub fn start() -> Registry {
        Registry::start_with(&[])
    }

    /// [`Registry::start`] with more `registry serve` flags.
    pub fn start_with(extra_args: &[&str]) -> Registry {
        Registry::start_at(None, extra_args)
    }

    /// [`Registry::start_with`] on a data directory of the caller's.
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Registry {
        Registry::start_at(Some(data_dir), extra_args)
    }

    fn start_at(data_dir: Option<&Path>, extra_args: &[&str]) -> Registry {
        let tmp = tempfile::Builder::new()
            .prefix("e2e-registry-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = data_dir.map_or_else(|| tmp.path().join("data"), Path::to_path_buf);
        let log_path = tmp.path().join("registry.log");
        let mut tmp = Some(tmp);
        let mut last_err = String::new();
        // The port is free when chosen, but another process could take it
        // before the registry binds it: if the registry exits during startup,
        // try again with another port.
        for _ in 0..5 {
            let mut reg = Registry {
                child: None,
                port: free_port(),
                data_dir: data_dir.clone(),
                log_path: log_path.clone(),
                extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
                tmp: tmp.take(),
            };
            reg.spawn();
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(e) => {
                    last_err = e;
                    let exited = reg.child.is_none();
                    reg.kill_now();
                    tmp = reg.tmp.take();
                    if !exited {
                        break;
                    }
                }
            }
        }
        panic!("registry did not start: {last_err}");
    }

    fn kill_now(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open registry log");
        let bin = registry_bin();
        let mut command = Command::new(&bin);
        // Only the flags below configure the registry; drop inherited
        // REGISTRY_* variables (e.g. REGISTRY_BIN, REGISTRY_CONFIG).
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(&k);
            }
        }
        // Stop at once on SIGTERM unless a test asks for a drain (a flag
        // wins over the environment).
        command.env("REGISTRY_SHUTDOWN_DRAIN_SECS", "0");
        let child = command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(
                (!self.extra_args.iter().any(|a| a == "--log-format"))
                    .then_some(["--log-format", "json"])
                    .into_iter()
                    .flatten(),
            )
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", bin.display()));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let url = format!("{}/v2/", self.url());
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    self.child = None;
                    return Err(format!(
                        "registry exited during startup ({status}); log:\n{}",
                        self.log_tail(40)
                    ));
                }
            }
            if self.tls() {
                // This client speaks no TLS: the startup line and an open
                // port say it is up.
                let listening = self.log_text().contains("registry listening");
                match std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                    Ok(_) if listening => return Ok(()),
                    Ok(_) => last = "port open, no startup line yet".to_string(),
                    Err(e) => last = format!("connect failed: {e}"),
                }
            } else {
                match client.get(&url).send() {
                    // 401: up, with authentication on.
                    Ok(r) if matches!(r.status().as_u16(), 200 | 401) => return Ok(()),
                    Ok(r) => last = format!("GET /v2/ returned {}", r.status()),
                    Err(e) => last = format!("GET /v2/ failed: {e}"),
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "registry not ready after {READY_TIMEOUT:?} ({last}); log:\n{}",
                    self.log_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM and wait for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("registry is not running");
        match terminate(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "registry did not exit within {STOP_TIMEOUT:?} after SIGTERM; log:\n{}",
                self.log_tail(40)
            ),
        }
    }

    /// SIGKILL the process (no shutdown of any kind) and reap it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("registry is not running");
        child.kill().expect("SIGKILL the registry");
        child.wait().expect("reap the registry");
    }

    /// Start again (after [`Registry::stop`] or [`Registry::kill`]) on the
    /// same port and data dir.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
        if let Err(e) = self.wait_ready() {
            panic!("registry did not restart: {e}");
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the registry host as used in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (`https` when started with `--tls-cert`).
    pub fn url(&self) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn tls(&self) -> bool {
        self.extra_args.iter().any(|a| a == "--tls-cert")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A blocking HTTP client for this registry.
    pub fn client(&self) -> crate::http::Client {
        crate::http::Client::new(&self.url())
    }

    /// The whole log file.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// All HTTP requests found in the JSON log so far.
    pub fn requests(&self) -> Vec<LogRequest> {
        self.log_text().lines().filter_map(parse_log_line).collect()
    }

    /// Requests whose method equals `method`, whose decoded path starts with
    /// `path_prefix`, and (if given) whose status equals `status`.
    pub fn find_requests(
        &self,
        method: &str,
        path_prefix: &str,
        status: Option<u16>,
    ) -> Vec<LogRequest> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method.eq_ignore_ascii_case(method)
                    && r.path.starts_with(path_prefix)
                    && status.is_none_or(|s| r.status == s)
            })
            .collect()
    }

    /// Number of requests matching [`Registry::find_requests`].
    pub fn count_requests(&self, method: &str, path_prefix: &str, status: Option<u16>) -> usize {
        self.find_requests(method, path_prefix, status).len()
    }

    /// Poll the log until a request satisfying `pred` shows up (log lines may
    /// be written slightly after the client saw the response).
    pub fn wait_for_request(&self, what: &str, pred: impl Fn(&LogRequest) -> bool) -> LogRequest {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return r;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no request matching `{what}` in the registry log {}; logged requests:\n{}",
                    self.log_path.display(),
                    self.requests_summary()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns once every request answered before this call is in the log:
    /// it sends a marked request and waits for its line, which the registry
    /// writes after those of the requests it answered earlier. Absence
    /// checks on the log need this; a lagging log would pass them vacuously.
    pub fn log_barrier(&self) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mark = format!(
            "e2e-barrier-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let client = self.client();
        // 401 with authentication on: logged all the same.
        let r = client.send(
            client
                .request(reqwest::Method::GET, "/v2/")
                .header("X-Request-Id", &mark),
        );
        assert!(
            matches!(r.status, 200 | 401),
            "log barrier: GET /v2/ answered {}",
            r.status
        );
        self.wait_for_request(&format!("GET /v2/ with request id {mark}"), |r| {
            r.path == "/v2/" && r.request_id.as_deref() == Some(mark.as_str())
        });
    }

    /// Send `signal` (`libc::SIGTERM`, ...) to the running process and
    /// return at once.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid().expect("registry is not running") as i32;
        // SAFETY: a signal to the child this test started.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    /// Poll the log, from byte `from` on (`log_text().len()` taken before
    /// what should cause it), until a line containing `needle` shows up;
    /// that line. Panics after `within`.
    pub fn wait_for_line(&self, from: usize, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.log_text();
            if let Some(line) = text
                .get(from..)
                .and_then(|t| t.lines().find(|l| l.contains(needle)))
            {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {within:?}; log:\n{}",
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One line per logged request: `METHOD URI -> STATUS`.
    pub fn requests_summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, r.raw_uri, r.status))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!(
                "=== registry on port {} (log {}), last lines ===\n{}",
                self.port,
                self.log_path.display(),
                self.log_tail(60)
            );
            if std::env::var_os("E2E_KEEP_TMP").is_some() {
                if let Some(tmp) = self.tmp.take() {
                    eprintln!("keeping {}", tmp.keep().display());
                }
            }
        }
    }
}

/// SIGTERM `child` and wait up to `within` for it to exit; past that it is
/// killed and `None` returned.
fn terminate(child: &mut std::process::Child, within: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
