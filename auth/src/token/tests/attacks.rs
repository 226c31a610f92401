//! The attack list: every forged, stale or misdirected token is refused
//! with its own error.

use super::*;

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
    // Our own tokens: dead the second `exp` passes (our clock set it).
    assert!(verifier.verify(&t.token, exp - 1).is_ok());
    assert_eq!(
        verifier.verify(&t.token, exp),
        Err(TokenError::Expired { exp, now: exp })
    );
    assert_eq!(
        verifier.verify(&t.token, exp + 1),
        Err(TokenError::Expired { exp, now: exp + 1 })
    );
    // Another issuer's tokens (another clock): 30 s of leeway, then refused.
    let external = Verifier::new(verifier.keys().clone(), vec![ISS.into()], SVC);
    assert!(external.verify(&t.token, exp + 29).is_ok());
    assert_eq!(
        external.verify(&t.token, exp + 30),
        Err(TokenError::Expired { exp, now: exp + 30 })
    );
    let strict = external.with_leeway(0);
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
