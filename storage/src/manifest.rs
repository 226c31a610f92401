//! Manifest parsing and validation: which media types we accept, and what a
//! manifest references (blobs that must exist, child manifests that must
//! exist, and the subject for the referrers API).

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// Everything the registry needs to know about a manifest besides its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// For the referrers API: `artifactType`, else the config media type.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// The manifest's own annotations, as JSON, for referrer descriptors.
    pub annotations: Option<serde_json::Value>,
    /// Config and layers that must be linked in the repository, with the
    /// size they claim (layers with foreign `urls` are excluded: their bytes
    /// live elsewhere).
    pub blobs: Vec<Described>,
    /// Manifests an index points at; they must exist in the repository,
    /// with the media type and size the index claims.
    pub children: Vec<Described>,
}

/// What a descriptor in a manifest claims about the content it points at.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Where in the manifest: `config`, `layers[2]`, `manifests[0]`.
    pub at: String,
}

impl Described {
    fn of(d: &Descriptor, at: String) -> Result<Described> {
        Ok(Described {
            digest: descriptor_digest(d)?,
            size: d.size(),
            media_type: d.media_type().to_string(),
            at,
        })
    }

    /// The descriptor points at stored content of `size` bytes and type
    /// `media_type` (when known): refuse a manifest that misdescribes it, or
    /// every client that pulls it fails.
    pub fn check(&self, size: u64, media_type: Option<&str>) -> Result<()> {
        if size != self.size {
            return Err(invalid(format!(
                "{} ({}) claims {} bytes; the stored content has {size}",
                self.at, self.digest, self.size
            ))
            .with_detail(serde_json::json!({
                "descriptor": self.at, "digest": self.digest.to_string(),
                "declared_size": self.size, "stored_size": size,
            })));
        }
        match media_type {
            Some(t) if t != self.media_type => Err(invalid(format!(
                "{} ({}) claims media type {}; the stored manifest is {t}",
                self.at, self.digest, self.media_type
            ))
            .with_detail(serde_json::json!({
                "descriptor": self.at, "digest": self.digest.to_string(),
                "declared_media_type": self.media_type, "stored_media_type": t,
            }))),
            _ => Ok(()),
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::ManifestInvalid, msg)
}

fn schema1() -> Error {
    invalid("Docker schema 1 manifests are not supported: push with a client that writes schema 2 or OCI")
}

/// The media type without parameters (`; charset=...`).
fn bare(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or("").trim()
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e: Error| invalid(format!("descriptor digest {}: {}", d.digest(), e.message)))
}

/// Parse a manifest pushed with `content_type` (the request header, if any).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest> {
    let probe: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let obj = probe
        .as_object()
        .ok_or_else(|| invalid("manifest must be a JSON object"))?;
    if obj.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err(schema1());
    }
    let body_type = obj.get("mediaType").and_then(|v| v.as_str());
    let header_type = content_type.map(bare).filter(|t| !t.is_empty());
    if let Some(h) = header_type {
        if DOCKER_SCHEMA1[..2].contains(&h) {
            return Err(schema1());
        }
    }
    let media_type = match (header_type, body_type) {
        (Some(h), Some(b)) if h != b && h != "application/json" => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )))
        }
        (_, Some(b)) => b.to_owned(),
        (Some(h), None) if h != "application/json" => h.to_owned(),
        // Neither says: OCI allows omitting mediaType, so infer from shape.
        _ if obj.contains_key("manifests") => OCI_INDEX.to_owned(),
        _ => OCI_MANIFEST.to_owned(),
    };
    if obj.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => parse_image(media_type, body),
        OCI_INDEX | DOCKER_LIST => parse_index(media_type, body),
        t if DOCKER_SCHEMA1.contains(&t) => Err(schema1()),
        t => Err(invalid(format!("unsupported manifest media type {t}"))),
    }
}

fn annotations_json(
    a: &Option<std::collections::HashMap<String, String>>,
) -> Option<serde_json::Value> {
    a.as_ref()
        .filter(|m| !m.is_empty())
        .map(|m| serde_json::to_value(m).expect("string map serializes"))
}

fn parse_image(media_type: String, body: &[u8]) -> Result<ParsedManifest> {
    let m: ImageManifest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("invalid image manifest: {e}")))?;
    let mut blobs = vec![Described::of(m.config(), "config".into())?];
    for (i, layer) in m.layers().iter().enumerate() {
        let foreign = layer.urls().as_ref().is_some_and(|u| !u.is_empty());
        if !foreign {
            blobs.push(Described::of(layer, format!("layers[{i}]"))?);
        }
    }
    let artifact_type = m
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .or_else(|| Some(m.config().media_type().to_string()));
    Ok(ParsedManifest {
        media_type,
        artifact_type,
        subject: m.subject().as_ref().map(descriptor_digest).transpose()?,
        annotations: annotations_json(m.annotations()),
        blobs,
        children: Vec::new(),
    })
}

fn parse_index(media_type: String, body: &[u8]) -> Result<ParsedManifest> {
    let idx: ImageIndex =
        serde_json::from_slice(body).map_err(|e| invalid(format!("invalid image index: {e}")))?;
    let children = idx
        .manifests()
        .iter()
        .enumerate()
        .map(|(i, d)| Described::of(d, format!("manifests[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(ParsedManifest {
        media_type,
        artifact_type: idx.artifact_type().as_ref().map(|t| t.to_string()),
        subject: idx.subject().as_ref().map(descriptor_digest).transpose()?,
        annotations: annotations_json(idx.annotations()),
        blobs: Vec::new(),
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":1}},
                      {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":1,"urls":["https://example.invalid/x"]}}]{extra}}}"#,
            "a".repeat(64),
            "b".repeat(64)
        )
    }

    #[test]
    fn image_references_and_foreign_layers() {
        let p = parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(p.blobs.len(), 2, "foreign layer excluded");
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(p.subject.is_none());
    }

    #[test]
    fn subject_and_artifact_type() {
        let extra = format!(
            r#","artifactType":"application/x.sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{CFG}","size":9}},"annotations":{{"k":"v"}}"#
        );
        let p = parse(None, image(&extra).as_bytes()).unwrap();
        assert_eq!(p.subject.unwrap().to_string(), CFG);
        assert_eq!(p.artifact_type.as_deref(), Some("application/x.sig"));
        assert_eq!(p.annotations.unwrap()["k"], "v");
    }

    #[test]
    fn rejects_bad_input() {
        let e = parse(Some(OCI_MANIFEST), b"{not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestInvalid);
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(parse(Some(DOCKER_SCHEMA1[1]), s1)
            .unwrap_err()
            .message
            .contains("schema 1"));
        assert!(parse(None, s1).unwrap_err().message.contains("schema 1"));
        let e = parse(Some(DOCKER_MANIFEST), image("").as_bytes()).unwrap_err();
        assert!(e.message.contains("does not match"));
        let e = parse(Some(OCI_MANIFEST), br#"{"schemaVersion":2,"config":{}}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestInvalid);
    }

    #[test]
    fn index_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{CFG}","size":3,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
        );
        let p = parse(Some(DOCKER_LIST), body.as_bytes()).unwrap();
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.children[0].media_type, DOCKER_MANIFEST);
        assert_eq!(p.children[0].at, "manifests[0]");
        assert!(p.blobs.is_empty());
    }

    #[test]
    fn descriptors_must_match_stored_content() {
        let p = parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        let layer = &p.blobs[1];
        assert_eq!((layer.at.as_str(), layer.size), ("layers[0]", 1));
        assert!(layer.check(1, None).is_ok());
        let e = layer.check(2 << 20, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestInvalid);
        assert!(e.message.contains("layers[0]"), "{}", e.message);
        assert_eq!(e.detail.unwrap()["stored_size"], 2 << 20);
        let e = p.blobs[0].check(2, Some(DOCKER_MANIFEST)).unwrap_err();
        assert!(e.message.contains("media type"), "{}", e.message);
        let negative = image("").replace(r#""size":2}"#, r#""size":-2}"#);
        assert!(parse(None, negative.as_bytes()).is_err());
    }
}
