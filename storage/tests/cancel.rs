//! Cancel safety of uploads: a request's future can be dropped at any
//! `.await` (the client went away, an HTTP/2 reset, a timeout), and no
//! error path runs then. Each test stalls a body mid-way, drops the call
//! at that point, and checks the session is exactly where its last
//! acknowledged chunk left it and that no byte of the abandoned body
//! reaches a committed blob; on every backend pair.

use bytes::Bytes;
use futures::StreamExt;
use storage::blobstore::ByteStream;
use storage::{ChunkSpec, Digest, Registry};
use tokio::sync::oneshot;

mod common;
use common::Backend;

const MIB: usize = 1 << 20;

/// A body that yields `data` in 1 MiB pieces, tells `reached` it has sent
/// them all, then never ends: a client that stopped sending.
fn stalled(data: Vec<u8>, reached: oneshot::Sender<()>) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(MIB)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stall = futures::stream::once(async move {
        let _ = reached.send(());
        futures::future::pending::<std::io::Result<Bytes>>().await
    });
    futures::stream::iter(pieces).chain(stall).boxed()
}

fn body(data: &[u8]) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(MIB)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

fn chunk(start: usize, len: usize) -> ChunkSpec {
    ChunkSpec {
        start: Some(start as u64),
        len: Some(len as u64),
    }
}

/// Bytes of a seed, so each blob of a test is distinct.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Run `call` until its body has sent everything it will, then drop it
/// there (at whatever `.await` it is parked on).
async fn drop_when_stalled<F: std::future::Future>(call: F, reached: oneshot::Receiver<()>) {
    tokio::select! {
        _ = call => panic!("a call whose body never ends finished"),
        r = reached => r.expect("the body reached its stall"),
    }
}

async fn read_back(reg: &Registry, repo: &str, digest: &Digest) -> Vec<u8> {
    let info = reg.blob(repo, digest).await.expect("the blob is linked");
    let mut s = reg.blob_bytes(digest, &info, None).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// In-progress multipart uploads under an S3 prefix, as moto lists them
/// (it answers unsigned requests; s3s-fs, which checks signatures, is
/// left out of this count).
async fn multipart_uploads(b: &Backend) -> Option<usize> {
    let storage::StorageBackend::S3(c) = &b.storage else {
        return None;
    };
    if !b.name.contains("moto") {
        return None;
    }
    let url = format!(
        "{}/{}?uploads&prefix={}/",
        c.endpoint.as_deref().unwrap(),
        c.bucket,
        c.prefix
    );
    let xml = reqwest::get(&url).await.unwrap().text().await.unwrap();
    Some(xml.matches("<Upload>").count())
}

#[tokio::test]
async fn a_dropped_chunk_leaves_the_session_at_its_last_acknowledged_size() {
    for b in common::backends().await {
        a_dropped_chunk_leaves_the_session_at_its_last_acknowledged_size_on(&b).await;
    }
}

/// The outside finding: junk sent in a chunk whose request was dropped,
/// then the real (shorter) blob: the blob must be exactly the real bytes.
/// The junk is large enough to be cut into S3 parts, several in flight.
async fn a_dropped_chunk_leaves_the_session_at_its_last_acknowledged_size_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let n = b.name;
    // First with nothing acknowledged, then after an acknowledged chunk.
    for acknowledged in [0, 6 * MIB] {
        let good = pattern(acknowledged as u8, acknowledged + 4096);
        let digest = Digest::sha256_of(&good);
        let id = reg.start_upload("victim").await.unwrap();
        if acknowledged > 0 {
            let size = reg
                .upload_chunk(
                    "victim",
                    &id,
                    body(&good[..acknowledged]),
                    chunk(0, acknowledged),
                )
                .await
                .unwrap();
            assert_eq!(size as usize, acknowledged, "{n}");
        }
        let before = multipart_uploads(b).await;
        let junk = vec![b'J'; 20 * MIB];
        let (tx, rx) = oneshot::channel();
        let spec = chunk(acknowledged, 24 * MIB);
        drop_when_stalled(reg.upload_chunk("victim", &id, stalled(junk, tx), spec), rx).await;
        assert_eq!(
            reg.upload_status("victim", &id).await.unwrap() as usize,
            acknowledged,
            "{n}: a dropped chunk is not part of the upload"
        );
        if let Some(before) = before {
            // Aborted by the dropped request's cleanup, which runs on after
            // the drop (its part uploads end first).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let now = multipart_uploads(b).await.unwrap();
                if now == before {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{n}: a multipart upload only the dropped request knew of is aborted \
                     ({now} in progress, {before} before)"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        reg.finish_upload(
            "victim",
            &id,
            &digest,
            Some((body(&good[acknowledged..]), chunk(acknowledged, 4096))),
        )
        .await
        .unwrap_or_else(|e| panic!("{n}: finish after a dropped chunk: {e}"));
        let stored = read_back(&reg, "victim", &digest).await;
        assert_eq!(stored.len(), good.len(), "{n}: stored length");
        assert!(stored == good, "{n}: the blob is exactly the real bytes");
    }
}

#[tokio::test]
async fn a_dropped_final_request_commits_nothing_and_the_retry_succeeds() {
    for b in common::backends().await {
        a_dropped_final_request_commits_nothing_and_the_retry_succeeds_on(&b).await;
    }
}

/// A final `PUT` (digest and last chunk) dropped mid-body, and a
/// single-request upload dropped mid-body: nothing is committed, and the
/// same uploads sent whole afterwards store exactly their bytes.
async fn a_dropped_final_request_commits_nothing_and_the_retry_succeeds_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let n = b.name;
    for (seed, len) in [(1u8, 100 * 1024), (2, 13 * MIB)] {
        let good = pattern(seed, len);
        let digest = Digest::sha256_of(&good);
        // The final request of a session, cut after most of its body.
        let id = reg.start_upload("victim").await.unwrap();
        let (tx, rx) = oneshot::channel();
        let cut = len - 4096;
        drop_when_stalled(
            reg.finish_upload(
                "victim",
                &id,
                &digest,
                Some((stalled(good[..cut].to_vec(), tx), chunk(0, len))),
            ),
            rx,
        )
        .await;
        assert_eq!(reg.upload_status("victim", &id).await.unwrap(), 0, "{n}");
        assert!(
            reg.blob("victim", &digest).await.is_err(),
            "{n}: nothing is linked"
        );
        // A single-request upload, cut the same way.
        let (tx, rx) = oneshot::channel();
        drop_when_stalled(
            reg.upload_monolithic(
                "victim",
                &digest,
                stalled(good[..cut].to_vec(), tx),
                Some(len as u64),
            ),
            rx,
        )
        .await;
        assert!(reg.blob("victim", &digest).await.is_err(), "{n}");
        // The session goes on: the whole blob now.
        reg.finish_upload("victim", &id, &digest, Some((body(&good), chunk(0, len))))
            .await
            .unwrap_or_else(|e| panic!("{n}: finish after a dropped final request: {e}"));
        assert!(read_back(&reg, "victim", &digest).await == good, "{n}");
    }
}

#[tokio::test]
async fn a_commit_never_replaces_a_stored_blob() {
    for b in common::backends().await {
        a_commit_never_replaces_a_stored_blob_on(&b).await;
    }
}

/// A blob stored for one repository, then the corrupting sequence against
/// another repository's upload of the same digest: the shared bytes stay
/// those of the digest, for both repositories.
async fn a_commit_never_replaces_a_stored_blob_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let n = b.name;
    let good = pattern(7, 4096);
    let digest = Digest::sha256_of(&good);
    reg.upload_monolithic("base", &digest, body(&good), Some(4096))
        .await
        .unwrap();
    let id = reg.start_upload("attacker").await.unwrap();
    let (tx, rx) = oneshot::channel();
    drop_when_stalled(
        reg.upload_chunk(
            "attacker",
            &id,
            stalled(vec![b'J'; 3 * MIB], tx),
            chunk(0, 8 * MIB),
        ),
        rx,
    )
    .await;
    reg.finish_upload(
        "attacker",
        &id,
        &digest,
        Some((body(&good), chunk(0, 4096))),
    )
    .await
    .unwrap();
    for repo in ["base", "attacker"] {
        assert!(read_back(&reg, repo, &digest).await == good, "{n}: {repo}");
    }
    if b.is_local() {
        let hex = digest.hex();
        let file = dir.path().join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
        assert_eq!(std::fs::metadata(file).unwrap().len(), 4096, "{n}");
    }
}
