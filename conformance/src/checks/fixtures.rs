//! Shared content pushed once per run and reused by many checks (an image,
//! its referrers, a repository with a known tag set). Pushed lazily so a
//! filtered run only creates what its checks need.

use std::cell::OnceCell;

use serde_json::{json, Map, Value};

use super::{memo, Ctx};
use crate::api::Res;
use crate::client::Client;
use crate::exchange::Exchange;
use crate::oci::{self, Blob};

/// Which manifest flavour an image uses.
#[derive(Clone, Copy, PartialEq)]
pub enum Flavor {
    Oci,
    Docker,
}

impl Flavor {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Flavor::Oci => oci::OCI_MANIFEST,
            Flavor::Docker => oci::DOCKER_MANIFEST,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            Flavor::Oci => oci::OCI_CONFIG,
            Flavor::Docker => oci::DOCKER_CONFIG,
        }
    }

    fn layer_type(self) -> &'static str {
        match self {
            Flavor::Oci => oci::OCI_LAYER,
            Flavor::Docker => oci::DOCKER_LAYER,
        }
    }
}

/// A pushed image: its blobs, exact manifest bytes, and the PUT exchange.
pub struct Image {
    pub repo: String,
    pub media_type: String,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Vec<u8>,
    pub digest: String,
    pub put: Exchange,
}

impl Image {
    pub fn descriptor(&self) -> Value {
        oci::manifest_descriptor(&self.media_type, &self.manifest)
    }

    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }
}

/// Layer sizes: one small, one large enough to exercise real transfers.
const LAYER_SIZES: [usize; 2] = [4 * 1024, 700 * 1024];

/// Builds an image from a seed and pushes blobs plus manifest (by
/// `reference`, a tag or "" for by-digest). Fails unless the PUT gives 201.
pub fn push_image(
    c: &Client,
    repo: &str,
    reference: &str,
    flavor: Flavor,
    seed: u64,
) -> Res<Image> {
    let layers: Vec<Blob> = LAYER_SIZES
        .iter()
        .enumerate()
        .map(|(i, n)| Blob::new(flavor.layer_type(), oci::random_bytes(seed + i as u64, *n)))
        .collect();
    let refs: Vec<&Blob> = layers.iter().collect();
    let config = oci::image_config(flavor.config_type(), &refs, seed);
    let manifest = oci::image_manifest(flavor.manifest_type(), &config, &refs, Map::new());
    for b in std::iter::once(&config).chain(layers.iter()) {
        c.push_blob(repo, &b.data, &b.digest)?;
    }
    let digest = oci::sha256(&manifest);
    let reference = if reference.is_empty() {
        digest.as_str()
    } else {
        reference
    };
    let put = c.put_manifest(repo, reference, flavor.manifest_type(), &manifest)?;
    put.expect_status(&[201])?;
    Ok(Image {
        repo: repo.to_owned(),
        media_type: flavor.manifest_type().to_owned(),
        config,
        layers,
        manifest,
        digest,
        put,
    })
}

/// Pushes an artifact manifest (empty config, one small layer) and
/// returns its bytes; the empty config and layer blobs are pushed first.
pub fn push_artifact(
    c: &Client,
    repo: &str,
    reference: Option<&str>,
    artifact_type: &str,
    subject: Option<Value>,
    annotations: Option<Value>,
    seed: u64,
) -> Res<(Vec<u8>, Exchange)> {
    let empty = Blob::empty_config();
    let layer = Blob::new("text/plain", oci::random_bytes(seed, 512));
    c.push_blob(repo, &empty.data, &empty.digest)?;
    c.push_blob(repo, &layer.data, &layer.digest)?;
    let bytes = oci::artifact_manifest(artifact_type, &layer, subject, annotations);
    let digest = oci::sha256(&bytes);
    let put = c.put_manifest(
        repo,
        reference.unwrap_or(&digest),
        oci::OCI_MANIFEST,
        &bytes,
    )?;
    put.expect_status(&[201])?;
    Ok((bytes, put))
}

/// Two artifacts referring to the main image.
pub struct Referrers {
    pub subject: String,
    pub sbom: Vec<u8>,
    pub sbom_annotations: Value,
    pub sbom_put: Exchange,
    pub sig: Vec<u8>,
}

/// A repository holding one manifest under a known set of tags.
pub struct TagsRepo {
    pub repo: String,
    pub manifest_digest: String,
    /// Sorted lexically (byte order), as the spec's listing must be.
    pub tags: Vec<String>,
}

#[derive(Default)]
pub struct Fixtures {
    image: OnceCell<Res<Image>>,
    referrers: OnceCell<Res<Referrers>>,
    tags: OnceCell<Res<TagsRepo>>,
}

/// Seeds for fixture content; each distinct so digests never collide.
pub const SEED_IMAGE: u64 = 1_000;
const SEED_REFERRERS: u64 = 2_000;
const SEED_TAGS: u64 = 3_000;

impl Ctx {
    /// The main OCI image, `<root>/app:v1`.
    pub fn image(&self) -> Res<&Image> {
        memo(&self.fixtures.image, "push of the main image", || {
            push_image(
                &self.client,
                &self.repo("app"),
                "v1",
                Flavor::Oci,
                SEED_IMAGE,
            )
        })
    }

    /// An SBOM-like and a signature-like artifact with `subject` = main image.
    pub fn referrers(&self) -> Res<&Referrers> {
        memo(
            &self.fixtures.referrers,
            "push of referrer artifacts",
            || {
                let image = self.image()?;
                let annotations = json!({
                    "org.opencontainers.image.description": "conformance sbom",
                    "org.example.conformance.run": self.root,
                });
                let (sbom, sbom_put) = push_artifact(
                    &self.client,
                    &image.repo,
                    None,
                    oci::ARTIFACT_SBOM,
                    Some(image.descriptor()),
                    Some(annotations.clone()),
                    SEED_REFERRERS,
                )?;
                let (sig, _) = push_artifact(
                    &self.client,
                    &image.repo,
                    None,
                    oci::ARTIFACT_SIG,
                    Some(image.descriptor()),
                    None,
                    SEED_REFERRERS + 1,
                )?;
                Ok(Referrers {
                    subject: image.digest.clone(),
                    sbom,
                    sbom_annotations: annotations,
                    sbom_put,
                    sig,
                })
            },
        )
    }

    /// `<root>/tags` with five tags pushed out of order.
    pub fn tags_repo(&self) -> Res<&TagsRepo> {
        memo(
            &self.fixtures.tags,
            "push of the tag-listing repository",
            || {
                let repo = self.repo("tags");
                let pushed = ["v1", "alpha", "gamma", "beta", "delta"];
                let (bytes, _) = push_artifact(
                    &self.client,
                    &repo,
                    Some(pushed[0]),
                    oci::ARTIFACT_SBOM,
                    None,
                    None,
                    SEED_TAGS,
                )?;
                for tag in &pushed[1..] {
                    self.client
                        .put_manifest(&repo, tag, oci::OCI_MANIFEST, &bytes)?
                        .expect_status(&[201])?;
                }
                let mut tags: Vec<String> = pushed.iter().map(|t| t.to_string()).collect();
                tags.sort();
                Ok(TagsRepo {
                    repo,
                    manifest_digest: oci::sha256(&bytes),
                    tags,
                })
            },
        )
    }
}
