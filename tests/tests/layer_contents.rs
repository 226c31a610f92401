//! Layer contents against images built by the real Docker Engine: the files
//! each layer adds and deletes, the stacked file system and the wasted
//! bytes must match what a container of the image sees (`docker run ...
//! find`/`stat`), on local disk and on S3; a zstd layer pushed by skopeo
//! lists the same files; hostile layers (climbing names, HTML and terminal
//! escapes, a gzip bomb, a million files, a truncated archive) get clear
//! answers with bounded memory, and nothing reaches a page or a terminal
//! unescaped.

use e2e::oci::{self, Blob, Entry, Layer, MT_OCI_LAYER_GZIP};
use e2e::{docker, docker_build_busybox, registry_bin, sha256_digest, DockerImages, Registry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Layers: 0 COPY busybox, 1 the applets (symlinks), 2 files, 3 an
/// overwrite, two deletions and a directory removed and made again.
const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
RUN mkdir -p /data /opt/dir /root/.ssh && head -c 300000 /dev/zero > /data/big && echo keep > /data/keep && echo a > /opt/dir/a && echo b > /opt/dir/b && echo KEY > /root/.ssh/id_rsa && ln -s /data/big /data/link
RUN head -c 100000 /dev/zero | tr '\0' x > /data/big && rm /data/keep /root/.ssh/id_rsa && rm -rf /opt/dir && mkdir /opt/dir && echo c > /opt/dir/c
"#;

/// What layer 3 hid for sure: the first /data/big, keep and id_rsa. Whether
/// /opt/dir's a and b are hidden too depends on the engine's storage driver
/// (overlay2 marks the directory opaque where the kernel lets it); the
/// container's own view says which.
const WASTED: u64 = 300_000 + 5 + 4;

fn api(reg: &Registry, path: &str) -> Value {
    // A layer nobody asked about yet is indexed first: 202 until done.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = reg.client().get(&format!("/api/v1/{path}"));
        if resp.status == 202 && Instant::now() < deadline {
            continue;
        }
        assert_eq!(resp.status, 200, "GET /api/v1/{path}: {}", resp.describe());
        return serde_json::from_str(&resp.text()).unwrap();
    }
}

fn rows(v: &Value) -> BTreeMap<String, Value> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn cli(reg: &Registry, args: &[&str]) -> e2e::CmdOutput {
    e2e::cmd(registry_bin())
        .arg("files")
        .args(args)
        .args(["--url", &reg.url()])
        .run()
}

/// `path size type` of every file, link and directory below `dirs` in a
/// container of `image`, as the container sees them.
fn container_view(image: &str, dirs: &[&str]) -> BTreeMap<String, (u64, String)> {
    let out = docker()
        .args(["run", "--rm", "--network", "none", image, "find"])
        .args(dirs)
        .args(["-exec", "stat", "-c", "%n|%s|%F", "{}", "+"])
        .run_ok()
        .stdout;
    out.lines()
        .map(|l| {
            let mut p = l.splitn(3, '|');
            let (n, s, t) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            (n.to_owned(), (s.parse().unwrap(), t.to_owned()))
        })
        .collect()
}

/// The stacked file system below `dir`, all levels, as `path -> (size, type)`
/// in `stat`'s words (directories' and links' sizes are the container's own
/// business: compared for files only).
fn stacked_view(reg: &Registry, image: &str, dir: &str) -> BTreeMap<String, (u64, String)> {
    let v = api(
        reg,
        &format!("images/{image}/files?path={dir}&depth=64&n=1000"),
    );
    let mut out: BTreeMap<String, (u64, String)> = BTreeMap::new();
    out.insert(dir.to_owned(), (0, "directory".into()));
    for (path, r) in rows(&v) {
        let kind = match r["kind"].as_str().unwrap() {
            "file" if r["size"] == 0 => "regular empty file",
            "file" => "regular file",
            "dir" => "directory",
            "symlink" => "symbolic link",
            k => panic!("unexpected kind {k} at {path}"),
        };
        out.insert(path, (r["size"].as_u64().unwrap(), kind.to_owned()));
    }
    out
}

fn only_files(v: BTreeMap<String, (u64, String)>) -> BTreeMap<String, (u64, String)> {
    v.into_iter()
        .map(|(p, (s, t))| (p, (if t.contains("regular") { s } else { 0 }, t)))
        .collect()
}

fn build_and_push(reg: &Registry, repo: &str, images: &mut DockerImages) -> String {
    let tag = format!("{}/{repo}:v1", reg.host());
    images.0.push(tag.clone());
    docker_build_busybox(DOCKERFILE, "unused", &tag);
    docker().args(["push", &tag]).run_ok();
    tag
}

/// Everything a Docker-built image's contents must show, on `reg`.
fn docker_image_contents(reg: &Registry, backend: &str) {
    let mut images = DockerImages(Vec::new());
    let tag = build_and_push(reg, "lc/app", &mut images);

    // The stacked tree is what a container sees.
    for dir in ["/data", "/opt", "/root"] {
        assert_eq!(
            only_files(stacked_view(reg, "lc/app:v1", dir)),
            only_files(container_view(&tag, &[dir])),
            "{backend}: {dir}"
        );
    }
    let data = rows(&api(reg, "images/lc/app:v1/files?path=/data"));
    assert_eq!(data["/data/big"]["size"], 100_000);
    assert_eq!(data["/data/big"]["layer"], 3);
    assert_eq!(data["/data/link"]["link"], "/data/big");
    assert!(
        !data.contains_key("/data/keep"),
        "{backend}: deleted file listed"
    );
    let top = rows(&api(reg, "images/lc/app:v1/files?path=/"));
    assert_eq!(top["/data"]["total_bytes"], 100_000, "{backend}");

    // Layer 3 lists what it deleted: whiteouts (and /opt/dir emptied, if
    // the engine recorded it: checked against the container below).
    let detail = api(reg, "images/lc/app:v1");
    let layers: Vec<String> = detail["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(layers.len(), 4, "{backend}: {detail}");
    let last = api(
        reg,
        &format!(
            "repositories/lc/app/layers/{}/files?path=/&depth=64&n=1000",
            layers[3]
        ),
    );
    assert_eq!(last["compression"], "gzip");
    let l3 = rows(&last);
    assert_eq!(
        l3.get("/data/keep").map(|r| &r["kind"]),
        Some(&Value::from("whiteout")),
        "{backend}: {last}"
    );
    assert_eq!(l3["/root/.ssh/id_rsa"]["kind"], "whiteout");
    let listed = |path: &str, kind: &str| {
        last["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == path && r["kind"] == kind)
    };
    let emptied = listed("/opt/dir", "opaque")
        || (listed("/opt/dir/a", "whiteout") && listed("/opt/dir/b", "whiteout"));
    let seen = container_view(&tag, &["/opt"]);
    assert_eq!(
        emptied,
        !seen.contains_key("/opt/dir/a"),
        "{backend}: {last}\n{seen:?}"
    );
    let wasted = WASTED + if emptied { 4 } else { 0 };

    // Waste: the hidden bytes, dive's efficiency, the deleted key flagged.
    let busybox = std::fs::metadata("/bin/busybox").unwrap().len();
    let waste = api(reg, "images/lc/app:v1/waste");
    assert_eq!(waste["wasted_bytes"], wasted, "{backend}: {waste}");
    let total = busybox + WASTED + 4 + 100_000 + 2;
    assert_eq!(waste["total_bytes"], total);
    let eff = waste["efficiency"].as_f64().unwrap();
    assert!(
        (eff - (1.0 - wasted as f64 / total as f64)).abs() < 1e-9,
        "{eff}"
    );
    assert_eq!(waste["files"][0]["path"], "/data/big");
    assert_eq!(waste["files"][0]["wasted_bytes"], 300_000);
    let secret = &waste["secrets"][0];
    assert_eq!(secret["path"], "/root/.ssh/id_rsa", "{waste}");
    assert_eq!(
        (secret["layer"].as_u64(), secret["deleted"].as_bool()),
        (Some(2), Some(true))
    );

    // A new tag's changes.
    let v2 = format!("{}/lc/app:v2", reg.host());
    images.0.push(v2.clone());
    docker_build_busybox(
        &format!("{DOCKERFILE}RUN echo new > /data/new\n"),
        "unused",
        &v2,
    );
    docker().args(["push", &v2]).run_ok();
    let diff = api(reg, "images/lc/app:v1/diff?to=lc/app:v2");
    let changes: Vec<(String, String)> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().into(),
                c["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![("added".to_string(), "/data/new".to_string())],
        "{backend}"
    );

    // The CLI: ls -l, one layer with its deletions, the waste gate.
    let out = cli(reg, &["lc/app:v1", "--path", "/data"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("-rw-r--r--")
            && l.contains("100kB")
            && l.ends_with("/data/big  (layer 3)")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("/data/link -> /data/big"),
        "{}",
        out.stdout
    );
    let out = cli(reg, &["lc/app:v1", "--layer", "-1", "--depth", "9"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("deleted") && l.ends_with("/data/keep")),
        "{}",
        out.stdout
    );
    let out = cli(
        reg,
        &["lc/app:v1", "--waste", "--lowest-efficiency", "0.99"],
    );
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("below --lowest-efficiency 0.99"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("/root/.ssh/id_rsa"), "{}", out.stdout);
    let out = cli(
        reg,
        &["lc/app:v1", "--waste", "--lowest-efficiency", "0.01"],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("wasted bytes: {wasted}")),
        "{}",
        out.stdout
    );

    // Security headers on a page, an API answer and a blob (our answer:
    // on S3 that is the redirect, not S3's).
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/ui/images/lc/app:v1/files?path=/data".to_string(),
        "/api/v1/images/lc/app:v1/waste".to_string(),
        format!("/v2/lc/app/blobs/{}", layers[3]),
    ] {
        let r = no_redirects
            .get(format!("{}{path}", reg.url()))
            .send()
            .unwrap();
        assert!(
            r.status().is_success() || r.status().is_redirection(),
            "{path}: {}",
            r.status()
        );
        let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            h("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        let csp = h("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(h("referrer-policy").is_some(), "{path}");
    }
}

#[test]
fn docker_image_contents_on_local_disk() {
    let reg = Registry::start();
    docker_image_contents(&reg, "local disk");
}

#[test]
fn docker_image_contents_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = e2e::cluster::Bucket::shared();
    let config = dir.path().join("s3.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nkind = \"s3\"\nbucket = \"{}\"\nprefix = \"{}\"\nendpoint = \"{}\"\npath_style = true\nallow_http = true\nregion = \"us-east-1\"\n",
            bucket.bucket, bucket.prefix, bucket.endpoint
        ),
    )
    .unwrap();
    let reg = Registry::start_with(&["--config", config.to_str().unwrap()]);
    docker_image_contents(&reg, "S3 (moto)");
}

/// An image made here with an opaque directory, pulled and run by Docker:
/// what its container sees is what the stacked tree says.
#[test]
fn an_opaque_directory_hides_what_docker_hides() {
    let reg = Registry::start();
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox: install busybox-static");
    let base = oci::layer(&[
        Entry::Dir("bin"),
        Entry::File("bin/busybox", 0o755, &busybox),
        Entry::File("opt/dir/a", 0o644, b"a\n"),
        Entry::File("opt/dir/b", 0o644, b"bb\n"),
        Entry::File("opt/keep", 0o644, b"keep\n"),
    ]);
    let top = oci::layer(&[
        Entry::Dir("opt/dir"),
        Entry::File("opt/dir/.wh..wh..opq", 0o644, b""),
        Entry::File("opt/dir/c", 0o644, b"c\n"),
        Entry::File("opt/.wh.keep", 0o644, b""),
    ]);
    let arch = docker()
        .args(["version", "--format", "{{.Server.Arch}}"])
        .run_ok()
        .stdout
        .trim()
        .to_owned();
    let image = oci::image("linux", &arch, None, vec![base, top]);
    reg.client().push_image("lc/opaque", "v1", &image);
    let tag = format!("{}/lc/opaque:v1", reg.host());
    let _images = DockerImages(vec![tag.clone()]);
    docker().args(["pull", &tag]).run_ok();
    let out = docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &tag,
            "/bin/busybox",
            "find",
            "/opt",
        ])
        .run_ok()
        .stdout;
    let seen: Vec<&str> = out.lines().collect();
    assert_eq!(
        seen,
        ["/opt", "/opt/dir", "/opt/dir/c"],
        "docker's own view"
    );
    let stacked: Vec<String> = stacked_view(&reg, "lc/opaque:v1", "/opt")
        .into_keys()
        .collect();
    assert_eq!(stacked, seen);
    let waste = api(&reg, "images/lc/opaque:v1/waste");
    assert_eq!(waste["wasted_bytes"], 2 + 3 + 5, "{waste}");
}

#[test]
fn a_zstd_layer_pushed_by_skopeo_lists_the_same_files() {
    let reg = Registry::start();
    let mut images = DockerImages(Vec::new());
    let tag = build_and_push(&reg, "lc/gz", &mut images);
    let work = tempfile::tempdir().unwrap();
    e2e::skopeo(work.path())
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-compress-format",
            "zstd",
            "--format",
            "oci",
        ])
        .args(["--src-daemon-host", &e2e::require_env("DOCKER_HOST")])
        .arg(format!("docker-daemon:{tag}"))
        .arg(format!("docker://{}/lc/zstd:v1", reg.host()))
        .run_ok();
    let detail = api(&reg, "images/lc/zstd:v1");
    let layer = &detail["images"][0]["layers"][3];
    assert!(
        layer["media_type"].as_str().unwrap().ends_with("+zstd"),
        "{detail}"
    );
    let files = api(
        &reg,
        &format!(
            "repositories/lc/zstd/layers/{}/files?path=/data",
            layer["digest"].as_str().unwrap()
        ),
    );
    assert_eq!(files["compression"], "zstd");
    // Same files, same contents (by digest) as the gzip image.
    let diff = api(&reg, "images/lc/gz:v1/diff?to=lc/zstd:v1");
    assert_eq!(diff["changes"], serde_json::json!([]), "{diff}");
    assert_eq!(
        stacked_view(&reg, "lc/zstd:v1", "/data"),
        stacked_view(&reg, "lc/gz:v1", "/data")
    );
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// A gzip'd layer written entry by entry (never the whole tar in memory).
fn streamed_layer(write: impl FnOnce(&mut dyn Write)) -> Layer {
    struct Hashing<W: Write>(W, sha2::Sha256);
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            use sha2::Digest;
            self.1.update(b);
            self.0.write_all(b).map(|_| b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut w = Hashing(gz, <sha2::Sha256 as sha2::Digest>::new());
    write(&mut w);
    w.write_all(&[0u8; 1024]).unwrap();
    let diff_id = format!("sha256:{}", hex::encode(sha2::Digest::finalize(w.1)));
    Layer {
        blob: Blob::new(MT_OCI_LAYER_GZIP, w.0.finish().unwrap()),
        diff_id,
    }
}

fn push(reg: &Registry, repo: &str, layer: Layer) -> String {
    let digest = layer.blob.digest.clone();
    let image = oci::image("linux", "amd64", None, vec![layer]);
    reg.client().push_image(repo, "v1", &image);
    digest
}

#[test]
fn hostile_layers_get_clear_answers_in_bounded_memory_and_print_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("layers.toml");
    // A bomb of 1 GiB of zeros is refused at 256 MiB unpacked.
    std::fs::write(&config, "[layers]\nmax_unpacked_bytes = 268435456\n").unwrap();
    let reg = Registry::start_with(&["--config", config.to_str().unwrap()]);
    let client = reg.client();

    // Names that climb out, carry HTML, or terminal escapes.
    let names = oci::layer(&[
        Entry::File("../../etc/passwd", 0o644, b"root:x:0:0"),
        Entry::File("www/<img src=x onerror=alert(1)>.html", 0o644, b"x"),
        Entry::File("www/\u{1b}]0;pwned\u{7}\u{1b}[2Jclear", 0o644, b"x"),
    ]);
    let names_digest = push(&reg, "hx/names", names);
    let v = api(
        &reg,
        &format!("repositories/hx/names/layers/{names_digest}/files?path=/&depth=9"),
    );
    let r = rows(&v);
    assert!(
        r["/etc/passwd"]["note"]
            .as_str()
            .unwrap()
            .contains("climbs out of the root"),
        "{v}"
    );
    assert!(
        r.contains_key("/www/<img src=x onerror=alert(1)>.html"),
        "{v}"
    );
    // Web page: escaped HTML, no control characters at all.
    let page = client
        .get("/ui/images/hx/names:v1/files?layer=0&path=/www")
        .expect_status(200)
        .text();
    assert!(!page.contains("<img"), "raw <img on the page");
    assert!(
        page.contains("&#60;img src=x onerror=alert(1)&#62;.html"),
        "{page}"
    );
    assert!(
        !page.chars().any(|c| c == '\u{1b}' || c == '\u{7}'),
        "control characters on the page"
    );
    // CLI: nothing that moves a terminal.
    let out = cli(&reg, &["hx/names:v1", "--path", "/www"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\\u{1b}]0;pwned"), "{}", out.stdout);

    let refused = |repo: &str, digest: &str, want: &str| {
        let path = format!("/api/v1/repositories/{repo}/layers/{digest}/files");
        let deadline = Instant::now() + Duration::from_secs(300);
        let resp = loop {
            let r = client.get(&path);
            if r.status != 202 || Instant::now() > deadline {
                break r;
            }
        };
        assert_eq!(resp.status, 422, "{repo}: {}", resp.describe());
        let msg = resp.text();
        assert!(msg.contains(want), "{repo}: {msg}");
        // Kept: asked again, the answer is the same at once.
        let again = Instant::now();
        assert_eq!(client.get(&path).status, 422);
        assert!(again.elapsed() < Duration::from_secs(2));
    };

    // A gzip bomb: 1 GiB of zeros in one file.
    let bomb = streamed_layer(|w| {
        w.write_all(&oci::tar_header("zeros", 0o644, 1 << 30, b'0'))
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            w.write_all(&zeros).unwrap();
        }
    });
    assert!(
        bomb.blob.size() < 8 << 20,
        "bomb of {} bytes",
        bomb.blob.size()
    );
    let d = push(&reg, "hx/bomb", bomb);
    refused(
        "hx/bomb",
        &d,
        "too large to index: it unpacks to over 268435456 bytes",
    );

    // A million empty files.
    let many = streamed_layer(|w| {
        for n in 0..1_000_000 {
            w.write_all(&oci::tar_header(&format!("f/{n}"), 0o644, 0, b'0'))
                .unwrap();
        }
    });
    let d = push(&reg, "hx/many", many);
    refused("hx/many", &d, "too large to index: over 300000 entries");

    // A truncated archive.
    let whole = oci::tar(&[Entry::File("big", 0o644, &[7u8; 100_000])]);
    let cut = &whole[..60_000];
    let truncated = Layer {
        diff_id: sha256_digest(cut),
        blob: Blob::new(MT_OCI_LAYER_GZIP, oci::gzip(cut)),
    };
    let d = push(&reg, "hx/cut", truncated);
    refused("hx/cut", &d, "not a readable layer");

    let rss = peak_rss(reg.pid().unwrap());
    println!(
        "registry peak RSS after the hostile layers: {} MiB",
        rss >> 20
    );
    assert!(rss < 400 << 20, "peak RSS {} MiB", rss >> 20);
}

/// Requests for a layer nobody asked about yet, all at once: one indexing,
/// every request answered from it.
#[test]
fn concurrent_requests_index_a_layer_once() {
    let reg = Registry::start();
    let files: Vec<(String, Vec<u8>)> = (0..20_000)
        .map(|n| (format!("d{}/f{n}", n / 100), format!("{n}").into_bytes()))
        .collect();
    let layer = streamed_layer(|w| {
        for (name, body) in &files {
            w.write_all(&oci::tar_header(name, 0o644, body.len() as u64, b'0'))
                .unwrap();
            w.write_all(body).unwrap();
            w.write_all(&vec![0u8; 512 - body.len()]).unwrap();
        }
    });
    let digest = push(&reg, "lc/once", layer);
    let path = format!("repositories/lc/once/layers/{digest}/files?path=/d7");
    let answers: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| rows(&api(&reg, &path)).len()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers, vec![100; 8]);
    reg.log_barrier();
    let indexed = reg
        .log_text()
        .lines()
        .filter(|l| l.contains("indexed a layer's files") && l.contains(&digest))
        .count();
    assert_eq!(indexed, 1, "{}", reg.log_tail(20));
}
