//! What clients and credentials may trust: a blob whose bytes fail their
//! digest ends every transfer in an error, over HTTP/1.1 and HTTP/2 (curl,
//! with its exit status: never a clean end), and nothing is stored; a
//! token realm on plain http is never sent the rule's credentials.

use super::{cache_registry, eventually, noise, stored_nothing};
use e2e::upstream::fake::{FakeUpstream, Gate, Part, Reply, Request};
use std::process::{Command, Stdio};

const MIB: usize = 1 << 20;

#[test]
fn bytes_failing_their_digest_end_every_transfer_in_an_error() {
    // Large, and read slowly by the clients, so that each is still being
    // sent the blob when the fetch finds the digest wrong.
    const N: usize = 16 * MIB;
    let real = noise("the real blob", N);
    let digest = e2e::sha256_digest(&real);
    let wrong = noise("other bytes of the same length", N);
    let path = format!("/v2/lib/a/blobs/{digest}");
    let gate = Gate::default();
    let up = {
        let (path, gate) = (path.clone(), gate.clone());
        FakeUpstream::start(move |r: &Request| {
            if r.target != path {
                return Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#);
            }
            let mut reply = Reply::bytes(Vec::new());
            reply.declared = Some(N as u64);
            reply.parts = vec![
                Part::Bytes(wrong[..MIB].to_vec()),
                Part::Wait(gate.clone()),
                Part::Bytes(wrong[MIB..].to_vec()),
            ];
            reply
        })
    };
    let (reg, cfg) = cache_registry(&format!(
        "[[cache]]\nprefix = \"up\"\nupstream = \"{}\"\n",
        up.url()
    ));
    let url = format!("{}/v2/up/lib/a/blobs/{digest}", reg.url());
    let mut clients = Vec::new();
    for (i, proto) in ["--http1.1", "--http2-prior-knowledge"]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let out = cfg.path().join(format!("client-{i}"));
        let child = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", proto])
            .args(["--limit-rate", "2M", "--max-time", "120"])
            .args(["--write-out", "%{http_version} %{http_code}"])
            .arg("--output")
            .arg(&out)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl");
        clients.push((proto, out, child));
    }
    // Every client has had the answer's head and its first bytes.
    eventually("every client to be receiving the blob", || {
        clients
            .iter()
            .all(|(_, out, _)| std::fs::metadata(out).is_ok_and(|m| m.len() > 0))
    });
    assert_eq!(up.seen_at(&path).len(), 1, "{:?}", up.seen());
    gate.open();
    for (proto, out, child) in clients {
        let done = child.wait_with_output().expect("curl");
        let said = String::from_utf8_lossy(&done.stdout).into_owned();
        let got = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "curl {proto}: {said}, {got} bytes, {} {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        );
        assert!(
            !done.status.success(),
            "curl {proto} took bad bytes as the blob: {} bytes, clean end ({said}; {})",
            got,
            String::from_utf8_lossy(&done.stderr)
        );
        // curl's word for it: 18, "transfer closed with N bytes remaining"
        // (or 56, a reset) on HTTP/1.1; 92, the stream reset, on HTTP/2.
        let (version, codes) = if *proto == "--http1.1" {
            ("1.1", [18, 56])
        } else {
            ("2", [92, 92])
        };
        assert!(
            done.status.code().is_some_and(|c| codes.contains(&c)),
            "curl {proto} ended with {} ({})",
            done.status,
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            said.starts_with(&format!("{version} 200")),
            "curl {proto}: {said}"
        );
        assert!(got < N as u64, "curl {proto} received all {got} bytes");
    }
    stored_nothing(&reg, &reg.data_dir().join("pull-through"), &[&digest]);
}

#[test]
fn an_http_token_realm_never_gets_the_rule_credentials() {
    let realm = FakeUpstream::start(|_: &Request| Reply::json(200, r#"{"token":"t0k3n"}"#));
    let challenge = format!(
        "Bearer realm=\"{}/token\",service=\"upstream\"",
        realm.url()
    );
    let up = FakeUpstream::start(move |r: &Request| {
        if r.header("authorization") == Some("Bearer t0k3n") {
            Reply::json(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}"#,
            )
        } else {
            Reply::json(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}"#,
            )
            .header("WWW-Authenticate", &challenge)
        }
    });
    let rule = |prefix: &str, extra: &str| {
        format!(
            "[[cache]]\nprefix = \"{prefix}\"\nupstream = \"{}\"\nusername = \"mirror\"\n\
             password = \"s3cret-of-the-rule\"\n{extra}",
            up.url()
        )
    };
    // Without the option: refused, clearly, and the realm is never asked.
    let (reg, _cfg) = cache_registry(&rule("up", ""));
    let r = reg.client().get("/v2/up/lib/a/manifests/1");
    assert!(
        !up.seen().is_empty(),
        "the upstream was never asked: the test proves nothing"
    );
    assert!(
        realm.seen().is_empty(),
        "the http realm was sent a request (credentials: {:?})",
        realm
            .seen()
            .iter()
            .map(|s| s.request.header("authorization").map(str::to_owned))
            .collect::<Vec<_>>()
    );
    r.expect_error(&[403], &["DENIED"]);
    assert!(
        r.text().contains("allow_insecure_realm") && r.text().contains(&realm.url()),
        "{}",
        r.text()
    );
    // A rule without credentials has nothing to leak: anonymous tokens.
    let (anon, _cfg2) = cache_registry(&format!(
        "[[cache]]\nprefix = \"anon\"\nupstream = \"{}\"\n",
        up.url()
    ));
    anon.client()
        .get("/v2/anon/lib/a/manifests/1")
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    let asked = realm.seen();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].request.header("authorization"), None);
    // With the option, the credentials go (so the refusal above was the
    // check's doing, not the setup's).
    let (allowed, _cfg3) = cache_registry(&rule("up", "allow_insecure_realm = true\n"));
    allowed
        .client()
        .get("/v2/up/lib/a/manifests/1")
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    eventually("the realm to be asked with credentials", || {
        realm.seen().iter().any(|s| {
            s.request
                .header("authorization")
                .is_some_and(|a| a.starts_with("Basic "))
        })
    });
}
