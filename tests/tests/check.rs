//! `registry check`: damage a stopped registry's data directory in every
//! way a disk or an operator can (a flipped byte, a truncated blob, a
//! deleted blob, a stray file, an orphan blob) and check that each is
//! found, that `--repair` quarantines and unlinks, and that clients pushing
//! again make the registry whole.

use std::path::{Path, PathBuf};

use e2e::oci::simple_image;
use e2e::{cmd, registry_bin, CmdOutput, Registry};

fn blob_path(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    data_dir.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn check(data_dir: &Path, extra: &[&str]) -> CmdOutput {
    cmd(registry_bin())
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .run()
}

fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn check_finds_every_kind_of_damage_and_repair_lets_clients_heal_it() {
    let mut reg = Registry::start();
    let client = reg.client();
    let a = simple_image("check-a");
    let b = simple_image("check-b");
    let c = simple_image("check-c");
    client.push_image("chk/a", "v1", &a);
    client.push_image("chk/b", "v1", &b);
    client.push_image("chk/c", "v1", &c);
    // The same layer in a second repository: one file, two links.
    client.push_image("chk/a2", "v1", &a);
    reg.stop();
    let data = reg.data_dir().to_path_buf();

    // A clean registry checks clean.
    let out = check(&data, &[]);
    assert!(out.success(), "clean registry:\n{}", out.combined());
    assert!(out.stdout.contains("0 problems"), "{}", out.stdout);

    let flipped = a.layers[0].blob.digest.clone();
    let truncated = b.layers[1].blob.digest.clone();
    let deleted = c.layers[0].blob.digest.clone();
    let path = blob_path(&data, &flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let path = blob_path(&data, &truncated);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::remove_file(blob_path(&data, &deleted)).unwrap();
    std::fs::write(data.join("blobs/sha256/README"), b"not a blob").unwrap();
    let orphan = b"bytes no database row knows";
    let orphan_digest = e2e::sha256_digest(orphan);
    let orphan_path = blob_path(&data, &orphan_digest);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, orphan).unwrap();

    let out = check(&data, &[]);
    let text = out.combined();
    assert_eq!(
        out.status.code(),
        Some(1),
        "damage must fail the check:\n{text}"
    );
    for (needle, what) in [
        (format!("blob {flipped} is corrupt"), "flipped byte"),
        (format!("blob {truncated} is corrupt"), "truncated blob"),
        (
            format!("blob {deleted} is in the database but its bytes are missing"),
            "deleted blob",
        ),
        (
            "blobs/sha256/README is not a blob".to_string(),
            "stray file",
        ),
        (format!("blob {orphan_digest}"), "orphan blob"),
    ] {
        assert_eq!(
            lines_with(&text, &needle).len(),
            1,
            "{what} not reported once:\n{text}"
        );
    }
    assert!(
        lines_with(&text, &orphan_digest)[0].starts_with("note:"),
        "an orphan blob is garbage, not damage:\n{text}"
    );
    // Without --repair nothing moved.
    assert!(blob_path(&data, &flipped).exists());

    let out = check(&data, &["--repair"]);
    let text = out.combined();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("moved to the quarantine; unlinked from 2 repositories (chk/a, chk/a2)"),
        "{text}"
    );
    assert!(!blob_path(&data, &flipped).exists());
    assert!(data
        .join("quarantine/sha256")
        .join(flipped.trim_start_matches("sha256:"))
        .exists());
    assert!(!blob_path(&data, &truncated).exists());

    // What is left only clients can fix: manifests naming the lost blobs.
    let out = check(&data, &[]);
    let text = out.combined();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "references blob {flipped} that is not in the repository"
        )),
        "{text}"
    );
    assert!(!text.contains("is corrupt"), "{text}");

    // The registry refuses the lost blobs instead of serving bad bytes, and
    // clients that push again make it whole.
    std::fs::remove_file(data.join("blobs/sha256/README")).unwrap();
    reg.restart();
    let client = reg.client();
    let head = client.head(&format!("/v2/chk/a/blobs/{flipped}"));
    assert_eq!(head.status, 404, "a quarantined blob must not be served");
    client.push_image("chk/a", "v1", &a);
    client.push_image("chk/a2", "v1", &a);
    client.push_image("chk/b", "v1", &b);
    client.push_image("chk/c", "v1", &c);
    assert_eq!(
        client.get_blob_verified("chk/a", &flipped),
        a.layers[0].blob.data
    );
    reg.stop();
    let out = check(&data, &[]);
    assert!(out.success(), "after re-pushing:\n{}", out.combined());
    assert!(out.stdout.contains("0 problems"), "{}", out.stdout);
}

#[test]
fn check_refuses_a_directory_without_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &[]);
    assert!(!out.success());
    assert!(out.stderr.contains("no registry here"), "{}", out.stderr);
}
