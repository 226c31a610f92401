//! Faults of the parts under the registry: a filesystem that fills up
//! mid-push, and a database locked by another process past the busy
//! timeout. The push fails with a clear OCI error, nothing half-written
//! becomes visible, pulls keep working, and service resumes by itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use e2e::oci::simple_image;
use e2e::{cmd, registry_bin, sha256_digest, Registry};

/// A size-limited tmpfs mounted for one test, unmounted on drop. Needs
/// root (CI runs as root); without it the test fails rather than skips.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::Builder::new()
            .prefix("e2e-smallfs-")
            .tempdir()
            .unwrap();
        let out = cmd("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .run();
        assert!(
            out.success(),
            "mounting a {size} tmpfs failed (the fault tests need root):\n{}",
            out.combined()
        );
        SmallFs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn error_body(r: &e2e::http::Resp) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not an OCI error body ({e}):\n{}", r.describe()));
    let e = &v["errors"][0];
    (
        e["code"].as_str().unwrap_or_default().to_string(),
        e["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_full_disk_fails_the_push_cleanly_and_pushes_resume_once_space_is_freed() {
    let fs = SmallFs::mount("48m");
    let data_dir: PathBuf = fs.path().join("data");
    let mut reg = Registry::start_in(&data_dir, &[]);
    let client = reg.client();
    let before = simple_image("faults-before");
    client.push_image("full/app", "v1", &before);

    // Fill the filesystem up to a few MiB.
    let filler = fs.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - (6 << 20))
        .unwrap();

    // A 16 MiB blob cannot fit: monolithic and chunked pushes both fail.
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    let digest = sha256_digest(&big);
    let loc = client.start_upload("full/app");
    let r = client.send(
        client
            .request(
                reqwest::Method::PUT,
                &e2e::http::with_query(&loc, "digest", &digest),
            )
            .header("Content-Type", "application/octet-stream")
            .body(big.clone()),
    );
    assert!(
        matches!(r.status, 503 | 507),
        "push on a full disk:\n{}",
        r.describe()
    );
    let (code, message) = error_body(&r);
    assert_eq!(code, "UNAVAILABLE", "{}", r.describe());
    assert!(
        message.contains("full"),
        "message should say the storage is full: {message}"
    );
    // Nothing of it became visible.
    assert_eq!(
        client.head(&format!("/v2/full/app/blobs/{digest}")).status,
        404
    );
    // Pulls keep working.
    for blob in before.blobs() {
        assert_eq!(
            client.get_blob_verified("full/app", &blob.digest),
            blob.data
        );
    }
    assert_eq!(client.get_manifest("full/app", "v1").status, 200);

    // Space freed: the same push works, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let loc = client.start_upload("full/app");
    let r = client.send(
        client
            .request(
                reqwest::Method::PUT,
                &e2e::http::with_query(&loc, "digest", &digest),
            )
            .header("Content-Type", "application/octet-stream")
            .body(big.clone()),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(client.get_blob_verified("full/app", &digest), big);
    let after = simple_image("faults-after");
    client.push_image("full/app", "v2", &after);
    reg.log_barrier();
    assert!(
        !reg.log_text().contains("\"status\":500"),
        "a full disk must not give 500s:\n{}",
        reg.log_tail(30)
    );

    reg.stop();
    let out = cmd(registry_bin())
        .arg("check")
        .arg("--data-dir")
        .arg(&data_dir)
        .run();
    assert!(out.success(), "{}", out.combined());
    assert!(
        !out.combined().contains("belongs to no session"),
        "{}",
        out.combined()
    );
}

/// Another process holding the database's write lock until told to let go.
struct Locker {
    child: Child,
}

impl Locker {
    fn lock(db: &Path) -> Locker {
        let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"#;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (for its sqlite3 module) is needed");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "the locker did not take the lock");
        Locker { child }
    }

    fn release(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

#[test]
fn a_database_locked_past_the_busy_timeout_answers_503_and_the_retry_succeeds() {
    let reg = Registry::start_with(&["--db-busy-timeout-ms", "300"]);
    let client = reg.client();
    let image = simple_image("faults-locked");
    for blob in image.blobs() {
        client.push_blob("locked/app", &blob.data);
    }
    let locker = Locker::lock(&reg.data_dir().join("registry.db"));
    let r = client.send(
        client
            .request(reqwest::Method::PUT, "/v2/locked/app/manifests/v1")
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(image.manifest.data.clone()),
    );
    assert_eq!(r.status, 503, "{}", r.describe());
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let (code, _) = error_body(&r);
    assert_eq!(code, "UNAVAILABLE");
    // Reads do not need the write lock.
    for blob in image.blobs() {
        assert_eq!(
            client.get_blob_verified("locked/app", &blob.digest),
            blob.data
        );
    }
    locker.release();
    client.push_manifest("locked/app", "v1", &image.manifest);
    assert_eq!(
        client.get_manifest("locked/app", "v1").body,
        image.manifest.data
    );
}
