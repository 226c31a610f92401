//! The one error type of the registry domain. Each variant carries an OCI
//! distribution error code; the HTTP layer maps codes to status codes.

use std::fmt;

/// Why a request failed. Kept free of HTTP so storage stays
/// transport-agnostic. A 4xx answer carries one of the OCI distribution
/// spec's codes (its table is closed: "The `code` field MUST be one of the
/// following"), so the variants without a code of their own borrow the
/// closest one; 5xx answers carry the Docker registry's `UNKNOWN` and
/// `UNAVAILABLE`, which the spec has none for and Docker clients know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unsupported,
    /// Not an OCI code: an upload chunk that does not start at the current
    /// offset, or a Range header that cannot be satisfied (HTTP 416).
    RangeInvalid,
    /// Payload over a configured limit (HTTP 413).
    TooLarge,
    /// A query parameter is invalid: `n` in a paginated listing is not a
    /// number, a path climbs out of the root.
    PaginationInvalid,
    /// What the request names cannot be processed (HTTP 422): a layer too
    /// large to index, or not a layer.
    Unprocessable,
    /// No such endpoint.
    NotFound,
    /// A backend is busy or unreachable for now; the request may be retried
    /// (HTTP 503 with `Retry-After`).
    Unavailable,
    /// The storage is full (HTTP 507): nothing was stored, and pushes work
    /// again once space is freed.
    StorageFull,
    /// Not allowed: a quota would be exceeded (HTTP 403 `DENIED`).
    Denied,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::RangeInvalid => "BLOB_UPLOAD_INVALID",
            // "unsupported due to ... an invalid set of parameters"
            ErrorCode::PaginationInvalid => "UNSUPPORTED",
            ErrorCode::TooLarge => "SIZE_INVALID",
            ErrorCode::Unprocessable => "UNSUPPORTED",
            // "unsupported due to a missing implementation"
            ErrorCode::NotFound => "UNSUPPORTED",
            ErrorCode::Unavailable | ErrorCode::StorageFull => "UNAVAILABLE",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Internal => "UNKNOWN",
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn internal(err: impl fmt::Display) -> Self {
        Error::new(ErrorCode::Internal, err.to_string())
    }

    pub fn blob_unknown(digest: impl fmt::Display) -> Self {
        Error::new(ErrorCode::BlobUnknown, "blob unknown to registry")
            .with_detail(serde_json::json!({ "digest": digest.to_string() }))
    }

    pub fn manifest_unknown(reference: impl fmt::Display) -> Self {
        Error::new(ErrorCode::ManifestUnknown, "manifest unknown")
            .with_detail(serde_json::json!({ "reference": reference.to_string() }))
    }

    /// ECR's wording, which `docker push` shows after `tag invalid: `.
    pub fn tag_immutable(repo: &str, tag: &str) -> Self {
        Error::new(
            ErrorCode::TagInvalid,
            format!(
                "The image tag '{tag}' already exists in the '{repo}' repository and cannot be \
                 overwritten because the repository is immutable."
            ),
        )
        .with_detail(serde_json::json!({ "name": repo, "tag": tag }))
    }

    pub fn name_unknown(name: &str) -> Self {
        Error::new(
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        )
        .with_detail(serde_json::json!({ "name": name }))
    }

    pub fn upload_unknown(id: &str) -> Self {
        Error::new(
            ErrorCode::BlobUploadUnknown,
            "blob upload unknown to registry",
        )
        .with_detail(serde_json::json!({ "uuid": id }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// What a database error means for the request: the backend is out of
/// reach or busy for now (503), or full (507), or something else (500).
fn database_code(e: &sqlx::Error) -> ErrorCode {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => ErrorCode::Unavailable,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                match code {
                    "53100" => ErrorCode::StorageFull, // disk_full
                    // Connections, resources, shutdown, lock waits, and
                    // transactions that lost a race after their retries.
                    "53000" | "53200" | "53300" | "55P03" | "57014" | "57P01" | "57P02"
                    | "57P03" | "40001" | "40P01" => ErrorCode::Unavailable,
                    c if c.starts_with("08") => ErrorCode::Unavailable,
                    _ => ErrorCode::Internal,
                }
            } else {
                // SQLite's primary result code is the low byte of the
                // extended one sqlx reports.
                match db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff)
                {
                    Some(5 | 6) => ErrorCode::Unavailable, // BUSY, LOCKED
                    Some(13) => ErrorCode::StorageFull,    // FULL
                    _ => ErrorCode::Internal,
                }
            }
        }
        _ => ErrorCode::Internal,
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let code = database_code(&e);
        let message = match code {
            ErrorCode::Unavailable => {
                format!("metadata database unavailable or busy, retry later: {e}")
            }
            ErrorCode::StorageFull => format!("metadata database: disk full: {e}"),
            _ => format!("metadata database: {e}"),
        };
        Error::new(code, message)
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::internal(format_args!("blob store: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => Error::new(
                ErrorCode::StorageFull,
                format!("the registry's storage is full ({e}); nothing was stored"),
            ),
            _ => Error::internal(format_args!("io: {e}")),
        }
    }
}
