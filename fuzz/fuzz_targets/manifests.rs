//! Manifest and index parsing and descriptor validation: whatever parses,
//! each descriptor it reports is the one at its place in the JSON (digest,
//! size, media type), none is left out but foreign layers, and a descriptor
//! refuses content of another size or media type.
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

/// The JSON value at a descriptor's place: `config`, `layers[2]`,
/// `manifests[0]`.
fn at<'a>(doc: &'a serde_json::Value, place: &str) -> &'a serde_json::Value {
    match place.split_once('[') {
        None => &doc[place],
        Some((list, i)) => {
            let i: usize = i.trim_end_matches(']').parse().expect("an index");
            &doc[list][i]
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[selector as usize % TYPES.len()];
    let Ok(parsed) = manifest::parse(content_type, body) else {
        return;
    };
    let doc: serde_json::Value = serde_json::from_slice(body).expect("it parsed as JSON");
    for d in parsed.blobs.iter().chain(&parsed.children) {
        let raw = at(&doc, &d.at);
        assert_eq!(raw["digest"].as_str(), Some(d.digest.to_string().as_str()), "{}", d.at);
        assert_eq!(raw["size"].as_u64(), Some(d.size), "{}", d.at);
        assert_eq!(raw["mediaType"].as_str(), Some(d.media_type.as_str()), "{}", d.at);
        // What it says holds; another size or media type is refused.
        assert!(d.check(d.size, Some(&d.media_type)).is_ok());
        assert!(d.check(d.size.wrapping_add(1), None).is_err(), "{}", d.at);
        let other = format!("{}+other", d.media_type);
        assert!(d.check(d.size, Some(&other)).is_err(), "{}", d.at);
    }
    // None left out: the config and every layer without foreign `urls`, or
    // every entry of `manifests`.
    let foreign = |l: &serde_json::Value| l["urls"].as_array().is_some_and(|u| !u.is_empty());
    let (layers, manifests) = (doc["layers"].as_array(), doc["manifests"].as_array());
    if matches!(parsed.media_type.as_str(), OCI_INDEX | DOCKER_LIST) {
        assert!(parsed.blobs.is_empty());
        assert_eq!(parsed.children.len(), manifests.map_or(0, Vec::len));
    } else {
        let local = layers.map_or(0, |l| l.iter().filter(|l| !foreign(l)).count());
        assert_eq!(parsed.blobs.len(), 1 + local, "config and local layers");
        assert!(parsed.children.is_empty());
    }
});
