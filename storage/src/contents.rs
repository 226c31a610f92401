//! What layers and images contain, as the registry answers it: a layer's
//! files, an image's stacked file system, what its layers wasted, and what
//! changed between two images; each from the layer indexes
//! (`crate::layers`), for images resolved as `crate::inspect` does.

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::layers::{self, Change, Indexed, LayerIndex, Pending, Row, Stacked, Waste};
use crate::names::validate_name;
use crate::service::Registry;
use oci_spec::image::{ImageIndex, ImageManifest};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// An answer, or how far the indexing it waits for has got.
#[derive(Debug, Clone)]
pub enum Indexing<T> {
    Ready(T),
    Pending(Pending),
}

/// A directory of one layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFiles {
    pub repository: String,
    pub digest: String,
    /// `gzip`, `zstd` or `none`.
    pub compression: String,
    pub tar_bytes: u64,
    pub entries: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub path: String,
    pub rows: Vec<Row>,
}

/// One layer of an image, as the image's manifest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// The image a reference names, for one platform.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRef {
    pub repository: String,
    pub reference: String,
    /// The image manifest's digest (of the chosen platform).
    pub digest: String,
    pub platform: String,
    /// Every platform behind the reference (one for a plain image).
    pub platforms: Vec<String>,
    pub layers: Vec<ImageLayer>,
}

/// A directory of an image's stacked file system.
#[derive(Debug, Clone, Serialize)]
pub struct ImageFiles {
    pub image: ImageRef,
    pub path: String,
    pub rows: Vec<Row>,
}

/// What an image's layers wasted.
#[derive(Debug, Clone, Serialize)]
pub struct ImageWaste {
    pub image: ImageRef,
    #[serde(flatten)]
    pub waste: Waste,
}

/// What changed from one image to another.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    pub from: ImageRef,
    pub to: ImageRef,
    pub changes: Vec<Change>,
}

/// Foreign layers are not stored here: nothing to read.
fn stored_layer(media_type: &str) -> bool {
    !media_type.contains("foreign") && !media_type.contains("nondistributable")
}

impl Registry {
    /// Directory `path` of layer `digest` of `repo`, `depth` levels down.
    pub async fn layer_files(
        &self,
        repo: &str,
        digest: &Digest,
        path: &str,
        depth: usize,
        wait: Duration,
    ) -> Result<Indexing<LayerFiles>> {
        let index = match self.layer_index(repo, digest, wait).await? {
            Indexing::Ready(i) => i,
            Indexing::Pending(p) => return Ok(Indexing::Pending(p)),
        };
        let path = clean_path(path)?;
        let rows = layers::list(&index.entries, &path, depth, |e: &layers::Entry| (e, None));
        let (files, file_bytes) = index.files();
        Ok(Indexing::Ready(LayerFiles {
            repository: repo.to_owned(),
            digest: digest.to_string(),
            compression: index.compression.clone(),
            tar_bytes: index.tar_bytes,
            entries: index.entries.len() as u64,
            files,
            file_bytes,
            path,
            rows,
        }))
    }

    /// The index of a layer `repo` may read.
    pub async fn layer_index(
        &self,
        repo: &str,
        digest: &Digest,
        wait: Duration,
    ) -> Result<Indexing<Arc<LayerIndex>>> {
        let blob = self.blob(repo, digest).await?;
        match self
            .layer_indexer()
            .get(digest, &blob, self.meta(), self.blob_store(), wait)
            .await?
        {
            Indexed::Ready(i) => Ok(Indexing::Ready(i)),
            Indexed::Pending(p) => Ok(Indexing::Pending(p)),
            Indexed::Refused(e) => Err(refused(digest, &e)),
        }
    }

    /// The image `reference` of `repo` names, for `platform` (any, for a
    /// plain image; for an index, `linux/amd64` unless told, else its
    /// first).
    pub async fn image_ref(
        &self,
        repo: &str,
        reference: &str,
        platform: Option<&str>,
    ) -> Result<ImageRef> {
        validate_name(repo)?;
        let top = self.manifest(repo, reference).await?;
        let (digest, platform, platforms, content) = if crate::inspect::is_index(&top.media_type) {
            let index: ImageIndex = serde_json::from_slice(&top.content)
                .map_err(|e| Error::new(ErrorCode::ManifestInvalid, e.to_string()))?;
            let children: Vec<(String, String)> = index
                .manifests()
                .iter()
                .filter(|c| !crate::inspect::is_index(c.media_type().as_ref()))
                .map(|c| {
                    (
                        c.digest().to_string(),
                        crate::inspect::descriptor_platform(c),
                    )
                })
                .filter(|(_, p)| p != "unknown/unknown")
                .collect();
            let platforms: Vec<String> = children.iter().map(|(_, p)| p.clone()).collect();
            let want = platform.unwrap_or("linux/amd64");
            let pick = children
                .iter()
                .find(|(_, p)| p == want || p.starts_with(&format!("{want}/")))
                .or_else(|| platform.is_none().then(|| children.first()).flatten())
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::ManifestUnknown,
                        format!(
                            "{repo}:{reference} has no image for {want}; it has {}",
                            platforms.join(", ")
                        ),
                    )
                })?;
            let child = self.manifest(repo, &pick.0).await?;
            (
                child.digest.to_string(),
                pick.1.clone(),
                platforms,
                child.content,
            )
        } else {
            let p = match self.image_config(repo, &top.content).await {
                Ok((_, Some(c))) => {
                    let c = crate::inspect::config_info(&c);
                    crate::inspect::platform_string(&c.os, &c.architecture, c.variant.as_deref())
                }
                _ => "unknown".to_owned(),
            };
            (top.digest.to_string(), p.clone(), vec![p], top.content)
        };
        let m: ImageManifest = serde_json::from_slice(&content).map_err(|e| {
            Error::new(
                ErrorCode::ManifestInvalid,
                format!("{reference} is not an image manifest: {e}"),
            )
        })?;
        Ok(ImageRef {
            repository: repo.to_owned(),
            reference: reference.to_owned(),
            digest,
            platform,
            platforms,
            layers: m
                .layers()
                .iter()
                .map(|l| ImageLayer {
                    digest: l.digest().to_string(),
                    media_type: l.media_type().to_string(),
                    size: l.size(),
                })
                .collect(),
        })
    }

    /// The stacked file system of `image` (its layers' indexes, waiting at
    /// most `wait` for all of them together).
    pub async fn stacked(
        &self,
        image: &ImageRef,
        wait: Duration,
    ) -> Result<Indexing<Arc<Stacked>>> {
        if let Some(s) = self.layer_indexer().stacked(&image.digest) {
            return Ok(Indexing::Ready(s));
        }
        let stored: Vec<&ImageLayer> = image
            .layers
            .iter()
            .filter(|l| stored_layer(&l.media_type))
            .collect();
        let mut waits = Vec::new();
        for l in &stored {
            let digest: Digest = l.digest.parse()?;
            waits.push(async move {
                let r = self.layer_index(&image.repository, &digest, wait).await;
                (digest, r)
            });
        }
        let mut indexes = Vec::new();
        let mut pending: Option<Pending> = None;
        for (_, r) in futures::future::join_all(waits).await {
            match r? {
                Indexing::Ready(i) => indexes.push(i),
                Indexing::Pending(p) => {
                    let all = pending.get_or_insert(Pending {
                        read: 0,
                        size: 0,
                        entries: 0,
                    });
                    all.read += p.read;
                    all.size += p.size;
                    all.entries += p.entries;
                }
            }
        }
        if let Some(p) = pending {
            return Ok(Indexing::Pending(p));
        }
        let refs: Vec<&LayerIndex> = indexes.iter().map(|i| i.as_ref()).collect();
        // Stacking 100,000 entries takes tens of milliseconds: off the
        // async threads.
        let stacked = tokio::task::block_in_place(|| layers::stack(&refs));
        let stacked = Arc::new(stacked);
        self.layer_indexer()
            .keep_stacked(&image.digest, stacked.clone());
        Ok(Indexing::Ready(stacked))
    }

    /// Directory `path` of `image`'s stacked file system.
    pub async fn image_files(
        &self,
        image: ImageRef,
        path: &str,
        depth: usize,
        wait: Duration,
    ) -> Result<Indexing<ImageFiles>> {
        let path = clean_path(path)?;
        Ok(match self.stacked(&image, wait).await? {
            Indexing::Pending(p) => Indexing::Pending(p),
            Indexing::Ready(s) => Indexing::Ready(ImageFiles {
                rows: layers::list(&s.nodes, &path, depth, |n: &layers::Node| {
                    (&n.entry, Some(n.layer))
                }),
                image,
                path,
            }),
        })
    }

    /// What `image`'s layers wasted, worst first.
    pub async fn image_waste(
        &self,
        image: ImageRef,
        wait: Duration,
    ) -> Result<Indexing<ImageWaste>> {
        Ok(match self.stacked(&image, wait).await? {
            Indexing::Pending(p) => Indexing::Pending(p),
            Indexing::Ready(s) => Indexing::Ready(ImageWaste {
                image,
                waste: s.waste.clone(),
            }),
        })
    }

    /// What changed from image `from` to image `to`.
    pub async fn image_diff(
        &self,
        from: ImageRef,
        to: ImageRef,
        wait: Duration,
    ) -> Result<Indexing<ImageDiff>> {
        let a = match self.stacked(&from, wait).await? {
            Indexing::Ready(s) => s,
            Indexing::Pending(p) => return Ok(Indexing::Pending(p)),
        };
        let b = match self.stacked(&to, wait).await? {
            Indexing::Ready(s) => s,
            Indexing::Pending(p) => return Ok(Indexing::Pending(p)),
        };
        let changes = layers::diff(&a.nodes, &b.nodes);
        Ok(Indexing::Ready(ImageDiff { from, to, changes }))
    }
}

fn refused(digest: &Digest, e: &layers::IndexError) -> Error {
    let code = match e {
        layers::IndexError::TooLarge(_) | layers::IndexError::Invalid(_) => {
            ErrorCode::Unprocessable
        }
        layers::IndexError::Read(_) => ErrorCode::Unavailable,
    };
    Error::new(code, format!("layer {digest} is {e}"))
}

/// An absolute directory path, normalised (`/usr/`, `usr` and `/usr/.`
/// are `/usr`); `..` may not climb above the root.
fn clean_path(path: &str) -> Result<String> {
    if path.len() > 4096 || path.contains('\0') {
        return Err(Error::new(
            ErrorCode::Unsupported,
            "path: too long, or not a path",
        ));
    }
    let (p, note) = layers::normalise(path.as_bytes());
    if note.is_some() {
        return Err(Error::new(
            ErrorCode::Unsupported,
            format!("path {path:?} climbs out of the root"),
        ));
    }
    Ok(p)
}
