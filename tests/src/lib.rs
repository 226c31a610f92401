//! Shared helpers for the end-to-end tests of the registry.
//!
//! * [`registry`]: start/stop/restart the `registry` binary on a free loopback
//!   port with a private data directory, and inspect its JSON request log.
//! * [`cmd`]: run external clients (docker, ctr, skopeo) with a timeout and
//!   captured output.
//! * [`oci`]: generate small but real OCI images (gzip'd tar layers, configs,
//!   manifests, indexes) and OCI image layouts, entirely in Rust.
//! * [`http`]: a thin blocking HTTP client for the distribution API.
//! * [`auth`]: a registry with token auth, accounts, credentials, forged
//!   tokens, and the check that no secret reaches its log.
//! * [`attack`]: the world of the attack tests (`tests/auth_attacks_*.rs`)
//!   and the checks that an attack was refused and changed nothing.
//! * [`client_auth`]: what the tests of token auth with the real clients
//!   (`tests/auth_clients_*.rs`) share.
//! * [`cut`]: clients that break off mid-request (HTTP/1 FIN and RST,
//!   HTTP/2 RST_STREAM and a killed connection), and HTTP/2 requests.
//! * [`cluster`]: registry nodes on S3 + PostgreSQL behind nginx, and S3 and
//!   PostgreSQL servers a test may stop and start.
//! * [`flood`]: many requests at once over HTTP/1.1 connections or HTTP/2
//!   streams, and the memory of the registry process meanwhile.
//!
//! The tests expect the daemons started by `scripts/start-daemons.sh`; their
//! addresses come from environment variables (see [`require_env`]). A test
//! that needs a variable which is not set panics with an explanation instead
//! of silently skipping.

pub mod attack;
pub mod auth;
pub mod bench;
pub mod client_auth;
pub mod cluster;
pub mod cmd;
pub mod cut;
pub mod ecr;
pub mod flood;
pub mod http;
pub mod inflight;
pub mod oci;
pub mod registry;
pub mod request_log;
pub mod rng;
pub mod upstream;

use std::path::{Path, PathBuf};

pub use cmd::{cmd, Cmd, CmdOutput};
pub use http::Client;
pub use registry::{free_port, registry_bin, LogRequest, Registry};

/// Root of the cargo workspace (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Read an environment variable the test cannot work without, or panic with a
/// message explaining how to provide it.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "environment variable {name} is not set. The end-to-end tests need the private \
             containerd/dockerd started by scripts/start-daemons.sh: run `scripts/test-all.sh`, \
             or `scripts/start-daemons.sh RUN_DIR && . RUN_DIR/env` before `cargo test`."
        ),
    }
}

/// The docker CLI matching the Debian engine (`$DOCKER_BIN`, default
/// `/usr/bin/docker`). Also checks that `DOCKER_HOST` is set.
pub fn docker() -> Cmd {
    require_env("DOCKER_HOST");
    require_env("DOCKER_CONFIG");
    let bin = std::env::var("DOCKER_BIN").unwrap_or_else(|_| "/usr/bin/docker".to_string());
    assert!(
        Path::new(&bin).exists(),
        "docker CLI {bin} not found (install docker.io or set DOCKER_BIN)"
    );
    cmd(&bin)
}

/// `$VAR` if set, else `/usr/bin/NAME` if it exists, else `NAME` (PATH).
fn tool(var: &str, name: &str) -> String {
    if let Ok(v) = std::env::var(var) {
        if !v.is_empty() {
            return v;
        }
    }
    let usr = format!("/usr/bin/{name}");
    if Path::new(&usr).exists() {
        usr
    } else {
        name.to_string()
    }
}

/// `ctr --address $CONTAINERD_ADDRESS -n NAMESPACE`.
pub fn ctr(namespace: &str) -> Cmd {
    let address = require_env("CONTAINERD_ADDRESS");
    let mut c = cmd(tool("CTR_BIN", "ctr"));
    c.args(["--address", &address, "-n", namespace]);
    c
}

/// The containerd snapshotter to use (`$CONTAINERD_SNAPSHOTTER`, default
/// overlayfs).
pub fn containerd_snapshotter() -> String {
    std::env::var("CONTAINERD_SNAPSHOTTER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "overlayfs".to_string())
}

/// `skopeo --policy <accept-anything policy>`; the policy file lives in `dir`.
pub fn skopeo(dir: &Path) -> Cmd {
    let policy = dir.join("skopeo-policy.json");
    if !policy.exists() {
        std::fs::write(
            &policy,
            br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write skopeo policy");
    }
    let mut c = cmd(tool("SKOPEO_BIN", "skopeo"));
    c.arg("--policy").arg(&policy);
    c
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Files under `data_dir/blobs`, as (path relative to `blobs/`, file name).
/// Panics if `blobs/` is missing or unreadable: the on-disk checks must not
/// pass vacuously when the layout moves.
pub fn blob_files(data_dir: &Path) -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for e in entries {
            let e = e.expect("read_dir entry");
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                let name = e.file_name().to_string_lossy().into_owned();
                out.push((rel, name));
            }
        }
    }
    let root = data_dir.join("blobs");
    assert!(
        root.is_dir(),
        "{} does not exist: the blob store layout changed (see README, On-disk layout); \
         the on-disk checks need updating",
        root.display()
    );
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// Build `dockerfile` with the legacy builder in a context holding Debian's
/// static busybox (as `busybox`) and `data.txt` containing `data <extra>`.
pub fn docker_build_busybox(dockerfile: &str, extra: &str, tag: &str) {
    const BUSYBOX: &str = "/bin/busybox";
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} not found: install busybox-static"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(BUSYBOX, dir.path().join("busybox")).expect("copy busybox");
    std::fs::write(dir.path().join("data.txt"), format!("data {extra}\n")).expect("write data");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", tag])
        .arg(dir.path())
        .run_ok();
}

/// `docker manifest create/annotate/push --purge` of `list` over `(image,
/// arch, variant)` entries (all already pushed); `--purge` leaves no local
/// copy of the list in `DOCKER_CONFIG`. Returns the digest docker reports.
pub fn docker_manifest_list(list: &str, entries: &[(&str, &str, Option<&str>)]) -> String {
    let manifest = || {
        let mut c = docker();
        c.env("DOCKER_CLI_EXPERIMENTAL", "enabled").arg("manifest");
        c
    };
    let mut create = manifest();
    create.args(["create", "--insecure", list]);
    for (image, _, _) in entries {
        create.arg(image);
    }
    create.run_ok();
    for (image, arch, variant) in entries {
        let mut annotate = manifest();
        annotate.args(["annotate", "--arch", arch]);
        if let Some(v) = variant {
            annotate.args(["--variant", v]);
        }
        annotate.args([list, image]).run_ok();
    }
    let pushed = manifest()
        .args(["push", "--purge", "--insecure", list])
        .run_ok()
        .stdout;
    pushed
        .split_whitespace()
        .rfind(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in manifest push output: {pushed}"))
        .to_string()
}

/// The platform of an image the engine has, as `os/arch[/variant]`: images
/// the engine builds carry its own platform, whatever the host.
pub fn image_platform(reference: &str) -> String {
    docker()
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}",
            reference,
        ])
        .run_ok()
        .stdout
        .trim()
        .to_string()
}

/// An architecture other than `native` (an engine architecture), with its
/// variant, for the second entry of a manifest list.
pub fn other_arch(native: &str) -> (&'static str, Option<&'static str>) {
    if native == "arm64" {
        ("amd64", None)
    } else {
        ("arm64", Some("v8"))
    }
}

/// `os/arch[/variant]` of each entry of a manifest list or index, in order.
pub fn list_platforms(list: &serde_json::Value) -> Vec<String> {
    list["manifests"]
        .as_array()
        .expect("a manifests array")
        .iter()
        .map(|e| {
            let p = &e["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().expect("platform.os"),
                p["architecture"].as_str().expect("platform.architecture")
            );
            if let Some(v) = p["variant"].as_str().filter(|v| !v.is_empty()) {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect()
}

/// Images (and tags) removed from the shared engine at the end of a test,
/// pass or fail.
pub struct DockerImages(pub Vec<String>);

impl Drop for DockerImages {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = docker().args(["rmi", "-f", r]).run();
        }
    }
}

/// A random string of `n` bytes, hex: passwords no log could hold by chance.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("read /dev/urandom");
    hex::encode(buf)
}
