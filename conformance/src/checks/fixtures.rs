//! Content pushed once per run and only ever read afterwards (the main
//! image, the tag-listing repository, the referrers repository), plus the
//! builders checks use to push content of their own. Pushed lazily, so a
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

/// Layer sizes of the main image: one small, one large enough to exercise
/// real transfers.
pub const MAIN_LAYERS: [usize; 2] = [4 * 1024, 700 * 1024];
/// Layer sizes of the images checks push for themselves.
pub const SMALL_LAYERS: [usize; 2] = [1024, 3 * 1024];

/// The blobs and manifest bytes of an image, built from a seed.
pub fn build_image(flavor: Flavor, seed: u64, sizes: &[usize]) -> (Blob, Vec<Blob>, Vec<u8>) {
    let layers: Vec<Blob> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Blob::new(flavor.layer_type(), oci::random_bytes(seed + i as u64, *n)))
        .collect();
    let refs: Vec<&Blob> = layers.iter().collect();
    let config = oci::image_config(flavor.config_type(), &refs, seed);
    let manifest = oci::image_manifest(flavor.manifest_type(), &config, &refs, Map::new());
    (config, layers, manifest)
}

/// Builds an image from a seed and pushes blobs plus manifest (by
/// `reference`, a tag or "" for by-digest). Fails unless the PUT gives 201.
pub fn push_image(
    c: &Client,
    repo: &str,
    reference: &str,
    flavor: Flavor,
    seed: u64,
    sizes: &[usize],
) -> Res<Image> {
    let (config, layers, manifest) = build_image(flavor, seed, sizes);
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

/// A small OCI image of a check's own, in its own repository.
pub fn push_small(c: &Client, repo: &str, tag: &str, seed: u64) -> Res<Image> {
    push_image(c, repo, tag, Flavor::Oci, seed, &SMALL_LAYERS)
}

/// Pushes an artifact manifest (empty config, one small layer) by digest or
/// `reference` and returns its bytes and the PUT; blobs are pushed first.
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
    let put = put_by_digest_or(c, repo, reference, oci::OCI_MANIFEST, &bytes)?;
    Ok((bytes, put))
}

pub fn put_by_digest_or(
    c: &Client,
    repo: &str,
    reference: Option<&str>,
    media_type: &str,
    bytes: &[u8],
) -> Res<Exchange> {
    let digest = oci::sha256(bytes);
    let put = c.put_manifest(repo, reference.unwrap_or(&digest), media_type, bytes)?;
    put.expect_status(&[201])?;
    Ok(put)
}

/// One pushed referrer and the descriptor the referrers API must list.
pub struct Referrer {
    pub name: &'static str,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub digest: String,
    /// `None`: the descriptor must not carry `artifactType`.
    pub artifact_type: Option<&'static str>,
    pub annotations: Option<Value>,
    pub put: Exchange,
}

/// `<root>/referrers`: a subject image and five referrers of it (two
/// artifacts, a manifest whose type comes from its config, an index with
/// and one without `artifactType`).
pub struct Referrers {
    pub repo: String,
    pub subject: Image,
    pub referrers: Vec<Referrer>,
}

impl Referrers {
    pub fn get(&self, name: &str) -> &Referrer {
        self.referrers
            .iter()
            .find(|r| r.name == name)
            .expect("fixture referrer")
    }
}

/// A repository holding one manifest under a known set of tags.
pub struct TagsRepo {
    pub repo: String,
    /// Sorted lexically, as the spec's listing must be.
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
    /// The main OCI image, `<root>/app:v1`. Read-only.
    pub fn image(&self) -> Res<&Image> {
        memo(&self.fixtures.image, "push of the main image", || {
            push_image(
                &self.client,
                &self.repo("app"),
                "v1",
                Flavor::Oci,
                SEED_IMAGE,
                &MAIN_LAYERS,
            )
        })
    }

    /// `<root>/referrers`, see [`Referrers`]. Read-only.
    pub fn referrers(&self) -> Res<&Referrers> {
        memo(
            &self.fixtures.referrers,
            "push of the referrers repository",
            || push_referrers(&self.client, &self.repo("referrers"), &self.root),
        )
    }

    /// `<root>/tags` with five tags pushed out of order. Read-only.
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
                Ok(TagsRepo { repo, tags })
            },
        )
    }
}

fn push_referrers(c: &Client, repo: &str, run: &str) -> Res<Referrers> {
    let subject = push_small(c, repo, "subject", SEED_REFERRERS)?;
    let sd = subject.descriptor();
    let mut referrers = Vec::new();

    let sbom_ann = json!({
        "org.opencontainers.image.description": "conformance sbom",
        "org.example.conformance.run": run,
    });
    let (bytes, put) = push_artifact(
        c,
        repo,
        None,
        oci::ARTIFACT_SBOM,
        Some(sd.clone()),
        Some(sbom_ann.clone()),
        SEED_REFERRERS + 10,
    )?;
    referrers.push(referrer(
        "sbom",
        oci::OCI_MANIFEST,
        bytes,
        put,
        Some(oci::ARTIFACT_SBOM),
        Some(sbom_ann),
    ));

    let (bytes, put) = push_artifact(
        c,
        repo,
        None,
        oci::ARTIFACT_SIG,
        Some(sd.clone()),
        None,
        SEED_REFERRERS + 11,
    )?;
    referrers.push(referrer(
        "signature",
        oci::OCI_MANIFEST,
        bytes,
        put,
        Some(oci::ARTIFACT_SIG),
        None,
    ));

    // No artifactType: the config's media type stands in for it.
    let config = Blob::new(
        oci::CONFIG_AS_TYPE,
        br#"{"conformance":"attestation"}"#.to_vec(),
    );
    let layer = Blob::new("text/plain", oci::random_bytes(SEED_REFERRERS + 12, 300));
    c.push_blob(repo, &config.data, &config.digest)?;
    c.push_blob(repo, &layer.data, &layer.digest)?;
    let mut extra = Map::new();
    extra.insert("subject".into(), sd.clone());
    let bytes = oci::image_manifest(oci::OCI_MANIFEST, &config, &[&layer], extra);
    let put = put_by_digest_or(c, repo, None, oci::OCI_MANIFEST, &bytes)?;
    referrers.push(referrer(
        "config-typed",
        oci::OCI_MANIFEST,
        bytes,
        put,
        Some(oci::CONFIG_AS_TYPE),
        None,
    ));

    // Indexes as referrers: one typed and annotated, one without a type.
    let child = (sd.clone(), oci::platform("amd64"));
    let idx_ann = json!({ "org.example.conformance.kind": "bundle" });
    let mut extra = Map::new();
    extra.insert("artifactType".into(), json!(oci::ARTIFACT_INDEX));
    extra.insert("subject".into(), sd.clone());
    extra.insert("annotations".into(), idx_ann.clone());
    let bytes = oci::index_with(oci::OCI_INDEX, std::slice::from_ref(&child), extra);
    let put = put_by_digest_or(c, repo, None, oci::OCI_INDEX, &bytes)?;
    referrers.push(referrer(
        "index-typed",
        oci::OCI_INDEX,
        bytes,
        put,
        Some(oci::ARTIFACT_INDEX),
        Some(idx_ann),
    ));

    let mut extra = Map::new();
    extra.insert("subject".into(), sd);
    let bytes = oci::index_with(oci::OCI_INDEX, &[child], extra);
    let put = put_by_digest_or(c, repo, None, oci::OCI_INDEX, &bytes)?;
    referrers.push(referrer(
        "index-untyped",
        oci::OCI_INDEX,
        bytes,
        put,
        None,
        None,
    ));

    Ok(Referrers {
        repo: repo.to_owned(),
        subject,
        referrers,
    })
}

pub fn referrer(
    name: &'static str,
    media_type: &'static str,
    bytes: Vec<u8>,
    put: Exchange,
    artifact_type: Option<&'static str>,
    annotations: Option<Value>,
) -> Referrer {
    Referrer {
        name,
        media_type,
        digest: oci::sha256(&bytes),
        bytes,
        artifact_type,
        annotations,
        put,
    }
}
