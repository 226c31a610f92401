//! Layer file lists on every backend pair: indexed from the blob store (disk
//! or S3), kept in the metadata database (SQLite or PostgreSQL) so another
//! node answers from the row, a refusal kept too, and the row collected
//! with its blob.

mod common;

use std::time::Duration;
use storage::{Digest, ErrorCode, GcOptions, Indexing, Registry};

use common::{body, OCI};

const WAIT: Duration = Duration::from_secs(30);

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image of one layer `layer` in `repo:tag`; the layer's digest.
async fn push(reg: &Registry, repo: &str, tag: &str, layer: &[u8]) -> Digest {
    let config = b"{}";
    let cd = Digest::sha256_of(config);
    reg.upload_monolithic(repo, &cd, body(config), None)
        .await
        .unwrap();
    let ld = Digest::sha256_of(layer);
    reg.upload_monolithic(repo, &ld, body(layer), None)
        .await
        .unwrap();
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    reg.put_manifest(repo, tag, Some(OCI), &m).await.unwrap();
    ld
}

#[tokio::test]
async fn layer_lists_are_kept_per_digest_and_go_with_the_blob() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let layer = tar_of(&[("etc/hostname", b"box\n"), ("usr/bin/tool", &[7u8; 5000])]);
        let digest = push(&reg, "team/app", "v1", &layer).await;

        let Indexing::Ready(files) = reg
            .layer_files("team/app", &digest, "/usr/bin", 1, WAIT)
            .await
            .unwrap()
        else {
            panic!("{}: still indexing after {WAIT:?}", b.name);
        };
        let paths: Vec<(&str, u64)> = files
            .rows
            .iter()
            .map(|r| (r.entry.path.as_str(), r.entry.size))
            .collect();
        assert_eq!(paths, [("/usr/bin/tool", 5000)], "{}", b.name);
        assert_eq!((files.files, files.file_bytes), (2, 5004), "{}", b.name);

        // The row is in the database, for every node.
        let meta = b
            .meta
            .open(dir.path(), Duration::from_secs(5))
            .await
            .unwrap();
        let row = meta
            .layer_index(&digest.to_string())
            .await
            .unwrap()
            .expect("a kept index");
        assert_eq!(
            (row.state.as_str(), row.entries),
            ("ready", 2),
            "{}",
            b.name
        );
        // Another node (a fresh cache) answers from it.
        let other = common::open(&b, dir.path()).await;
        let Indexing::Ready(again) = other
            .layer_files("team/app", &digest, "/", 2, WAIT)
            .await
            .unwrap()
        else {
            panic!("{}: a second node indexed again", b.name);
        };
        assert_eq!(again.entries, 2, "{}", b.name);
        assert_eq!(
            again.rows.len(),
            4,
            "{}: two files below two implied directories",
            b.name
        );

        // A blob that is no tar: refused, the refusal kept.
        let junk = push(&reg, "team/app", "junk", b"{\"not\": \"a layer\"}").await;
        let e = reg
            .layer_files("team/app", &junk, "/", 1, WAIT)
            .await
            .unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::Unprocessable,
            "{}: {}",
            b.name,
            e.message
        );
        assert!(
            e.message.contains("not a readable layer"),
            "{}: {}",
            b.name,
            e.message
        );
        let kept = meta
            .layer_index(&junk.to_string())
            .await
            .unwrap()
            .expect("a kept refusal");
        assert_eq!(kept.state, "invalid", "{}", b.name);

        // Another repository may not read the layer through this.
        let e = reg
            .layer_files("other/app", &digest, "/", 1, WAIT)
            .await
            .unwrap_err();
        assert!(
            matches!(e.code, ErrorCode::BlobUnknown | ErrorCode::NameUnknown),
            "{}: {:?}",
            b.name,
            e.code
        );

        // Untagged and collected: the row goes with the blob.
        reg.delete_manifest("team/app", "v1").await.unwrap();
        let opts = GcOptions {
            grace: Duration::ZERO,
            retention: Duration::ZERO,
            dry_run: false,
            now: Some(storage::metadata::now() + 86_400),
        };
        for _ in 0..5 {
            reg.gc(opts, &|_| {}).await.unwrap();
        }
        assert_eq!(
            meta.layer_index(&digest.to_string()).await.unwrap(),
            None,
            "{}",
            b.name
        );
    }
}
