//! ECR's error shape (AWS JSON 1.1): a status, `x-amzn-ErrorType`, and a
//! body `{"__type": "...", "message": "..."}`, the form botocore reads
//! into `ClientError` (`e.response["Error"]["Code"]`). Every answer of the
//! ECR endpoint that is not a success has this form: refusals of the gate
//! (signatures, access), the operations' own errors, storage failures.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use storage::ErrorCode;

#[derive(Debug, Clone)]
pub struct EcrError {
    pub status: StatusCode,
    /// The exception's name, as the service model spells it.
    pub kind: &'static str,
    pub message: String,
}

impl EcrError {
    /// A client error (400), as ECR answers nearly all of them.
    pub fn new(kind: &'static str, message: impl Into<String>) -> EcrError {
        EcrError {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> EcrError {
        EcrError::new("InvalidParameterException", message)
    }

    pub fn repository_not_found(name: &str, registry_id: &str) -> EcrError {
        EcrError::new(
            "RepositoryNotFoundException",
            format!(
                "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
            ),
        )
    }

    pub fn access_denied(what: &str) -> EcrError {
        EcrError::new(
            "AccessDeniedException",
            format!("User is not authorized to perform: {what}"),
        )
    }

    pub fn server(message: impl Into<String>) -> EcrError {
        EcrError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "ServerException",
            message: message.into(),
        }
    }

    pub fn throttled(retry_after: u64) -> EcrError {
        EcrError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "ThrottlingException",
            message: format!("Rate exceeded: too many failed signatures; retry in {retry_after} s"),
        }
    }

    /// A storage error, as the nearest ECR exception.
    pub fn from_storage(e: &storage::Error, registry_id: &str) -> EcrError {
        match e.code {
            ErrorCode::NameUnknown => EcrError::new(
                "RepositoryNotFoundException",
                format!("{} (registry {registry_id})", e.message),
            ),
            ErrorCode::NameInvalid
            | ErrorCode::TagInvalid
            | ErrorCode::ManifestInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::PaginationInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::ManifestBlobUnknown => EcrError::invalid(e.message.clone()),
            ErrorCode::ManifestUnknown => {
                EcrError::new("ImageNotFoundException", e.message.clone())
            }
            ErrorCode::BlobUnknown => EcrError::new("LayersNotFoundException", e.message.clone()),
            ErrorCode::BlobUploadUnknown => {
                EcrError::new("UploadNotFoundException", e.message.clone())
            }
            ErrorCode::TooLarge | ErrorCode::Denied | ErrorCode::StorageFull => {
                EcrError::new("LimitExceededException", e.message.clone())
            }
            ErrorCode::Unsupported => {
                EcrError::new("UnsupportedOperationException", e.message.clone())
            }
            ErrorCode::Unavailable => EcrError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "ServerException",
                message: e.message.clone(),
            },
            _ => EcrError::server(e.message.clone()),
        }
    }
}

/// A storage error where no registry ID is at hand (`?` in handlers).
impl From<storage::Error> for EcrError {
    fn from(e: storage::Error) -> EcrError {
        EcrError::from_storage(&e, "")
    }
}

impl IntoResponse for EcrError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.kind, "message": self.message }).to_string();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            body,
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(self.kind) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
        // The access log's `error` field.
        resp.extensions_mut()
            .insert(crate::observe::access::OciCode(self.kind));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_ecr_json() {
        let resp = EcrError::invalid("bad").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()["x-amzn-errortype"],
            "InvalidParameterException"
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 10)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"__type": "InvalidParameterException", "message": "bad"})
        );
    }
}
