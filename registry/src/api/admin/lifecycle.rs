//! Lifecycle policies through `/api/v1/repositories/<name>/lifecycle`:
//! - `GET` (pull): `{name, policy}` (`null` without one);
//! - `PUT` with ECR's policy JSON (delete: it decides what goes): validated
//!   with ECR's rules, stored, answered with the policy as stored;
//! - `DELETE` (delete): removes it;
//! - `POST .../lifecycle/preview` (pull), with a policy to try or an empty
//!   body for the stored one: `{name, expired: [...]}`, exactly what a run
//!   would expire now;
//! - `POST .../lifecycle/run` (delete): apply the stored policy now.
//!
//! Policies also run on the collection schedule (`[gc] interval_secs`).

use crate::http::error::ApiError;
use axum::response::{IntoResponse, Response};
use axum::Json;
use storage::lifecycle::Policy;
use storage::{ErrorCode, Registry};

/// Largest policy accepted (ECR's limit is 30 KiB of text).
pub const MAX_POLICY: usize = 64 << 10;

/// The route of a lifecycle request: repository and what of it.
pub enum Op<'a> {
    Policy(&'a str),
    Preview(&'a str),
    Run(&'a str),
}

pub fn route(path: &str) -> Option<Op<'_>> {
    let rest = path.strip_prefix("/api/v1/repositories/")?;
    if let Some(name) = rest.strip_suffix("/lifecycle") {
        return Some(Op::Policy(name));
    }
    if let Some(name) = rest.strip_suffix("/lifecycle/preview") {
        return Some(Op::Preview(name));
    }
    rest.strip_suffix("/lifecycle/run").map(Op::Run)
}

pub async fn get(reg: &Registry, name: &str) -> Response {
    match reg.lifecycle_policy(name).await {
        Ok(p) => Json(serde_json::json!({ "name": name, "policy": p })).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn put(reg: &Registry, name: &str, body: &[u8], user: Option<&str>) -> Response {
    let text = String::from_utf8_lossy(body);
    match reg.set_lifecycle_policy(name, &text).await {
        Ok(p) => {
            tracing::info!(
                repository = name,
                rules = p.rules.len(),
                user,
                "lifecycle policy set"
            );
            Json(serde_json::json!({ "name": name, "policy": p })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn delete(reg: &Registry, name: &str, user: Option<&str>) -> Response {
    match reg.delete_lifecycle_policy(name).await {
        Ok(()) => {
            tracing::info!(repository = name, user, "lifecycle policy removed");
            Json(serde_json::json!({ "name": name, "policy": null })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn preview(reg: &Registry, name: &str, body: &[u8]) -> Response {
    let trial = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match Policy::parse(&String::from_utf8_lossy(body)) {
            Ok(p) => Some(p),
            Err(e) => return ApiError(e).into_response(),
        }
    };
    match reg.lifecycle_preview(name, trial.as_ref()).await {
        Ok(expired) => {
            Json(serde_json::json!({ "name": name, "expired": expired })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn run(reg: &Registry, name: &str, user: Option<&str>) -> Response {
    match reg.lifecycle_run(name).await {
        Ok(expired) => {
            tracing::info!(
                repository = name,
                images = expired.len(),
                user,
                "lifecycle policy applied"
            );
            Json(serde_json::json!({ "name": name, "expired": expired })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// A request body of at most [`MAX_POLICY`] bytes.
pub async fn body(req: axum::extract::Request) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(req.into_body(), MAX_POLICY)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("a lifecycle policy is at most {MAX_POLICY} bytes"),
            )
            .into_response()
        })
}
