//! Password and secret hashing, robot secrets, constant-time comparison.
//!
//! Passwords and robot secrets are stored as argon2id PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`): the parameters travel
//! with each hash, so raising them later only needs [`PasswordHasher::needs_rehash`]
//! on the next successful login. The defaults are OWASP's argon2id minimum
//! (19 MiB, 2 passes, 1 lane), which costs tens of milliseconds per check;
//! callers cache successful Basic-auth checks rather than lowering them.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use data_encoding::BASE64URL_NOPAD;
use std::fmt;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// Shorter passwords are refused when set (not when checked: an old
/// account keeps working until its password is changed).
pub const MIN_PASSWORD_LEN: usize = 8;

/// Longer inputs are refused before hashing: no real password is this long,
/// and argon2 pre-hashes its input, so length only costs the caller time.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Every robot secret starts with this, so secret scanners (and people)
/// recognise a leaked one.
pub const ROBOT_SECRET_PREFIX: &str = "rgr_";

/// Hashes and verifies passwords with fixed argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password with these parameters, verified against
    /// when the user does not exist so that the answer takes as long as for
    /// a real user (no user enumeration by timing).
    dummy: std::sync::Arc<OnceLock<String>>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::with_params(Params::DEFAULT)
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordHasher(argon2id m={} t={} p={})",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost()
        )
    }
}

impl PasswordHasher {
    /// Custom costs: `m_cost_kib` memory in KiB, `t_cost` passes,
    /// `p_cost` lanes.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self::with_params(params))
    }

    fn with_params(params: Params) -> Self {
        PasswordHasher {
            params,
            dummy: Default::default(),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string for a new password, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong);
        }
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        self.argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Checks `password` against a stored PHC string. The hash comparison is
    /// constant-time (argon2's output type compares that way). Anything but
    /// an argon2id hash is refused, so a row edited to a weaker scheme cannot
    /// be used.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        if password.len() > MAX_PASSWORD_LEN || !phc.starts_with("$argon2id$") {
            return false;
        }
        match argon2::password_hash::phc::PasswordHash::new(phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Verify for a user name that has no account: same work, always false.
    /// Callers use it so that "no such user" and "wrong password" take the
    /// same time.
    pub fn verify_unknown(&self, password: &str) -> bool {
        let dummy = self.dummy.get_or_init(|| {
            let mut pw = [0u8; 16];
            fill_random(&mut pw);
            self.hash(&BASE64URL_NOPAD.encode(&pw))
                .expect("hashing a short password cannot fail")
        });
        let _ = self.verify(password, dummy);
        false
    }

    /// Whether a stored hash was made with other parameters than ours (for
    /// rehashing after a successful login).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

/// Checks a new password (when set, not when verified).
pub fn validate_new_password(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// A secret shown once (a new robot's secret). `Debug` and `Display` print
/// a placeholder so a secret cannot end up in a log by accident; the value
/// is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A new robot secret: the prefix and 32 random bytes, base64url (256 bits,
/// 47 characters, safe in a shell, a URL and a Basic header).
pub fn generate_robot_secret() -> Secret {
    Secret(format!("{ROBOT_SECRET_PREFIX}{}", random_token(32)))
}

/// Whether a string has the shape of a robot secret (not whether it is one).
pub fn looks_like_robot_secret(s: &str) -> bool {
    s.strip_prefix(ROBOT_SECRET_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && BASE64URL_NOPAD.decode(rest.as_bytes()).is_ok())
}

/// `n` random bytes from the OS, base64url without padding: for token IDs,
/// session IDs and CSRF tokens.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    BASE64URL_NOPAD.encode(&buf)
}

/// Fills `buf` from the OS random source. A machine without one cannot run
/// a secure registry at all, so failure is a panic, not an error to handle.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random number generator failed");
}

/// Constant-time equality for secrets held in memory (CSRF tokens, session
/// IDs). The length is not secret and may leak; the content does not.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password too short: at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("password too long: at most {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small costs: debug-mode argon2 at the defaults takes about a second.
    fn cheap() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1).unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let h = cheap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse", &phc));
        assert!(!h.verify("correct horsE", &phc));
        assert!(!h.verify("", &phc));
        // Same password, new salt, different hash.
        assert_ne!(h.hash("correct horse").unwrap(), phc);
    }

    #[test]
    fn default_parameters_are_owasp_argon2id() {
        let h = PasswordHasher::default();
        let phc = h.hash("a password").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("a password", &phc));
        assert!(!h.needs_rehash(&phc));
    }

    #[test]
    fn verification_uses_the_parameters_in_the_hash() {
        let old = PasswordHasher::new(32, 1, 1).unwrap();
        let phc = old.hash("pw-123456").unwrap();
        let new = cheap();
        assert!(new.verify("pw-123456", &phc));
        assert!(new.needs_rehash(&phc));
        assert!(!old.needs_rehash(&phc));
        assert!(new.needs_rehash("not a hash"));
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        let h = cheap();
        let phc = h.hash("pw-123456").unwrap();
        let argon2i = phc.replacen("$argon2id$", "$argon2i$", 1);
        assert!(!h.verify("pw-123456", &argon2i));
        assert!(h.needs_rehash(&argon2i));
        assert!(!h.verify("pw-123456", ""));
        assert!(!h.verify("pw-123456", "$argon2id$garbage"));
        assert!(!h.verify("pw-123456", "plaintext"));
        // A hash whose output was altered no longer verifies.
        let mut tampered = phc.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!h.verify("pw-123456", &tampered));
    }

    #[test]
    fn overlong_passwords_are_refused_without_hashing() {
        let h = cheap();
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(h.hash(&long), Err(PasswordError::TooLong));
        let phc = h.hash(&"x".repeat(MAX_PASSWORD_LEN)).unwrap();
        assert!(!h.verify(&long, &phc));
    }

    #[test]
    fn unknown_user_check_does_the_work_and_fails() {
        let h = cheap();
        assert!(!h.verify_unknown("anything"));
        assert!(h.dummy.get().is_some_and(|d| d.starts_with("$argon2id$")));
        assert!(!h.verify_unknown("anything"));
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(validate_new_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            validate_new_password("ééééééé"),
            Err(PasswordError::TooShort)
        );
        assert!(validate_new_password("éééééééé").is_ok());
        assert_eq!(
            validate_new_password(&"x".repeat(1025)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn robot_secrets() {
        let a = generate_robot_secret();
        let b = generate_robot_secret();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(ROBOT_SECRET_PREFIX));
        assert_eq!(a.expose().len(), ROBOT_SECRET_PREFIX.len() + 43);
        assert!(looks_like_robot_secret(a.expose()));
        assert!(!looks_like_robot_secret("rgr_short"));
        assert!(!looks_like_robot_secret("hunter2"));
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        // Never printed by accident.
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{a}"), "<redacted>");
        assert!(!format!("{a:?}{a}").contains(&a.expose()[4..]));
        // Hashable like a password.
        let h = cheap();
        let phc = h.hash(a.expose()).unwrap();
        assert!(h.verify(a.expose(), &phc));
        assert!(!h.verify(b.expose(), &phc));
    }

    #[test]
    fn random_tokens_and_constant_time_eq() {
        let t = random_token(16);
        assert_eq!(t.len(), 22);
        assert_ne!(t, random_token(16));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }
}
