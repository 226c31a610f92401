//! Push: uploads (POST then PUT, single POST, chunks), mounts, manifests and subjects.

use super::*;

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
