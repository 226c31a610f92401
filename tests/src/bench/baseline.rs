//! The machine's limits measured in the same run: single-core sha256
//! (openssl, and the `sha2` crate the registry uses), a plain read of a file
//! from the page cache, and static file servers for the same file (our own
//! `sendfile` server, and nginx when it is installed).

use super::client::Target;
use super::servers::free_port;
use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `openssl speed -evp sha256 -bytes 16384 -seconds N`, MB/s (10^6 bytes).
pub fn openssl_sha256(seconds: u32) -> Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-bytes", "16384", "-seconds"])
        .arg(seconds.to_string())
        .stderr(Stdio::null())
        .output()
        .context("run openssl speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "sha256   916171.21k" (thousands of bytes per second).
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("sha256"))
        .context("no sha256 line in openssl speed output")?;
    let v = line
        .split_whitespace()
        .last()
        .and_then(|v| v.strip_suffix('k'))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("unparsable openssl line {line:?}"))?;
    Ok(v / 1000.0)
}

/// The `sha2` crate (what the registry hashes with), one core, MB/s.
pub fn rust_sha256(duration: Duration) -> f64 {
    let buf = vec![0x5au8; 1 << 20];
    let mut h = Sha256::new();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        h.update(&buf);
        n += buf.len() as u64;
    }
    std::hint::black_box(h.finalize());
    n as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Read a file (already in the page cache) with 1 MiB reads, MB/s.
pub fn file_read(path: &Path) -> Result<f64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            break;
        }
        n += r as u64;
    }
    Ok(n as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// A minimal static file server: every `GET` gets the one file, sent with
/// `std::io::copy`, which Linux turns into `sendfile`. Keep-alive; one
/// thread per connection. Stops with the process.
pub fn static_server(file: PathBuf) -> Result<Target> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let file = file.clone();
            std::thread::spawn(move || {
                let _ = serve_conn(stream, &file);
            });
        }
    });
    Ok(Target {
        name: "static (sendfile)".to_string(),
        addr,
    })
}

fn serve_conn(stream: TcpStream, file: &Path) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        // Read the request head; the method decides whether a body follows.
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let head = line.starts_with("HEAD ");
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" {
                break;
            }
        }
        let mut f = std::fs::File::open(file)?;
        let len = f.metadata()?.len();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        if !head {
            std::io::copy(&mut f, &mut out)?;
        }
    }
}

/// nginx serving the directory of `file`, if `nginx` is installed.
pub struct Nginx {
    child: Child,
    pub target: Target,
    pub url_path: String,
}

impl Nginx {
    pub fn start(file: &Path, work: &Path) -> Result<Option<Nginx>> {
        Self::start_with(file, work, false)
    }

    /// nginx, with its access log written to `work/access.log` when
    /// `access_log` (its default format, one write per request).
    pub fn start_with(file: &Path, work: &Path, access_log: bool) -> Result<Option<Nginx>> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            return Ok(None);
        };
        std::fs::create_dir_all(work)?;
        // The port is free when chosen but may be taken before nginx binds
        // it; nginx then exits, and another port is tried.
        for _attempt in 0..5 {
            let port = free_port()?;
            let mut child = Self::spawn(bin, file, work, port, access_log)?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                // Connected, and nginx still runs: it holds the port.
                if TcpStream::connect(addr).is_ok() && child.try_wait()?.is_none() {
                    let name = file.file_name().context("file name")?.to_string_lossy();
                    return Ok(Some(Nginx {
                        child,
                        target: Target {
                            name: "nginx".to_string(),
                            addr,
                        },
                        url_path: format!("/{name}"),
                    }));
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    bail!("nginx did not start; see {}/error.log", work.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!(
            "nginx exited during startup five times; see {}/error.log",
            work.display()
        )
    }

    fn spawn(bin: &str, file: &Path, work: &Path, port: u16, access_log: bool) -> Result<Child> {
        let dir = file.parent().context("file has a directory")?;
        let w = work.display();
        let log = if access_log {
            format!("{w}/access.log")
        } else {
            "off".to_string()
        };
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {log};\n  sendfile on;\n  tcp_nopush on;\n\
             client_body_temp_path {w}/body;\n  proxy_temp_path {w}/proxy;\n\
             fastcgi_temp_path {w}/fastcgi;\n  uwsgi_temp_path {w}/uwsgi;\n\
             scgi_temp_path {w}/scgi;\n  types {{ }}\n  default_type application/octet-stream;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            dir.display()
        );
        let conf_path = work.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        Ok(Command::new(bin)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(work)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
