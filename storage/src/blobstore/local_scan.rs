//! What `registry check` and GC see of the local store: every file under
//! `blobs/` and `uploads/`, and the move of a corrupt blob to `quarantine/`.

use super::LocalBlobStore;
use crate::blobstore::{BlobListing, BlobRef, Listed};
use crate::digest::Digest;
use crate::error::{Error, Result};
use std::path::Path;
use tokio::task::spawn_blocking;

impl LocalBlobStore {
    pub(super) async fn list_blobs(&self) -> Result<BlobListing> {
        let root = self.root.clone();
        Ok(spawn_blocking(move || walk_blobs(&root))
            .await
            .map_err(Error::internal)??)
    }

    pub(super) async fn quarantine_blob(&self, blob: BlobRef<'_>) -> Result<()> {
        let digest = blob.digest;
        let from = self.blob_file(digest);
        let dir = self
            .root
            .join("quarantine")
            .join(digest.algorithm().as_str());
        let to = dir.join(digest.hex());
        spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
        .await
        .map_err(Error::internal)??;
        Ok(())
    }

    pub(super) async fn list_uploads(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            // Only session files: anything else (a stray file someone put
            // there) is not ours to remove, and `registry check` reports it.
            let Some(name) = entry
                .file_name()
                .to_str()
                .filter(|n| Self::valid_id(n))
                .map(str::to_owned)
            else {
                continue;
            };
            // The file's mtime moves with every append: it is the session's
            // last activity, and it survives restarts.
            let modified = match entry.metadata().await {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let secs = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            out.push((name, secs));
        }
        Ok(out)
    }
}

/// Walk `blobs/<algorithm>/<xx>/<hex>`: blobs whose path and name agree,
/// and everything else.
fn walk_blobs(root: &Path) -> std::io::Result<BlobListing> {
    let mut out = BlobListing::default();
    let base = root.join("blobs");
    let entries = |dir: &Path| -> std::io::Result<Vec<(String, std::fs::Metadata)>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            v.push((e.file_name().to_string_lossy().into_owned(), e.metadata()?));
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    };
    for (alg, meta) in entries(&base)? {
        if !meta.is_dir() {
            out.strays.push(format!("blobs/{alg}"));
            continue;
        }
        for (shard, meta) in entries(&base.join(&alg))? {
            if !meta.is_dir() {
                out.strays.push(format!("blobs/{alg}/{shard}"));
                continue;
            }
            for (name, meta) in entries(&base.join(&alg).join(&shard))? {
                let digest = format!("{alg}:{name}").parse::<Digest>().ok();
                match digest {
                    Some(d) if meta.is_file() && name.starts_with(shard.as_str()) => {
                        out.blobs.push(Listed {
                            key: format!("blobs/{alg}/{shard}/{name}"),
                            digest: Some(d),
                            size: meta.len(),
                        })
                    }
                    _ => out.strays.push(format!("blobs/{alg}/{shard}/{name}")),
                }
            }
        }
    }
    Ok(out)
}
