//! Tokens across servers and time (issue 9):
//!
//! * external issuer mode: registry B issues nothing and takes the tokens of
//!   registry A's token server (`[token.external]` with A's JWKS), as the
//!   CNCF registry's `auth.token` does: Docker is sent to A for tokens and
//!   pushes to and pulls from B with them; B grants what A's tokens say and
//!   nothing a stranger signs;
//! * signing-key rotation: a new key with the old one in `verify_keys`
//!   keeps tokens issued before the rotation valid until the old key is
//!   dropped from the configuration.

use std::path::Path;

use e2e::auth::{
    claims, docker_config_dir, docker_in, docker_login, jwt_part, AuthRegistry, Forge, Http,
};
use e2e::{docker, docker_build_busybox, DockerImages, Registry};
use serde_json::Value;

const CONFIG: &str = "[access]\npublic = [\"public/**\"]\n";

/// A's public keys as served, written to `path`.
fn save_jwks(a: &AuthRegistry, path: &Path) -> Value {
    let r = a.anonymous().get("/token/jwks.json");
    assert_eq!(r.status, 200, "{}", r.describe());
    let jwks: Value = serde_json::from_slice(&r.body).expect("JWKS JSON");
    assert!(
        jwks["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "no keys: {jwks}"
    );
    std::fs::write(path, &r.body).unwrap();
    jwks
}

/// Registry B, taking A's tokens.
fn external_registry(a: &AuthRegistry, jwks: &Path, dir: &Path) -> Registry {
    let config = dir.join("b.toml");
    std::fs::write(
        &config,
        format!(
            "auth = \"token\"\n[token.external]\nrealm = \"{}/token\"\nissuer = \"registry\"\nkeys = \"{}\"\n",
            a.url(),
            jwks.display()
        ),
    )
    .unwrap();
    Registry::start_in(
        &dir.join("b-data"),
        &["--config", config.to_str().expect("UTF-8 path")],
    )
}

#[test]
fn docker_uses_a_token_server_elsewhere_and_the_registry_grants_what_its_tokens_say() {
    let a = AuthRegistry::start(CONFIG);
    let dev = a.add_user("dev", &[]);
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("a-jwks.json");
    save_jwks(&a, &jwks);
    let b = external_registry(&a, &jwks, dir.path());

    // B's challenge sends clients to A, for B's service.
    let r = b.client().get("/v2/");
    assert_eq!(r.status, 401, "{}", r.describe());
    let challenge = r.require_header("www-authenticate");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/token\"", a.url()))
            && challenge.contains("service=\"registry\""),
        "challenge: {challenge}"
    );
    // B issues nothing itself.
    let r = b.client().get("/token?service=registry");
    assert!(r.status >= 400, "B issued a token:\n{}", r.describe());
    assert!(!r.text().contains("\"token\""), "{}", r.text());

    // Docker: login to B (its token comes from A), push, remove, pull.
    let image = format!("{}/dev/fed:v1", b.host());
    let _images = DockerImages(vec![image.clone()]);
    let cfg = docker_config_dir();
    let login = docker_login(cfg.path(), &b.host(), &dev);
    assert!(login.success(), "docker login to B:\n{}", login.combined());
    docker_build_busybox(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n",
        "federated",
        &image,
    );
    let id = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .run_ok()
        .stdout;
    docker_in(cfg.path()).args(["push", &image]).run_ok();
    docker().args(["rmi", &image]).run_ok();
    docker_in(cfg.path()).args(["pull", &image]).run_ok();
    let pulled = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .run_ok()
        .stdout;
    assert_eq!(pulled, id, "pulled another image");
    // The tokens were A's: A logged its /token requests, B none.
    let a_tokens = a
        .log_text()
        .lines()
        .filter(|l| l.contains("\"path\":\"/token\"") && l.contains("\"status\":200"))
        .count();
    assert!(
        a_tokens >= 2,
        "A issued {a_tokens} tokens:\n{}",
        a.log_text()
    );
    b.log_barrier();
    assert!(b.find_requests("GET", "/token", Some(200)).is_empty());

    // B grants what A's token says: pull-only cannot push there.
    let pull = a.token(Some(&dev), &["repository:dev/fed:pull"]);
    let with_pull = Http::new(&b.url(), Some(format!("Bearer {pull}")));
    let r = with_pull.get("/v2/dev/fed/tags/list");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("v1"), "{}", r.text());
    let r = with_pull.post("/v2/dev/fed/blobs/uploads/");
    assert_eq!(r.status, 401, "push with a pull token:\n{}", r.describe());
    assert!(
        r.require_header("www-authenticate")
            .contains("error=\"insufficient_scope\""),
        "{}",
        r.describe()
    );
    // ... nor read another repository.
    let r = with_pull.get("/v2/dev/other/tags/list");
    assert_eq!(r.status, 401, "{}", r.describe());

    // A's key signing for another audience or issuer, and a stranger
    // signing with A's kid, get nothing.
    let a_key = Forge::server_key(a.data_dir());
    let grant = claims("dev", &[("dev/fed", "pull,push")]);
    let mut other_aud = grant.clone();
    other_aud["aud"] = "another-service".into();
    let mut other_iss = grant.clone();
    other_iss["iss"] = "another-issuer".into();
    let genuine = a_key.sign(&grant);
    let refused = [
        ("another audience", a_key.sign(&other_aud)),
        ("another issuer", a_key.sign(&other_iss)),
        (
            "a stranger's key",
            Forge::stranger().sign_with_kid(&a_key.kid, &grant),
        ),
    ];
    for (what, token) in refused {
        let r = Http::new(&b.url(), Some(format!("Bearer {token}"))).get("/v2/dev/fed/tags/list");
        assert_eq!(r.status, 401, "token for {what}:\n{}", r.describe());
    }
    // (The same claims signed right do pass: the refusals above are theirs.)
    let r = Http::new(&b.url(), Some(format!("Bearer {genuine}"))).get("/v2/dev/fed/tags/list");
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn tokens_signed_before_a_key_rotation_verify_until_the_old_key_is_dropped() {
    let mut a = AuthRegistry::start(CONFIG);
    let dev = a.add_user("dev", &[]);
    a.basic(&dev)
        .push_image("dev/rot", "v1", &e2e::oci::simple_image("rotation"));
    let before = a.token(Some(&dev), &["repository:dev/rot:pull"]);
    let old_kid = jwt_part(&before, 0)["kid"].as_str().unwrap().to_string();
    let keys = tempfile::tempdir().unwrap();
    let old_jwks = keys.path().join("old.jwks.json");
    save_jwks(&a, &old_jwks);

    // Rotate: the old private key goes away (a new one is generated on
    // start), its public half stays trusted.
    let key = a.data_dir().join("token-signing.pem");
    assert!(key.exists(), "no signing key at {}", key.display());
    std::fs::rename(&key, keys.path().join("retired.pem")).unwrap();
    let rotated = format!(
        "{CONFIG}[token]\nverify_keys = [\"{}\"]\n",
        old_jwks.display()
    );
    a.restart_with(&rotated);

    let after = a.token(Some(&dev), &["repository:dev/rot:pull"]);
    let new_kid = jwt_part(&after, 0)["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid, "the new key signs");
    let r = a.anonymous().get("/token/jwks.json");
    let kids: Vec<String> = serde_json::from_slice::<Value>(&r.body).unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "JWKS during the rotation: {kids:?}"
    );
    for (what, token) in [("old", &before), ("new", &after)] {
        let r = a.bearer(token).get("/v2/dev/rot/tags/list");
        assert_eq!(
            r.status,
            200,
            "{what} token during rotation:\n{}",
            r.describe()
        );
    }

    // The rotation is over: the old key is no longer trusted.
    a.restart_with(CONFIG);
    let r = a.bearer(&before).get("/v2/dev/rot/tags/list");
    assert_eq!(
        r.status,
        401,
        "old token after the rotation:\n{}",
        r.describe()
    );
    let r = a.bearer(&after).get("/v2/dev/rot/tags/list");
    assert_eq!(r.status, 200, "new token:\n{}", r.describe());
}
