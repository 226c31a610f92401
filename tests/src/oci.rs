//! Generating small, real OCI images without external tools: ustar archives,
//! gzip (stored deflate blocks), image configs, manifests, indexes and OCI
//! image layouts.

use std::path::Path;

use serde_json::{json, Value};

use crate::sha256_digest;

pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MT_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MT_DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Accept header value covering every manifest type we push.
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Some content with its digest and media type.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data,
        }
    }

    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// OCI descriptor for this blob.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.data.len(),
        })
    }

    /// Hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// A compressed layer and the digest of its uncompressed tar (the diff ID).
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
}

/// One entry of a tar archive.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, u32, &'a [u8]),
}

/// A single-platform image: config, layers and the manifest over them.
#[derive(Debug, Clone)]
pub struct Image {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub config: Blob,
    pub layers: Vec<Layer>,
    pub manifest: Blob,
}

impl Image {
    /// Config and layer blobs (everything a manifest references).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.config];
        v.extend(self.layers.iter().map(|l| &l.blob));
        v
    }

    pub fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": self.os});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

/// An image index over several single-platform images.
#[derive(Debug, Clone)]
pub struct MultiImage {
    pub images: Vec<Image>,
    pub index: Blob,
}

impl MultiImage {
    pub fn image(&self, architecture: &str) -> &Image {
        self.images
            .iter()
            .find(|i| i.architecture == architecture)
            .unwrap_or_else(|| panic!("no {architecture} image"))
    }
}

fn octal(field: &mut [u8], value: u64) {
    // NUL-terminated, zero-padded octal.
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    assert!(s.len() <= width, "value {value} too large for tar field");
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

pub fn tar_header(name: &str, mode: u32, size: u64, typeflag: u8) -> [u8; 512] {
    assert!(name.len() < 100, "tar name too long: {name}");
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000); // mtime (fixed: reproducible)
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // Checksum: computed with the checksum field set to spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// A ustar archive of `entries` (all owned by root, fixed mtime).
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Dir(name) => {
                let name = if name.ends_with('/') {
                    name.to_string()
                } else {
                    format!("{name}/")
                };
                out.extend_from_slice(&tar_header(&name, 0o755, 0, b'5'));
            }
            Entry::File(name, mode, data) => {
                out.extend_from_slice(&tar_header(name, *mode, data.len() as u64, b'0'));
                out.extend_from_slice(data);
                let pad = (512 - data.len() % 512) % 512;
                out.extend(std::iter::repeat_n(0u8, pad));
            }
        }
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

/// gzip `data` using uncompressed ("stored") deflate blocks. Valid gzip that
/// every decompressor accepts, and byte-for-byte reproducible.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A gzip'd tar layer of `entries`.
pub fn layer(entries: &[Entry]) -> Layer {
    let t = tar(entries);
    Layer {
        diff_id: sha256_digest(&t),
        blob: Blob::new(MT_OCI_LAYER_GZIP, gzip(&t)),
    }
}

/// A layer holding a single text file (handy for unique content).
pub fn text_layer(path: &str, content: &str) -> Layer {
    layer(&[Entry::File(path, 0o644, content.as_bytes())])
}

/// Build an OCI image for `os/architecture[/variant]` from `layers`.
pub fn image(os: &str, architecture: &str, variant: Option<&str>, layers: Vec<Layer>) -> Image {
    let mut config = json!({
        "architecture": architecture,
        "os": os,
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["/bin/sh"],
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers
            .iter()
            .map(|l| json!({"created_by": format!("e2e layer {}", l.blob.digest)}))
            .collect::<Vec<_>>(),
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config = Blob::new(MT_OCI_CONFIG, serde_json::to_vec(&config).expect("json"));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
    });
    let manifest = Blob::new(
        MT_OCI_MANIFEST,
        serde_json::to_vec_pretty(&manifest).expect("json"),
    );
    Image {
        os: os.to_string(),
        architecture: architecture.to_string(),
        variant: variant.map(str::to_string),
        config,
        layers,
        manifest,
    }
}

/// An OCI image index over `images`.
pub fn index(images: Vec<Image>) -> MultiImage {
    let manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut d = i.manifest.descriptor();
            d["platform"] = i.platform();
            d
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": manifests,
    });
    MultiImage {
        images,
        index: Blob::new(
            MT_OCI_INDEX,
            serde_json::to_vec_pretty(&index).expect("json"),
        ),
    }
}

/// A two-platform image (linux/amd64 and linux/arm64/v8) sharing one layer,
/// each with a platform-specific layer whose content includes `salt`.
pub fn two_platform_image(salt: &str) -> MultiImage {
    let common = layer(&[
        Entry::Dir("etc"),
        Entry::File("etc/e2e-common", 0o644, salt.as_bytes()),
    ]);
    let amd64 = image(
        "linux",
        "amd64",
        None,
        vec![
            common.clone(),
            text_layer("platform", &format!("amd64 {salt}\n")),
        ],
    );
    let arm64 = image(
        "linux",
        "arm64",
        Some("v8"),
        vec![common, text_layer("platform", &format!("arm64 {salt}\n"))],
    );
    index(vec![amd64, arm64])
}

/// A single-platform linux/amd64 image with two layers containing `salt`.
pub fn simple_image(salt: &str) -> Image {
    image(
        "linux",
        "amd64",
        None,
        vec![
            layer(&[
                Entry::Dir("data"),
                Entry::File("data/one.txt", 0o644, format!("one {salt}\n").as_bytes()),
            ]),
            text_layer("two.txt", &format!("two {salt}\n")),
        ],
    )
}

fn write_blob(dir: &Path, blob: &Blob) {
    let p = dir.join("blobs/sha256").join(blob.hex());
    std::fs::write(p, &blob.data).expect("write layout blob");
}

/// Write an OCI image layout at `dir` holding `multi` under tag `tag`.
pub fn write_layout(dir: &Path, tag: &str, multi: &MultiImage) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout dirs");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    for img in &multi.images {
        for b in img.blobs() {
            write_blob(dir, b);
        }
        write_blob(dir, &img.manifest);
    }
    write_blob(dir, &multi.index);
    let mut desc = multi.index.descriptor();
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let top = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [desc],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec_pretty(&top).expect("json"),
    )
    .expect("write index.json");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn tar_and_gzip_round_trip_with_system_tools() {
        // Only checks structure when the tools exist; the e2e tests exercise
        // them with real clients.
        let l = layer(&[
            Entry::Dir("d"),
            Entry::File("d/f.txt", 0o644, b"hello\n"),
            Entry::File("big", 0o600, &vec![7u8; 70_000]),
        ]);
        assert_eq!(l.blob.data[..2], [0x1f, 0x8b]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.tar.gz");
        std::fs::write(&p, &l.blob.data).unwrap();
        if Path::new("/bin/tar").exists() {
            let out = std::process::Command::new("tar")
                .arg("-tzvf")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(listing.contains("d/f.txt"), "{listing}");
            assert!(listing.contains("70000"), "{listing}");
        }
    }
}
