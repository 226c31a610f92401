//! Maps the domain error onto HTTP: status code plus the OCI error body
//! `{"errors":[{"code","message","detail"}]}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use storage::{Error, ErrorCode};

/// The HTTP face of [`storage::Error`].
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(Error::new(code, message))
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BlobUnknown
        | ErrorCode::BlobUploadUnknown
        | ErrorCode::ManifestUnknown
        | ErrorCode::NameUnknown
        | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::BlobUploadInvalid
        | ErrorCode::DigestInvalid
        | ErrorCode::ManifestBlobUnknown
        | ErrorCode::ManifestInvalid
        | ErrorCode::NameInvalid
        | ErrorCode::SizeInvalid
        | ErrorCode::TagInvalid
        | ErrorCode::PaginationInvalid => StatusCode::BAD_REQUEST,
        ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Denied => StatusCode::FORBIDDEN,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = status_of(err.code);
        match err.code {
            ErrorCode::Internal => tracing::error!(error = %err, "internal error"),
            ErrorCode::Unavailable | ErrorCode::StorageFull => {
                tracing::warn!(error = %err, "request refused: backend unavailable")
            }
            _ => {}
        }
        let mut entry = serde_json::json!({ "code": err.code.as_str(), "message": err.message });
        if let Some(detail) = err.detail {
            entry["detail"] = detail;
        }
        let body = serde_json::json!({ "errors": [entry] }).to_string();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        resp.extensions_mut()
            .insert(crate::observe::access::OciCode(err.code.as_str()));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}
