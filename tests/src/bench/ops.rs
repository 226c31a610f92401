//! Distribution API operations the workloads are made of: blob uploads
//! (monolithic and chunked), mounts, manifests and small images.

use super::client::{with_param, Conn, Done, ReqBody};
use super::data::{self, PrngBody};
use anyhow::Result;
use hyper::header::{CONTENT_RANGE, CONTENT_TYPE};
use hyper::Method;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// `POST` a session; the path of its `Location`.
pub async fn start_upload(conn: &mut Conn, repo: &str) -> Result<String> {
    let d = conn
        .simple(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .await?
        .expect("start upload", &[202])?;
    d.location()
}

/// `POST` + one `PUT ?digest=` carrying the whole body (what docker does).
pub async fn push_blob(conn: &mut Conn, repo: &str, digest: &str, body: ReqBody) -> Result<()> {
    let loc = start_upload(conn, repo).await?;
    let mut req = conn.request(Method::PUT, &with_param(&loc, "digest", digest), body);
    req.headers_mut()
        .insert(CONTENT_TYPE, "application/octet-stream".parse()?);
    conn.call(req, false)
        .await?
        .expect("put blob", &[201])
        .map(drop)
}

/// `POST`, `PATCH`es of `chunk` bytes (with `Content-Range`), then an empty
/// `PUT ?digest=`.
pub async fn push_blob_chunked(
    conn: &mut Conn,
    repo: &str,
    seed: u64,
    size: u64,
    chunk: u64,
    digest: &str,
) -> Result<()> {
    let mut loc = start_upload(conn, repo).await?;
    let mut off = 0;
    while off < size {
        let n = (size - off).min(chunk);
        let mut req = conn.request(
            Method::PATCH,
            &loc,
            ReqBody::Prng(PrngBody::new(seed, off, n)),
        );
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, "application/octet-stream".parse()?);
        h.insert(CONTENT_RANGE, format!("{off}-{}", off + n - 1).parse()?);
        loc = conn
            .call(req, false)
            .await?
            .expect("patch chunk", &[202])?
            .location()?;
        off += n;
    }
    let req = conn.request(
        Method::PUT,
        &with_param(&loc, "digest", digest),
        ReqBody::Empty,
    );
    conn.call(req, false)
        .await?
        .expect("finish chunked upload", &[201])
        .map(drop)
}

/// Cross-repository mount; true if the blob was mounted (201).
pub async fn mount(conn: &mut Conn, repo: &str, digest: &str, from: &str) -> Result<bool> {
    let d = conn
        .simple(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
        )
        .await?
        .expect("mount", &[201, 202])?;
    Ok(d.status.as_u16() == 201)
}

pub async fn put_manifest(
    conn: &mut Conn,
    repo: &str,
    reference: &str,
    body: &bytes::Bytes,
) -> Result<Done> {
    let mut req = conn.request(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{reference}"),
        ReqBody::Full(Some(body.clone())),
    );
    req.headers_mut()
        .insert(CONTENT_TYPE, OCI_MANIFEST.parse()?);
    conn.call(req, false).await?.expect("put manifest", &[201])
}

/// A small image: a config and one or more layers, all unique to `seed`.
pub struct SmallImage {
    pub blobs: Vec<(String, bytes::Bytes)>,
    pub manifest: bytes::Bytes,
    pub digest: String,
}

impl SmallImage {
    /// `layers` layers of `layer_len` bytes plus a config.
    pub fn new(seed: u64, layers: usize, layer_len: usize) -> SmallImage {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": { "Env": [format!("SEED={seed}")] },
            "rootfs": { "type": "layers", "diff_ids": [] },
        })
        .to_string();
        let config = bytes::Bytes::from(config);
        let mut blobs = vec![(data::digest_of(&config), config.clone())];
        let mut descs = Vec::new();
        for i in 0..layers {
            let b = data::bytes(seed ^ ((i as u64 + 1) << 48), 0, layer_len);
            let d = data::digest_of(&b);
            descs.push(serde_json::json!({
                "mediaType": OCI_LAYER, "digest": d, "size": b.len(),
            }));
            blobs.push((d, b));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": blobs[0].0, "size": config.len() },
            "layers": descs,
        })
        .to_string();
        let manifest = bytes::Bytes::from(manifest);
        SmallImage {
            digest: data::digest_of(&manifest),
            blobs,
            manifest,
        }
    }

    /// Push the way a client does: `HEAD` each blob, upload the missing
    /// ones, then `PUT` the manifest under `tag`.
    pub async fn push(&self, conn: &mut Conn, repo: &str, tag: &str) -> Result<()> {
        for (digest, bytes) in &self.blobs {
            let head = conn
                .simple(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
                .await?;
            if head.status.as_u16() != 200 {
                push_blob(conn, repo, digest, ReqBody::bytes(bytes.clone())).await?;
            }
        }
        put_manifest(conn, repo, tag, &self.manifest).await?;
        Ok(())
    }
}
