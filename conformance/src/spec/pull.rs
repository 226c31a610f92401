//! Pull: manifests, blobs, and checking if content exists.

use super::*;

pub const MANIFEST_GET: Rule = rule(
    Must,
    PULL_MANIFESTS,
    "A GET request to an existing manifest URL MUST provide the expected manifest, with a \
     response code that MUST be `200 OK`.",
);
pub const MANIFEST_CONTENT_TYPE: Rule = rule(
    Should,
    PULL_MANIFESTS,
    "The `Content-Type` header SHOULD match what the client pushed as the manifest's \
     `Content-Type`.",
);
pub const MANIFEST_CT_PARAMS: Rule = rule(
    Should,
    PULL_MANIFESTS,
    "The registry SHOULD NOT include parameters on the `Content-Type` header.",
);
pub const MANIFEST_DCD: Rule = rule(
    Should,
    PULL_MANIFESTS,
    "A successful response SHOULD contain the digest of the uploaded blob in the header \
     `Docker-Content-Digest`.",
);
pub const MANIFEST_DCD_VALUE: Rule = rule(
    Must,
    "Pull / Pulling manifests; Push / Pushing Manifests",
    "The `Docker-Content-Digest` header, if present on the response, returns the canonical \
     digest of the uploaded blob which MAY differ from the provided digest. [...] The \
     Docker-Content-Digest header returns the canonical digest of the uploaded blob, and MUST \
     be equal to the client provided digest.",
);
pub const MANIFEST_NOT_FOUND: Rule = rule(
    Must,
    PULL_MANIFESTS,
    "If the manifest is not found in the repository, the response code MUST be `404 Not Found`.",
);
pub const NONEXISTENT_REPO: Rule = rule(
    Must,
    PUSH_MANIFESTS,
    "An attempt to pull a nonexistent repository MUST return response code `404 Not Found`.",
);
pub const BLOB_GET: Rule = rule(
    Must,
    PULL_BLOBS,
    "A GET request to an existing blob URL MUST provide the expected blob, with a response \
     code that MUST be `200 OK`.",
);
pub const BLOB_DCD: Rule = rule(
    Should,
    PULL_BLOBS,
    "A successful response SHOULD contain the digest of the uploaded blob in the header \
     `Docker-Content-Digest`.",
);
pub const BLOB_DCD_VALUE: Rule = rule(
    Must,
    PULL_BLOBS,
    "If present, the value of this header MUST be a digest matching that of the response body.",
);
pub const BLOB_NOT_FOUND: Rule = rule(
    Must,
    PULL_BLOBS,
    "If the blob is not found in the repository, the response code MUST be `404 Not Found`.",
);
pub const RANGE: Rule = rule(
    Should,
    PULL_BLOBS,
    "A registry SHOULD support the `Range` request header in accordance with RFC 9110. \
     (RFC 9110 §14.2, §15.3.7: 206 with `Content-Range`; §15.5.17: an unsatisfiable range \
     SHOULD get 416 with `Content-Range: bytes */<length>`.)",
);
pub const HEAD_200: Rule = rule(
    Must,
    HEAD,
    "A HEAD request to an existing blob or manifest URL MUST return `200 OK`.",
);
pub const HEAD_DCD: Rule = rule(
    Should,
    HEAD,
    "A successful response SHOULD contain the digest of the uploaded blob in the header \
     `Docker-Content-Digest`.",
);
pub const HEAD_LENGTH: Rule = rule(
    Should,
    HEAD,
    "A successful response SHOULD contain the size in bytes of the uploaded blob in the \
     header `Content-Length`.",
);
pub const HEAD_NOT_FOUND: Rule = rule(
    Must,
    HEAD,
    "If the blob or manifest is not found in the repository, the response code MUST be \
     `404 Not Found`.",
);
