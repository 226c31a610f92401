//! `/v2` path routing and query/paging parsing on arbitrary input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::http::paging::{self, Page, Query};
use registry::routes::{self, Route};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    if let Some(route) = routes::parse(path) {
        // Whatever was recognised came out of the path, verbatim.
        let parts: Vec<&str> = match route {
            Route::Manifest { name, reference } => vec![name, reference],
            Route::Blob { name, digest } | Route::Referrers { name, digest } => vec![name, digest],
            Route::UploadStart { name } | Route::Tags { name } => vec![name],
            Route::Upload { name, id } => vec![name, id],
            Route::Catalog => vec![],
        };
        for p in parts {
            assert!(!p.is_empty() && path.contains(p));
        }
    }
    let q: Query = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    for rules in [paging::TAGS, paging::CATALOG, paging::BROWSE] {
        if let Ok(page) = Page::parse(&q, rules) {
            if let Some(n) = page.n {
                assert!(n <= rules.max);
                assert!(page.fetch().is_some_and(|f| f >= 1));
            }
            let items: Vec<u32> = (0..5).collect();
            let (kept, _) = page.split(items, |i| i.to_string());
            assert!(page.n.is_none_or(|n| kept.len() as u64 <= n));
        }
    }
});
