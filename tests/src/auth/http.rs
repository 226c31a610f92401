//! [`Http`]: requests to a registry with Basic or Bearer credentials (or
//! none), and the pushes and reads the auth tests make with them.

use reqwest::blocking::RequestBuilder;
use reqwest::Method;
use serde_json::Value;

use crate::http::{with_query, Client, Resp};
use crate::oci::{Blob, Image};

/// Requests with (or without) credentials.
#[derive(Clone)]
pub struct Http {
    pub client: Client,
    pub(super) authorization: Option<String>,
}

impl Http {
    /// Requests to any registry at `url` with this `Authorization` header.
    pub fn new(url: &str, authorization: Option<String>) -> Http {
        Http {
            client: Client::new(url),
            authorization,
        }
    }

    /// Requests through `client` (another base URL, another source
    /// address) with this `Authorization` header.
    pub fn with_client(client: Client, authorization: Option<String>) -> Http {
        Http {
            client,
            authorization,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.client.request(method, path);
        match &self.authorization {
            Some(a) => rb.header("Authorization", a),
            None => rb,
        }
    }

    pub fn send(&self, rb: RequestBuilder) -> Resp {
        self.client.send(rb)
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

    pub fn post(&self, path: &str) -> Resp {
        self.send(self.request(Method::POST, path))
    }

    /// GET a manifest accepting every type we push.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Resp {
        self.send(
            self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Accept", crate::oci::ACCEPT_ALL_MANIFESTS),
        )
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, manifest: &Blob) -> Resp {
        self.send(
            self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", &manifest.media_type)
                .body(manifest.data.clone()),
        )
    }

    /// POST then monolithic PUT; the answer to the PUT (or to the POST when
    /// it was refused).
    pub fn upload_blob(&self, repo: &str, data: &[u8]) -> Resp {
        let start = self.post(&format!("/v2/{repo}/blobs/uploads/"));
        if start.status != 202 {
            return start;
        }
        let loc = start.location();
        self.send(
            self.request(
                Method::PUT,
                &with_query(&loc, "digest", &crate::sha256_digest(data)),
            )
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec()),
        )
    }

    /// Push every blob of `image` and its manifest under `tag`; asserts
    /// success.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        for b in image.blobs() {
            let r = self.upload_blob(repo, &b.data);
            assert_eq!(r.status, 201, "blob push failed:\n{}", r.describe());
        }
        let r = self.put_manifest(repo, tag, &image.manifest);
        assert_eq!(r.status, 201, "manifest push failed:\n{}", r.describe());
    }

    /// The `repositories` of `/v2/_catalog` (asserts 200).
    pub fn catalog(&self) -> Vec<String> {
        let r = self.get("/v2/_catalog");
        assert_eq!(r.status, 200, "catalog:\n{}", r.describe());
        let v: Value = serde_json::from_slice(&r.body).expect("catalog JSON");
        v["repositories"]
            .as_array()
            .unwrap_or_else(|| panic!("no repositories array: {}", r.text()))
            .iter()
            .map(|x| x.as_str().expect("name").to_string())
            .collect()
    }
}
