//! Unit tests of the local blob store.

use super::*;
use crate::blobstore::BlobRef;

fn body(parts: Vec<&'static [u8]>) -> ByteStream {
    futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
}

/// `upload_finish` without a fence, as these tests run no collection.
async fn finish(
    store: &LocalBlobStore,
    id: &str,
    last: Option<(ByteStream, AppendLimits)>,
    expected: &Digest,
) -> Result<Committed> {
    Ok(store
        .upload_finish(id, last, expected, super::super::no_fence())
        .await?
        .0)
}

async fn read_all(s: ByteStream) -> Vec<u8> {
    s.try_fold(Vec::new(), |mut acc, b| async move {
        acc.extend_from_slice(&b);
        Ok(acc)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn chunked_upload_commit_and_range_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store.upload_create("u1").await.unwrap();
    store
        .upload_append("u1", body(vec![b"hello ", b"wor"]), AppendLimits::default())
        .await
        .unwrap();
    // A chunk that does not start at the current offset is refused.
    let err = store
        .upload_append(
            "u1",
            body(vec![b"x"]),
            AppendLimits {
                expected_start: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RangeInvalid);
    store
        .upload_append("u1", body(vec![b"ld"]), AppendLimits::default())
        .await
        .unwrap();
    let digest = Digest::sha256_of(b"hello world");
    assert_eq!(store.upload_commit("u1", &digest).await.unwrap().size, 11);
    assert_eq!(store.stat(BlobRef::of(&digest)).await.unwrap(), Some(11));
    assert_eq!(
        read_all(store.get(BlobRef::of(&digest), None).await.unwrap()).await,
        b"hello world"
    );
    assert_eq!(
        read_all(store.get(BlobRef::of(&digest), Some(6..9)).await.unwrap()).await,
        b"wor"
    );
    // The staging file went with the commit.
    assert!(store.upload_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn short_chunk_rolls_back_and_restart_rehashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store.upload_create("u2").await.unwrap();
    store
        .upload_append("u2", body(vec![b"abc"]), AppendLimits::default())
        .await
        .unwrap();
    let err = store
        .upload_append(
            "u2",
            body(vec![b"de"]),
            AppendLimits {
                expected_len: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SizeInvalid);
    assert_eq!(store.upload_size("u2").await.unwrap(), 3);
    drop(store);
    // A new process knows nothing but the file: the hash is recomputed.
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store
        .upload_append("u2", body(vec![b"def"]), AppendLimits::default())
        .await
        .unwrap();
    let wrong = Digest::sha256_of(b"nope");
    let err = store.upload_commit("u2", &wrong).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DigestInvalid);
    assert_eq!(store.stat(BlobRef::of(&wrong)).await.unwrap(), None);
    assert!(store.upload_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn whole_small_blob_skips_staging() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    assert!(store.unnamed, "ext4/tmpfs make unnamed files");
    let data = b"a small layer".to_vec();
    let digest = Digest::sha256_of(&data);
    let whole = |len| AppendLimits {
        expected_len: Some(len),
        ..Default::default()
    };
    store.upload_create("w1").await.unwrap();
    // A short body is refused and changes nothing.
    let err = finish(
        &store,
        "w1",
        Some((body(vec![b"a small"]), whole(13))),
        &digest,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SizeInvalid);
    assert_eq!(store.upload_size("w1").await.unwrap(), 0);
    // A wrong digest: nothing becomes visible.
    let wrong = Digest::sha256_of(b"other");
    let err = finish(
        &store,
        "w1",
        Some((body(vec![b"a small layer"]), whole(13))),
        &wrong,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::DigestInvalid);
    assert_eq!(store.stat(BlobRef::of(&wrong)).await.unwrap(), None);
    // The right one, twice (the second finds the blob there).
    for id in ["w2", "w3"] {
        store.upload_create(id).await.unwrap();
        let size = finish(
            &store,
            id,
            Some((body(vec![b"a small ", b"layer"]), whole(13))),
            &digest,
        )
        .await
        .unwrap()
        .size;
        assert_eq!(size, 13);
    }
    assert_eq!(
        read_all(store.get(BlobRef::of(&digest), None).await.unwrap()).await,
        data
    );
    assert!(store.upload_list().await.unwrap().is_empty());
    // A session with no bytes yet commits the empty blob.
    store.upload_create("w4").await.unwrap();
    let empty = Digest::sha256_of(b"");
    assert_eq!(finish(&store, "w4", None, &empty).await.unwrap().size, 0);
    assert_eq!(store.stat(BlobRef::of(&empty)).await.unwrap(), Some(0));
}

/// Append `data` to session `id` as one chunk with no limits.
async fn append(store: &LocalBlobStore, id: &str, data: &'static [u8]) {
    store
        .upload_append(id, body(vec![data]), AppendLimits::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn session_without_bytes_survives_restart_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store.upload_create("e1").await.unwrap();
    drop(store);
    let store = LocalBlobStore::open(dir.path()).unwrap();
    assert_eq!(store.upload_size("e1").await.unwrap(), 0);
    append(&store, "e1", b"abc").await;
    let digest = Digest::sha256_of(b"abc");
    assert_eq!(store.upload_commit("e1", &digest).await.unwrap().size, 3);
    assert_eq!(store.stat(BlobRef::of(&digest)).await.unwrap(), Some(3));
}

#[tokio::test]
async fn sha512_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store.upload_create("u3").await.unwrap();
    append(&store, "u3", b"data").await;
    let d = Digest::of(Algorithm::Sha512, b"data");
    store.upload_commit("u3", &d).await.unwrap();
    assert_eq!(store.stat(BlobRef::of(&d)).await.unwrap(), Some(4));
}

fn big(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn stream(data: Vec<u8>) -> ByteStream {
    // Several frames, as a socket delivers them.
    let frames: Vec<std::io::Result<Bytes>> = data
        .chunks(300_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(frames).boxed()
}

#[tokio::test]
async fn large_chunks_chain_their_hash_and_roll_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store.upload_create("u4").await.unwrap();
    let (a, b, c) = (big(1, 5 << 20), big(2, 3 << 20), big(3, (4 << 20) + 17));
    store
        .upload_append("u4", stream(a.clone()), AppendLimits::default())
        .await
        .unwrap();
    // A chunk that turns out short (declared longer) goes whole, and the
    // hash chain is back where it was.
    let err = store
        .upload_append(
            "u4",
            stream(b.clone()),
            AppendLimits {
                expected_len: Some((3 << 20) + 1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SizeInvalid);
    assert_eq!(store.upload_size("u4").await.unwrap(), 5 << 20);
    store
        .upload_append("u4", stream(b.clone()), AppendLimits::default())
        .await
        .unwrap();
    store
        .upload_append("u4", stream(c.clone()), AppendLimits::default())
        .await
        .unwrap();
    let all = [a, b, c].concat();
    let digest = Digest::sha256_of(&all);
    assert_eq!(
        store.upload_commit("u4", &digest).await.unwrap().size,
        all.len() as u64
    );
    assert_eq!(
        read_all(store.get(BlobRef::of(&digest), None).await.unwrap()).await,
        all
    );
}
