//! Issue 9's attack list against the registry with token auth on: each
//! attack its own test, each refused with 401/403, and nothing changed
//! afterwards (tags, manifests, blobs, upload sessions as they were).
//!
//! Forged tokens are signed here, with the registry's own key read from its
//! data directory (so only the attacked property is wrong) or with a
//! stranger's key. Each such test first shows that the same claims, signed
//! properly, are accepted: a refusal then proves the check, not a broken
//! forgery. Every test ends (on drop of the registry) with the log check:
//! no password, secret or token the test handled is in the registry's log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::auth::{
    assemble, b64url_json, claims, hs256, jwt_part, now, Account, AuthRegistry, Forge, Http,
};
use e2e::http::{with_query, Resp};
use e2e::oci::{self, Image};
use serde_json::{json, Value};

/// alice and bob own their namespaces; `public/**` is anonymous pull; the
/// catalog is open to anonymous callers (filtered), so that what it shows
/// them is tested too.
const CONFIG: &str = r#"
[access]
public = ["public/**"]
anonymous_catalog = true
"#;

/// A registry with an admin, alice and bob, each with an image:
/// `alice/app:v1`, `bob/secret:v1` (which alice must never see) and
/// `public/base:v1`.
struct World {
    reg: AuthRegistry,
    admin: Account,
    alice: Account,
    bob: Account,
    alice_app: Image,
    bob_secret: Image,
    public: Image,
}

fn world() -> World {
    let reg = AuthRegistry::start(CONFIG);
    let admin = reg.add_user("admin", &["--admin"]);
    let alice = reg.add_user("alice", &[]);
    let bob = reg.add_user("bob", &[]);
    let alice_app = oci::simple_image("alice app");
    let bob_secret = oci::simple_image("bob's secret");
    let public = oci::simple_image("public base");
    reg.basic(&alice).push_image("alice/app", "v1", &alice_app);
    reg.basic(&bob).push_image("bob/secret", "v1", &bob_secret);
    reg.basic(&admin).push_image("public/base", "v1", &public);
    World {
        reg,
        admin,
        alice,
        bob,
        alice_app,
        bob_secret,
        public,
    }
}

/// Content of a repository as the admin sees it: tags and the digest each
/// points to.
fn snapshot(w: &World, repo: &str) -> Vec<(String, String)> {
    let admin = w.reg.basic_elsewhere(&w.admin);
    let r = admin.get(&format!("/v2/{repo}/tags/list"));
    if r.status == 404 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "tags of {repo}:\n{}", r.describe());
    let v: Value = serde_json::from_slice(&r.body).expect("tags JSON");
    let mut out = Vec::new();
    for t in v["tags"].as_array().cloned().unwrap_or_default() {
        let t = t.as_str().expect("tag").to_string();
        let m = admin.get_manifest(repo, &t);
        assert_eq!(m.status, 200, "{}", m.describe());
        out.push((t, m.require_header("docker-content-digest")));
    }
    out
}

/// Everything as the world was made: three repositories, one tag each, on
/// the manifests pushed, every blob in place, no upload session left.
fn assert_unchanged(w: &World) {
    let admin = w.reg.basic_elsewhere(&w.admin);
    let mut catalog = admin.catalog();
    catalog.sort();
    assert_eq!(
        catalog,
        ["alice/app", "bob/secret", "public/base"],
        "repositories changed"
    );
    for (repo, img) in [
        ("alice/app", &w.alice_app),
        ("bob/secret", &w.bob_secret),
        ("public/base", &w.public),
    ] {
        assert_eq!(
            snapshot(w, repo),
            [("v1".to_string(), img.manifest.digest.clone())],
            "tags of {repo} changed"
        );
        for b in img.blobs() {
            let r = admin.head(&format!("/v2/{repo}/blobs/{}", b.digest));
            assert_eq!(r.status, 200, "blob of {repo} gone:\n{}", r.describe());
        }
    }
    assert_no_upload_session(w);
}

/// No upload session on disk (a refused POST must not open one).
fn assert_no_upload_session(w: &World) {
    let dir = w.reg.data_dir().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "upload sessions were opened: {left:?}");
}

/// A 401 `UNAUTHORIZED` with a Bearer challenge.
fn assert_401(r: &Resp) {
    r.expect_error(&[401], &["UNAUTHORIZED"]);
    let c = r.require_header("www-authenticate");
    assert!(c.starts_with("Bearer realm="), "challenge: {c}");
}

/// A 403 `DENIED`.
fn assert_403(r: &Resp) {
    r.expect_error(&[403], &["DENIED"]);
}

/// The claims alice would love to have: everything on bob's repository.
fn greedy(sub: &str) -> Value {
    claims(sub, &[("bob/secret", "pull,push,delete")])
}

/// The forged `token` gets nowhere: bob's manifest and blobs, a push, an
/// upload, a delete, even `/v2/`, all 401; nothing changed.
fn assert_token_refused(w: &World, token: &str) {
    let http = w.reg.bearer(token);
    let bob = &w.bob_secret;
    assert_401(&http.get("/v2/"));
    assert_401(&http.get_manifest("bob/secret", "v1"));
    assert_401(&http.get(&format!(
        "/v2/bob/secret/blobs/{}",
        bob.layers[0].blob.digest
    )));
    assert_401(&http.get("/v2/bob/secret/tags/list"));
    assert_401(&http.post("/v2/bob/secret/blobs/uploads/"));
    assert_401(&http.put_manifest("bob/secret", "v1", &w.alice_app.manifest));
    assert_401(&http.put_manifest("bob/secret", "planted", &bob.manifest));
    assert_401(&http.delete(&format!("/v2/bob/secret/manifests/{}", bob.manifest.digest)));
    assert_401(&http.delete(&format!("/v2/bob/secret/blobs/{}", bob.config.digest)));
    assert_unchanged(w);
}

/// The registry's key, and proof that tokens forged with it are accepted
/// when nothing is wrong with them: the kid it computes is the one the
/// registry puts in its own tokens, and `greedy` claims read bob's image.
fn server_forge(w: &World) -> Forge {
    let forge = Forge::server_key(w.reg.data_dir());
    let real = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    assert_eq!(
        jwt_part(&real, 0)["kid"].as_str(),
        Some(forge.kid.as_str()),
        "the kid computed here differs from the registry's"
    );
    let good = forge.sign(&greedy("alice"));
    let r = w.reg.bearer(&good).get_manifest("bob/secret", "v1");
    assert_eq!(
        r.status,
        200,
        "a properly signed token was refused, so the forgeries below prove nothing:\n{}",
        r.describe()
    );
    forge
}

#[test]
fn token_with_alg_none_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let c = greedy("alice");
    let real = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    let real_sig = real.rsplit('.').next().unwrap().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let with_kid = json!({"alg": alg, "typ": "JWT", "kid": forge.kid});
        assert_token_refused(&w, &assemble(&with_kid, &c, ""));
        assert_token_refused(&w, &assemble(&with_kid, &c, &real_sig));
        let no_kid = json!({"alg": alg, "typ": "JWT"});
        assert_token_refused(&w, &assemble(&no_kid, &c, ""));
    }
    // No alg at all.
    assert_token_refused(&w, &assemble(&json!({"kid": forge.kid}), &c, ""));
}

#[test]
fn token_signed_hs256_with_the_public_key_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let c = greedy("alice");
    let pem = forge.public_pem();
    // The public key in each form a verifier might feed to HMAC.
    let keys: Vec<Vec<u8>> = vec![
        pem.clone().into_bytes(),
        pem.trim_end().as_bytes().to_vec(),
        forge.public_point(),
        forge.public_jwk().into_bytes(),
    ];
    for key in &keys {
        assert_token_refused(&w, &hs256(&forge.kid, &c, key));
    }
    // Also with the JWKS the registry publishes: its kid and its x/y.
    let jwks = w.reg.anonymous().get("/token/jwks.json");
    assert_eq!(jwks.status, 200, "{}", jwks.describe());
    let v: Value = serde_json::from_slice(&jwks.body).expect("JWKS JSON");
    let key = &v["keys"][0];
    assert_eq!(key["kid"].as_str(), Some(forge.kid.as_str()), "JWKS: {v}");
    assert_token_refused(&w, &hs256(&forge.kid, &c, key.to_string().as_bytes()));
}

#[test]
fn expired_token_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let mut c = greedy("alice");
    let t = now();
    // Well past the verifier's clock-skew leeway.
    c["iat"] = json!(t - 4000);
    c["nbf"] = json!(t - 4000);
    c["exp"] = json!(t - 3600);
    assert_token_refused(&w, &forge.sign(&c));
    // And a token without any expiry.
    let mut no_exp = greedy("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_token_refused(&w, &forge.sign(&no_exp));
}

#[test]
fn token_not_yet_valid_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let t = now();
    let mut c = greedy("alice");
    c["nbf"] = json!(t + 3600);
    c["exp"] = json!(t + 7200);
    assert_token_refused(&w, &forge.sign(&c));
    // Issued in the future.
    let mut c = greedy("alice");
    c["iat"] = json!(t + 3600);
    c["exp"] = json!(t + 7200);
    assert_token_refused(&w, &forge.sign(&c));
}

#[test]
fn token_for_another_audience_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    for aud in [
        json!("another-registry"),
        json!(["another-registry", "yet-another"]),
        json!(""),
        json!(null),
    ] {
        let mut c = greedy("alice");
        c["aud"] = aud;
        assert_token_refused(&w, &forge.sign(&c));
    }
    let mut c = greedy("alice");
    c.as_object_mut().unwrap().remove("aud");
    assert_token_refused(&w, &forge.sign(&c));
}

#[test]
fn token_from_another_issuer_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    for iss in [json!("evil-issuer"), json!(""), json!(["registry"])] {
        let mut c = greedy("alice");
        c["iss"] = iss;
        assert_token_refused(&w, &forge.sign(&c));
    }
    let mut c = greedy("alice");
    c.as_object_mut().unwrap().remove("iss");
    assert_token_refused(&w, &forge.sign(&c));
}

#[test]
fn token_with_unknown_kid_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let c = greedy("alice");
    let stranger = Forge::stranger();
    // A stranger's key under its own kid, and under the registry's.
    assert_token_refused(&w, &stranger.sign(&c));
    assert_token_refused(&w, &stranger.sign_with_kid(&forge.kid, &c));
    // The registry's own signature, under a kid it does not know, and
    // without a kid.
    assert_token_refused(&w, &forge.sign_with_kid("no-such-key", &c));
    let signed = forge.sign(&c);
    let mut parts = signed.splitn(2, '.');
    let _header = parts.next();
    let rest = parts.next().unwrap();
    let no_kid = format!(
        "{}.{rest}",
        b64url_json(&json!({"alg": "ES256", "typ": "JWT"}))
    );
    assert_token_refused(&w, &no_kid);
}

#[test]
fn token_altered_after_signing_is_refused() {
    let w = world();
    let real = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    // The genuine token works where it should.
    let r = w.reg.bearer(&real).get_manifest("alice/app", "v1");
    assert_eq!(r.status, 200, "{}", r.describe());
    let parts: Vec<&str> = real.split('.').collect();
    let header = jwt_part(&real, 0);
    let mut payload = jwt_part(&real, 1);

    // More access, another subject, a later expiry: each with the
    // original header and signature.
    payload["access"] = json!([{"type": "repository", "name": "bob/secret", "actions": ["pull", "push", "delete"]}]);
    assert_token_refused(&w, &assemble(&header, &payload, parts[2]));
    let mut p = jwt_part(&real, 1);
    p["sub"] = json!("admin");
    p["access"] = json!([{"type": "repository", "name": "bob/secret", "actions": ["*"]}]);
    assert_token_refused(&w, &assemble(&header, &p, parts[2]));
    let mut p = jwt_part(&real, 1);
    p["exp"] = json!(p["exp"].as_u64().unwrap() + 86_400);
    let longer = assemble(&header, &p, parts[2]);
    let r = w.reg.bearer(&longer).get_manifest("alice/app", "v1");
    assert_401(&r);

    // The signature altered: one character in its middle, or cut short.
    let sig = parts[2];
    let mid = sig.len() / 2;
    let flipped: String = sig
        .char_indices()
        .map(|(i, ch)| {
            if i == mid {
                if ch == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                ch
            }
        })
        .collect();
    for bad_sig in [flipped.as_str(), &sig[..sig.len() - 4], ""] {
        let t = format!("{}.{}.{bad_sig}", parts[0], parts[1]);
        assert_401(&w.reg.bearer(&t).get_manifest("alice/app", "v1"));
    }
    assert_token_refused(&w, &format!("{}.{}.{flipped}", parts[0], parts[1]));
}

#[test]
fn token_for_one_repository_is_refused_on_another() {
    let w = world();
    let token = w.reg.token(
        Some(&w.alice),
        &[
            "repository:alice/app:pull,push",
            "repository:bob/secret:pull,push",
        ],
    );
    // The token server left bob's repository out.
    let access = jwt_part(&token, 1)["access"].clone();
    assert_eq!(
        access,
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]),
        "granted access"
    );
    let http = w.reg.bearer(&token);
    assert_eq!(http.get_manifest("alice/app", "v1").status, 200);
    let bob = &w.bob_secret;
    // alice may never have bob's repository: 403.
    assert_403(&http.get_manifest("bob/secret", "v1"));
    assert_403(&http.get(&format!(
        "/v2/bob/secret/blobs/{}",
        bob.layers[0].blob.digest
    )));
    assert_403(&http.get("/v2/bob/secret/tags/list"));
    assert_403(&http.post("/v2/bob/secret/blobs/uploads/"));
    assert_403(&http.put_manifest("bob/secret", "v1", &w.alice_app.manifest));
    assert_403(&http.delete(&format!("/v2/bob/secret/manifests/{}", bob.manifest.digest)));
    // Another repository of her own: the token lacks it, she could get it.
    let r = http.get("/v2/alice/other/tags/list");
    assert_401(&r);
    assert!(
        r.require_header("www-authenticate")
            .contains("error=\"insufficient_scope\""),
        "{}",
        r.describe()
    );
    assert_401(&http.put_manifest("alice/other", "v1", &w.alice_app.manifest));
    assert_unchanged(&w);
}

#[test]
fn pull_token_cannot_push_or_delete() {
    let w = world();
    let app = &w.alice_app;
    // An upload session opened with a push token, to attack with the pull one.
    let push = w.reg.bearer(
        &w.reg
            .token(Some(&w.alice), &["repository:alice/app:pull,push"]),
    );
    let session = push.post("/v2/alice/app/blobs/uploads/");
    assert_eq!(session.status, 202, "{}", session.describe());
    let session = session.location();

    let pull_only = |who: Option<&Account>, repo: &str| {
        let t = w
            .reg
            .token(who, &[&format!("repository:{repo}:pull,push,delete")]);
        let access = jwt_part(&t, 1)["access"].clone();
        assert_eq!(
            access,
            json!([{"type": "repository", "name": repo, "actions": ["pull"]}]),
            "granted access"
        );
        t
    };
    let reader = w
        .reg
        .add_robot("reader", &["repository:alice/*:pull"], None);
    let cases = [
        // alice asked for pull only; she could get more: 401 insufficient_scope.
        (
            w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]),
            "alice/app",
            401,
        ),
        // A pull-only robot: it never may push: 403.
        (pull_only(Some(&reader), "alice/app"), "alice/app", 403),
        // Anonymous on a public repository: 401.
        (pull_only(None, "public/base"), "public/base", 401),
    ];
    for (token, repo, status) in &cases {
        let http = w.reg.bearer(token);
        assert_eq!(
            http.get_manifest(repo, "v1").status,
            200,
            "the pull token pulls"
        );
        let refused = |r: Resp| {
            if *status == 401 {
                assert_401(&r)
            } else {
                assert_403(&r)
            }
        };
        let img = if *repo == "alice/app" { app } else { &w.public };
        refused(http.put_manifest(repo, "v1", &w.bob_secret.manifest));
        refused(http.put_manifest(repo, "v2", &img.manifest));
        refused(http.post(&format!("/v2/{repo}/blobs/uploads/")));
        refused(http.post(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            e2e::sha256_digest(b"planted")
        )));
        refused(http.delete(&format!("/v2/{repo}/manifests/{}", img.manifest.digest)));
        refused(http.delete(&format!("/v2/{repo}/manifests/v1")));
        refused(http.delete(&format!("/v2/{repo}/blobs/{}", img.config.digest)));
        if *repo == "alice/app" {
            // Writing into the session someone else opened.
            refused(
                http.send(
                    http.request(reqwest::Method::PATCH, &session)
                        .header("Content-Type", "application/octet-stream")
                        .body(b"planted".to_vec()),
                ),
            );
            refused(
                http.send(
                    http.request(
                        reqwest::Method::PUT,
                        &with_query(&session, "digest", &e2e::sha256_digest(b"planted")),
                    )
                    .body(b"planted".to_vec()),
                ),
            );
            refused(http.delete(&session));
        }
    }
    // The session is still there, empty.
    let status = push.get(&session);
    assert_eq!(status.status, 204, "{}", status.describe());
    assert_eq!(
        status.header("range").as_deref(),
        Some("0-0"),
        "{}",
        status.describe()
    );
    let cancel = push.delete(&session);
    assert!(
        cancel.status == 204 || cancel.status == 200,
        "{}",
        cancel.describe()
    );
    assert_unchanged(&w);
    // Deletes are on: the refusals above were the token's doing.
    let tmp = oci::simple_image("alice tmp");
    let alice = w.reg.basic(&w.alice);
    alice.push_image("alice/tmp", "v1", &tmp);
    let r = alice.delete(&format!("/v2/alice/tmp/manifests/{}", tmp.manifest.digest));
    assert_eq!(r.status, 202, "{}", r.describe());
}

#[test]
fn mount_from_a_repository_the_caller_cannot_read_falls_back_to_an_upload() {
    let w = world();
    let secret_layer = w.bob_secret.layers[0].blob.digest.clone();
    let public_layer = w.public.layers[0].blob.digest.clone();
    let alice_basic = w.reg.basic(&w.alice);
    let alice_token = w.reg.bearer(&w.reg.token(
        Some(&w.alice),
        &[
            "repository:alice/dst:pull,push",
            "repository:bob/secret:pull",
        ],
    ));
    for (who, http) in [("Basic", &alice_basic), ("token", &alice_token)] {
        for query in [
            format!("mount={secret_layer}&from=bob/secret"),
            // The spec's automatic mount: no `from`.
            format!("mount={secret_layer}"),
            // A readable source that lacks the blob.
            format!("mount={secret_layer}&from=public/base"),
        ] {
            let r = http.post(&format!("/v2/alice/dst/blobs/uploads/?{query}"));
            assert_eq!(
                r.status,
                202,
                "{who}: ?{query} must fall back to an upload session:\n{}",
                r.describe()
            );
            let loc = r.location();
            assert!(
                loc.contains("/v2/alice/dst/blobs/uploads/"),
                "Location {loc}"
            );
            assert_eq!(http.delete(&loc).status, 204, "cancel the session");
        }
        let r = http.head(&format!("/v2/alice/dst/blobs/{secret_layer}"));
        assert_eq!(
            r.status,
            404,
            "{who}: bob's layer is in alice/dst:\n{}",
            r.describe()
        );
    }
    // Not linked, as the admin sees it either.
    let admin = w.reg.basic(&w.admin);
    let r = admin.head(&format!("/v2/alice/dst/blobs/{secret_layer}"));
    assert_eq!(r.status, 404, "bob's layer was linked into alice/dst");
    // The refused mounts changed nothing (the accepted ones below create
    // alice/dst, as they should).
    assert_unchanged(&w);

    // Mounts from what alice may read do happen (explicit and automatic).
    let r = alice_basic.post(&format!(
        "/v2/alice/dst/blobs/uploads/?mount={public_layer}&from=public/base"
    ));
    assert_eq!(r.status, 201, "mount from public/base:\n{}", r.describe());
    let config = w.public.config.digest.clone();
    let r = alice_token.post(&format!("/v2/alice/dst/blobs/uploads/?mount={config}"));
    assert_eq!(
        r.status,
        201,
        "automatic mount from public/base:\n{}",
        r.describe()
    );
    assert_eq!(
        alice_basic
            .head(&format!("/v2/alice/dst/blobs/{config}"))
            .status,
        200
    );
}

#[test]
fn blob_of_an_unreadable_repository_is_not_served_through_a_readable_one() {
    let w = world();
    let alice = w.reg.basic(&w.alice);
    let anonymous = w.reg.anonymous();
    let bob = &w.bob_secret;
    let blobs_before = e2e::blob_files(w.reg.data_dir());
    for b in bob.blobs() {
        for (http, repo) in [
            (&alice, "alice/app"),
            (&alice, "public/base"),
            (&anonymous, "public/base"),
        ] {
            let r = http.get(&format!("/v2/{repo}/blobs/{}", b.digest));
            r.expect_error(&[404], &["BLOB_UNKNOWN"]);
            assert_eq!(
                http.head(&format!("/v2/{repo}/blobs/{}", b.digest)).status,
                404
            );
        }
    }
    // His manifest by digest, through hers.
    alice
        .get_manifest("alice/app", &bob.manifest.digest)
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);

    // A manifest of hers that names his layer: it must not make the layer
    // readable through alice/app, and its answer must be the one for a layer
    // that exists nowhere (else it tells her what bob's repositories hold).
    let layer = &bob.layers[1].blob.digest;
    let stolen = oci::image(
        "linux",
        "amd64",
        None,
        vec![w.alice_app.layers[0].clone(), bob.layers[1].clone()],
    );
    let ghost = oci::image(
        "linux",
        "amd64",
        None,
        vec![
            w.alice_app.layers[0].clone(),
            oci::text_layer("ghost", "never pushed\n"),
        ],
    );
    for img in [&stolen, &ghost] {
        let r = alice.upload_blob("alice/app", &img.config.data);
        assert_eq!(r.status, 201, "{}", r.describe());
    }
    let put_stolen = alice.put_manifest("alice/app", "stolen", &stolen.manifest);
    let put_ghost = alice.put_manifest("alice/app", "ghost", &ghost.manifest);
    let r = alice.get(&format!("/v2/alice/app/blobs/{layer}"));
    assert_eq!(
        r.status,
        404,
        "bob's layer is served through alice/app after a manifest naming it (PUT answered {}):\n{}",
        put_stolen.status,
        r.describe()
    );
    assert_eq!(
        put_stolen.status,
        put_ghost.status,
        "a manifest naming bob's layer is answered unlike one naming a layer that exists \
         nowhere: an oracle for the content of unreadable repositories\nbob's: {}\nghost: {}",
        put_stolen.describe(),
        put_ghost.describe()
    );
    // An upload claiming his digest with other bytes.
    let start = alice.post("/v2/alice/app/blobs/uploads/");
    assert_eq!(start.status, 202);
    let r = alice.send(
        alice
            .request(
                reqwest::Method::PUT,
                &with_query(&start.location(), "digest", layer),
            )
            .header("Content-Type", "application/octet-stream")
            .body(b"not bob's layer".to_vec()),
    );
    r.expect_error(&[400], &["DIGEST_INVALID"]);
    assert_eq!(
        alice.head(&format!("/v2/alice/app/blobs/{layer}")).status,
        404
    );
    let _ = alice.delete(&start.location());

    // The blob store holds what it held, plus what alice pushed: her
    // configs, and her manifests if they were taken.
    let mut pushed = vec![&stolen.config.digest, &ghost.config.digest];
    if put_stolen.status == 201 {
        pushed.push(&stolen.manifest.digest);
    }
    if put_ghost.status == 201 {
        pushed.push(&ghost.manifest.digest);
    }
    let mut blobs_after = e2e::blob_files(w.reg.data_dir());
    blobs_after.retain(|(_, name)| !pushed.iter().any(|d| d.ends_with(name.as_str())));
    assert_eq!(blobs_before, blobs_after, "the blob store changed");
    // What alice pushed to her own repository (if taken) is the only change.
    let admin = w.reg.basic(&w.admin);
    for img in [&stolen, &ghost] {
        let _ = admin.delete(&format!("/v2/alice/app/manifests/{}", img.manifest.digest));
    }
    assert_unchanged(&w);
}

/// Sign alice in through the web form: the session cookie header.
fn web_sign_in(w: &World, who: &Account) -> String {
    let http = w.reg.anonymous();
    let form = http.get("/ui/login");
    assert_eq!(form.status, 200, "{}", form.describe());
    let csrf_cookie = form
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("registry_login_csrf="))
        .unwrap_or_else(|| panic!("no CSRF cookie:\n{}", form.describe()))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text();
    let csrf = html
        .split("name=\"csrf\"")
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field in the login form:\n{html}"))
        .to_string();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/ui/login", w.reg.url()))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("user", who.user.as_str()),
            ("password", who.secret.as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .expect("POST /ui/login");
    assert_eq!(
        r.status().as_u16(),
        303,
        "sign-in refused: {:?}",
        r.headers()
    );
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("registry_session=") && !c.starts_with("registry_session=;"))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    w.reg.note_secret(
        "web session cookie",
        session.trim_start_matches("registry_session="),
    );
    session
}

/// GET `path` with a cookie (web pages take sessions, not Basic).
fn get_with_cookie(w: &World, path: &str, cookie: &str) -> Resp {
    let http = w.reg.anonymous();
    http.send(
        http.request(reqwest::Method::GET, path)
            .header("Cookie", cookie),
    )
}

#[test]
fn catalog_api_and_web_pages_do_not_leak_unreadable_names() {
    let w = world();
    // A second of bob's repositories, and a layer he shares with alice.
    let shared = oci::text_layer("shared.txt", "in both\n");
    let bob_more = oci::image("linux", "amd64", None, vec![shared.clone()]);
    let alice_more = oci::image(
        "linux",
        "amd64",
        None,
        vec![shared.clone(), oci::text_layer("mine.txt", "alice\n")],
    );
    w.reg
        .basic(&w.bob)
        .push_image("bob/hidden-project", "v1", &bob_more);
    w.reg
        .basic(&w.alice)
        .push_image("alice/more", "v1", &alice_more);
    let alice_token = w.reg.token(Some(&w.alice), &["registry:catalog:*"]);
    let alice_views = [
        ("alice Basic", w.reg.basic(&w.alice)),
        ("alice token", w.reg.bearer(&alice_token)),
    ];
    let leaks = |what: &str, text: &str| {
        for name in ["bob/", "hidden-project", "bob%2F"] {
            assert!(!text.contains(name), "{what} shows {name:?}:\n{text}");
        }
    };

    // The catalog, whole and page by page (Link headers included).
    let catalog = |who: &str, http: &Http| {
        let mut c = http.catalog();
        c.sort();
        assert_eq!(c, ["alice/app", "alice/more", "public/base"], "{who}");
        let mut paged = Vec::new();
        let mut url = "/v2/_catalog?n=1".to_string();
        for _ in 0..10 {
            let r = http.get(&url);
            assert_eq!(r.status, 200, "{}", r.describe());
            leaks(
                &format!("{who} catalog page"),
                &format!("{:?}{}", r.headers, r.text()),
            );
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            for n in v["repositories"].as_array().cloned().unwrap_or_default() {
                paged.push(n.as_str().unwrap().to_string());
            }
            match r.header("link") {
                Some(link) => {
                    let next = link.trim_start_matches('<');
                    url = next[..next.find('>').expect("Link <...>")].to_string();
                }
                None => break,
            }
        }
        assert_eq!(paged, c, "{who}: the pages differ from the whole");
    };
    catalog(alice_views[0].0, &alice_views[0].1);
    let anon = w.reg.anonymous();
    assert_eq!(anon.catalog(), ["public/base"], "anonymous catalog");

    // /api/v1 for alice, and anonymous.
    // A hidden repository answers like one that does not exist (the name
    // in the message is the one the caller sent).
    let like_missing = |http: &Http, hidden: &str, missing: &str| {
        let a = http.get(hidden);
        let b = http.get(missing);
        a.expect_error(&[404], &["NAME_UNKNOWN"]);
        assert_eq!(a.status, b.status, "{hidden} vs {missing}");
        assert_eq!(
            a.text().replace("hidden-project", "X"),
            b.text().replace("no-such-thing", "X"),
            "{hidden} answers unlike {missing}"
        );
    };
    let viewers = alice_views
        .iter()
        .map(|(who, h)| (*who, h.clone()))
        .chain([("anonymous", anon.clone())]);
    for (who, http) in viewers {
        for path in [
            "/api/v1/repositories",
            "/api/v1/repositories?q=hidden",
            "/api/v1/repositories?q=bob",
        ] {
            let r = http.get(path);
            assert_eq!(r.status, 200, "{who} {path}: {}", r.describe());
            leaks(&format!("{who} {path}"), &r.text());
        }
        like_missing(
            &http,
            "/api/v1/repositories/bob/hidden-project/tags",
            "/api/v1/repositories/bob/no-such-thing/tags",
        );
        like_missing(
            &http,
            "/api/v1/images/bob/hidden-project:v1",
            "/api/v1/images/bob/no-such-thing:v1",
        );
        let r = http.get(&format!("/api/v1/blobs/{}", bob_more.config.digest));
        r.expect_error(&[404], &["BLOB_UNKNOWN"]);
    }
    // A shared layer is "used by" alice's image only.
    let alice_http = &alice_views[0].1;
    let r = alice_http.get(&format!("/api/v1/blobs/{}", shared.blob.digest));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("alice/more"), "{}", r.text());
    leaks("/api/v1/blobs used_by", &r.text());
    let r = alice_http.get("/api/v1/images/alice/more:v1");
    assert_eq!(r.status, 200, "{}", r.describe());
    leaks("/api/v1/images layer used_by", &r.text());

    // /v2 tags of bob's repositories answer alice like a missing one.
    for suffix in ["tags/list", "manifests/v1"] {
        let hidden = alice_http.get(&format!("/v2/bob/hidden-project/{suffix}"));
        let missing = alice_http.get(&format!("/v2/bob/no-such-thing/{suffix}"));
        assert!(hidden.status >= 400, "{}", hidden.describe());
        assert_eq!(
            (hidden.status, hidden.error_codes()),
            (missing.status, missing.error_codes()),
            "{suffix}"
        );
    }

    // Web pages: anonymous sees public only; alice signed in sees hers.
    let r = anon.get("/ui/repos");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("public/base"), "anonymous /ui/repos");
    assert!(
        !r.text().contains("alice/"),
        "anonymous /ui/repos shows alice's"
    );
    leaks("anonymous /ui/repos", &r.text());
    let cookie = web_sign_in(&w, &w.alice);
    let r = get_with_cookie(&w, "/ui/repos", &cookie);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.text().contains("alice/more"),
        "alice's /ui/repos lacks her repository:\n{}",
        r.text()
    );
    leaks("alice /ui/repos", &r.text());
    for q in ["/ui/repos?q=hidden", "/ui/repos?q=bob"] {
        let r = get_with_cookie(&w, q, &cookie);
        assert_eq!(r.status, 200, "{}", r.describe());
        leaks(q, &r.text());
    }
    for page in [
        format!("/ui/blobs/{}", shared.blob.digest),
        "/ui/images/alice/more:v1".to_string(),
    ] {
        let r = get_with_cookie(&w, &page, &cookie);
        assert_eq!(r.status, 200, "{page}: {}", r.describe());
        leaks(&page, &r.text());
    }
    for (page, missing) in [
        (
            "/ui/repos/bob/hidden-project",
            "/ui/repos/bob/no-such-thing",
        ),
        (
            "/ui/images/bob/hidden-project:v1",
            "/ui/images/bob/no-such-thing:v1",
        ),
    ] {
        let a = get_with_cookie(&w, page, &cookie);
        let b = get_with_cookie(&w, missing, &cookie);
        assert_eq!(a.status, 404, "{page}: {}", a.describe());
        assert_eq!(
            a.text().replace("hidden-project", "X"),
            b.text().replace("no-such-thing", "X"),
            "{page} differs from a page of a repository that does not exist"
        );
    }
    let r = get_with_cookie(
        &w,
        &format!("/ui/blobs/{}", bob_more.config.digest),
        &cookie,
    );
    assert_eq!(r.status, 404, "{}", r.describe());
    leaks("bob's blob page", &r.text());

    // Last: the catalog through a token with `registry:catalog:*`, what
    // docker-style clients use. It lists what alice may pull.
    catalog(alice_views[1].0, &alice_views[1].1);
}

/// Wrong passwords for `user` on `GET /token` until a 429 (at most 40):
/// the 429, after how many 401s.
fn guess_until_throttled(w: &World, user: &str) -> (usize, Resp) {
    for i in 0..40 {
        let guess = Account {
            user: user.into(),
            secret: format!("guess-{i}"),
        };
        let r = w
            .reg
            .token_response(Some(&guess), &["repository:alice/app:pull"]);
        match r.status {
            401 => r.expect_error(&[401], &["UNAUTHORIZED"]),
            429 => return (i, r),
            _ => panic!("guess {i}: {}", r.describe()),
        }
    }
    panic!("40 wrong passwords for {user} in a row and never a 429");
}

fn assert_throttled(r: &Resp) {
    r.expect_error(&[429], &["TOOMANYREQUESTS"]);
    let retry: u64 = r
        .require_header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not a number of seconds:\n{}", r.describe()));
    assert!(retry >= 1, "Retry-After {retry}");
    assert!(
        !r.text().contains("token\""),
        "a token while throttled:\n{}",
        r.describe()
    );
}

/// The doors a password opens: `GET /token`, Basic on `/v2/`, the OAuth2
/// password grant.
fn every_door(w: &World, who: &Account) -> Vec<(&'static str, Resp)> {
    let http = w.reg.anonymous();
    let oauth = http.send(http.request(reqwest::Method::POST, "/token").form(&[
        ("grant_type", "password"),
        ("username", who.user.as_str()),
        ("password", who.secret.as_str()),
        ("service", "registry"),
        ("client_id", "e2e"),
    ]));
    vec![
        (
            "GET /token",
            w.reg
                .token_response(Some(who), &["repository:alice/app:pull"]),
        ),
        (
            "Basic on /v2/",
            w.reg
                .basic(who)
                .get_manifest(&format!("{}/app", who.user), "v1"),
        ),
        ("POST /token (password grant)", oauth),
    ]
}

#[test]
fn brute_force_hits_the_rate_limit() {
    let w = world();
    // Never signed in: no cached check can answer for it.
    let carol = w.reg.add_user("carol", &[]);
    let (n, r) = guess_until_throttled(&w, "carol");
    assert!(n >= 3, "throttled after only {n} failures");
    assert_throttled(&r);
    // While throttled, even the right password gets nothing, on every door.
    for (door, r) in every_door(&w, &carol) {
        assert_eq!(r.status, 429, "{door} while throttled:\n{}", r.describe());
        assert_throttled(&r);
    }
    assert_unchanged(&w);
}

#[test]
fn throttled_client_gets_no_answer_from_the_credential_cache() {
    // The registry remembers a good password check for 30 s. An attacker
    // who is throttled must not be able to keep guessing against that
    // memory: it would tell them the right password at full speed while the
    // real user is active.
    let w = world();
    // alice was just active (her pushes in world()); once more, to be sure.
    assert_eq!(
        w.reg.basic(&w.alice).get_manifest("alice/app", "v1").status,
        200
    );
    let (_, r) = guess_until_throttled(&w, "alice");
    assert_throttled(&r);
    for (door, r) in every_door(&w, &w.alice) {
        assert_eq!(
            r.status,
            429,
            "{door}: a throttled client had alice's password confirmed (by the credential \
             cache?):\n{}",
            r.describe()
        );
    }
    assert_unchanged(&w);
}

/// One raw HTTP/1.1 request (reqwest would normalize `..` away): status
/// and body.
fn raw_get(w: &World, path: &str, authorization: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", w.reg.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
        w.reg.host(),
        oci::ACCEPT_ALL_MANIFESTS
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

#[test]
fn scope_with_traversal_or_wildcards_grants_nothing() {
    let w = world();
    let scopes = [
        "repository:../bob/secret:pull",
        "repository:alice/../bob/secret:pull,push",
        "repository:alice/app/../../bob/secret:pull",
        "repository:alice/./app:pull",
        "repository:*:pull",
        "repository:bob/*:pull",
        "repository:bob/**:pull",
        "repository:**:pull,push,delete",
        "repository:alice/*:pull,push",
        "repository:/bob/secret:pull",
        "repository:bob//secret:pull",
        "repository:bob/secret%2F..:pull",
        "repository:127.0.0.1:5000/bob/secret:pull",
        "repository:bob/secret:pull\nrepository:bob/secret:push",
    ];
    for scope in scopes {
        let r = w.reg.token_response(Some(&w.alice), &[scope]);
        match r.status {
            // Refused as invalid: nothing issued.
            400 => {
                assert!(!r.text().contains("token"), "{scope}: {}", r.describe());
            }
            // Issued: it must grant nothing beyond alice's own exact names.
            200 => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                let t = v["token"].as_str().unwrap();
                let access = jwt_part(t, 1)["access"].clone();
                for e in access.as_array().cloned().unwrap_or_default() {
                    let name = e["name"].as_str().unwrap_or_default();
                    assert!(
                        name.starts_with("alice/")
                            && !name.contains(['*', '.'])
                            && !name.contains("//"),
                        "{scope:?} granted {e}"
                    );
                }
                let http = w.reg.bearer(t);
                let r = http.get_manifest("bob/secret", "v1");
                assert!(matches!(r.status, 401 | 403), "{scope:?}: {}", r.describe());
            }
            _ => panic!("{scope:?}: {}", r.describe()),
        }
    }
    // Traversal in /v2/ paths, sent as written.
    let basic = w.alice.basic();
    let token = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    w.reg.note_secret("token", &token);
    for auth in [basic.clone(), format!("Bearer {token}")] {
        for path in [
            "/v2/alice/app/../../bob/secret/manifests/v1",
            "/v2/alice/app/%2e%2e/%2e%2e/bob/secret/manifests/v1",
            "/v2/alice/../bob/secret/manifests/v1",
            "/v2/alice%2F..%2Fbob/secret/manifests/v1",
        ] {
            let (status, answer) = raw_get(&w, path, &auth);
            assert!((400..500).contains(&status), "{path}: {status}\n{answer}");
            assert!(
                !answer.contains(&w.bob_secret.config.digest),
                "{path} served bob's manifest:\n{answer}"
            );
        }
    }
    assert_unchanged(&w);
}
