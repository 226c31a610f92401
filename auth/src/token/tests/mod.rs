//! Token tests: issue/verify round trips, refresh tokens, rotation, JWKS,
//! key files. The attack list and external issuers have their own files.

mod attacks;
mod external;

use super::*;
use crate::identity::{Identity, Robot, User};
use crate::scope::{parse_scopes, Action, Actions};
use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://registry.example";
const SVC: &str = "registry.example";

fn alice() -> Identity {
    Identity::User(User {
        name: "alice".into(),
        admin: false,
        groups: vec![],
    })
}

fn setup() -> (SigningKey, Issuer, Verifier) {
    let key = SigningKey::generate();
    let set = Arc::new(KeySet::new(key.clone()));
    let issuer = Issuer::new(set, IssuerConfig::new(ISS, SVC)).unwrap();
    let verifier = issuer.verifier();
    (key, issuer, verifier)
}

fn b64(s: &str) -> String {
    BASE64URL_NOPAD.encode(s.as_bytes())
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&BASE64URL_NOPAD.decode(p.as_bytes()).unwrap()).unwrap()
}

/// Signs any header and claims, the way an attacker or a foreign token
/// server would.
fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let msg = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, alg).unwrap();
    format!("{msg}.{sig}")
}

fn good_claims() -> Value {
    json!({
        "iss": ISS, "sub": "alice", "aud": SVC,
        "exp": NOW + 300, "nbf": NOW, "iat": NOW, "jti": "x",
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    })
}

fn es256(key: &SigningKey, claims: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": "ES256", "kid": key.kid()});
    forge(&header, claims, key.encoding(), Algorithm::ES256)
}

#[test]
fn issue_and_verify_round_trip() {
    let (key, issuer, verifier) = setup();
    let granted = parse_scopes(["repository:team/app:pull,push registry:catalog:*"]).unwrap();
    let t = issuer.issue_access(&alice(), &granted, NOW).unwrap();
    assert_eq!(t.expires_in(), 300);
    assert_eq!(t.issued_at, NOW);
    assert_eq!(t.issued_at_rfc3339(), "2023-11-14T22:13:20Z");

    let v = verifier.verify(&t.token, NOW + 10).unwrap();
    assert_eq!(v.subject, "alice");
    assert_eq!(v.issuer, ISS);
    assert_eq!(v.kid, key.kid());
    assert_eq!(v.jti.as_deref(), Some(t.jti.as_str()));
    assert_eq!(v.expires_at, NOW + 300);
    assert!(v.allows("team/app", Action::Pull));
    assert!(v.allows("team/app", Action::Push));
    assert!(!v.allows("team/app", Action::Delete));
    assert!(!v.allows("team/other", Action::Pull));
    assert!(v.allows_catalog());
}

#[test]
fn header_and_claims_follow_the_spec() {
    let (key, issuer, _) = setup();
    let granted = parse_scopes(["repository:samalba/my-app:pull,push"]).unwrap();
    let t = issuer.issue_access(&alice(), &granted, NOW).unwrap();
    assert_eq!(
        part(&t.token, 0),
        json!({"typ": "JWT", "alg": "ES256", "kid": key.kid()})
    );
    let c = part(&t.token, 1);
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], SVC);
    assert_eq!(c["exp"], NOW + 300);
    assert_eq!(c["nbf"], NOW);
    assert_eq!(c["iat"], NOW);
    assert_eq!(c["jti"], t.jti.as_str());
    assert_eq!(
        c["access"],
        json!([{"type": "repository", "name": "samalba/my-app", "actions": ["pull", "push"]}])
    );
    assert!(c.get("token_use").is_none());
    // Anonymous: empty subject, empty access when nothing was granted.
    let a = issuer.issue_access(&Identity::Anonymous, &[], NOW).unwrap();
    assert_eq!(part(&a.token, 1)["sub"], "");
    assert_eq!(part(&a.token, 1)["access"], json!([]));
    // Each token has its own ID.
    assert_ne!(issuer.issue_access(&alice(), &[], NOW).unwrap().jti, a.jti);
}

#[test]
fn robot_tokens_do_not_outlive_the_robot() {
    let (_, issuer, verifier) = setup();
    let robot = Identity::Robot(Robot {
        name: "ci".into(),
        scopes: vec![],
        expires_at: Some(NOW + 100),
    });
    let t = issuer.issue_access(&robot, &[], NOW).unwrap();
    assert_eq!(t.expires_at, NOW + 100);
    assert_eq!(verifier.verify(&t.token, NOW).unwrap().subject, "robot+ci");
    let r = issuer.issue_refresh(&robot, "g1", NOW).unwrap();
    assert_eq!(r.expires_at, NOW + 100);
}

// ---- refresh tokens --------------------------------------------------------

#[test]
fn refresh_tokens_of_before_generations_read_as_generation_zero() {
    // Tokens signed before `cgen` existed verify with an empty generation
    // (the server then judges them by their `iat`).
    let (key, _, verifier) = setup();
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("access");
    c["token_use"] = json!(REFRESH_USE);
    c["exp"] = json!(NOW + 86_400);
    let header = json!({"typ": REFRESH_TYP, "alg": "ES256", "kid": key.kid()});
    let t = forge(&header, &c, key.encoding(), Algorithm::ES256);
    let v = verifier.verify_refresh(&t, NOW).unwrap();
    assert_eq!(v.generation, "");
    assert_eq!(v.issued_at, NOW);
}

#[test]
fn refresh_tokens_round_trip() {
    let (key, issuer, verifier) = setup();
    let r = issuer.issue_refresh(&alice(), "g1", NOW).unwrap();
    assert_eq!(r.expires_in(), 90 * 24 * 3600);
    assert_eq!(
        part(&r.token, 0),
        json!({"typ": REFRESH_TYP, "alg": "ES256", "kid": key.kid()})
    );
    let c = part(&r.token, 1);
    assert_eq!(c["token_use"], REFRESH_USE);
    assert!(c.get("access").is_none());
    let v = verifier.verify_refresh(&r.token, NOW + 86_400).unwrap();
    assert_eq!(v.subject, "alice");
    assert_eq!(v.issued_at, NOW);
    assert_eq!(v.generation, "g1", "bound to the credential generation");
    assert_eq!(v.jti.as_deref(), Some(r.jti.as_str()));
    assert!(matches!(
        verifier.verify_refresh(&r.token, NOW + 91 * 86_400),
        Err(TokenError::Expired { .. })
    ));
    assert_eq!(
        issuer.issue_refresh(&Identity::Anonymous, "g1", NOW),
        Err(TokenError::MissingClaim("sub"))
    );
}

#[test]
fn refresh_and_access_tokens_never_stand_in_for_each_other() {
    let (key, issuer, verifier) = setup();
    let refresh = issuer.issue_refresh(&alice(), "g1", NOW).unwrap().token;
    let access = issuer.issue_access(&alice(), &[], NOW).unwrap().token;
    assert_eq!(verifier.verify(&refresh, NOW), Err(TokenError::WrongType));
    assert_eq!(
        verifier.verify_refresh(&access, NOW),
        Err(TokenError::WrongType)
    );
    // Mixed markers are refused both ways too.
    let mut c = good_claims();
    c["token_use"] = json!(REFRESH_USE);
    let t = es256(&key, &c); // typ JWT + token_use refresh
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::WrongType));
    assert_eq!(verifier.verify_refresh(&t, NOW), Err(TokenError::WrongType));
    let h = json!({"typ": REFRESH_TYP, "alg": "ES256", "kid": key.kid()});
    let t = forge(&h, &good_claims(), key.encoding(), Algorithm::ES256); // no token_use
    assert_eq!(verifier.verify_refresh(&t, NOW), Err(TokenError::WrongType));
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::WrongType));
    // A refresh token for another service is refused.
    let other = Issuer::new(
        verifier.keys().clone(),
        IssuerConfig::new(ISS, "other-service"),
    )
    .unwrap();
    let r = other.issue_refresh(&alice(), "g1", NOW).unwrap().token;
    assert_eq!(
        verifier.verify_refresh(&r, NOW),
        Err(TokenError::WrongAudience)
    );
}

// ---- rotation and JWKS -----------------------------------------------------

#[test]
fn rotation_old_and_new_keys_both_verify_until_the_old_is_removed() {
    let old = SigningKey::generate();
    let old_issuer = Issuer::new(
        Arc::new(KeySet::new(old.clone())),
        IssuerConfig::new(ISS, SVC),
    )
    .unwrap();
    let old_token = old_issuer.issue_access(&alice(), &[], NOW).unwrap().token;

    let new = SigningKey::generate();
    let mut set = KeySet::new(new.clone());
    set.add(old.verifying_key().clone()).unwrap();
    let issuer = Issuer::new(Arc::new(set), IssuerConfig::new(ISS, SVC)).unwrap();
    let new_token = issuer.issue_access(&alice(), &[], NOW).unwrap().token;
    assert_eq!(part(&new_token, 0)["kid"], new.kid());

    let v = issuer.verifier();
    assert_eq!(v.verify(&old_token, NOW).unwrap().kid, old.kid());
    assert_eq!(v.verify(&new_token, NOW).unwrap().kid, new.kid());

    let jwks = v.keys().jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new.kid(), old.kid()]);

    let retired = Issuer::new(Arc::new(KeySet::new(new)), IssuerConfig::new(ISS, SVC)).unwrap();
    assert!(matches!(
        retired.verifier().verify(&old_token, NOW),
        Err(TokenError::UnknownKid(_))
    ));
    // Adding the same key twice is harmless.
    let mut set = KeySet::new(old.clone());
    set.add(old.verifying_key().clone()).unwrap();
    assert_eq!(set.keys().count(), 1);
}

#[test]
fn jwks_export_is_standard_and_reimports() {
    let (key, issuer, _) = setup();
    let set = KeySet::new(key.clone());
    let jwks = set.jwks();
    let k = &jwks["keys"][0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kid"], key.kid());
    assert_eq!(k["x"].as_str().unwrap().len(), 43);
    assert!(k.get("d").is_none(), "no private part");
    // The kid is the RFC 7638 thumbprint: jsonwebtoken computes the same.
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.clone()).unwrap();
    assert_eq!(
        parsed
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        key.kid()
    );
    // External mode from our own JWKS verifies our tokens.
    let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
    let ext = Verifier::new(
        Arc::new(KeySet::verify_only(keys).unwrap()),
        vec![ISS.into()],
        SVC,
    );
    let t = issuer.issue_access(&alice(), &[], NOW).unwrap().token;
    assert_eq!(ext.verify(&t, NOW).unwrap().subject, "alice");
    assert!(Issuer::new(ext.keys().clone(), IssuerConfig::new(ISS, SVC)).is_err());
}

// ---- key files ---------------------------------------------------------------

#[test]
fn key_file_is_private_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.key");
    let (k1, created) = SigningKey::load_or_generate(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(key_file_too_open(&path).unwrap(), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(key_file_too_open(&path).unwrap(), Some(0o644));
    }
    let (k2, created) = SigningKey::load_or_generate(&path).unwrap();
    assert!(!created);
    assert_eq!(k1.kid(), k2.kid());
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Saving over an existing key replaces it atomically.
    let k3 = SigningKey::generate();
    k3.save(&path).unwrap();
    assert_eq!(SigningKey::load(&path).unwrap().kid(), k3.kid());
}

#[test]
fn key_loading_errors_and_redaction() {
    assert!(matches!(
        SigningKey::from_pem("garbage"),
        Err(KeyError::NotP256Private)
    ));
    assert!(matches!(
        SigningKey::from_pem(include_str!("../testdata/rsa.key")),
        Err(KeyError::NotP256Private)
    ));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "nope").unwrap();
    assert!(SigningKey::load(&bad)
        .unwrap_err()
        .to_string()
        .contains("bad.key"));
    let missing = dir.path().join("sub").join("x.key");
    assert!(SigningKey::load_or_generate(&missing).is_err());

    let k = SigningKey::generate();
    let pem = k.to_pem();
    let body: String = pem.lines().nth(1).unwrap().into();
    assert!(!format!("{k:?}").contains(&body));
    assert!(format!("{k:?}").contains(k.kid()));
    let (_, issuer, _) = setup();
    let t = issuer.issue_access(&alice(), &[], NOW).unwrap();
    assert!(!format!("{t:?}").contains(&t.token));
}

#[test]
fn token_hash_is_sha256_of_the_token() {
    let a = token_hash("a.b.c");
    assert_eq!(a, token_hash("a.b.c"));
    assert_ne!(a, token_hash("a.b.d"));
    assert_eq!(
        data_encoding::HEXLOWER.encode(&token_hash("")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
