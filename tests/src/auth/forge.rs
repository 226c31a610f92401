//! Tokens made outside the registry: claims like its own, JWT pieces put
//! together by hand, HS256 signatures, and [`Forge`], an ES256 key (the
//! registry's own or a stranger's) to sign them.

use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{random_hex, ISSUER, SERVICE};

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims like the registry's own for `sub`, granting `access` as
/// `(repository, "pull,push")` pairs, valid for five minutes from now.
pub fn claims(sub: &str, access: &[(&str, &str)]) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": random_hex(8),
        "access": access.iter().map(|(name, actions)| json!({
            "type": "repository",
            "name": name,
            "actions": actions.split(',').collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn b64url_json(v: &Value) -> String {
    BASE64URL_NOPAD.encode(&serde_json::to_vec(v).expect("json"))
}

/// Part `i` (0 header, 1 claims) of a compact JWT, decoded.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a JWT part");
    let bytes = BASE64URL_NOPAD
        .decode(part.as_bytes())
        .expect("base64url JWT part");
    serde_json::from_slice(&bytes).expect("JSON JWT part")
}

/// `header.claims.signature` from the given pieces, signed by nobody.
pub fn assemble(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url_json(header),
        b64url_json(claims)
    )
}

/// An HS256 token with `kid`, its HMAC key `secret` (e.g. a public key).
pub fn hs256(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_string());
    let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("HMAC key");
    jsonwebtoken::encode(&header, claims, &key).expect("HS256 signing")
}

/// An ES256 key: the registry's own (to sign tokens with bad claims) or a
/// stranger's.
pub struct Forge {
    secret: p256::SecretKey,
    /// RFC 7638 thumbprint of the public key, computed here.
    pub kid: String,
}

impl Forge {
    /// The registry's signing key, from `<data_dir>/token-signing.pem`.
    pub fn server_key(data_dir: &Path) -> Forge {
        use p256::pkcs8::DecodePrivateKey;
        let path = data_dir.join("token-signing.pem");
        let pem = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let secret = if pem.contains("BEGIN EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_pem(&pem).expect("SEC1 P-256 key")
        } else {
            p256::SecretKey::from_pkcs8_pem(&pem).expect("PKCS#8 P-256 key")
        };
        Forge::from_secret(secret)
    }

    /// A key the registry has never seen.
    pub fn stranger() -> Forge {
        use p256::elliptic_curve::Generate;
        Forge::from_secret(p256::SecretKey::generate())
    }

    fn from_secret(secret: p256::SecretKey) -> Forge {
        let (x, y) = xy(&secret.public_key());
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()));
        Forge { secret, kid }
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what an HS256
    /// confusion attack uses as the HMAC key.
    pub fn public_pem(&self) -> String {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        self.secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public key PEM")
    }

    /// The public key's uncompressed point (0x04 || x || y).
    pub fn public_point(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToSec1Point;
        self.secret
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The public JWK as JSON text (`{"crv","kty","x","y"}`).
    pub fn public_jwk(&self) -> String {
        let (x, y) = xy(&self.secret.public_key());
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
    }

    /// ES256 over `claims`, header `kid` = this key's.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(&self.kid.clone(), claims)
    }

    /// ES256 over `claims` with any `kid` in the header.
    pub fn sign_with_kid(&self, kid: &str, claims: &Value) -> String {
        use p256::pkcs8::EncodePrivateKey;
        let der = self.secret.to_pkcs8_der().expect("PKCS#8");
        let key = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &key).expect("ES256 signing")
    }
}

fn xy(pk: &p256::PublicKey) -> (String, String) {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let point = pk.to_sec1_point(false);
    let b = point.as_bytes();
    (
        BASE64URL_NOPAD.encode(&b[1..33]),
        BASE64URL_NOPAD.encode(&b[33..65]),
    )
}
