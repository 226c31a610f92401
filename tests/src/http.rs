//! A small blocking client for the distribution API, with assertions.

use std::time::Duration;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::{Method, Url};

use crate::oci::{Blob, Image, MultiImage, ACCEPT_ALL_MANIFESTS};
use crate::sha256_digest;

/// A response read to the end.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// `METHOD URL`, for messages.
    pub request: String,
    /// The URL that produced this response (after redirects): relative
    /// `Location`s resolve against it.
    pub url: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 2000 {
            body.truncate(2000);
            body.push_str("...");
        }
        format!(
            "{} -> {}\nheaders: {:?}\nbody: {}",
            self.request, self.status, self.headers, body
        )
    }

    /// A header the response must carry; panics with the response if not.
    pub fn require_header(&self, name: &str) -> String {
        self.header(name)
            .unwrap_or_else(|| panic!("response lacks the {name} header:\n{}", self.describe()))
    }

    /// The `Location` header, which the response must carry, resolved per
    /// RFC 3986 against the URL of the request it answers.
    pub fn location(&self) -> String {
        let loc = self.require_header("location");
        resolve(&self.url, &loc)
    }

    /// Panic unless the status is `status`.
    pub fn expect_status(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status:\n{}",
            self.describe()
        );
        self
    }

    /// The `errors[].code` values of a distribution error body; panics with
    /// the response if the body is not `{"errors":[{"code":..}, ..]}`.
    pub fn error_codes(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}):\n{}", self.describe()));
        let errors = v
            .get("errors")
            .and_then(|e| e.as_array())
            .unwrap_or_else(|| panic!("error body has no errors array:\n{}", self.describe()));
        assert!(
            !errors.is_empty(),
            "errors array is empty:\n{}",
            self.describe()
        );
        errors
            .iter()
            .map(|e| {
                e.get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or_else(|| panic!("error without code:\n{}", self.describe()))
                    .to_string()
            })
            .collect()
    }

    /// Assert an error response: status is one of `statuses` and the JSON body
    /// carries at least one code from `codes`.
    pub fn expect_error(&self, statuses: &[u16], codes: &[&str]) {
        assert!(
            statuses.contains(&self.status),
            "expected status {statuses:?}, got:\n{}",
            self.describe()
        );
        let got = self.error_codes();
        assert!(
            got.iter().any(|c| codes.contains(&c.as_str())),
            "expected error code in {codes:?}, got {got:?}:\n{}",
            self.describe()
        );
    }
}

/// Blocking HTTP client bound to one registry base URL.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .expect("http client"),
        }
    }

    /// A client whose connections come from `local` (another loopback
    /// address: a different client machine, as far as the registry's
    /// per-address limits can tell).
    pub fn new_from(base: &str, local: std::net::IpAddr) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .redirect(reqwest::redirect::Policy::limited(5))
                .local_address(local)
                .build()
                .expect("http client"),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Absolute URL for an absolute URL or a path from the registry's root.
    /// (A `Location` header resolves against its request: [`Resp::location`].)
    pub fn url(&self, path_or_url: &str) -> String {
        resolve(&format!("{}/", self.base), path_or_url)
    }

    pub fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        self.http.request(method, self.url(path_or_url))
    }

    /// Send and read the whole response; panics on transport errors.
    pub fn send(&self, rb: RequestBuilder) -> Resp {
        self.try_send(rb).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Send and read the whole response; transport errors (connection reset,
    /// broken pipe, ...) are returned as a description.
    pub fn try_send(&self, rb: RequestBuilder) -> Result<Resp, String> {
        let req = rb.build().expect("build request");
        let request = format!("{} {}", req.method(), req.url());
        let resp: Response = self
            .http
            .execute(req)
            .map_err(|e| format!("{request} failed: {e:?}"))?;
        let status = resp.status().as_u16();
        let url = resp.url().to_string();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .map_err(|e| format!("{request}: reading body failed: {e:?}"))?
            .to_vec();
        Ok(Resp {
            status,
            headers,
            body,
            request,
            url,
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path))
    }

    pub fn head(&self, path: &str) -> Resp {
        self.send(self.request(Method::HEAD, path))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send(self.request(Method::DELETE, path))
    }

    /// POST /v2/<repo>/blobs/uploads/ and return the upload Location (absolute).
    pub fn start_upload(&self, repo: &str) -> String {
        self.send(self.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")))
            .expect_status(202)
            .location()
    }

    /// Upload `data` as a blob (POST, then monolithic PUT ?digest=).
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let loc = self.start_upload(repo);
        let r = self.send(
            self.request(Method::PUT, &with_query(&loc, "digest", &digest))
                .header("Content-Type", "application/octet-stream")
                .body(data.to_vec()),
        );
        let r = r.expect_status(201);
        assert_eq!(
            r.require_header("docker-content-digest"),
            digest,
            "Docker-Content-Digest of blob PUT"
        );
        digest
    }

    /// PUT a manifest; returns the response (not asserted).
    pub fn put_manifest_raw(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        self.send(
            self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", media_type)
                .body(body),
        )
    }

    /// PUT a manifest and assert 201 with the right digest.
    pub fn push_manifest(&self, repo: &str, reference: &str, manifest: &Blob) -> String {
        let r = self
            .put_manifest_raw(repo, reference, &manifest.media_type, manifest.data.clone())
            .expect_status(201);
        assert_eq!(
            r.require_header("docker-content-digest"),
            manifest.digest,
            "Docker-Content-Digest of manifest PUT"
        );
        manifest.digest.clone()
    }

    /// Push all blobs of `image` and its manifest under `tag`.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) -> String {
        for b in image.blobs() {
            self.push_blob(repo, &b.data);
        }
        self.push_manifest(repo, tag, &image.manifest)
    }

    /// Push every image of `multi` (by digest) and the index under `tag`.
    pub fn push_index(&self, repo: &str, tag: &str, multi: &MultiImage) -> String {
        for img in &multi.images {
            for b in img.blobs() {
                self.push_blob(repo, &b.data);
            }
            self.push_manifest(repo, &img.manifest.digest, &img.manifest);
        }
        self.push_manifest(repo, tag, &multi.index)
    }

    /// GET a manifest (accepting all manifest types); asserts 200.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Resp {
        self.send(
            self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Accept", ACCEPT_ALL_MANIFESTS),
        )
        .expect_status(200)
    }

    /// GET a blob, assert 200 and that its sha256 equals `digest`.
    pub fn get_blob_verified(&self, repo: &str, digest: &str) -> Vec<u8> {
        let r = self
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .expect_status(200);
        assert_eq!(
            sha256_digest(&r.body),
            digest,
            "blob content does not match its digest ({})",
            r.request
        );
        r.body
    }

    /// Tags of a repository (GET /v2/<repo>/tags/list).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let r = self
            .get(&format!("/v2/{repo}/tags/list"))
            .expect_status(200);
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("tags list is not JSON ({e}):\n{}", r.describe()));
        v.get("tags")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// RFC 3986 §5 resolution of `reference` against the absolute `base`.
pub fn resolve(base: &str, reference: &str) -> String {
    Url::parse(base)
        .and_then(|b| b.join(reference))
        .unwrap_or_else(|e| panic!("cannot resolve {reference:?} against {base:?}: {e}"))
        .into()
}

/// Append `key=value` to `url`, respecting an existing query string.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", encode_query_value(value))
}

fn encode_query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            // ':' is common in digests and harmless in a query value.
            b':' => out.push(':'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_per_rfc_3986() {
        let req = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/";
        assert_eq!(
            resolve(req, "/v2/a/b/blobs/uploads/u1?s=1"),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?s=1"
        );
        // Relative to the request's directory, not the registry root.
        assert_eq!(
            resolve(req, "u1"),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1"
        );
        assert_eq!(
            resolve("http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1", "../x"),
            "http://127.0.0.1:5000/v2/a/b/blobs/x"
        );
        assert_eq!(resolve(req, "http://other:1/y"), "http://other:1/y");
        let c = Client::new("http://127.0.0.1:5000");
        assert_eq!(c.url("/v2/"), "http://127.0.0.1:5000/v2/");
    }
}
