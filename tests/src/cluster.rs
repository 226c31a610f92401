//! Several registry nodes on one S3 bucket and one PostgreSQL database,
//! behind nginx (round-robin per request): the parts of the multi-node
//! tests. The shared S3 servers and PostgreSQL come from
//! `scripts/start-s3.sh` and `scripts/start-postgres.sh` (their variables);
//! tests that stop a server start a private one ([`S3sFs`],
//! [`PrivatePostgres`]).

use crate::registry::{free_port, Registry};
use crate::require_env;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was started.
const READY: Duration = Duration::from_secs(60);

fn poll_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {READY:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers_http(port: u16) -> bool {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .is_ok()
}

fn psql() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries under /usr/lib/postgresql (Debian's postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .max()
        .expect("psql under /usr/lib/postgresql/*/bin")
}

/// A new database on the server of superuser URL `admin`; its URL.
pub fn fresh_database(admin: &str) -> String {
    let name = format!("e2e_{}", crate::random_hex(12));
    let out = Command::new(psql())
        .args([admin, "-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE on {admin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}/{name}",
        admin.rsplit_once('/').expect("URL with a database").0
    )
}

/// The shared PostgreSQL of the test run, a new database on it.
pub fn shared_database() -> String {
    fresh_database(&require_env("REGISTRY_TEST_POSTGRES_URL"))
}

/// Where nodes keep blobs: an S3 endpoint, bucket and a prefix of their own.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
}

impl Bucket {
    /// The shared moto server, under a new prefix.
    pub fn shared() -> Bucket {
        Bucket {
            endpoint: require_env("REGISTRY_TEST_S3_MOTO_URL"),
            bucket: require_env("REGISTRY_TEST_S3_BUCKET"),
            prefix: format!("e2e-{}", crate::random_hex(8)),
        }
    }
}

/// A node's configuration file: blobs in `bucket`, metadata at `db_url`;
/// `top` goes at the top level, `storage` into `[storage]`.
pub fn node_config(dir: &Path, bucket: &Bucket, db_url: &str, top: &str, storage: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("config dir");
    let path = dir.join("node.toml");
    std::fs::write(
        &path,
        format!(
            "{top}\n[storage]\nkind = \"s3\"\nbucket = \"{}\"\nprefix = \"{}\"\nendpoint = \"{}\"\n\
             path_style = true\nallow_http = true\nregion = \"us-east-1\"\n{storage}\n\n\
             [metadata]\nurl = \"{db_url}\"\n",
            bucket.bucket, bucket.prefix, bucket.endpoint
        ),
    )
    .expect("write node config");
    path
}

/// Two (or more) nodes with the same configuration behind nginx.
pub struct Cluster {
    pub nodes: Vec<Registry>,
    pub lb: Nginx,
    pub bucket: Bucket,
    pub db_url: String,
    /// The nodes' configuration file.
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes on the shared moto bucket and a new database on the
    /// shared PostgreSQL; `top` is added to their configuration.
    pub fn start(n: usize, top: &str) -> Cluster {
        Cluster::start_with(n, Bucket::shared(), shared_database(), top, "")
    }

    /// Nodes on `bucket` and `db_url`; `top` and `storage` are added to the
    /// configuration's top level and `[storage]` table.
    pub fn start_with(
        n: usize,
        bucket: Bucket,
        db_url: String,
        top: &str,
        storage: &str,
    ) -> Cluster {
        Cluster::start_lb(n, bucket, db_url, top, storage, false, &[])
    }

    /// [`Cluster::start`] behind an nginx that also passes a write to the
    /// next node when the first refuses the connection (as a load balancer
    /// in front of a rolling restart is set up).
    /// `node_args` are added to each node's command line.
    pub fn start_retrying(n: usize, node_args: &[&str]) -> Cluster {
        Cluster::start_lb(
            n,
            Bucket::shared(),
            shared_database(),
            "",
            "",
            true,
            node_args,
        )
    }

    fn start_lb(
        n: usize,
        bucket: Bucket,
        db_url: String,
        top: &str,
        storage: &str,
        retry_writes: bool,
        node_args: &[&str],
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("e2e-cluster-")
            .tempdir()
            .expect("temp dir");
        let config = node_config(dir.path(), &bucket, &db_url, top, storage);
        let config = config.to_str().expect("utf-8 path").to_owned();
        let mut args = vec!["--config", config.as_str()];
        args.extend_from_slice(node_args);
        let nodes: Vec<Registry> = (0..n).map(|_| Registry::start_with(&args)).collect();
        let ports: Vec<u16> = nodes.iter().map(Registry::port).collect();
        let lb = Nginx::start_opts(&dir.path().join("nginx"), &ports, retry_writes);
        Cluster {
            nodes,
            lb,
            bucket,
            db_url,
            config: PathBuf::from(config),
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT` of the load balancer.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.lb.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }
}

/// nginx as a load balancer: round-robin per request over `upstreams`,
/// bodies streamed both ways (no buffering), no size limit.
pub struct Nginx {
    pub port: u16,
    child: Option<Child>,
    pub dir: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, upstreams: &[u16]) -> Nginx {
        Nginx::start_opts(dir, upstreams, false)
    }

    /// `retry_writes`: a request of any method goes to the next upstream
    /// when the first cannot be connected to (nginx retries only reads by
    /// default; a refused connection never reached a node).
    pub fn start_opts(dir: &Path, upstreams: &[u16], retry_writes: bool) -> Nginx {
        let retry = if retry_writes {
            "    proxy_next_upstream error timeout non_idempotent;\n"
        } else {
            ""
        };
        Nginx::start_location(dir, upstreams, retry)
    }

    /// A load balancer as the shipped deployments have one: it connects to
    /// the nodes from `bind` (a loopback address of its own, which the
    /// nodes trust), appends the client's address to `X-Forwarded-For`
    /// and sets `X-Forwarded-Proto` to `proto` (`$scheme`, or `https` to
    /// stand for a balancer that terminates TLS, as an ALB does).
    pub fn start_forwarding(dir: &Path, upstreams: &[u16], bind: &str, proto: &str) -> Nginx {
        let headers = [
            format!("proxy_bind {bind};"),
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;".to_string(),
            format!("proxy_set_header X-Forwarded-Proto {proto};"),
        ]
        .map(|l| format!("    {l}\n"))
        .concat();
        Nginx::start_location(dir, upstreams, &headers)
    }

    /// nginx with `extra` lines in its `location /`.
    fn start_location(dir: &Path, upstreams: &[u16], extra: &str) -> Nginx {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx not found (Debian's nginx-light)");
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx dir");
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        for _ in 0..5 {
            let port = free_port();
            let d = dir.display();
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n\
                 access_log {d}/access.log;\nclient_body_temp_path {d}/tmp/body;\n\
                 proxy_temp_path {d}/tmp/proxy;\nupstream nodes {{\n{servers}    keepalive 16;\n}}\n\
                 server {{\n  listen 127.0.0.1:{port};\n  client_max_body_size 0;\n\
                 location / {{\n    proxy_pass http://nodes;\n    proxy_http_version 1.1;\n\
                 proxy_set_header Host $http_host;\n    proxy_set_header Connection \"\";\n\
                 proxy_request_buffering off;\n    proxy_buffering off;\n\
                 proxy_read_timeout 600s;\n    proxy_send_timeout 600s;\n{extra}  }}\n}}\n}}\n"
            );
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf).expect("write nginx.conf");
            let mut child = Command::new(bin)
                .arg("-c")
                .arg(&conf_path)
                .arg("-p")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx");
            let deadline = Instant::now() + READY;
            loop {
                if child.try_wait().expect("try_wait").is_some() {
                    break; // port taken: another one
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx {
                        port,
                        child: Some(child),
                        dir: dir.to_owned(),
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx not ready; see {}/error.log",
                    dir.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "nginx exited during startup five times; see {}/error.log",
            dir.display()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An s3s-fs server of a test's own, which the test may stop and start
/// again (on the same port, with the same files).
pub struct S3sFs {
    pub port: u16,
    root: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> S3sFs {
        let dir = tempfile::Builder::new()
            .prefix("e2e-s3s-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("registry-test")).expect("bucket dir");
        let mut s = S3sFs {
            port: free_port(),
            root,
            child: None,
            _dir: dir,
        };
        s.resume();
        s
    }

    pub fn bucket(&self) -> Bucket {
        Bucket {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            bucket: "registry-test".into(),
            prefix: "e2e".into(),
        }
    }

    /// Start (again) on its port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "s3s-fs already running");
        let bin = require_env("S3S_FS_BIN");
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &require_env("AWS_ACCESS_KEY_ID")])
            .args(["--secret-key", &require_env("AWS_SECRET_ACCESS_KEY")])
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let port = self.port;
        poll_until("s3s-fs", || answers_http(port));
    }

    /// Kill it (connections drop; the port refuses).
    pub fn halt(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A PostgreSQL of a test's own (`scripts/start-postgres.sh` in a temporary
/// directory), which the test may stop and start again on the same port.
pub struct PrivatePostgres {
    pub url: String,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::Builder::new()
            .prefix("e2e-pg-")
            .tempdir()
            .expect("temp dir");
        let script = crate::workspace_root().join("scripts/start-postgres.sh");
        let out = Command::new(&script)
            .arg(dir.path())
            .output()
            .expect("run start-postgres.sh");
        assert!(
            out.status.success(),
            "start-postgres.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port: u16 = std::fs::read_to_string(dir.path().join("postgres/port"))
            .expect("port file")
            .trim()
            .parse()
            .expect("port");
        let admin = format!("postgres://registry:registry-test@127.0.0.1:{port}/postgres");
        let url = fresh_database(&admin);
        PrivatePostgres {
            url,
            dir,
            port,
            running: true,
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let bin = psql().with_file_name("pg_ctl");
        let data = self.dir.path().join("postgres/data");
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .arg("-D")
            .arg(&data)
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop it (fast: connections are cut).
    pub fn halt(&mut self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
        self.running = false;
    }

    /// Start it again on its port.
    pub fn resume(&mut self) {
        let sock = self.dir.path().join("postgres");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            self.port,
            sock.display()
        );
        let log = sock.join("postgres.log");
        self.pg_ctl(&[
            "-l",
            log.to_str().expect("utf-8"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            &opts,
        ]);
        self.running = true;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let bin = psql().with_file_name("pg_ctl");
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin)
                .arg("-D")
                .arg(self.dir.path().join("postgres/data"))
                .args(["-w", "-m", "immediate", "stop"])
                .output();
        }
    }
}
