//! Extras: Docker Registry HTTP API V2 and RFC 9110 details clients rely on,
//! and this project's own choices. Reported apart; they never fail a run.

use super::*;

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
