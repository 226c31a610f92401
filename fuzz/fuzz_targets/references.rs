//! Digests, repository names, tags and manifest references.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::names::{validate_name, validate_tag, Reference};
use storage::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Digest>() {
        // A valid digest prints as it was written.
        assert_eq!(d.to_string(), text);
    }
    if validate_name(text).is_ok() {
        assert!(text.len() <= 255 && !text.contains(".."));
    }
    if validate_tag(text).is_ok() {
        assert!(text.len() <= 128 && !text.contains(':'));
    }
    match Reference::parse(text) {
        Ok(r) => assert_eq!(r.to_string(), text),
        Err(e) => assert!(matches!(
            e.code,
            storage::ErrorCode::TagInvalid | storage::ErrorCode::DigestInvalid
        )),
    }
});
