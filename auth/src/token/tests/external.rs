//! External issuer mode: keys from PEM certificates, public keys and JWKS
//! files, RSA issuers, libtrust key IDs.

use super::*;

// ---- external issuers ------------------------------------------------------

const EC_KEY: &str = include_str!("../testdata/ec.key");
const EC_CRT: &str = include_str!("../testdata/ec.crt");
const RSA_KEY: &str = include_str!("../testdata/rsa.key");
const RSA_PUB: &str = include_str!("../testdata/rsa.pub");
const RSA_CRT: &str = include_str!("../testdata/rsa.crt");
const P384_PUB: &str = include_str!("../testdata/p384.pub");

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
