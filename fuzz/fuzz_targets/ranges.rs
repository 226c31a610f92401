//! `Range` (blob reads) and `Content-Range` (upload chunks) headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::api::v2::blobs::parse_range;
use registry::api::v2::uploads::parse_content_range;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap());
    let Ok(value) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let Ok(Some(r)) = parse_range(value, size) {
        // A satisfiable range lies inside the blob and is not empty.
        assert!(
            r.start < r.end && r.end <= size,
            "{value:?} of {size}: {r:?}"
        );
    }
    if let Some((start, len)) = parse_content_range(value) {
        assert!(len >= 1);
        assert!(start.checked_add(len - 1).is_some());
    }
});
