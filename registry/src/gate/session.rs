//! Web sign-in: a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! when the client came over HTTPS: to our TLS, or to a trusted proxy's)
//! whose value is a random token; the database keeps only its hash, with
//! the user and a CSRF token that every form must carry.

use super::{AuthError, Gate};
use auth::Identity;
use axum::http::{header, HeaderMap, HeaderValue};
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "registry_session";
/// Before sign-in, the login form's CSRF token rides in its own cookie
/// (double submit): a page elsewhere cannot read it to forge the form.
pub const LOGIN_CSRF_COOKIE: &str = "registry_login_csrf";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: String,
    pub csrf: String,
    /// Hash of the cookie value (to end the session).
    pub id_hash: String,
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn hash_hex(value: &str) -> String {
    use sha2::Digest;
    hex_encode(&sha2::Sha256::digest(value.as_bytes()))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Gate {
    /// `Set-Cookie` for `name=value`, for `max_age` seconds (0 deletes), in
    /// answer to a request with `headers`.
    pub fn cookie_header(
        &self,
        headers: &HeaderMap,
        name: &str,
        value: &str,
        max_age: u64,
    ) -> HeaderValue {
        let secure = if self.https(headers) { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie values are tokens")
    }

    /// The signed-in session of a browser request, if any.
    pub async fn web_session(&self, headers: &HeaderMap) -> Option<(Arc<Identity>, WebSession)> {
        if !self.enabled() {
            return None;
        }
        let value = cookie(headers, SESSION_COOKIE)?;
        let id_hash = hash_hex(value);
        let row = self
            .registry()
            .accounts()
            .session(&id_hash)
            .await
            .ok()
            .flatten()?;
        let id = self.identity_of(&row.user).await.ok().flatten()?;
        Some((
            id,
            WebSession {
                user: row.user,
                csrf: row.csrf,
                id_hash,
            },
        ))
    }

    /// Start a session for `user`: the cookie to set.
    pub async fn sign_in(
        &self,
        headers: &HeaderMap,
        user: &str,
        ttl_secs: u64,
    ) -> Result<HeaderValue, AuthError> {
        let value = auth::password::random_token(32);
        let csrf = auth::password::random_token(24);
        let expires = auth::now_unix() as i64 + ttl_secs as i64;
        self.registry()
            .accounts()
            .create_session(&hash_hex(&value), user, &csrf, expires)
            .await?;
        Ok(self.cookie_header(headers, SESSION_COOKIE, &value, ttl_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; registry_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(hash_hex("x").len(), 64);
    }
}
