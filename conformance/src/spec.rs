//! The requirements the checks enforce, each with the sentence it comes from
//! and its level. Sentences are quoted from the OCI distribution spec v1.1
//! (`spec.md`); a sentence that states the protocol's outcome with "will"
//! (tag and manifest deletion, `last`) is held at MUST, as the spec's own
//! conformance suite does. Extras are behaviour the spec does not require:
//! the Docker Registry HTTP API V2 and RFC 9110 details clients rely on, and
//! choices this project made; they are reported apart and never fail a run.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Must,
    Should,
    May,
    Extra,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::Extra => "EXTRA",
        })
    }
}

/// One cited requirement.
#[derive(Debug)]
pub struct Rule {
    pub level: Level,
    /// Where the sentence is: `spec.md` section, or the outside source.
    pub section: &'static str,
    pub text: &'static str,
}

const fn rule(level: Level, section: &'static str, text: &'static str) -> Rule {
    Rule {
        level,
        section,
        text,
    }
}

use Level::{Extra, May, Must, Should};

const PULL_MANIFESTS: &str = "Pull / Pulling manifests";
const PULL_BLOBS: &str = "Pull / Pulling blobs";
const HEAD: &str = "Pull / Checking if content exists in the registry";
const PUSH: &str = "Push";
const POST_PUT: &str = "Push / POST then PUT";
const SINGLE_POST: &str = "Push / Single POST";
const CHUNKS: &str = "Push / Pushing a blob in chunks";
const MOUNT: &str = "Push / Mounting a blob from another repository";
const PUSH_MANIFESTS: &str = "Push / Pushing Manifests";
const SUBJECT: &str = "Push / Pushing Manifests with Subject";
const TAGS: &str = "Content Discovery / Listing Tags";
const REFERRERS: &str = "Content Discovery / Listing Referrers";
const DEL_TAGS: &str = "Content Management / Deleting tags";
const DEL_MANIFESTS: &str = "Content Management / Deleting Manifests";
const DEL_BLOBS: &str = "Content Management / Deleting Blobs";
const ERRORS: &str = "API / Error Codes";

// ---------------------------------------------------------------- base

pub const BASE: Rule = rule(
    Must,
    "API / Determining Support; Endpoints end-1",
    "If the response is `200 OK`, then the registry implements this specification. \
     (end-1: `GET /v2/`, success `200`, failure `404`/`401`)",
);

// ---------------------------------------------------------------- pull

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

// ---------------------------------------------------------------- push

pub const POST_202: Rule = rule(
    Must,
    POST_PUT,
    "Upon success, the response MUST have a code of `202 Accepted`, and MUST include the \
     following header: `Location: <location>`",
);
pub const LOCATION_UUID: Rule = rule(
    Must,
    POST_PUT,
    "The `<location>` MUST contain a UUID representing a unique session ID for the upload to \
     follow.",
);
pub const PUT_201: Rule = rule(
    Must,
    POST_PUT,
    "Upon successful completion of the request, the response MUST have code `201 Created` and \
     MUST have the following header: `Location: <blob-location>` With `<blob-location>` being \
     a pullable blob URL.",
);
pub const DIGEST_MISMATCH: Rule = rule(
    Must,
    "Push / POST then PUT; Pull / Pulling blobs",
    "Here, `<digest>` is the digest of the blob being uploaded [...] A GET request to an \
     existing blob URL MUST provide the expected blob (end-6 `PUT ...?digest=<digest>`: \
     failure `404`/`400`)",
);
pub const SINGLE_POST_MAY: Rule = rule(
    May,
    SINGLE_POST,
    "Registries MAY support pushing blobs using a single POST request.",
);
pub const SINGLE_POST_202: Rule = rule(
    Should,
    SINGLE_POST,
    "Registries that do not support single request monolithic uploads SHOULD return a `202 \
     Accepted` status code and `Location` header and clients SHOULD proceed with a subsequent \
     PUT request",
);
pub const SINGLE_POST_201: Rule = rule(
    Must,
    SINGLE_POST,
    "Successful completion of the request MUST return a `201 Created` and MUST include the \
     following header: `Location: <blob-location>` Here, `<blob-location>` is a pullable blob \
     URL.",
);
pub const PATCH_202: Rule = rule(
    Must,
    CHUNKS,
    "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the \
     following headers: `Location: <location>` `Range: 0-<end-of-range>`",
);
pub const CHUNK_ORDER: Rule = rule(
    Must,
    CHUNKS,
    "Chunks MUST be uploaded in order, with the first byte of a chunk being the last chunk's \
     `<end-of-range>` plus one. If a chunk is uploaded out of order, the registry MUST respond \
     with a `416 Requested Range Not Satisfiable` code.",
);
pub const CLOSE_PUT: Rule = rule(
    Must,
    CHUNKS,
    "The response to a successful closing of the session MUST be `201 Created`, and MUST \
     contain the following header: `Location: <blob-location>` Here, `<blob-location>` is a \
     pullable blob URL.",
);
pub const FINAL_CHUNK_IN_PUT: Rule = rule(
    Must,
    CHUNKS,
    "The final chunk MAY be uploaded using a `PATCH` request or it MAY be uploaded in the \
     closing `PUT` request. Regardless of how the final chunk is uploaded, the session MUST be \
     closed with a `PUT` request. (The client's choice: the registry must take either.)",
);
pub const STATUS_204: Rule = rule(
    Must,
    CHUNKS,
    "The response to an active upload `<location>` MUST be a `204 No Content` response code, \
     and MUST have the following headers: `Location: <location>` `Range: 0-<end-of-range>`",
);
pub const STATUS_INACTIVE: Rule = rule(
    Must,
    "API / Endpoints end-13",
    "end-13: `GET /v2/<name>/blobs/uploads/<reference>`, success `204`, failure `404` \
     (only an active upload answers 204).",
);
pub const MOUNT_201: Rule = rule(
    Must,
    MOUNT,
    "The response to a successful mount MUST be `201 Created`, and MUST contain the following \
     header: `Location: <blob-location>`",
);
pub const MOUNT_MAY: Rule = rule(
    May,
    MOUNT,
    "Alternatively, if a registry does not support cross-repository mounting or is unable to \
     mount the requested blob, it SHOULD return a `202`. (So mounting is optional: 201 shows \
     support.)",
);
pub const MOUNT_202: Rule = rule(
    Should,
    MOUNT,
    "Alternatively, if a registry does not support cross-repository mounting or is unable to \
     mount the requested blob, it SHOULD return a `202`. This indicates that the upload \
     session has begun and that the client MAY proceed with the upload.",
);
pub const MANIFEST_PUT_201: Rule = rule(
    Must,
    PUSH_MANIFESTS,
    "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST \
     have the following header: `Location: <location>` The `<location>` is a pullable \
     manifest URL.",
);
pub const MANIFEST_EXACT_BYTES: Rule = rule(
    Must,
    PUSH_MANIFESTS,
    "The registry MUST store the manifest in the exact byte representation provided by the \
     client.",
);
pub const MANIFEST_LIMIT_413: Rule = rule(
    Should,
    PUSH_MANIFESTS,
    "A registry SHOULD enforce some limit on the maximum manifest size that it can accept. A \
     registry that enforces this limit SHOULD respond to a request to push a manifest over \
     this limit with a response code `413 Payload Too Large`.",
);
pub const MANIFEST_4MB: Rule = rule(
    Should,
    PUSH_MANIFESTS,
    "Client and registry implementations SHOULD expect to be able to support manifest pushes \
     of at least 4 megabytes.",
);
pub const REJECTED_NOT_STORED: Rule = rule(
    Must,
    "Push / Pushing Manifests; Pull / Pulling manifests",
    "The registry MUST store the manifest in the exact byte representation provided by the \
     client. [A manifest it refused is not stored:] If the manifest is not found in the \
     repository, the response code MUST be `404 Not Found`.",
);
pub const SUBJECT_ACCEPT: Rule = rule(
    Must,
    PUSH,
    "A registry MUST initially accept an otherwise valid manifest with a `subject` field that \
     references a manifest that does not exist in the repository, allowing clients to push a \
     manifest and referrers to that manifest in either order.",
);
pub const UNKNOWN_REF_MAY: Rule = rule(
    May,
    PUSH,
    "A registry MAY reject a manifest uploaded to the manifest endpoint with descriptors in \
     other fields that reference a manifest or blob that does not exist in the registry.",
);
pub const UNKNOWN_REF_CODE: Rule = rule(
    Must,
    PUSH,
    "When a manifest is rejected for this reason, it MUST result in one or more \
     `MANIFEST_BLOB_UNKNOWN` errors.",
);
pub const OCI_SUBJECT: Rule = rule(
    Must,
    SUBJECT,
    "When processing a request for an image manifest with the `subject` field, a registry \
     implementation that supports the referrers API MUST respond with the response header \
     `OCI-Subject: <subject digest>` to indicate to the client that the registry processed \
     the request's `subject`.",
);
pub const NAME_GRAMMAR: Rule = rule(
    Must,
    PULL_MANIFESTS,
    "Throughout this document, `<name>` MUST match the following regular expression: \
     `[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*` \
     (a registry must not act on a name outside it: no 2xx)",
);
pub const TAG_GRAMMAR: Rule = rule(
    Must,
    PULL_MANIFESTS,
    "Throughout this document, `<reference>` as a tag MUST be at most 128 characters in \
     length and MUST match the following regular expression: \
     `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (a registry must not store such a tag)",
);
pub const DIGEST_SYNTAX: Rule = rule(
    Must,
    "API / Endpoints end-2; Error Codes",
    "end-2: `GET /v2/<name>/blobs/<digest>`, failure `404`; code-4 `DIGEST_INVALID` (a digest \
     that is not one is refused, with 404 or 400)",
);
pub const MANIFEST_IS_JSON: Rule = rule(
    Must,
    "Definitions; API / Error Codes",
    "Manifest: a JSON document uploaded via the manifests endpoint. [...] code-6 \
     `MANIFEST_INVALID`: manifest invalid (a body that is not a manifest is refused: no 2xx)",
);
pub const MANIFEST_DIGEST_REF: Rule = rule(
    Must,
    PUSH_MANIFESTS,
    "`<reference>` MUST be either a) a digest or b) a tag. [...] The Docker-Content-Digest \
     header returns the canonical digest of the uploaded blob, and MUST be equal to the \
     client provided digest. (A body that does not hash to the digest in the URL is refused.)",
);

// ---------------------------------------------------------------- discovery

pub const TAGS_200: Rule = rule(
    Must,
    TAGS,
    "Assuming a repository is found, this request MUST return a `200 OK` response code. [...] \
     Upon success, the response MUST be a json body in the following format: \
     {\"name\": \"<name>\", \"tags\": [\"<tag1>\", ...]}",
);
pub const TAGS_ORDER: Rule = rule(
    Must,
    TAGS,
    "If the list is not empty, the tags MUST be in lexical order (i.e. case-insensitive \
     alphanumeric order).",
);
pub const TAGS_N: Rule = rule(
    Must,
    TAGS,
    "The response to such a request MAY return fewer than `<int>` results, but only when the \
     total number of tags attached to the repository is less than `<int>` or a `Link` header \
     is provided. Otherwise, the response MUST include `<int>` results. [...] Without the \
     `last` query parameter (described next), the list returned will start at the beginning \
     of the list and include `<int>` results.",
);
pub const TAGS_LINK_MAY: Rule = rule(
    May,
    TAGS,
    "A `Link` header MAY be included in the response when additional tags are available.",
);
pub const TAGS_LINK: Rule = rule(
    Must,
    TAGS,
    "If included, the `Link` header MUST be set according to RFC5988 with the Relation Type \
     `rel=\"next\"`.",
);
pub const TAGS_N0: Rule = rule(
    Must,
    TAGS,
    "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a `Link` \
     header.",
);
pub const TAGS_LAST: Rule = rule(
    Must,
    TAGS,
    "A request of this sort will return up to `<int>` tags, beginning non-inclusively with \
     `<tagname>`. [...] The tags MUST be in lexical order. When using the `last` query \
     parameter, the `n` parameter is OPTIONAL.",
);
pub const TAGS_UNKNOWN_REPO: Rule = rule(
    Must,
    "Content Discovery / Listing Tags; API / Endpoints end-8a",
    "Assuming a repository is found, this request MUST return a `200 OK` response code. \
     (end-8a: `GET /v2/<name>/tags/list`, failure `404`)",
);
pub const REFERRERS_SUPPORT: Rule = rule(
    Should,
    "Conformance / Requirements; Backwards Compatibility",
    "Registries SHOULD also support the Push, Content Discovery, and Content Management \
     categories. [...] A client querying the referrers API and receiving a `404 Not Found` \
     MUST fallback to using an image index pushed to a tag described by the referrers tag \
     schema.",
);
pub const REFERRERS_NO_404: Rule = rule(
    Must,
    REFERRERS,
    "If the registry supports the referrers API, the registry MUST NOT return a `404 Not \
     Found` to a referrers API requests.",
);
pub const REFERRERS_200: Rule = rule(
    Must,
    REFERRERS,
    "Assuming a repository is found, this request MUST return a `200 OK` response code. [...] \
     Upon success, the response MUST be a JSON body with an image index containing a list of \
     descriptors. The `Content-Type` header MUST be set to \
     `application/vnd.oci.image.index.v1+json`.",
);
pub const REFERRERS_BAD_DIGEST: Rule = rule(
    Must,
    REFERRERS,
    "If the request is invalid, such as a `<digest>` with an invalid syntax, a `400 Bad \
     Request` MUST be returned.",
);
pub const REFERRERS_LIST: Rule = rule(
    Must,
    REFERRERS,
    "Each descriptor is of an image manifest or index in the same `<name>` namespace with a \
     `subject` field that specifies the value of `<digest>`. (Registries MUST include all \
     newly pushed image manifests with a valid `subject` field in the referrers API \
     response.)",
);
pub const REFERRERS_ARTIFACT_TYPE: Rule = rule(
    Must,
    REFERRERS,
    "The descriptors MUST include an `artifactType` field that is set to the value of the \
     `artifactType` in the image manifest or index, if present. [...] The descriptors MUST \
     include annotations from the image manifest or index.",
);
pub const REFERRERS_FALLBACK: Rule = rule(
    Must,
    REFERRERS,
    "If the `artifactType` is empty or missing in the image manifest, the value of \
     `artifactType` MUST be set to the config descriptor `mediaType` value.",
);
pub const REFERRERS_INDEX_NO_TYPE: Rule = rule(
    Must,
    REFERRERS,
    "If the `artifactType` is empty or missing in an index, the `artifactType` MUST be \
     omitted.",
);
pub const REFERRERS_EMPTY: Rule = rule(
    Must,
    REFERRERS,
    "If a query results in no matching referrers, an empty manifest list MUST be returned.",
);
pub const REFERRERS_LINK: Rule = rule(
    Must,
    REFERRERS,
    "A `Link` header MUST be included in the response when the descriptor list cannot be \
     returned in a single manifest. Each response is an image index with different \
     descriptors in the `manifests` field. The `Link` header MUST be set according to \
     RFC5988 with the Relation Type `rel=\"next\"`.",
);
pub const REFERRERS_FILTER: Rule = rule(
    Should,
    REFERRERS,
    "The registry SHOULD support filtering on `artifactType`.",
);
pub const REFERRERS_FILTER_HEADER: Rule = rule(
    Must,
    REFERRERS,
    "If filtering is requested and applied, the response MUST include a header \
     `OCI-Filters-Applied: artifactType` denoting that an `artifactType` filter was applied.",
);

// ---------------------------------------------------------------- management

pub const DELETE_MAY: Rule = rule(
    May,
    "Content Management",
    "Registries MAY implement deletion or they MAY disable it. Similarly, a registry MAY \
     implement tag deletion, while others MAY allow deletion only by manifest.",
);
pub const TAG_DELETE: Rule = rule(
    Must,
    DEL_TAGS,
    "Upon success, the registry MUST respond with a `202 Accepted` code. If tag deletion is \
     disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not \
     Allowed`.",
);
pub const TAG_DELETED: Rule = rule(
    Must,
    DEL_TAGS,
    "Once deleted, a `GET` to `/v2/<name>/manifests/<tag>` will return a 404.",
);
pub const TAG_DELETE_KEEPS_MANIFEST: Rule = rule(
    Must,
    "Definitions; Content Management",
    "Tag: a custom, human-readable pointer to a manifest. A manifest digest may have zero, \
     one, or many tags referencing it. [...] a registry MAY implement tag deletion, while \
     others MAY allow deletion only by manifest. (Deleting a tag is not deleting its manifest.)",
);
pub const MANIFEST_DELETE: Rule = rule(
    Must,
    DEL_MANIFESTS,
    "Upon success, the registry MUST respond with a `202 Accepted` code. [...] If manifest \
     deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a \
     `405 Method Not Allowed`.",
);
pub const MANIFEST_DELETE_NO_REPO: Rule = rule(
    Must,
    DEL_MANIFESTS,
    "If the repository does not exist, the response MUST return `404 Not Found`.",
);
pub const MANIFEST_DELETED: Rule = rule(
    Must,
    DEL_MANIFESTS,
    "Once deleted, a `GET` to `/v2/<name>/manifests/<digest>` and any tag pointing to that \
     digest will return a 404.",
);
pub const BLOB_DELETE: Rule = rule(
    Must,
    DEL_BLOBS,
    "Upon success, the registry MUST respond with code `202 Accepted`. [...] If blob deletion \
     is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method \
     Not Allowed`.",
);
pub const BLOB_DELETE_UNKNOWN: Rule = rule(
    Must,
    DEL_BLOBS,
    "If the blob is not found, a `404 Not Found` code MUST be returned. If blob deletion is \
     disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not \
     Allowed`.",
);

// ---------------------------------------------------------------- errors

pub const ERROR_FORMAT: Rule = rule(
    Must,
    ERRORS,
    "A `4XX` response code from the registry MAY return a body in any format. If the response \
     body is in JSON format, it MUST have the following format: {\"errors\": [{\"code\": ..., \
     \"message\": ..., \"detail\": ...}, ...]} The `code` field MUST be one of the following: \
     BLOB_UNKNOWN, BLOB_UPLOAD_INVALID, BLOB_UPLOAD_UNKNOWN, DIGEST_INVALID, \
     MANIFEST_BLOB_UNKNOWN, MANIFEST_INVALID, MANIFEST_UNKNOWN, NAME_INVALID, NAME_UNKNOWN, \
     SIZE_INVALID, UNAUTHORIZED, DENIED, UNSUPPORTED, TOOMANYREQUESTS. (Legacy: \"The client \
     MAY encounter error codes targeting Docker schema1 manifests, such as `TAG_INVALID`, or \
     `MANIFEST_UNVERIFIED`.\")",
);

/// Codes a 4xx JSON body may carry: the spec's table plus the two legacy
/// Docker codes it names.
pub const ERROR_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "TAG_INVALID",
    "MANIFEST_UNVERIFIED",
];

// ---------------------------------------------------------------- extras

const DOCKER_API: &str = "Docker Registry HTTP API V2 (not in the OCI spec)";

pub const X_API_VERSION: Rule = rule(
    Extra,
    DOCKER_API,
    "`GET /v2/` answers with `Docker-Distribution-API-Version: registry/2.0`. (The OCI spec: \
     these headers are OPTIONAL and clients SHOULD NOT depend on them.)",
);
pub const X_UPLOAD_UUID: Rule = rule(
    Extra,
    DOCKER_API,
    "Upload responses (POST 202, PATCH 202, status 204) carry `Docker-Upload-UUID`, and \
     `Range: 0-<end>` on the POST.",
);
pub const X_UPLOAD_HEAD: Rule = rule(
    Extra,
    "RFC 9110 §9.3.2; CNCF distribution",
    "The HEAD method is identical to GET except that the server MUST NOT send content in the \
     response. (HEAD on an upload URL answers like the status GET, as the CNCF registry does.)",
);
pub const X_UPLOAD_CANCEL: Rule = rule(
    Extra,
    DOCKER_API,
    "`DELETE /v2/<name>/blobs/uploads/<uuid>` cancels an upload: 204, and the upload is then \
     unknown (404).",
);
pub const X_ERROR_CODE: Rule = rule(
    Extra,
    "API / Error Codes (codes not bound to cases)",
    "The error code names the condition: BLOB_UNKNOWN, BLOB_UPLOAD_UNKNOWN, DIGEST_INVALID, \
     MANIFEST_INVALID, MANIFEST_UNKNOWN, NAME_INVALID, NAME_UNKNOWN as the table describes \
     them, in a JSON body with status 400 or 404.",
);
pub const X_ETAG: Rule = rule(
    Extra,
    "RFC 9110 §8.8.3, §13.1.2",
    "Blob and manifest responses carry an `ETag`; `If-None-Match` with it answers `304 Not \
     Modified` with no body.",
);
pub const X_DCD_PARTIAL: Rule = rule(
    Extra,
    "CNCF distribution",
    "206 and 304 blob responses carry the blob's `Docker-Content-Digest`, like the 200.",
);
pub const X_MOUNT_AUTO: Rule = rule(
    Extra,
    MOUNT,
    "A mount without `from` (`POST ?mount=<digest>`) mounts the blob from a repository the \
     caller may read that has it (automatic mount; without it, a registry opens an upload \
     session, 202).",
);
pub const X_PUT_DCD: Rule = rule(
    Extra,
    DOCKER_API,
    "Blob and manifest PUT, mount and single POST answers carry `Docker-Content-Digest`.",
);
pub const X_SCHEMA1: Rule = rule(
    Extra,
    "This registry's policy",
    "Docker schema 1 manifests are refused with 400 `MANIFEST_INVALID` (schema 1 is \
     deprecated; the OCI spec neither requires nor forbids it).",
);
pub const X_ACCEPT: Rule = rule(
    Extra,
    "Content negotiation (RFC 7231 §5.3.2; content-negotiation.md)",
    "A manifest whose type the `Accept` header does not list is either served as stored or \
     refused (404/406), never converted. Shows the registry's choice.",
);
pub const X_INDEX_CHILD_DELETE: Rule = rule(
    Extra,
    DEL_MANIFESTS,
    "Deleting a manifest that an index still references: the spec says nothing. Shows the \
     registry's choice (delete, or refuse).",
);
pub const X_OCI_SUBJECT_INDEX: Rule = rule(
    Extra,
    "Spec conformance suite",
    "An index with a `subject` also gets `OCI-Subject` (the spec names image manifests; its \
     conformance suite expects it for indexes too).",
);
pub const X_CATALOG: Rule = rule(
    Extra,
    "Docker Registry HTTP API V2 / Listing Repositories (not in the OCI spec)",
    "`GET /v2/_catalog` lists repositories in lexical order; `n` limits a page, `Link: <..>; \
     rel=\"next\"` points at the next, and `last` starts after the given name.",
);
