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

mod discovery;
mod extras;
mod pull;
mod push;

pub use discovery::*;
pub use extras::*;
pub use pull::*;
pub use push::*;

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
