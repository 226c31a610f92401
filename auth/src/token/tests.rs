//! Token tests: issue/verify round trips, the attack list, rotation, JWKS,
//! external issuers (PEM certificates, public keys, JWKS, RSA), key files.

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
    let r = issuer.issue_refresh(&robot, NOW).unwrap();
    assert_eq!(r.expires_at, NOW + 100);
}

// ---- the attack list -------------------------------------------------------

#[test]
fn attack_alg_none() {
    let (key, _, verifier) = setup();
    let claims = b64(&good_claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let h = b64(&json!({"typ": "JWT", "alg": alg, "kid": key.kid()}).to_string());
        for sig in ["", "AAAA"] {
            let t = format!("{h}.{claims}.{sig}");
            assert_eq!(
                verifier.verify(&t, NOW),
                Err(TokenError::AlgorithmNotAllowed(alg.into())),
                "{alg}"
            );
        }
    }
    let no_alg = format!("{}.{claims}.", b64(&json!({"kid": key.kid()}).to_string()));
    assert_eq!(
        verifier.verify(&no_alg, NOW),
        Err(TokenError::AlgorithmNotAllowed(String::new()))
    );
}

#[test]
fn attack_hs256_signed_with_the_public_key() {
    let (key, _, verifier) = setup();
    let vk = key.verifying_key();
    let jwk = vk.to_jwk().to_string();
    let pem = key.to_pem(); // even the private PEM must not work as an HMAC secret
    let spki_pem = {
        use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        p256::SecretKey::from_pkcs8_pem(&pem)
            .unwrap()
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    for secret in [
        spki_pem.as_bytes(),
        jwk.as_bytes(),
        vk.kid().as_bytes(),
        pem.as_bytes(),
    ] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let name = format!("{alg:?}");
            let header = json!({"typ": "JWT", "alg": name, "kid": key.kid()});
            let t = forge(
                &header,
                &good_claims(),
                &EncodingKey::from_secret(secret).unwrap(),
                alg,
            );
            assert_eq!(
                verifier.verify(&t, NOW),
                Err(TokenError::AlgorithmNotAllowed(name))
            );
        }
    }
}

#[test]
fn attack_other_algorithms_with_our_kid() {
    let (key, _, verifier) = setup();
    let claims = b64(&good_claims().to_string());
    // RS256 is accepted in general (external RSA issuers), never for an EC key.
    let h = b64(&json!({"alg": "RS256", "kid": key.kid()}).to_string());
    assert_eq!(
        verifier.verify(&format!("{h}.{claims}.AAAA"), NOW),
        Err(TokenError::AlgorithmNotAllowed("RS256".into()))
    );
    for alg in ["ES384", "ES512", "PS256", "EdDSA", "ES256K", "HS256"] {
        let h = b64(&json!({"alg": alg, "kid": key.kid()}).to_string());
        assert_eq!(
            verifier.verify(&format!("{h}.{claims}.AAAA"), NOW),
            Err(TokenError::AlgorithmNotAllowed(alg.into()))
        );
    }
}

#[test]
fn attack_expired() {
    let (key, issuer, verifier) = setup();
    let t = issuer.issue_access(&alice(), &[], NOW).unwrap();
    let exp = NOW + 300;
    // Leeway of 30 s past exp, then refused.
    assert!(verifier.verify(&t.token, exp + 29).is_ok());
    assert_eq!(
        verifier.verify(&t.token, exp + 30),
        Err(TokenError::Expired { exp, now: exp + 30 })
    );
    let strict = verifier.clone().with_leeway(0);
    assert!(strict.verify(&t.token, exp - 1).is_ok());
    assert!(matches!(
        strict.verify(&t.token, exp),
        Err(TokenError::Expired { .. })
    ));
    // Long expired.
    let mut c = good_claims();
    c["exp"] = json!(1);
    assert!(matches!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::Expired { exp: 1, .. })
    ));
}

#[test]
fn attack_nbf_in_the_future() {
    let (key, _, verifier) = setup();
    let mut c = good_claims();
    c["nbf"] = json!(NOW + 3600);
    c["exp"] = json!(NOW + 7200);
    assert_eq!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::NotYetValid {
            nbf: NOW + 3600,
            now: NOW
        })
    );
    // Within the leeway it is accepted (clock skew between nodes).
    c["nbf"] = json!(NOW + 20);
    assert!(verifier.verify(&es256(&key, &c), NOW).is_ok());
    // `iat` in the future is refused the same way.
    c["iat"] = json!(NOW + 3600);
    assert!(matches!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::IssuedInFuture { .. })
    ));
}

#[test]
fn attack_wrong_audience() {
    let (key, _, verifier) = setup();
    for aud in [
        json!("other.example"),
        json!(["a", "b"]),
        json!(""),
        json!(null),
    ] {
        let mut c = good_claims();
        c["aud"] = aud.clone();
        assert_eq!(
            verifier.verify(&es256(&key, &c), NOW),
            Err(TokenError::WrongAudience),
            "{aud}"
        );
    }
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::WrongAudience)
    );
    // An array that includes us is fine (RFC 7519 §4.1.3).
    c["aud"] = json!(["other", SVC]);
    assert!(verifier.verify(&es256(&key, &c), NOW).is_ok());
}

#[test]
fn attack_wrong_issuer() {
    let (key, _, verifier) = setup();
    let mut c = good_claims();
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::WrongIssuer("https://evil.example".into()))
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::MissingClaim("iss"))
    );
}

#[test]
fn attack_unknown_or_missing_kid() {
    let (key, _, verifier) = setup();
    let claims = good_claims();
    let h = json!({"alg": "ES256", "kid": "NOPE:NOPE"});
    let t = forge(&h, &claims, key.encoding(), Algorithm::ES256);
    assert_eq!(
        verifier.verify(&t, NOW),
        Err(TokenError::UnknownKid("NOPE:NOPE".into()))
    );
    let h = json!({"alg": "ES256"});
    let t = forge(&h, &claims, key.encoding(), Algorithm::ES256);
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::MissingKid));
}

#[test]
fn attack_payload_altered_after_signing() {
    let (_, issuer, verifier) = setup();
    let granted = parse_scopes(["repository:team/app:pull"]).unwrap();
    let t = issuer.issue_access(&alice(), &granted, NOW).unwrap().token;
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = part(&t, 1);
    for change in [
        json!({"access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]}),
        json!({"sub": "admin"}),
        json!({"exp": NOW + 999_999}),
        json!({"access": [{"type": "repository", "name": "team/other", "actions": ["pull"]}]}),
    ] {
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        let forged = format!("{}.{}.{}", parts[0], b64(&c.to_string()), parts[2]);
        assert_eq!(
            verifier.verify(&forged, NOW),
            Err(TokenError::BadSignature),
            "{change}"
        );
    }
    // A flipped signature bit, a signature from another token, none at all.
    let mut sig = BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], BASE64URL_NOPAD.encode(&sig));
    assert_eq!(
        verifier.verify(&flipped, NOW),
        Err(TokenError::BadSignature)
    );
    let other = issuer.issue_access(&alice(), &[], NOW).unwrap().token;
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).unwrap()
    );
    assert_eq!(
        verifier.verify(&swapped, NOW),
        Err(TokenError::BadSignature)
    );
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        verifier.verify(&unsigned, NOW),
        Err(TokenError::BadSignature)
    );
    // The untouched token still verifies.
    assert!(verifier.verify(&t, NOW).is_ok());
}

#[test]
fn attack_token_of_key_a_against_key_set_b() {
    let (key_a, issuer_a, _) = setup();
    let (key_b, _, verifier_b) = setup();
    let t = issuer_a.issue_access(&alice(), &[], NOW).unwrap().token;
    assert_eq!(
        verifier_b.verify(&t, NOW),
        Err(TokenError::UnknownKid(key_a.kid().into()))
    );
    // Signed by A but claiming B's kid: the signature does not verify.
    let h = json!({"alg": "ES256", "kid": key_b.kid()});
    let t = forge(&h, &good_claims(), key_a.encoding(), Algorithm::ES256);
    assert_eq!(verifier_b.verify(&t, NOW), Err(TokenError::BadSignature));
}

#[test]
fn attack_key_embedded_in_the_header_is_not_trusted() {
    let (key, _, verifier) = setup();
    let attacker = SigningKey::generate();
    let mut h =
        json!({"alg": "ES256", "kid": attacker.kid(), "jwk": attacker.verifying_key().to_jwk()});
    let t = forge(&h, &good_claims(), attacker.encoding(), Algorithm::ES256);
    assert!(matches!(
        verifier.verify(&t, NOW),
        Err(TokenError::UnknownKid(_))
    ));
    h["kid"] = json!(key.kid());
    h["x5c"] = json!(["MIIB"]);
    let t = forge(&h, &good_claims(), attacker.encoding(), Algorithm::ES256);
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::BadSignature));
}

#[test]
fn attack_critical_header_and_odd_types() {
    let (key, _, verifier) = setup();
    let h = json!({"alg": "ES256", "kid": key.kid(), "crit": ["exp"]});
    let t = forge(&h, &good_claims(), key.encoding(), Algorithm::ES256);
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::CriticalHeader));
    let h = json!({"alg": "ES256", "kid": key.kid(), "typ": "at+jwt"});
    let t = forge(&h, &good_claims(), key.encoding(), Algorithm::ES256);
    assert_eq!(verifier.verify(&t, NOW), Err(TokenError::WrongType));
    // `typ` is case-insensitive, and optional, for access tokens.
    for h in [
        json!({"alg": "ES256", "kid": key.kid(), "typ": "jwt"}),
        json!({"alg": "ES256", "kid": key.kid()}),
    ] {
        let t = forge(&h, &good_claims(), key.encoding(), Algorithm::ES256);
        assert!(verifier.verify(&t, NOW).is_ok());
    }
}

#[test]
fn attack_malformed_and_oversized() {
    let (_, issuer, verifier) = setup();
    let t = issuer.issue_access(&alice(), &[], NOW).unwrap().token;
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        &format!("{t}.x"),
        "!!!.b.c",
        "e30.e30",
    ] {
        assert!(
            matches!(verifier.verify(bad, NOW), Err(TokenError::Malformed(_))),
            "{bad}"
        );
    }
    let huge = format!("{t}{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(verifier.verify(&huge, NOW), Err(TokenError::TooLong));
    // Signed, but the payload is not JSON claims.
    let (key, _, verifier) = setup();
    let msg = format!(
        "{}.{}",
        b64(&json!({"alg": "ES256", "kid": key.kid()}).to_string()),
        b64("not json")
    );
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key.encoding(), Algorithm::ES256).unwrap();
    assert!(matches!(
        verifier.verify(&format!("{msg}.{sig}"), NOW),
        Err(TokenError::Malformed(_))
    ));
    // Missing exp.
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verifier.verify(&es256(&key, &c), NOW),
        Err(TokenError::MissingClaim("exp"))
    );
}

// ---- refresh tokens --------------------------------------------------------

#[test]
fn refresh_tokens_round_trip() {
    let (key, issuer, verifier) = setup();
    let r = issuer.issue_refresh(&alice(), NOW).unwrap();
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
    assert_eq!(v.jti.as_deref(), Some(r.jti.as_str()));
    assert!(matches!(
        verifier.verify_refresh(&r.token, NOW + 91 * 86_400),
        Err(TokenError::Expired { .. })
    ));
    assert_eq!(
        issuer.issue_refresh(&Identity::Anonymous, NOW),
        Err(TokenError::MissingClaim("sub"))
    );
}

#[test]
fn refresh_and_access_tokens_never_stand_in_for_each_other() {
    let (key, issuer, verifier) = setup();
    let refresh = issuer.issue_refresh(&alice(), NOW).unwrap().token;
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
    let r = other.issue_refresh(&alice(), NOW).unwrap().token;
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

// ---- external issuers ------------------------------------------------------

const EC_KEY: &str = include_str!("testdata/ec.key");
const EC_CRT: &str = include_str!("testdata/ec.crt");
const RSA_KEY: &str = include_str!("testdata/rsa.key");
const RSA_PUB: &str = include_str!("testdata/rsa.pub");
const RSA_CRT: &str = include_str!("testdata/rsa.crt");
const P384_PUB: &str = include_str!("testdata/p384.pub");

#[test]
fn spec_example_key_and_claims_with_its_libtrust_kid() {
    // docs/spec/auth/jwt.md: its example key (kid in libtrust form) and
    // token. The token's printed signature is not a valid signature of its
    // printed header and claims (Python's `cryptography` agrees), so it must
    // be refused; the same header and claims signed with the example's
    // private key must verify.
    let jwk = r#"{"keys":[{"kty":"EC","crv":"P-256",
        "x":"m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q",
        "y":"dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc"}]}"#;
    let keys = parse_jwks(jwk.as_bytes()).unwrap();
    let spec_kid = "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6";
    assert_eq!(keys[0].libtrust_kid(), spec_kid);
    let v = Verifier::new(
        Arc::new(KeySet::verify_only(keys).unwrap()),
        vec!["auth.docker.com".into()],
        "registry.docker.com",
    );
    let printed = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6IlBZWU86VEVXVTpWN0pIOjI2SlY6QVFUWjpMSkMzOlNYVko6WEdIQTozNEYyOjJMQVE6WlJNSzpaN1E2In0.eyJpc3MiOiJhdXRoLmRvY2tlci5jb20iLCJzdWIiOiJqbGhhd24iLCJhdWQiOiJyZWdpc3RyeS5kb2NrZXIuY29tIiwiZXhwIjoxNDE1Mzg3MzE1LCJuYmYiOjE0MTUzODcwMTUsImlhdCI6MTQxNTM4NzAxNSwianRpIjoidFlKQ08xYzZjbnl5N2tBbjBjN3JLUGdiVjFIMWJGd3MiLCJhY2Nlc3MiOlt7InR5cGUiOiJyZXBvc2l0b3J5IiwibmFtZSI6InNhbWFsYmEvbXktYXBwIiwiYWN0aW9ucyI6WyJwdXNoIl19XX0.QhflHPfbd6eVF4lM9bwYpFZIV0PfikbyXuLx959ykRTBpe3CYnzs6YBK8FToVb5R47920PVLrh8zuLzdCr9t3w";
    assert_eq!(
        v.verify(printed, 1_415_387_100),
        Err(TokenError::BadSignature)
    );

    let d = BASE64URL_NOPAD
        .decode(b"R7OnbfMaD5J2jl7GeE8ESo7CnHSBm_1N2k9IXYFrKJA")
        .unwrap();
    let secret = p256::SecretKey::from_slice(&d).unwrap();
    let key = SigningKey::from_secret(secret);
    assert_eq!(key.verifying_key().libtrust_kid(), spec_kid);
    let parts: Vec<&str> = printed.split('.').collect();
    let msg = format!("{}.{}", parts[0], parts[1]);
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key.encoding(), Algorithm::ES256).unwrap();
    let token = format!("{msg}.{sig}");
    let t = v.verify(&token, 1_415_387_100).unwrap();
    assert_eq!(t.subject, "jlhawn");
    assert_eq!(t.jti.as_deref(), Some("tYJCO1c6cnyy7kAn0c7rKPgbV1H1bFws"));
    assert!(t.allows("samalba/my-app", Action::Push));
    assert!(!t.allows("samalba/my-app", Action::Pull));
    assert!(matches!(
        v.verify(&token, NOW),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn external_pem_certificate_and_public_keys() {
    let signer = SigningKey::from_pem(EC_KEY).unwrap(); // SEC1 "EC PRIVATE KEY"
    let bundle = format!("{EC_CRT}\n{RSA_PUB}\n{RSA_CRT}");
    let keys = parse_pem_bundle(bundle.as_bytes()).unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        keys[0].kid(),
        signer.kid(),
        "the certificate carries the signer's key"
    );
    assert_eq!(keys[0].alg(), KeyAlg::Es256);
    assert_eq!(
        (keys[1].alg(), keys[2].alg()),
        (KeyAlg::Rs256, KeyAlg::Rs256)
    );
    assert_eq!(keys[1].kid(), keys[2].kid(), "same RSA key in both forms");
    let set = Arc::new(KeySet::verify_only(keys).unwrap());
    assert_eq!(set.keys().count(), 2, "duplicates collapse");
    let v = Verifier::new(set, vec!["ext-issuer".into()], SVC);

    let mut c = good_claims();
    c["iss"] = json!("ext-issuer");
    // Old token servers put the libtrust fingerprint in `kid`; both forms work.
    for kid in [
        signer.kid().to_string(),
        signer.verifying_key().libtrust_kid().to_string(),
    ] {
        let h = json!({"typ": "JWT", "alg": "ES256", "kid": kid});
        let t = forge(&h, &c, signer.encoding(), Algorithm::ES256);
        assert!(
            v.verify(&t, NOW).unwrap().allows("team/app", Action::Pull),
            "{kid}"
        );
    }

    // RS256 from the RSA key, by thumbprint and by libtrust kid.
    let rsa = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap();
    let rkeys = parse_pem_bundle(RSA_PUB.as_bytes()).unwrap();
    for kid in [rkeys[0].kid(), rkeys[0].libtrust_kid()] {
        let h = json!({"alg": "RS256", "kid": kid});
        let t = forge(&h, &c, &rsa, Algorithm::RS256);
        assert_eq!(v.verify(&t, NOW).unwrap().subject, "alice");
        // ES256 claimed with the RSA key's kid: refused before any crypto.
        let h = json!({"alg": "ES256", "kid": kid});
        let t = forge(&h, &c, signer.encoding(), Algorithm::ES256);
        assert_eq!(
            v.verify(&t, NOW),
            Err(TokenError::AlgorithmNotAllowed("ES256".into()))
        );
    }
}

#[test]
fn external_tokens_are_read_leniently_but_grant_strictly() {
    let signer = SigningKey::from_pem(EC_KEY).unwrap();
    let v = Verifier::new(
        Arc::new(KeySet::verify_only(parse_pem_bundle(EC_CRT.as_bytes()).unwrap()).unwrap()),
        vec!["ext".into()],
        SVC,
    );
    let c = json!({
        "iss": "ext", "aud": [SVC], "exp": (NOW + 60) as f64 + 0.5,
        "access": [
            {"type": "repository", "name": "a", "actions": ["*"]},
            {"type": "repository", "name": "b", "actions": ["pull", "fly"]},
            {"type": "repository", "name": "b", "actions": ["delete"]},
            {"type": "repository(plugin)", "name": "c", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]}
        ]
    });
    let t = v.verify(&es256(&signer, &c), NOW).unwrap();
    assert_eq!(t.subject, "");
    assert_eq!(t.actions_on("a"), Actions::ALL);
    assert_eq!(
        t.actions_on("b"),
        Actions::of(&[Action::Pull, Action::Delete])
    );
    assert_eq!(t.actions_on("c"), Actions::NONE);
    assert!(t.allows_catalog());
    assert_eq!(t.expires_at, NOW + 60);
}

#[test]
fn trusted_key_files_refuse_mistakes() {
    let e = parse_pem_bundle(format!("{EC_CRT}{EC_KEY}").as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("PEM block 2 is a private key"),
        "{e}"
    );
    let e = parse_pem_bundle(P384_PUB.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("only EC P-256"), "{e}");
    let e = parse_pem_bundle(b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n").unwrap_err();
    assert!(e.to_string().contains("unexpected \"FOO\""), "{e}");
    assert!(matches!(
        parse_pem_bundle(b"no pem here"),
        Err(KeyError::Empty)
    ));
    assert!(
        parse_pem_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );

    let jwk = |v: Value| parse_jwks(json!({ "keys": [v] }).to_string().as_bytes());
    let e = jwk(json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap_err();
    assert!(e.to_string().contains("never trusted"), "{e}");
    let ec = SigningKey::generate().verifying_key().to_jwk();
    let mut bad = ec.clone();
    bad["alg"] = json!("HS256");
    assert!(jwk(bad).unwrap_err().to_string().contains("does not match"));
    let mut bad = ec.clone();
    bad["crv"] = json!("P-384");
    assert!(jwk(bad).is_err());
    let mut bad = ec.clone();
    bad["x"] = json!("AAAA");
    assert!(jwk(bad).is_err());
    let mut bad = ec.clone();
    bad["y"] = bad["x"].clone(); // not on the curve
    assert!(jwk(bad)
        .unwrap_err()
        .to_string()
        .contains("not on the P-256 curve"));
    let mut bad = ec.clone();
    bad["use"] = json!("enc");
    assert!(jwk(bad).is_err());
    assert!(matches!(
        parse_jwks(br#"{"keys":[]}"#),
        Err(KeyError::Empty)
    ));
    assert!(parse_jwks(b"{").is_err());
    let small_rsa = json!({"kty": "RSA", "n": BASE64URL_NOPAD.encode(&[0xc5; 128]), "e": "AQAB"});
    assert!(jwk(small_rsa).unwrap_err().to_string().contains("too weak"));
    // A named key keeps its kid and also answers to its libtrust fingerprint.
    let mut named = ec.clone();
    named["kid"] = json!("my-key-1");
    let k = jwk(named).unwrap().remove(0);
    assert_eq!(k.kid(), "my-key-1");
    let set = KeySet::verify_only(vec![k.clone()]).unwrap();
    assert!(set.find("my-key-1").is_some() && set.find(k.libtrust_kid()).is_some());
    // Two different keys under one kid are refused.
    let mut other = SigningKey::generate().verifying_key().to_jwk();
    other["kid"] = json!("my-key-1");
    let two = parse_jwks(json!({"keys": [k.to_jwk(), other]}).to_string().as_bytes()).unwrap();
    assert!(matches!(
        KeySet::verify_only(two),
        Err(KeyError::DuplicateKid(_))
    ));
    assert!(matches!(KeySet::verify_only(vec![]), Err(KeyError::Empty)));
}

#[test]
fn trusted_key_file_detects_jwks_or_pem() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("bundle.pem");
    std::fs::write(&pem, EC_CRT).unwrap();
    assert_eq!(KeySet::load_trusted_file(&pem).unwrap().len(), 1);
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        format!("\n  {}", KeySet::new(SigningKey::generate()).jwks()),
    )
    .unwrap();
    assert_eq!(KeySet::load_trusted_file(&jwks).unwrap().len(), 1);
    let e = KeySet::load_trusted_file(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
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
        SigningKey::from_pem(RSA_KEY),
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
