//! Key sets: the keys a verifier trusts, and at most one that signs.
//!
//! Rotation: start a new signing key and keep the old one as a verification
//! key until every token it signed has expired (5 minutes for access tokens;
//! refresh tokens signed by it stop working when it is removed, and clients
//! sign in again). Both are published in the JWKS meanwhile.
//!
//! External issuer mode: a key set with no signing key, built from a PEM
//! bundle (certificates and/or public keys) or a JWKS file, as the CNCF
//! registry's `auth.token.rootcertbundle` / `jwks` options. Certificates are
//! only a way to carry a public key here: their chains and validity dates
//! are not checked, because the operator who put them in the file is the
//! trust decision (the CNCF registry does the same for `kid`-identified keys).

use super::keys::{KeyError, SigningKey, VerifyingKey};
use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use x509_cert::der::{Decode, Encode};

#[derive(Debug, Clone)]
pub struct KeySet {
    signing: Option<SigningKey>,
    /// In insertion order, for a stable JWKS.
    keys: Vec<Arc<VerifyingKey>>,
    /// `kid` and libtrust alias → key.
    by_kid: HashMap<String, Arc<VerifyingKey>>,
}

impl KeySet {
    /// A set that signs with `signing` (and verifies its tokens).
    pub fn new(signing: SigningKey) -> KeySet {
        let mut set = KeySet {
            signing: None,
            keys: Vec::new(),
            by_kid: HashMap::new(),
        };
        set.add(signing.verifying_key().clone())
            .expect("an empty set has no conflicting kid");
        set.signing = Some(signing);
        set
    }

    /// A set that only verifies (external issuer mode).
    pub fn verify_only(keys: Vec<VerifyingKey>) -> Result<KeySet, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut set = KeySet {
            signing: None,
            keys: Vec::new(),
            by_kid: HashMap::new(),
        };
        for k in keys {
            set.add(k)?;
        }
        Ok(set)
    }

    /// Adds a key that verifies but does not sign (a retired signing key).
    /// The same key twice is fine; two keys under one ID are not.
    pub fn add(&mut self, key: VerifyingKey) -> Result<(), KeyError> {
        for id in [key.kid(), key.libtrust_kid()] {
            if let Some(existing) = self.by_kid.get(id) {
                if existing.same_key(&key) {
                    return Ok(());
                }
                return Err(KeyError::DuplicateKid(id.to_string()));
            }
        }
        let key = Arc::new(key);
        self.by_kid.insert(key.kid().to_string(), key.clone());
        self.by_kid
            .insert(key.libtrust_kid().to_string(), key.clone());
        self.keys.push(key);
        Ok(())
    }

    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    /// The key a token's `kid` names, if trusted.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|k| k.as_ref())
    }

    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().map(|k| k.as_ref())
    }

    /// `{"keys": [...]}` for `/token/jwks.json`: every trusted key, the
    /// signing key first.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys().map(VerifyingKey::to_jwk).collect::<Vec<_>>() })
    }

    /// Reads trusted public keys from a file: a JWKS (JSON) or a PEM bundle.
    pub fn load_trusted_file(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
        let bytes = std::fs::read(path).map_err(|e| KeyError::io(path, e))?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let keys = if first == Some(&b'{') {
            parse_jwks(&bytes)
        } else {
            parse_pem_bundle(&bytes)
        };
        keys.map_err(|e| KeyError::io(path, e))
    }
}

/// Every `CERTIFICATE` and `PUBLIC KEY` block of a PEM file. Any other
/// block is an error: a private key in a trust bundle is a mistake worth
/// stopping for, and silently skipping blocks hides typos.
pub fn parse_pem_bundle(bytes: &[u8]) -> Result<Vec<VerifyingKey>, KeyError> {
    let blocks = pem::parse_many(bytes).map_err(|e| KeyError::Invalid(format!("PEM: {e}")))?;
    let mut out = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let n = i + 1;
        let spki = match block.tag() {
            "PUBLIC KEY" => block.contents().to_vec(),
            "CERTIFICATE" => {
                let cert = x509_cert::Certificate::from_der(block.contents())
                    .map_err(|e| KeyError::Invalid(format!("PEM block {n}: certificate: {e}")))?;
                cert.tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .map_err(|e| KeyError::Invalid(format!("PEM block {n}: certificate: {e}")))?
            }
            tag if tag.contains("PRIVATE") => {
                return Err(KeyError::Invalid(format!(
                    "PEM block {n} is a private key ({tag}): give the public key or the certificate"
                )))
            }
            tag => {
                return Err(KeyError::Invalid(format!(
                    "PEM block {n}: unexpected {tag:?}: expected CERTIFICATE or PUBLIC KEY"
                )))
            }
        };
        out.push(
            VerifyingKey::from_spki_der(&spki)
                .map_err(|e| KeyError::Invalid(format!("PEM block {n}: {e}")))?,
        );
    }
    if out.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct JwksFile {
    keys: Vec<JwkIn>,
}

#[derive(Deserialize)]
struct JwkIn {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// A JWKS document (`{"keys":[...]}`): EC P-256 and RSA public keys.
/// Symmetric (`oct`) keys are refused outright: trusting one would let
/// anyone who can read the file mint tokens (and is the door HS256
/// confusion attacks look for). A declared `alg` must be the one the key
/// type binds; a key without `kid` is named by its thumbprint.
pub fn parse_jwks(bytes: &[u8]) -> Result<Vec<VerifyingKey>, KeyError> {
    let doc: JwksFile =
        serde_json::from_slice(bytes).map_err(|e| KeyError::Invalid(format!("JWKS: {e}")))?;
    let mut out = Vec::new();
    for (i, k) in doc.keys.iter().enumerate() {
        let n = i + 1;
        let bad = |m: &str| KeyError::Invalid(format!("JWKS key {n}: {m}"));
        if k.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(bad("\"use\" is not \"sig\""));
        }
        let key = match k.kty.as_str() {
            "EC" => {
                if k.crv.as_deref() != Some("P-256") {
                    return Err(bad("only the P-256 curve is supported"));
                }
                let x = decode_b64(k.x.as_deref(), 32).ok_or_else(|| bad("bad \"x\""))?;
                let y = decode_b64(k.y.as_deref(), 32).ok_or_else(|| bad("bad \"y\""))?;
                let sec1 = [&[4u8][..], &x, &y].concat();
                let pk = p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| bad("point is not on the P-256 curve"))?;
                VerifyingKey::from_p256(&pk)
            }
            "RSA" => {
                let nb = decode_b64(k.n.as_deref(), 0).ok_or_else(|| bad("bad \"n\""))?;
                let eb = decode_b64(k.e.as_deref(), 0).ok_or_else(|| bad("bad \"e\""))?;
                let pk = rsa::PublicKey::new(
                    rsa::BoxedUint::from_be_slice_vartime(&nb),
                    rsa::BoxedUint::from_be_slice_vartime(&eb),
                )
                .map_err(|e| bad(&format!("RSA key: {e}")))?;
                VerifyingKey::from_rsa(&pk).map_err(|e| bad(&e.to_string()))?
            }
            "oct" => return Err(bad("symmetric (oct) keys are never trusted")),
            other => return Err(bad(&format!("unsupported key type {other:?}"))),
        };
        if let Some(alg) = &k.alg {
            if alg != key.alg().jose_name() {
                return Err(bad(&format!(
                    "\"alg\" {alg:?} does not match the key type (expected {})",
                    key.alg().jose_name()
                )));
            }
        }
        out.push(match &k.kid {
            Some(kid) if !kid.is_empty() => key.with_kid(kid.clone()),
            _ => key,
        });
    }
    if out.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(out)
}

/// base64url without padding; `len` 0 means any non-empty length.
fn decode_b64(s: Option<&str>, len: usize) -> Option<Vec<u8>> {
    let v = BASE64URL_NOPAD.decode(s?.as_bytes()).ok()?;
    (!v.is_empty() && (len == 0 || v.len() == len)).then_some(v)
}
