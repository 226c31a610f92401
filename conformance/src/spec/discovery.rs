//! Content discovery (tags, referrers) and content management (deletes).

use super::*;

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
