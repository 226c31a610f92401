//! Pieces of the Docker token-auth flow that don't need the network:
//! parsing `WWW-Authenticate` challenges and deciding which cached token
//! a request should reuse.

use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A parsed `WWW-Authenticate` header, e.g.
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
#[derive(Debug, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses a single challenge. Quoted values may contain commas (scopes like
/// `pull,push` do), so this is a small tokenizer rather than a split on ','.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(Challenge {
        scheme: scheme.to_owned(),
        params,
    })
}

/// Groups requests that can share a bearer token: per repository name, or
/// the catalog, or the bare `/v2/` endpoint.
pub fn auth_key(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let Some(after) = path.split_once("/v2/").map(|(_, a)| a) else {
        return String::new();
    };
    if after.starts_with("_catalog") {
        return "catalog".to_owned();
    }
    const MARKERS: [&str; 4] = ["/manifests/", "/blobs/", "/tags/", "/referrers/"];
    MARKERS
        .iter()
        .filter_map(|m| after.find(m))
        .min()
        .map(|i| after[..i].to_owned())
        .unwrap_or_default()
}

/// Token cache: tokens per scope set, and which scope set each auth key last
/// needed (so the next request to the same repo goes out with a token).
#[derive(Default)]
pub struct TokenCache {
    tokens: HashMap<String, String>,
    key_scope: HashMap<String, String>,
}

impl TokenCache {
    pub fn for_key(&self, key: &str) -> Option<&str> {
        let scope = self.key_scope.get(key)?;
        self.tokens.get(scope).map(String::as_str)
    }

    pub fn get(&self, scopes: &str) -> Option<&str> {
        self.tokens.get(scopes).map(String::as_str)
    }

    pub fn store(&mut self, key: &str, scopes: &str, token: String) {
        self.tokens.insert(scopes.to_owned(), token);
        self.key_scope.insert(key.to_owned(), scopes.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert!(c.is("bearer"));
        assert_eq!(c.param("realm"), Some("http://127.0.0.1/token"));
        assert_eq!(c.param("service"), Some("reg"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn parses_basic_challenge() {
        let c = parse_challenge(r#"Basic realm="registry""#).unwrap();
        assert!(c.is("basic"));
        assert_eq!(c.param("realm"), Some("registry"));
    }

    #[test]
    fn auth_key_is_repository_name() {
        assert_eq!(auth_key("http://h/v2/a/b/manifests/latest"), "a/b");
        assert_eq!(auth_key("http://h/v2/a/blobs/uploads/x?y=1"), "a");
        assert_eq!(auth_key("http://h/v2/_catalog?n=1"), "catalog");
        assert_eq!(auth_key("http://h/v2/"), "");
    }
}
