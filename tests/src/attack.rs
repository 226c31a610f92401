//! The world of the attack tests (`tests/auth_attacks_*.rs`, issue 9's
//! attack list against the registry with token auth on): a registry with
//! an admin, alice and bob, each with an image; the checks that an attack
//! was refused (401/403) and changed nothing afterwards (tags, manifests,
//! blobs, upload sessions as they were); and the registry's own signing key,
//! shown to sign tokens it accepts, for forging tokens with one bad claim.
//!
//! Forged tokens are signed with the registry's own key read from its data
//! directory (so only the attacked property is wrong) or with a stranger's
//! key. Every test ends (on drop of the registry) with the log check: no
//! password, secret or token the test handled is in the registry's log.

use serde_json::Value;

use crate::auth::{claims, jwt_part, Account, AuthRegistry, Forge};
use crate::http::Resp;
use crate::oci::{self, Image};

/// alice and bob own their namespaces; `public/**` is anonymous pull; the
/// catalog is open to anonymous callers (filtered), so that what it shows
/// them is tested too.
const CONFIG: &str = r#"
[access]
public = ["public/**"]
anonymous_catalog = true

# Default bursts, refills an hour apart: a throttled client stays throttled
# for the whole test however slow the machine (at the default 6 s, a token
# may come back between a 429 and the next request).
[login_limit]
per_address_refill_secs = 3600
per_user_refill_secs = 3600
"#;

/// A registry with an admin, alice and bob, each with an image:
/// `alice/app:v1`, `bob/secret:v1` (which alice must never see) and
/// `public/base:v1`.
pub struct World {
    pub reg: AuthRegistry,
    pub admin: Account,
    pub alice: Account,
    pub bob: Account,
    pub alice_app: Image,
    pub bob_secret: Image,
    pub public: Image,
}

pub fn world() -> World {
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
pub fn snapshot(w: &World, repo: &str) -> Vec<(String, String)> {
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
pub fn assert_unchanged(w: &World) {
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
pub fn assert_no_upload_session(w: &World) {
    let dir = w.reg.data_dir().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "upload sessions were opened: {left:?}");
}

/// A 401 `UNAUTHORIZED` with a Bearer challenge.
pub fn assert_401(r: &Resp) {
    r.expect_error(&[401], &["UNAUTHORIZED"]);
    let c = r.require_header("www-authenticate");
    assert!(c.starts_with("Bearer realm="), "challenge: {c}");
}

/// A 403 `DENIED`.
pub fn assert_403(r: &Resp) {
    r.expect_error(&[403], &["DENIED"]);
}

/// The claims alice would love to have: everything on bob's repository.
pub fn greedy(sub: &str) -> Value {
    claims(sub, &[("bob/secret", "pull,push,delete")])
}

/// The forged `token` gets nowhere: bob's manifest and blobs, a push, an
/// upload, a delete, even `/v2/`, all 401; nothing changed.
pub fn assert_token_refused(w: &World, token: &str) {
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
/// registry puts in its own tokens, and `greedy` claims for bob (who may
/// do all of it) read bob's image.
pub fn server_forge(w: &World) -> Forge {
    let forge = Forge::server_key(w.reg.data_dir());
    let real = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    assert_eq!(
        jwt_part(&real, 0)["kid"].as_str(),
        Some(forge.kid.as_str()),
        "the kid computed here differs from the registry's"
    );
    let good = forge.sign(&greedy("bob"));
    let r = w.reg.bearer(&good).get_manifest("bob/secret", "v1");
    assert_eq!(
        r.status,
        200,
        "a properly signed token was refused, so the forgeries below prove nothing:\n{}",
        r.describe()
    );
    forge
}
