//! Debian's `docker-registry` (CNCF distribution 2.8) with htpasswd
//! authentication: the upstream of the pull-through cache tests, whose
//! access log tells how often each blob was fetched; and [`fake`], a tiny
//! upstream of the tests' own that can lie about what it sends.

pub mod fake;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;

pub const USER: &str = "mirror";

/// A running `docker-registry` with one htpasswd user; killed on drop.
pub struct CncfRegistry {
    child: Option<Child>,
    port: u16,
    pub password: String,
    log_path: PathBuf,
    config_path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl CncfRegistry {
    pub fn start() -> CncfRegistry {
        let tmp = tempfile::Builder::new()
            .prefix("e2e-cncf-")
            .tempdir()
            .expect("temp dir");
        let password = format!("pw-{}", crate::auth::random_hex(8));
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, &password])
            .output()
            .expect("htpasswd (Debian's apache2-utils) must be installed");
        assert!(out.status.success(), "htpasswd failed: {out:?}");
        let htpasswd = tmp.path().join("htpasswd");
        std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
        let mut reg = CncfRegistry {
            child: None,
            port: 0,
            password,
            log_path: tmp.path().join("registry.log"),
            config_path: tmp.path().join("config.yml"),
            _tmp: tmp,
        };
        reg.launch(&htpasswd);
        reg
    }

    fn launch(&mut self, htpasswd: &Path) {
        let data = self._tmp.path().join("data");
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  fields:\n    service: registry\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 auth:\n  htpasswd:\n    realm: cncf-upstream\n    path: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                data.display(),
                htpasswd.display()
            );
            std::fs::write(&self.config_path, config).expect("write config");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .expect("log file");
            // It reads REGISTRY_* variables as configuration: none may leak in.
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&self.config_path)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start /usr/bin/docker-registry (Debian's docker-registry package)");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                // Without credentials: 401 means it is up.
                let up = reqwest::blocking::Client::new()
                    .get(format!("http://127.0.0.1:{port}/v2/"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .is_ok_and(|r| r.status() == 401);
                if up {
                    self.child = Some(child);
                    self.port = port;
                    return;
                }
                if child.try_wait().expect("wait").is_some() {
                    break; // port taken in between: another one
                }
                assert!(
                    Instant::now() < deadline,
                    "docker-registry not ready on port {port}:\n{}",
                    self.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry did not start:\n{}", self.log_text());
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `Authorization` for its user.
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", self.password))
        )
    }

    /// Requests with its user's credentials.
    pub fn http(&self) -> crate::auth::Http {
        crate::auth::Http::new(&self.url(), Some(self.basic()))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Access-log lines of `method path` answered `status`.
    pub fn count(&self, method: &str, path: &str, status: u16) -> usize {
        let needle = format!("\"{method} {path} HTTP/1.1\" {status} ");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Its access log as `(method, target, status, user agent)`, in order:
    /// one line per request answered, written once the answer is sent.
    pub fn access_log(&self) -> Vec<(String, String, u16, String)> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                // `IP - - [date] "GET /path HTTP/1.1" 200 123 "referer" "agent"`
                let (_, rest) = l.split_once("] \"")?;
                let (request, rest) = rest.split_once("\" ")?;
                let mut words = request.splitn(3, ' ');
                let (method, target) = (words.next()?, words.next()?);
                let status = rest.split_whitespace().next()?.parse().ok()?;
                let agent = rest.rsplit('"').nth(1).unwrap_or_default();
                Some((method.into(), target.into(), status, agent.into()))
            })
            .collect()
    }

    /// Stop it (the upstream goes down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for CncfRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
