//! What a pull-through fetch may cost: an upstream of the tests' own lies
//! about sizes (declares N and sends more, declares N and sends less,
//! sends no length and never ends, or honestly declares too much) and is
//! cut off with nothing stored and the spool emptied; upstream fetches at
//! once are capped; the spool's filesystem keeps a free-space floor.

use super::{cache_registry, eventually, get_blob, noise, stored_nothing, Outcome};
use e2e::upstream::fake::{FakeUpstream, Gate, Part, Reply, Request, FOREVER_CAP};
use std::sync::atomic::Ordering;

const MIB: usize = 1 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The upstream's answer to `/v2/<name>/blobs/<digest>`: a blob whose
/// bytes are `data`, framed by `reply`.
fn blob_path(name: &str, data: &[u8]) -> (String, String) {
    let digest = e2e::sha256_digest(data);
    (format!("/v2/{name}/blobs/{digest}"), digest)
}

#[test]
fn lying_upstreams_are_cut_off_and_nothing_is_stored() {
    // The true blobs; what the upstream sends for each differs.
    let (more, less, endless, huge, honest) = (
        noise("declares less than it sends", 3 * MIB),
        noise("sends less than it declares", 3 * MIB),
        noise("never ends", 3 * MIB),
        noise("honestly too large", 64 * MIB),
        noise("honest", MIB),
    );
    let (more_path, more_d) = blob_path("lib/more", &more);
    let (less_path, less_d) = blob_path("lib/less", &less);
    let (endless_path, endless_d) = blob_path("lib/endless", &endless);
    let (huge_path, huge_d) = blob_path("lib/huge", &huge);
    let (honest_path, honest_d) = blob_path("lib/honest", &honest);
    // A manifest whose layer says it is 5 GiB: refused before any fetch.
    let config = b"{}".to_vec();
    let big_manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": e2e::sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": e2e::sha256_digest(b"five gibibytes"), "size": 5u64 << 30}],
    })
    .to_string();
    let big_manifest_digest = e2e::sha256_digest(big_manifest.as_bytes());
    let up = {
        let (more, less, huge, honest) = (more.clone(), less.clone(), huge.clone(), honest.clone());
        let (more_path, less_path, endless_path, huge_path, honest_path) = (
            more_path.clone(),
            less_path.clone(),
            endless_path.clone(),
            huge_path.clone(),
            honest_path.clone(),
        );
        FakeUpstream::start(move |r: &Request| {
            let t = r.target.as_str();
            if t == more_path {
                // Declares 1 MiB, sends all 3.
                let mut reply = Reply::bytes(more.clone());
                reply.declared = Some(MIB as u64);
                reply
            } else if t == less_path {
                // Declares 3 MiB, sends 1 and hangs up.
                let mut reply = Reply::bytes(less[..MIB].to_vec());
                reply.declared = Some(less.len() as u64);
                reply
            } else if t == endless_path {
                Reply {
                    status: 200,
                    headers: vec![],
                    declared: None,
                    parts: vec![],
                    forever: true,
                }
            } else if t == huge_path {
                Reply::bytes(huge.clone())
            } else if t == honest_path {
                Reply::bytes(honest.clone())
            } else if t == "/v2/lib/big/manifests/1" {
                Reply::json(200, &big_manifest)
                    .header("Content-Type", OCI_MANIFEST)
                    .header("Docker-Content-Digest", &big_manifest_digest)
            } else {
                Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#)
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (reg, _cfg) = cache_registry(&format!(
        "[pull_through]\nspool_dir = \"{}\"\n\n\
         [[cache]]\nprefix = \"up\"\nupstream = \"{}\"\nmax_blob_bytes = {}\n",
        spool.display(),
        up.url(),
        4 * MIB
    ));

    // An honest blob under the limit is fetched and stored: the rule works.
    match get_blob(&reg, "up/lib/honest", &honest_d) {
        Outcome::Whole(b) => assert!(b == honest, "the honest blob came back changed"),
        other => panic!("the honest blob was not served: {other:?}"),
    }

    // Each lie ends in an error the client cannot take for the blob.
    let mut taken = Vec::new();
    for (repo, digest) in [
        ("up/lib/more", &more_d),
        ("up/lib/less", &less_d),
        ("up/lib/endless", &endless_d),
        ("up/lib/huge", &huge_d),
    ] {
        match get_blob(&reg, repo, digest) {
            Outcome::Refused(status, codes, body) => assert!(
                matches!(status, 403 | 503) && !codes.is_empty(),
                "{repo}: {status} {body}"
            ),
            Outcome::Cut(_) => {}
            whole => taken.push(format!("{repo}: {whole:?}")),
        }
    }
    assert!(
        taken.is_empty(),
        "lying upstreams' answers were served as complete: {taken:#?}"
    );
    // The endless body was cut off: the registry hung up after about the
    // limit (what the sockets' buffers held besides), not at the cap.
    let endless_seen = up.seen_at(&endless_path);
    assert_eq!(endless_seen.len(), 1, "{endless_seen:?}");
    let e = &endless_seen[0];
    eventually("the registry to hang up on the endless body", || {
        e.over.load(Ordering::SeqCst)
    });
    let sent = e.sent.load(Ordering::SeqCst);
    assert!(
        e.peer_gone.load(Ordering::SeqCst) && sent < 32 * MIB as u64 && sent < FOREVER_CAP,
        "the endless body was read on to {sent} bytes (limit 4 MiB)"
    );
    // Too large by its own Content-Length: refused before its body was read.
    match get_blob(&reg, "up/lib/huge", &huge_d) {
        Outcome::Refused(403, codes, body) => {
            assert_eq!(codes, ["DENIED"], "{body}");
            assert!(body.contains("max_blob_bytes"), "{body}");
        }
        other => panic!("a blob over max_blob_bytes was not refused: {other:?}"),
    }
    for h in up.seen_at(&huge_path) {
        eventually("the huge answer to end", || h.over.load(Ordering::SeqCst));
        let sent = h.sent.load(Ordering::SeqCst);
        assert!(
            sent < 32 * MIB as u64,
            "{sent} bytes of the huge blob were read"
        );
    }
    // A manifest naming a layer over the limit: refused, nothing fetched.
    let r = reg.client().get("/v2/up/lib/big/manifests/1");
    r.expect_error(&[403], &["DENIED"]);
    assert!(r.text().contains("max_blob_bytes"), "{}", r.text());

    stored_nothing(&reg, &spool, &[&more_d, &less_d, &endless_d, &huge_d]);
}

#[test]
fn upstream_fetches_are_capped_per_node() {
    let (held, other) = (noise("held at the gate", 4 * MIB), noise("the other", MIB));
    let (held_path, held_d) = blob_path("lib/a", &held);
    let (other_path, other_d) = blob_path("lib/a", &other);
    let gate = Gate::default();
    let up = {
        let (held, other, gate) = (held.clone(), other.clone(), gate.clone());
        let (held_path, other_path) = (held_path.clone(), other_path.clone());
        FakeUpstream::start(move |r: &Request| {
            if r.target == held_path {
                let mut reply = Reply::bytes(Vec::new());
                reply.declared = Some(held.len() as u64);
                reply.parts = vec![
                    Part::Bytes(held[..MIB].to_vec()),
                    Part::Wait(gate.clone()),
                    Part::Bytes(held[MIB..].to_vec()),
                ];
                reply
            } else if r.target == other_path {
                Reply::bytes(other.clone())
            } else {
                Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#)
            }
        })
    };
    let (reg, dir) = cache_registry(&format!(
        "[pull_through]\nmax_fetches = 1\n\n[[cache]]\nprefix = \"up\"\nupstream = \"{}\"\n",
        up.url()
    ));
    // The one fetch allowed: held at the gate.
    let first = {
        let (reg_url, d) = (reg.url(), held_d.clone());
        std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .get(format!("{reg_url}/v2/up/lib/a/blobs/{d}"))
                .timeout(std::time::Duration::from_secs(120))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .map(|b| b.to_vec())
        })
    };
    eventually("the held fetch to start", || {
        up.seen_at(&held_path)
            .first()
            .is_some_and(|s| s.sent.load(Ordering::SeqCst) >= MIB as u64)
    });
    // Another blob, and a manifest, need fetches of their own: refused now.
    let c = reg.client();
    let refused = c.get(&format!("/v2/up/lib/a/blobs/{other_d}"));
    refused.expect_error(&[503], &["UNAVAILABLE"]);
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert!(refused.text().contains("max_fetches"), "{}", refused.text());
    c.get("/v2/up/lib/a/manifests/v1")
        .expect_error(&[503], &["UNAVAILABLE"]);
    assert!(
        up.seen_at(&other_path).is_empty() && up.seen_at("/v2/lib/a/manifests").is_empty(),
        "a refused fetch reached the upstream: {:?}",
        up.seen()
    );
    // A client of the same blob joins the fetch in flight: no new fetch.
    let joined = {
        let (reg_url, d) = (reg.url(), held_d.clone());
        std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .get(format!("{reg_url}/v2/up/lib/a/blobs/{d}"))
                .timeout(std::time::Duration::from_secs(120))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .map(|b| b.to_vec())
        })
    };
    eventually("the second client to join the fetch", || {
        metric_has(&reg, "result=\"joined\"")
    });
    gate.open();
    for t in [first, joined] {
        let got = t.join().unwrap().expect("the held blob");
        assert!(got == held, "the held blob came back changed");
    }
    assert_eq!(up.seen_at(&held_path).len(), 1, "{:?}", up.seen());
    // The slot is free again.
    eventually(
        "the fetch slot to be free",
        || matches!(get_blob(&reg, "up/lib/a", &other_d), Outcome::Whole(b) if b == other),
    );
    drop(dir);
}

#[test]
fn the_spool_keeps_a_free_space_floor() {
    let data = noise("under the floor", MIB);
    let (path, digest) = blob_path("lib/a", &data);
    let up = {
        let (data, path) = (data.clone(), path.clone());
        FakeUpstream::start(move |r: &Request| {
            if r.target == path {
                Reply::bytes(data.clone())
            } else {
                Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#)
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // A floor no disk here can keep (1 PiB free).
    let (reg, _cfg) = cache_registry(&format!(
        "[pull_through]\nspool_dir = \"{}\"\nspool_min_free_bytes = {}\n\n\
         [[cache]]\nprefix = \"up\"\nupstream = \"{}\"\n",
        spool.display(),
        1u64 << 50,
        up.url()
    ));
    match get_blob(&reg, "up/lib/a", &digest) {
        Outcome::Refused(503, codes, body) => {
            assert_eq!(codes, ["UNAVAILABLE"], "{body}");
            assert!(
                body.contains(&spool.display().to_string()) && body.contains("spool_min_free"),
                "the refusal names neither the spool directory nor the floor: {body}"
            );
        }
        other => panic!("a fetch under the free-space floor was not refused: {other:?}"),
    }
    assert!(
        up.seen_at(&path).is_empty(),
        "the upstream was asked: {:?}",
        up.seen()
    );
    stored_nothing(&reg, &spool, &[&digest]);
}

/// `/metrics` holds a line of `registry_pullthrough_requests_total`
/// containing `needle`.
fn metric_has(reg: &e2e::Registry, needle: &str) -> bool {
    reg.client()
        .get("/metrics")
        .text()
        .lines()
        .any(|l| l.starts_with("registry_pullthrough_requests_total") && l.contains(needle))
}
