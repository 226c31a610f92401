//! Forged and misused tokens (issue 9's attack list): alg none, HS256
//! signed with the public key, expired or not yet valid, another audience
//! or issuer, an unknown kid, altered after signing, for another
//! repository, and a pull token that tries to push or delete. Each is
//! refused with 401/403 and nothing changes.
//!
//! Each forgery test first shows that the same claims, signed properly,
//! are accepted (`server_forge`): a refusal then proves the check, not a
//! broken forgery.

use e2e::attack::{
    assert_401, assert_403, assert_token_refused, assert_unchanged, greedy, server_forge, world,
};
use e2e::auth::{assemble, b64url_json, hs256, jwt_part, now, Account, Forge};
use e2e::http::{with_query, Resp};
use e2e::oci;
use serde_json::{json, Value};

/// A token is never more than its subject: one properly signed with the
/// registry's own key, granting alice all of bob's repository, opens none
/// of it (issue 20: tokens of ours are judged against their subject's
/// rights at the time of use), on `/v2` and `/api/v1` alike.
#[test]
fn a_signed_token_granting_more_than_its_subject_has_opens_nothing() {
    let w = world();
    let forge = server_forge(&w);
    let http = w.reg.bearer(&forge.sign(&greedy("alice")));
    let r = http.get_manifest("bob/secret", "v1");
    assert_403(&r);
    assert_403(&http.put_manifest("bob/secret", "planted", &w.alice_app.manifest));
    assert_403(&http.delete(&format!(
        "/v2/bob/secret/manifests/{}",
        w.bob_secret.manifest.digest
    )));
    let r = http.get("/api/v1/repositories/bob/secret/tags");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_unchanged(&w);
}

#[test]
fn token_with_alg_none_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let c = greedy("bob");
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
    let c = greedy("bob");
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
    let mut c = greedy("bob");
    let t = now();
    // Well past the verifier's clock-skew leeway.
    c["iat"] = json!(t - 4000);
    c["nbf"] = json!(t - 4000);
    c["exp"] = json!(t - 3600);
    assert_token_refused(&w, &forge.sign(&c));
    // And a token without any expiry.
    let mut no_exp = greedy("bob");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_token_refused(&w, &forge.sign(&no_exp));
}

#[test]
fn token_not_yet_valid_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let t = now();
    let mut c = greedy("bob");
    c["nbf"] = json!(t + 3600);
    c["exp"] = json!(t + 7200);
    assert_token_refused(&w, &forge.sign(&c));
    // Issued in the future.
    let mut c = greedy("bob");
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
        let mut c = greedy("bob");
        c["aud"] = aud;
        assert_token_refused(&w, &forge.sign(&c));
    }
    let mut c = greedy("bob");
    c.as_object_mut().unwrap().remove("aud");
    assert_token_refused(&w, &forge.sign(&c));
}

#[test]
fn token_from_another_issuer_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    for iss in [json!("evil-issuer"), json!(""), json!(["registry"])] {
        let mut c = greedy("bob");
        c["iss"] = iss;
        assert_token_refused(&w, &forge.sign(&c));
    }
    let mut c = greedy("bob");
    c.as_object_mut().unwrap().remove("iss");
    assert_token_refused(&w, &forge.sign(&c));
}

#[test]
fn token_with_unknown_kid_is_refused() {
    let w = world();
    let forge = server_forge(&w);
    let c = greedy("bob");
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
