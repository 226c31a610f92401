//! Thin wrappers for the distribution-spec endpoints, so checks read as
//! "push this, pull that" instead of URL plumbing.

use crate::client::{Client, Request};
use crate::exchange::Exchange;
use crate::oci::ACCEPT_MANIFESTS;
use crate::report::Failure;

pub type Res<T> = Result<T, Failure>;

/// Appends query parameters, respecting a query string already present
/// (upload locations often carry state in one).
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Target of a `Link: <url>; rel="next"` header, if any.
pub fn next_link(ex: &Exchange) -> Option<String> {
    ex.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("link"))
        .flat_map(|(_, v)| v.split(','))
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let start = part.find('<')?;
            let end = part[start..].find('>')? + start;
            Some(part[start + 1..end].to_owned())
        })
}

impl Client {
    pub fn manifest_url(&self, repo: &str, reference: &str) -> String {
        self.url(&format!("/v2/{repo}/manifests/{reference}"))
    }

    pub fn blob_url(&self, repo: &str, digest: &str) -> String {
        self.url(&format!("/v2/{repo}/blobs/{digest}"))
    }

    pub fn uploads_url(&self, repo: &str) -> String {
        self.url(&format!("/v2/{repo}/blobs/uploads/"))
    }

    pub fn get_manifest(&self, repo: &str, reference: &str) -> Res<Exchange> {
        self.send(
            Request::new("GET", self.manifest_url(repo, reference))
                .header("Accept", ACCEPT_MANIFESTS),
        )
    }

    pub fn head_manifest(&self, repo: &str, reference: &str) -> Res<Exchange> {
        self.send(
            Request::new("HEAD", self.manifest_url(repo, reference))
                .header("Accept", ACCEPT_MANIFESTS),
        )
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Res<Exchange> {
        self.send(
            Request::new("PUT", self.manifest_url(repo, reference))
                .header("Content-Type", media_type)
                .body(body),
        )
    }

    pub fn get_blob(&self, repo: &str, digest: &str) -> Res<Exchange> {
        self.get(self.blob_url(repo, digest))
    }

    pub fn head_blob(&self, repo: &str, digest: &str) -> Res<Exchange> {
        self.head(self.blob_url(repo, digest))
    }

    /// `POST /v2/<repo>/blobs/uploads/` with optional query (`digest=`,
    /// `mount=`...). An empty body is sent so Content-Length is explicit.
    pub fn post_upload(&self, repo: &str, params: &[(&str, &str)], body: &[u8]) -> Res<Exchange> {
        let mut req = Request::new("POST", with_query(&self.uploads_url(repo), params)).body(body);
        if !body.is_empty() {
            req = req.header("Content-Type", "application/octet-stream");
        }
        if let Some((_, from)) = params.iter().find(|(k, _)| *k == "from") {
            req = req.scope(format!("repository:{from}:pull"));
        }
        self.send(req)
    }

    /// The absolute upload URL from a response's `Location` header.
    pub fn location(&self, ex: &Exchange) -> Res<String> {
        let loc = ex.require_header("location")?;
        self.resolve(loc)
            .ok_or_else(|| ex.fail(format!("Location {loc:?} to be a resolvable URL")))
    }

    /// Opens an upload session and returns its absolute location.
    pub fn start_upload(&self, repo: &str) -> Res<String> {
        let ex = self.post_upload(repo, &[], b"")?;
        ex.expect_status(&[202])?;
        self.location(&ex)
    }

    /// Closing `PUT <location>?digest=`, optionally carrying data.
    pub fn put_upload(&self, location: &str, digest: &str, body: &[u8]) -> Res<Exchange> {
        let mut req = Request::new("PUT", with_query(location, &[("digest", digest)])).body(body);
        if !body.is_empty() {
            req = req.header("Content-Type", "application/octet-stream");
        }
        self.send(req)
    }

    /// `PATCH` one chunk with an inclusive `Content-Range`.
    pub fn patch_chunk(&self, location: &str, start: usize, chunk: &[u8]) -> Res<Exchange> {
        let end = start + chunk.len() - 1;
        self.send(
            Request::new("PATCH", location)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{start}-{end}"))
                .body(chunk),
        )
    }

    /// Uploads a blob the most widely supported way (POST, then PUT) and
    /// insists on success; used to set up fixtures.
    pub fn push_blob(&self, repo: &str, data: &[u8], digest: &str) -> Res<()> {
        let location = self.start_upload(repo)?;
        self.put_upload(&location, digest, data)?
            .expect_status(&[201])
            .map(|_| ())
    }

    pub fn tags_list(&self, repo: &str, params: &[(&str, &str)]) -> Res<Exchange> {
        self.get(with_query(
            &self.url(&format!("/v2/{repo}/tags/list")),
            params,
        ))
    }

    pub fn catalog(&self, params: &[(&str, &str)]) -> Res<Exchange> {
        self.get(with_query(&self.url("/v2/_catalog"), params))
    }

    pub fn referrers(&self, repo: &str, digest: &str, params: &[(&str, &str)]) -> Res<Exchange> {
        let url = self.url(&format!("/v2/{repo}/referrers/{digest}"));
        self.get(with_query(&url, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_appends_with_ampersand_when_needed() {
        assert_eq!(with_query("http://h/u", &[("a", "1")]), "http://h/u?a=1");
        assert_eq!(
            with_query("http://h/u?_state=x", &[("digest", "sha256:ab")]),
            "http://h/u?_state=x&digest=sha256:ab"
        );
    }
}
