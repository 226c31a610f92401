//! Layer-history inspection: what is inside an image, without pulling it.
//!
//! For an image manifest, the config's `history[]` is matched to the layers
//! the way Docker does it: entries with `empty_layer: true` take no layer,
//! every other entry takes the next layer in order. Only the config blob is
//! ever read; layer bytes never are.

use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{DOCKER_LIST, OCI_INDEX};
use crate::metadata::{BlobUse, RepoSummary};
use crate::names::validate_name;
use crate::service::Registry;
use crate::Digest;
use futures::TryStreamExt;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Config blobs are small JSON documents; refuse to buffer anything bigger.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagSummary {
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]` of each image behind the tag.
    pub platforms: Vec<String>,
    pub size: i64,
    pub pushed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageDetail {
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    /// One entry per platform (a single entry for a plain image manifest).
    pub images: Vec<PlatformImage>,
    /// Referrers of the top-level manifest (e.g. of an index).
    pub referrers: Vec<ReferrerInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformImage {
    pub platform: String,
    pub digest: String,
    pub media_type: String,
    pub config_digest: String,
    pub config: Option<ConfigInfo>,
    pub history: Vec<HistoryRow>,
    pub layers: Vec<LayerInfo>,
    /// Config plus layers, compressed as stored.
    pub total_size: i64,
    /// Bytes of layers that other images in the registry also use.
    pub shared_size: i64,
    /// Set when history and layers do not line up, saying how.
    pub mismatch: Option<String>,
    pub referrers: Vec<ReferrerInfo>,
    /// Why the config could not be read, if it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ConfigInfo {
    pub created: Option<String>,
    pub author: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRow {
    pub created: Option<String>,
    /// The command as recorded (tabs shown as spaces, as `docker history`).
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
    /// Index into `layers` of the layer this step made.
    pub layer: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    /// Other images (not this one) that use the same blob.
    pub used_by: Vec<BlobUse>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferrerInfo {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: i64,
}

/// Where a blob is used across the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobDetail {
    pub digest: String,
    pub size: i64,
    pub used_by: Vec<BlobUse>,
}

/// `os/arch[/variant]`.
pub fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant.filter(|v| !v.is_empty()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

pub(crate) fn descriptor_platform(d: &Descriptor) -> String {
    match d.platform() {
        Some(p) => platform_string(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        ),
        None => "unknown".to_owned(),
    }
}

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Match history entries to layers (Docker's rule) and describe any mismatch.
pub fn match_history(
    config: Option<&ImageConfiguration>,
    layer_count: usize,
) -> (Vec<HistoryRow>, Option<String>) {
    let history = config.and_then(|c| c.history().clone()).unwrap_or_default();
    let mut rows = Vec::with_capacity(history.len().max(layer_count));
    let mut next = 0usize;
    for h in &history {
        let empty = h.empty_layer().unwrap_or(false);
        let layer = if empty {
            None
        } else {
            next += 1;
            (next - 1 < layer_count).then_some(next - 1)
        };
        rows.push(HistoryRow {
            created: h.created().clone(),
            created_by: h.created_by().as_ref().map(|s| s.replace('\t', " ")),
            comment: h.comment().clone(),
            empty_layer: empty,
            layer,
        });
    }
    // Layers no history entry accounts for are still shown.
    for i in next.min(layer_count)..layer_count {
        rows.push(HistoryRow {
            created: None,
            created_by: None,
            comment: None,
            empty_layer: false,
            layer: Some(i),
        });
    }
    let mismatch = if history.is_empty() {
        (layer_count > 0).then(|| "the image config has no history".to_owned())
    } else if next != layer_count {
        Some(format!(
            "history has {next} layer-creating steps but the manifest has {layer_count} layers"
        ))
    } else {
        None
    };
    (rows, mismatch)
}

/// An image configuration blob, parsed.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::new(ErrorCode::ManifestInvalid, format!("image config: {e}")))
}

/// What the image view shows of a configuration.
pub fn config_info(c: &ImageConfiguration) -> ConfigInfo {
    let cfg = c.config().clone().unwrap_or_default();
    ConfigInfo {
        created: c.created().clone(),
        author: c.author().clone(),
        os: c.os().to_string(),
        architecture: c.architecture().to_string(),
        variant: c.variant().clone(),
        entrypoint: cfg.entrypoint().clone(),
        cmd: cfg.cmd().clone(),
        env: cfg.env().clone().unwrap_or_default(),
        working_dir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
        exposed_ports: cfg.exposed_ports().clone().unwrap_or_default(),
        labels: cfg
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

impl Registry {
    pub async fn repository_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<RepoSummary>> {
        self.meta().repo_summaries(filter, last, n).await
    }

    pub async fn tag_summaries(
        &self,
        repo: &str,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<TagSummary>> {
        validate_name(repo)?;
        let rows = self
            .meta()
            .tag_rows(repo, last, n)
            .await?
            .ok_or_else(|| Error::name_unknown(repo))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let platforms = if is_index(&row.media_type) {
                serde_json::from_slice::<ImageIndex>(&row.content)
                    .map(|i| i.manifests().iter().map(descriptor_platform).collect())
                    .unwrap_or_default()
            } else {
                match self.image_config(repo, &row.content).await {
                    Ok((_, Some(c))) => vec![platform_string(
                        &c.os().to_string(),
                        &c.architecture().to_string(),
                        c.variant().as_deref(),
                    )],
                    _ => Vec::new(),
                }
            };
            out.push(TagSummary {
                tag: row.tag,
                digest: row.digest,
                media_type: row.media_type,
                platforms,
                size: row.size,
                pushed: row.pushed,
            });
        }
        Ok(out)
    }

    /// Read and parse the config of an image manifest. `Ok((digest, None))`
    /// when the config is not an image configuration (artifacts).
    pub(crate) async fn image_config(
        &self,
        repo: &str,
        manifest: &[u8],
    ) -> Result<(String, Option<ImageConfiguration>)> {
        let m: ImageManifest = serde_json::from_slice(manifest)
            .map_err(|e| Error::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        let config_digest = m.config().digest().to_string();
        let media = m.config().media_type().to_string();
        if !(media.contains("container.image") || media.contains("image.config")) {
            return Ok((config_digest, None));
        }
        let digest: Digest = config_digest.parse()?;
        let blob = self.blob(repo, &digest).await?;
        let size = blob.size;
        if size > MAX_CONFIG_BYTES {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                "image config is too large to inspect",
            ));
        }
        let bytes: Vec<u8> = self
            .blob_bytes(&digest, &blob, None)
            .await?
            .try_fold(
                Vec::with_capacity(size as usize),
                |mut acc, chunk| async move {
                    acc.extend_from_slice(&chunk);
                    Ok(acc)
                },
            )
            .await?;
        Ok((config_digest, Some(parse_config(&bytes)?)))
    }

    async fn referrer_infos(&self, repo: &str, subject: &Digest) -> Result<Vec<ReferrerInfo>> {
        Ok(self
            .referrers(repo, subject, None)
            .await?
            .into_iter()
            .map(|r| ReferrerInfo {
                digest: r.digest,
                media_type: r.media_type,
                artifact_type: r.artifact_type,
                size: r.size,
            })
            .collect())
    }

    /// Everything about one image manifest (one platform).
    async fn platform_image(
        &self,
        repo: &str,
        digest: &Digest,
        platform_hint: Option<String>,
    ) -> Result<PlatformImage> {
        let stored = self.manifest(repo, &digest.to_string()).await?;
        let m: ImageManifest = serde_json::from_slice(&stored.content)
            .map_err(|e| Error::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        let (config_digest, config, error) = match self.image_config(repo, &stored.content).await {
            Ok((d, c)) => (d, c, None),
            Err(e) => (m.config().digest().to_string(), None, Some(e.message)),
        };
        let layer_digests: Vec<String> =
            m.layers().iter().map(|l| l.digest().to_string()).collect();
        let mut uses: HashMap<String, Vec<BlobUse>> = HashMap::new();
        for u in self.meta().blob_uses(&layer_digests).await? {
            let this_image = u.repository == repo && u.manifest == stored.digest.to_string();
            if !this_image {
                uses.entry(u.blob.clone()).or_default().push(u);
            }
        }
        let layers: Vec<LayerInfo> = m
            .layers()
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest().to_string(),
                media_type: l.media_type().to_string(),
                size: l.size() as i64,
                used_by: uses
                    .get(&l.digest().to_string())
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        let (history, mismatch) = match_history(config.as_ref(), layers.len());
        let layer_bytes: i64 = layers.iter().map(|l| l.size).sum();
        let shared_size = layers
            .iter()
            .filter(|l| !l.used_by.is_empty())
            .map(|l| l.size)
            .sum();
        let info = config.as_ref().map(config_info);
        // Inside an index the index's own platform is what clients select by.
        let platform = match (platform_hint, &info) {
            (Some(p), _) => p,
            (None, Some(c)) => platform_string(&c.os, &c.architecture, c.variant.as_deref()),
            (None, None) => "unknown".to_owned(),
        };
        Ok(PlatformImage {
            platform,
            digest: stored.digest.to_string(),
            media_type: stored.media_type,
            config_digest,
            config: info,
            history,
            total_size: m.config().size() as i64 + layer_bytes,
            shared_size,
            layers,
            mismatch,
            referrers: self.referrer_infos(repo, digest).await?,
            error,
        })
    }

    /// Resolve `reference` in `repo` and describe every platform behind it.
    pub async fn image_detail(&self, repo: &str, reference: &str) -> Result<ImageDetail> {
        let top = self.manifest(repo, reference).await?;
        let mut images = Vec::new();
        if is_index(&top.media_type) {
            let index: ImageIndex = serde_json::from_slice(&top.content)
                .map_err(|e| Error::new(ErrorCode::ManifestInvalid, e.to_string()))?;
            for child in index.manifests() {
                let digest: Digest = child.digest().to_string().parse()?;
                // Nested indexes and attestations are skipped, not failed.
                if is_index(child.media_type().as_ref()) {
                    continue;
                }
                if let Ok(img) = self
                    .platform_image(repo, &digest, Some(descriptor_platform(child)))
                    .await
                {
                    images.push(img);
                }
            }
        } else {
            images.push(self.platform_image(repo, &top.digest, None).await?);
        }
        let referrers = if is_index(&top.media_type) {
            self.referrer_infos(repo, &top.digest).await?
        } else {
            // A plain image's referrers are listed with its platform entry.
            Vec::new()
        };
        Ok(ImageDetail {
            repository: repo.to_owned(),
            reference: reference.to_owned(),
            digest: top.digest.to_string(),
            media_type: top.media_type,
            referrers,
            images,
        })
    }

    /// Which images in the registry use a blob.
    pub async fn blob_detail(&self, digest: &Digest) -> Result<BlobDetail> {
        let d = digest.to_string();
        let (size, _) = self
            .meta()
            .blob_any(&d)
            .await?
            .ok_or_else(|| Error::blob_unknown(digest))?;
        Ok(BlobDetail {
            used_by: self.meta().blob_uses(std::slice::from_ref(&d)).await?,
            digest: d,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(history: &str) -> ImageConfiguration {
        serde_json::from_str(&format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"history":{history}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn empty_layers_take_no_layer() {
        let c = config(
            r#"[{"created_by":"COPY a /"},{"created_by":"/bin/sh -c #(nop)\tENV A=1","empty_layer":true},{"created_by":"RUN x"}]"#,
        );
        let (rows, mismatch) = match_history(Some(&c), 2);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].layer, Some(0));
        assert_eq!(rows[1].layer, None);
        assert_eq!(
            rows[1].created_by.as_deref(),
            Some("/bin/sh -c #(nop) ENV A=1")
        );
        assert_eq!(rows[2].layer, Some(1));
        assert!(mismatch.is_none());
    }

    #[test]
    fn mismatches_are_reported_not_hidden() {
        let c = config(r#"[{"created_by":"RUN a"}]"#);
        let (rows, mismatch) = match_history(Some(&c), 3);
        assert_eq!(rows.len(), 3, "extra layers still listed");
        assert_eq!(rows[2].layer, Some(2));
        assert!(mismatch.unwrap().contains("1 layer-creating steps"));
        let c = config(r#"[{"created_by":"RUN a"},{"created_by":"RUN b"}]"#);
        let (rows, mismatch) = match_history(Some(&c), 1);
        assert_eq!(rows[1].layer, None);
        assert!(mismatch.is_some());
        let (rows, mismatch) = match_history(None, 2);
        assert_eq!(rows.len(), 2);
        assert!(mismatch.unwrap().contains("no history"));
    }
}
