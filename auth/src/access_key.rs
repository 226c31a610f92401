//! Access keys for the ECR API: an AWS-style key ID (`AKIA...`) and secret
//! the registry issues to a user or robot, the sealing of secrets at rest,
//! and the passwords `GetAuthorizationToken` hands out for `docker login
//! --username AWS`.
//!
//! Why sealed and not hashed: a SigV4 signature is an HMAC keyed by (a key
//! derived from) the secret, so verifying one needs the secret itself; a
//! one-way hash would make every signature unverifiable. The secret is
//! therefore stored encrypted (XChaCha20-Poly1305) under a 32-byte server
//! key kept outside the database (a file in the data directory, mode 0600,
//! or one the configuration names). A copy of the database alone (a
//! backup, a replica, an SQL injection) reveals no usable secret; the
//! database and the key file together do, as for any server that must
//! verify HMACs. The key ID is bound into the ciphertext (associated data),
//! so a sealed secret moved onto another key's row does not open.
//!
//! Login passwords are `ecr1.<key id>.<expiry>.<mac>`, the MAC an
//! HMAC-SHA256 keyed by the key's secret: anyone holding the password can
//! act as the key until the expiry (12 hours), and disabling or deleting the
//! key ends them all at once (the key's secret is needed to check one).

use crate::password::{ct_eq, fill_random};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

/// How long a login password from `GetAuthorizationToken` works, as on ECR.
pub const LOGIN_TTL_SECS: u64 = 12 * 3600;

/// The user name `docker login` is given with an ECR login password.
pub const LOGIN_USER: &str = "AWS";

const LOGIN_PREFIX: &str = "ecr1";

/// A new key ID: `AKIA` and 16 characters of base32, like AWS's (tools
/// that check the shape of a key ID accept it).
pub fn new_key_id() -> String {
    let mut buf = [0u8; 10];
    fill_random(&mut buf);
    format!("AKIA{}", BASE32_NOPAD.encode(&buf))
}

/// A new secret: 40 characters, like AWS's.
pub fn new_secret() -> String {
    let mut buf = [0u8; 30];
    fill_random(&mut buf);
    BASE64.encode(&buf)
}

/// Whether `s` has the shape of a key ID this module makes.
pub fn is_key_id(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("AKIA")
        && s[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
    #[error(
        "the sealed secret does not open with this server key (another key file, or a damaged row)"
    )]
    Open,
}

/// The server key that seals secrets at rest.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(bytes)
    }

    pub fn generate() -> SealKey {
        let mut k = [0u8; 32];
        fill_random(&mut k);
        SealKey(k)
    }

    /// The key in `path` (64 hex digits), made there (mode 0600) if the
    /// file does not exist; `true` if it was made now.
    pub fn load_or_generate(path: &Path) -> Result<(SealKey, bool), SealError> {
        let err = |message: String| SealError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let raw = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(text.trim().as_bytes())
                    .map_err(|e| err(format!("not 64 hex digits: {e}")))?;
                let bytes: [u8; 32] = raw
                    .try_into()
                    .map_err(|_| err("not 64 hex digits (32 bytes)".into()))?;
                Ok((SealKey(bytes), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SealKey::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                let text = format!("{}\n", data_encoding::HEXLOWER.encode(&key.0));
                match write_private(path, text.as_bytes()) {
                    Ok(()) => Ok((key, true)),
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_generate(path)
                    }
                    Err(e) => Err(err(e.to_string())),
                }
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// `secret` encrypted for the row of `key_id`: base64url of nonce and
    /// ciphertext.
    pub fn seal(&self, key_id: &str, secret: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        fill_random(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: key_id.as_bytes(),
                },
            )
            .expect("encryption of a short message cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64URL_NOPAD.encode(&out)
    }

    /// The secret sealed by [`SealKey::seal`] for `key_id`.
    pub fn open(&self, key_id: &str, sealed: &str) -> Result<String, SealError> {
        let raw = BASE64URL_NOPAD
            .decode(sealed.as_bytes())
            .map_err(|_| SealError::Open)?;
        if raw.len() < 24 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: key_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)
}

fn login_mac(secret: &str, key_id: &str, expires: u64) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{LOGIN_PREFIX}.{key_id}.{expires}").as_bytes());
    mac.finalize().into_bytes().into()
}

/// A login password for `key_id` (whose secret is `secret`) that works
/// until `expires` (Unix seconds).
pub fn login_password(key_id: &str, secret: &str, expires: u64) -> String {
    let mac = login_mac(secret, key_id, expires);
    format!(
        "{LOGIN_PREFIX}.{key_id}.{expires}.{}",
        BASE64URL_NOPAD.encode(&mac)
    )
}

/// A login password's key ID and expiry, before any check (to find the
/// key); `None` if it does not have the shape of one.
pub fn parse_login_password(password: &str) -> Option<(&str, u64)> {
    let mut parts = password.split('.');
    let (prefix, key_id, expires, mac) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != LOGIN_PREFIX || parts.next().is_some() || !is_key_id(key_id) || mac.is_empty() {
        return None;
    }
    Some((key_id, expires.parse().ok()?))
}

/// Whether `password` is a login password of the key with `secret`, not
/// expired at `now`.
pub fn verify_login_password(password: &str, secret: &str, now: u64) -> bool {
    let Some((key_id, expires)) = parse_login_password(password) else {
        return false;
    };
    let expected = login_password(key_id, secret, expires);
    ct_eq(expected.as_bytes(), password.as_bytes()) && now < expires
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_and_secrets_have_aws_shapes() {
        let id = new_key_id();
        assert!(is_key_id(&id), "{id}");
        assert_ne!(id, new_key_id());
        assert_eq!(new_secret().len(), 40);
        assert!(!is_key_id("AKIAshort"));
        assert!(!is_key_id("ASIAAAAAAAAAAAAAAAAA"));
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let k = SealKey::generate();
        let sealed = k.seal("AKIAAAAAAAAAAAAAAAAA", "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(k.open("AKIAAAAAAAAAAAAAAAAA", &sealed).unwrap(), "s3cret");
        assert!(k.open("AKIABBBBBBBBBBBBBBBB", &sealed).is_err());
        assert!(SealKey::generate()
            .open("AKIAAAAAAAAAAAAAAAAA", &sealed)
            .is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k
            .open(
                "AKIAAAAAAAAAAAAAAAAA",
                &String::from_utf8(tampered).unwrap()
            )
            .is_err());
        assert!(k.open("AKIAAAAAAAAAAAAAAAAA", "").is_err());
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (a, made) = SealKey::load_or_generate(&path).unwrap();
        assert!(made);
        let (b, made) = SealKey::load_or_generate(&path).unwrap();
        assert!(!made);
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        std::fs::write(&path, "nothex").unwrap();
        assert!(SealKey::load_or_generate(&path).is_err());
    }

    #[test]
    fn login_passwords_expire_and_need_the_secret() {
        let id = new_key_id();
        let p = login_password(&id, "secret", 1000);
        assert_eq!(parse_login_password(&p), Some((id.as_str(), 1000)));
        assert!(verify_login_password(&p, "secret", 999));
        assert!(!verify_login_password(&p, "secret", 1000));
        assert!(!verify_login_password(&p, "other", 999));
        let later = p.replace(".1000.", ".2000.");
        assert!(!verify_login_password(&later, "secret", 999));
        assert_eq!(parse_login_password("hunter2"), None);
        assert_eq!(parse_login_password("ecr1.x.1.y"), None);
    }
}
