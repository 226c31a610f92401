//! Content builders: media types, digests, deterministic test data, and the
//! manifest / index JSON documents the checks push.

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256, Sha512};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const EMPTY_CONTENT: &[u8] = b"{}";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Sent on every manifest GET/HEAD so registries never down-convert.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Artifact types of the referrers fixtures. The SBOM's `+` must reach the
/// registry percent-encoded (`%2B`) in a filter, or it decodes as a space.
pub const ARTIFACT_SBOM: &str = "application/vnd.conformance.sbom.v1+json";
pub const ARTIFACT_SIG: &str = "application/vnd.conformance.signature.v1";
pub const ARTIFACT_INDEX: &str = "application/vnd.conformance.bundle.v1";
/// Config media type of a referrer without `artifactType`: the referrers
/// API must report this as its artifact type.
pub const CONFIG_AS_TYPE: &str = "application/vnd.conformance.attestation.config.v1+json";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Whether `digest` (sha256 or sha512, the algorithms the OCI image spec
/// registers) is the digest of `data`.
pub fn digest_matches(digest: &str, data: &[u8]) -> bool {
    match digest.trim().split_once(':') {
        Some(("sha256", hex)) => hex == hex::encode(Sha256::digest(data)),
        Some(("sha512", hex)) => hex == hex::encode(Sha512::digest(data)),
        _ => false,
    }
}

/// Whether `s` contains a UUID in its 8-4-4-4-12 hex form.
pub fn contains_uuid(s: &str) -> bool {
    let groups = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    (0..b.len()).any(|start| {
        let mut i = start;
        groups.iter().enumerate().all(|(g, &n)| {
            let ok = b.len() >= i + n && b[i..i + n].iter().all(u8::is_ascii_hexdigit);
            i += n;
            let sep_ok = g == groups.len() - 1 || b.get(i) == Some(&b'-');
            i += 1;
            ok && sep_ok
        })
    })
}

/// Small deterministic PRNG (xorshift64*): test data must be reproducible
/// and we avoid pulling in `rand` just for this.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    pub fn hex(&mut self, len: usize) -> String {
        hex::encode(self.bytes(len.div_ceil(2)))[..len].to_owned()
    }
}

/// Deterministic pseudo-random blob content for a given seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// A piece of content together with how manifests refer to it.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub data: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Self {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256(&data),
            data,
        }
    }

    pub fn empty_config() -> Self {
        Blob::new(OCI_EMPTY, EMPTY_CONTENT.to_vec())
    }

    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.data.len(),
        })
    }
}

/// A minimal but well-formed image config; the seed keeps configs (and so
/// manifest digests) distinct between fixtures.
pub fn image_config(media_type: &str, layers: &[&Blob], seed: u64) -> Blob {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let body = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": { "Labels": { "conformance.seed": seed.to_string() } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    Blob::new(media_type, serde_json::to_vec(&body).expect("json"))
}

/// Image manifest JSON bytes; `extra` adds fields like `subject`.
pub fn image_manifest(
    media_type: &str,
    config: &Blob,
    layers: &[&Blob],
    extra: Map<String, Value>,
) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("schemaVersion".into(), json!(2));
    m.insert("mediaType".into(), json!(media_type));
    m.insert("config".into(), config.descriptor());
    let layers: Vec<Value> = layers.iter().map(|l| l.descriptor()).collect();
    m.insert("layers".into(), Value::Array(layers));
    m.extend(extra);
    serde_json::to_vec(&Value::Object(m)).expect("json")
}

/// Descriptor of a manifest for use inside an index or as a subject.
pub fn manifest_descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({
        "mediaType": media_type,
        "digest": sha256(bytes),
        "size": bytes.len(),
    })
}

pub fn platform(arch: &str) -> Value {
    json!({ "architecture": arch, "os": "linux" })
}

/// Image index / manifest list JSON bytes from (descriptor, platform) pairs.
pub fn index(media_type: &str, entries: &[(Value, Value)]) -> Vec<u8> {
    index_with(media_type, entries, Map::new())
}

/// An index with extra top-level fields (`subject`, `artifactType`, ...).
pub fn index_with(
    media_type: &str,
    entries: &[(Value, Value)],
    extra: Map<String, Value>,
) -> Vec<u8> {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(desc, plat)| {
            let mut d = desc.clone();
            d["platform"] = plat.clone();
            d
        })
        .collect();
    let mut body = Map::new();
    body.insert("schemaVersion".into(), json!(2));
    body.insert("mediaType".into(), json!(media_type));
    body.insert("manifests".into(), Value::Array(manifests));
    body.extend(extra);
    serde_json::to_vec(&Value::Object(body)).expect("json")
}

/// An artifact manifest (OCI image manifest with `artifactType` and the
/// empty config), optionally pointing at a subject and carrying annotations.
pub fn artifact_manifest(
    artifact_type: &str,
    layer: &Blob,
    subject: Option<Value>,
    annotations: Option<Value>,
) -> Vec<u8> {
    let mut extra = Map::new();
    extra.insert("artifactType".into(), json!(artifact_type));
    if let Some(s) = subject {
        extra.insert("subject".into(), s);
    }
    if let Some(a) = annotations {
        extra.insert("annotations".into(), a);
    }
    image_manifest(OCI_MANIFEST, &Blob::empty_config(), &[layer], extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_descriptor_digest_matches_spec() {
        assert_eq!(sha256(EMPTY_CONTENT), EMPTY_DIGEST);
    }

    #[test]
    fn digests_of_both_algorithms_are_recognised() {
        assert!(digest_matches(EMPTY_DIGEST, EMPTY_CONTENT));
        assert!(!digest_matches(EMPTY_DIGEST, b"{ }"));
        let sha512 = format!("sha512:{}", hex::encode(Sha512::digest(b"x")));
        assert!(digest_matches(&sha512, b"x"));
        assert!(!digest_matches("md5:00", b"x"));
    }

    #[test]
    fn uuids_are_found_in_locations() {
        assert!(contains_uuid(
            "/v2/a/blobs/uploads/3f2504e0-4f89-41d3-9a0c-0305e82c3301?_state=x"
        ));
        assert!(!contains_uuid("/v2/a/blobs/uploads/12345"));
        assert!(!contains_uuid("3f2504e0-4f89-41d3-9a0c-0305e82c330"));
    }

    #[test]
    fn random_bytes_are_deterministic() {
        assert_eq!(random_bytes(7, 100), random_bytes(7, 100));
        assert_ne!(random_bytes(7, 100), random_bytes(8, 100));
        assert_eq!(random_bytes(1, 13).len(), 13);
    }
}
