//! Token keys: our ES256 signing key (P-256), and public keys that verify.
//!
//! Key IDs. A key's `kid` is its RFC 7638 JWK thumbprint (SHA-256 over the
//! canonical `{"crv","kty","x","y"}` JSON, base64url): a standard, it is what
//! the CNCF registry v3 computes for the keys of its `rootcertbundle`, so a
//! CNCF registry can verify our tokens from our certificate alone, and any
//! JOSE library can recompute it from the JWKS. Every verifying key also
//! answers to its libtrust fingerprint (`ABCD:EFGH:...`, SHA-256 of the DER
//! public key truncated to 240 bits, base32, 12 groups), the format the
//! distribution `jwt.md` describes and older token servers (docker_auth,
//! GitLab, Harbor) put in `kid`, so external issuer mode accepts them.
//!
//! Each key is bound to exactly one algorithm (P-256 → ES256, RSA → RS256):
//! the verifier accepts a token only if its `alg` is the one bound to the key
//! its `kid` names, which is what defeats `alg: none` and HS256-with-the-
//! public-key confusion.

use super::TokenError;
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// RSA keys below this size are refused (NIST: 2048 bits minimum).
const MIN_RSA_BITS: usize = 2048;

/// The algorithm a verifying key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    Es256,
    Rs256,
}

impl KeyAlg {
    pub fn jose_name(self) -> &'static str {
        match self {
            KeyAlg::Es256 => "ES256",
            KeyAlg::Rs256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Rs256 => Algorithm::RS256,
        }
    }
}

/// A public key that verifies tokens: ours, a retired one of ours, or an
/// external issuer's.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: KeyAlg,
    kid: String,
    libtrust_kid: String,
    /// Public JWK members (`kty`, `crv`/`x`/`y` or `n`/`e`), for JWKS export.
    jwk: Value,
    decoding: DecodingKey,
}

impl VerifyingKey {
    /// From a P-256 public key.
    pub fn from_p256(pk: &p256::PublicKey) -> VerifyingKey {
        let point = pk.to_sec1_point(false);
        let bytes = point.as_bytes(); // 0x04 || x || y
        let (x, y) = (b64(&bytes[1..33]), b64(&bytes[33..65]));
        // RFC 7638: required members only, lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let spki = pk.to_public_key_der().expect("P-256 SPKI encoding");
        VerifyingKey {
            alg: KeyAlg::Es256,
            kid: b64(&Sha256::digest(canonical.as_bytes())),
            libtrust_kid: libtrust_fingerprint(spki.as_bytes()),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            decoding: DecodingKey::from_ec_der(bytes),
        }
    }

    /// From an RSA public key (external issuers only; we sign with P-256).
    pub fn from_rsa(pk: &rsa::PublicKey) -> Result<VerifyingKey, KeyError> {
        if pk.size() * 8 < MIN_RSA_BITS {
            return Err(KeyError::WeakRsa(pk.size() * 8));
        }
        let (n, e) = (pk.n_bytes(), pk.e_bytes());
        let (nb, eb) = (b64(&n), b64(&e));
        let canonical = format!(r#"{{"e":"{eb}","kty":"RSA","n":"{nb}"}}"#);
        let spki = pk
            .to_public_key_der()
            .map_err(|e| KeyError::Invalid(format!("RSA key: {e}")))?;
        Ok(VerifyingKey {
            alg: KeyAlg::Rs256,
            kid: b64(&Sha256::digest(canonical.as_bytes())),
            libtrust_kid: libtrust_fingerprint(spki.as_bytes()),
            jwk: json!({"kty": "RSA", "n": nb, "e": eb}),
            decoding: DecodingKey::from_rsa_raw_components(&n, &e),
        })
    }

    /// From a DER SubjectPublicKeyInfo (a `PUBLIC KEY` PEM block, or the key
    /// inside a certificate): P-256 or RSA.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        if let Ok(pk) = p256::PublicKey::from_public_key_der(der) {
            return Ok(Self::from_p256(&pk));
        }
        if let Ok(pk) = rsa::PublicKey::from_public_key_der(der) {
            return Self::from_rsa(&pk);
        }
        Err(KeyError::Unsupported)
    }

    /// The RFC 7638 thumbprint, the `kid` we write and publish.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The libtrust fingerprint, accepted as an alias.
    pub fn libtrust_kid(&self) -> &str {
        &self.libtrust_kid
    }

    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Replaces the published `kid` (a JWKS file may name its keys).
    pub(crate) fn with_kid(mut self, kid: String) -> Self {
        self.kid = kid;
        self
    }

    /// This key as a public JWK with `kid`, `alg` and `use`.
    pub fn to_jwk(&self) -> Value {
        let mut v = self.jwk.clone();
        let o = v.as_object_mut().expect("jwk is an object");
        o.insert("kid".into(), Value::String(self.kid.clone()));
        o.insert("alg".into(), Value::String(self.alg.jose_name().into()));
        o.insert("use".into(), Value::String("sig".into()));
        v
    }

    pub(crate) fn same_key(&self, other: &VerifyingKey) -> bool {
        self.jwk == other.jwk
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({} kid={})", self.alg.jose_name(), self.kid)
    }
}

/// Our signing key. `Debug` shows only the `kid`.
#[derive(Clone)]
pub struct SigningKey {
    secret: p256::SecretKey,
    encoding: EncodingKey,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh P-256 key from the OS random source.
    pub fn generate() -> SigningKey {
        Self::from_secret(p256::SecretKey::generate())
    }

    pub(crate) fn from_secret(secret: p256::SecretKey) -> SigningKey {
        let der = secret.to_pkcs8_der().expect("P-256 PKCS#8 encoding");
        SigningKey {
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            public: VerifyingKey::from_p256(&secret.public_key()),
            secret,
        }
    }

    /// From PEM: PKCS#8 (`PRIVATE KEY`, what we write) or SEC1 (`EC PRIVATE
    /// KEY`, what `openssl ecparam -genkey` writes). P-256 only.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let secret = if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(pem).map_err(|_| KeyError::NotP256Private)?
        } else {
            p256::SecretKey::from_pkcs8_pem(pem).map_err(|_| KeyError::NotP256Private)?
        };
        Ok(Self::from_secret(secret))
    }

    /// PKCS#8 PEM. The caller must not log it.
    pub fn to_pem(&self) -> String {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("P-256 PKCS#8 PEM encoding")
            .to_string()
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Writes the key to `path` with mode 0600, atomically: a temporary file
    /// in the same directory (created 0600, so the key is never readable by
    /// others even for a moment), fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| KeyError::io(path, "no file name"))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            crate::password::random_token(6)
        ));
        let result = (|| {
            let mut f = open_private(&tmp)?;
            f.write_all(self.to_pem().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| KeyError::io(path, e))
    }

    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::io(path, e))?;
        Self::from_pem(&text).map_err(|e| KeyError::io(path, e))
    }

    /// Loads the key at `path`, or generates and saves one if there is none
    /// (first start). Returns whether it was created, for a log line.
    pub fn load_or_generate(path: &Path) -> Result<(SigningKey, bool), KeyError> {
        match std::fs::metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = Self::generate();
                k.save(path)?;
                Ok((k, true))
            }
            Err(e) => Err(KeyError::io(path, e)),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(ES256 kid={})", self.kid())
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// The key file's permission bits when group or others may read it, for
/// a startup warning (not an error: Kubernetes mounts secrets 0644 by
/// default, and refusing to start there would push people to worse fixes).
#[cfg(unix)]
pub fn key_file_too_open(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// libtrust's key ID: SHA-256 of the DER public key, first 240 bits,
/// base32, `:` every 4 characters.
pub fn libtrust_fingerprint(spki_der: &[u8]) -> String {
    let hash = Sha256::digest(spki_der);
    let b32 = BASE32_NOPAD.encode(&hash[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
        .collect::<Vec<_>>()
        .join(":")
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("not a P-256 private key in PKCS#8 or SEC1 PEM")]
    NotP256Private,
    #[error("unsupported public key: only EC P-256 (ES256) and RSA (RS256) keys verify tokens")]
    Unsupported,
    #[error("RSA key of {0} bits is too weak: at least 2048 bits")]
    WeakRsa(usize),
    #[error("invalid key: {0}")]
    Invalid(String),
    #[error("two different keys share the key ID {0:?}")]
    DuplicateKid(String),
    #[error("no keys: a verifier needs at least one public key")]
    Empty,
}

impl KeyError {
    pub(crate) fn io(path: &Path, e: impl fmt::Display) -> KeyError {
        KeyError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        }
    }
}

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> TokenError {
        TokenError::Key(e.to_string())
    }
}
