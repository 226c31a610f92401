//! Manifest and index parsing and descriptor validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::manifest::{self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

const TYPES: [Option<&str>; 7] = [
    None,
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST),
    Some(DOCKER_LIST),
    Some("application/json"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[selector as usize % TYPES.len()];
    if let Ok(parsed) = manifest::parse(content_type, body) {
        for d in parsed.blobs.iter().chain(&parsed.children) {
            assert!(d.check(d.size, Some(&d.media_type)).is_ok());
            let _ = d.check(d.size.wrapping_add(1), None);
        }
    }
});
