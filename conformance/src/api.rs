//! Thin wrappers for the distribution-spec endpoints, so checks read as
//! "push this, pull that" instead of URL plumbing.

use reqwest::Url;

use crate::client::{Client, Request};
use crate::exchange::Exchange;
use crate::oci::ACCEPT_MANIFESTS;
use crate::report::Failure;

pub type Res<T> = Result<T, Failure>;

/// Appends query parameters, percent-encoded (`+` becomes `%2B`, `/`
/// `%2F`), keeping a query string already present byte for byte (upload
/// locations often carry state in one).
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let Ok(mut u) = Url::parse(url) else {
        return url.to_owned();
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    u.into()
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

    /// The absolute URL from a response's `Location` header, resolved
    /// against the request's URL (RFC 3986 §5; it may be relative).
    pub fn location(&self, ex: &Exchange) -> Res<String> {
        let loc = ex.require_header("location")?;
        self.resolve(ex, loc)
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
            with_query("http://h/u?_state=x%3D%3D", &[("digest", "sha256:ab")]),
            "http://h/u?_state=x%3D%3D&digest=sha256%3Aab"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            with_query(
                "http://h/r",
                &[("artifactType", "application/vnd.x+json"), ("last", "a b")]
            ),
            "http://h/r?artifactType=application%2Fvnd.x%2Bjson&last=a+b"
        );
    }

    #[test]
    fn relative_references_resolve_against_the_request_url() {
        use crate::client::resolve_from;
        let base = "http://h:5/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_from(base, "/v2/a/blobs/uploads/1?s=2").as_deref(),
            Some("http://h:5/v2/a/blobs/uploads/1?s=2")
        );
        assert_eq!(
            resolve_from(base, "1?s=2").as_deref(),
            Some("http://h:5/v2/a/blobs/uploads/1?s=2")
        );
        assert_eq!(
            resolve_from("http://h:5/v2/a/tags/list?n=2", "?n=2&last=b").as_deref(),
            Some("http://h:5/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            resolve_from(base, "https://cdn/x").as_deref(),
            Some("https://cdn/x")
        );
    }

    #[test]
    fn next_link_finds_rel_next() {
        let ex = Exchange {
            method: "GET".into(),
            url: "http://h/v2/a/tags/list?n=1".into(),
            req_headers: vec![],
            req_body_len: 0,
            final_url: None,
            status: 200,
            headers: vec![(
                "link".into(),
                "</v2/a/tags/list?n=1&last=b>; rel=\"next\"".into(),
            )],
            body: vec![],
            body_error: None,
        };
        assert_eq!(
            next_link(&ex).as_deref(),
            Some("/v2/a/tags/list?n=1&last=b")
        );
    }
}
