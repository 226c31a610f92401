//! A reference or a name a client writes never becomes a path of the
//! upstream's: with a rule holding credentials for Debian's
//! `docker-registry`, references that walk paths (`..\..\v2\_catalog`,
//! escaped or not), absolute URLs, control characters and overlong tags
//! are answered by us, and the upstream's access log (read after a
//! barrier request that proves it is written up to date) shows none of
//! them.

use super::{cache_registry, eventually, raw_request};
use e2e::oci;
use e2e::upstream::CncfRegistry;

/// The registry's upstream requests carry this `User-Agent`.
const OUR_AGENT: &str = "registry-pull-through/";

#[test]
fn hostile_references_never_reach_the_upstream() {
    let upstream = CncfRegistry::start();
    let image = oci::simple_image("hostile references");
    upstream.http().push_image("lib/x", "1", &image);
    let (reg, _dir) = cache_registry(&format!(
        "[[cache]]\nprefix = \"hub\"\nupstream = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
        upstream.url(),
        e2e::upstream::USER,
        upstream.password
    ));
    let (tag_129, very_long) = ("a".repeat(129), "b".repeat(8000));
    let references = [
        r"..\..\..\..\v2\_catalog",
        r"..\..\..\..\debug\vars",
        r"..\..\..\..\v2\lib\x\manifests\1",
        "..%5C..%5C..%5C..%5Cv2%5C_catalog",
        "..%5c..%5c..%5c..%5cdebug%5cvars",
        "..%2F..%2F..%2F..%2Fv2%2F_catalog",
        "%2e%2e",
        "%2E%2E%2F%2E%2E%2Fv2%2F_catalog",
        "..",
        ".",
        "http:%2F%2F127.0.0.1:1%2Fv2%2F_catalog",
        "https%3A%2F%2Fevil.example%2Fv2%2F_catalog",
        "sha256:..%2F..%2Fdebug%2Fvars",
        "latest%00",
        "latest%0D%0AX-Injected:%201",
        "a%20b",
        tag_129.as_str(),
        very_long.as_str(),
    ];
    let mut answers = Vec::new();
    for r in references {
        for method in ["GET", "HEAD"] {
            let target = format!("/v2/hub/lib/x/manifests/{r}");
            answers.push((method, target.clone(), raw_request(&reg, method, &target)));
        }
    }
    // Refused by the router before the cache (the name, the digest), and
    // asserted here so a change there cannot open the way.
    let mut refused_early = Vec::new();
    for (target, code) in [
        (r"/v2/hub/..\..\v2\_catalog/x/manifests/1", "NAME_INVALID"),
        ("/v2/hub/lib%2F..%2F..%2Fv2/manifests/1", "NAME_INVALID"),
        (
            r"/v2/hub/lib/x/blobs/..\..\..\..\v2\_catalog",
            "DIGEST_INVALID",
        ),
        (
            "/v2/hub/lib/x/blobs/sha256:..%2F..%2Fdebug%2Fvars",
            "DIGEST_INVALID",
        ),
    ] {
        refused_early.push((target, code, raw_request(&reg, "GET", target)));
    }

    // The barrier: a well-formed reference does reach the upstream, and it
    // logs a request once it has answered it; every request we made before
    // was answered before this one was sent.
    let barrier = "barrier-after-hostile-references";
    let b = raw_request(&reg, "GET", &format!("/v2/hub/lib/x/manifests/{barrier}"));
    assert_eq!(b.status, 404, "{}{}", b.head, b.body);
    let barrier_path = format!("/v2/lib/x/manifests/{barrier}");
    eventually("the upstream to log the barrier request", || {
        upstream
            .access_log()
            .iter()
            .any(|(_, target, _, _)| *target == barrier_path)
    });
    let ours: Vec<_> = upstream
        .access_log()
        .into_iter()
        .filter(|(_, _, _, agent)| agent.starts_with(OUR_AGENT))
        .collect();
    let strays: Vec<_> = ours.iter().filter(|l| l.1 != barrier_path).collect();
    assert!(
        strays.is_empty(),
        "the upstream was sent requests for hostile references: {strays:#?}\nfull log:\n{}",
        upstream.log_text()
    );
    assert!(!ours.is_empty(), "the barrier was not ours: {ours:?}");

    // Each got the answer any repository gives a reference that can name
    // nothing: 404 MANIFEST_UNKNOWN (a HEAD without a body).
    for (method, target, a) in &answers {
        assert_eq!(
            a.status,
            404,
            "{method} {target}: {}{}",
            a.head,
            a.body.chars().take(500).collect::<String>()
        );
        if *method == "GET" {
            assert_eq!(a.codes(), ["MANIFEST_UNKNOWN"], "{method} {target}");
        }
    }
    for (target, code, a) in &refused_early {
        assert_eq!(a.status, 400, "GET {target}: {}{}", a.head, a.body);
        assert_eq!(a.codes(), [*code], "GET {target}");
    }
    // The rule works: a real pull through it.
    let got = reg.client().get_manifest("hub/lib/x", "1");
    assert_eq!(
        got.require_header("docker-content-digest"),
        image.manifest.digest
    );
}
