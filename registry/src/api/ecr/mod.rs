//! The ECR API (AWS JSON 1.1, `X-Amz-Target: AmazonEC2ContainerRegistry_
//! V20150921.<Operation>`), on the operations the registry already has:
//! repositories, tags and manifests, uploads, lifecycle policies, tag
//! immutability and pull-through rules. The gate has checked the SigV4
//! signature and the right the operation needs on the repository the body
//! names ([`crate::gate::require`]); the handlers here read that same
//! repository from the parsed call, never from the body again.
//!
//! Shapes follow botocore's service model (`ecr` 2015-09-21): camelCase
//! members, timestamps as epoch seconds, errors as `{"__type", "message"}`
//! ([`EcrError`]). Operations of the model not served here answer
//! `UnsupportedOperationException` saying so (`docs/using/ecr.md`).

mod images;
mod layers;
mod policies;
mod pull_through;
mod repositories;

use crate::config::EcrConfig;
use crate::gate::Access;
use crate::http::ecr_error::EcrError;
use crate::routes::EcrCall;
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use storage::Registry;

pub use pull_through::{api_rules, spawn_rule_reloader};

/// An ECR request that passed the gate: the call it checked, the parsed
/// body, and the base URL clients reached us at.
pub struct EcrRequest {
    pub call: EcrCall,
    pub input: Value,
    /// `https://registry.example.com` (`external_url`, else this request's
    /// scheme and `Host`).
    pub base_url: String,
}

type Answer = Result<Value, EcrError>;

/// What every operation works with.
struct Ctx<'a> {
    state: &'a AppState,
    access: &'a Access,
    req: &'a EcrRequest,
    reg: Registry,
}

impl Ctx<'_> {
    fn cfg(&self) -> &EcrConfig {
        &self.state.ecr
    }

    fn id(&self) -> &str {
        &self.state.ecr.registry_id
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.req.input.get(key).and_then(Value::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, EcrError> {
        self.str(key).filter(|s| !s.is_empty()).ok_or_else(|| {
            EcrError::invalid(format!(
                "1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }

    /// The repository the gate checked; a request for another registry
    /// ID names nothing here.
    fn repo(&self) -> Result<&str, EcrError> {
        let name = self.req.call.repository.as_deref().ok_or_else(|| {
            EcrError::invalid(
                "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null",
            )
        })?;
        if storage::names::validate_name(name).is_err() {
            return Err(EcrError::invalid(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''; value '{name}'"
            )));
        }
        if let Some(other) = self.str("registryId").filter(|r| *r != self.id()) {
            return Err(EcrError::repository_not_found(name, other));
        }
        Ok(name)
    }

    /// The repository, which must exist as ECR sees it.
    async fn existing_repo(&self) -> Result<&str, EcrError> {
        let name = self.repo()?;
        match self.reg.ecr_repository(name).await {
            Ok(Some(_)) => Ok(name),
            Ok(None) => Err(EcrError::repository_not_found(name, self.id())),
            Err(e) => Err(self.storage(e)),
        }
    }

    fn storage(&self, e: storage::Error) -> EcrError {
        EcrError::from_storage(&e, self.id())
    }

    /// `host[:port]` of the base URL, as repository URIs start.
    fn host(&self) -> &str {
        let u = &self.req.base_url;
        u.split_once("://").map_or(u.as_str(), |(_, h)| h)
    }

    fn max_results(&self, default: i64, max: i64) -> Result<i64, EcrError> {
        match self.req.input.get("maxResults") {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    EcrError::invalid(format!(
                        "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {max}"
                    ))
                }),
        }
    }

    /// The position a `nextToken` of ours resumes after.
    fn next_token(&self) -> Result<Option<String>, EcrError> {
        match self.str("nextToken") {
            None => Ok(None),
            Some(t) => decode_token(t).map(Some).ok_or_else(|| {
                EcrError::invalid(
                    "Invalid parameter at 'nextToken': not a token this registry gave",
                )
            }),
        }
    }
}

/// A page's `nextToken`: where the next page starts after.
fn encode_token(after: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after)
}

fn decode_token(t: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    String::from_utf8(raw).ok()
}

/// Seconds since the epoch, as the JSON protocol writes timestamps.
fn ts_secs(secs: i64) -> Value {
    json!(secs)
}

fn ts_ms(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// `POST [ecr] path` with `X-Amz-Target`.
pub async fn handle(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Extension(req): Extension<Arc<EcrRequest>>,
) -> Response {
    let ctx = Ctx {
        reg: state.registry.acting_as(access.user()),
        state: &state,
        access: &access,
        req: &req,
    };
    let answer = match req.call.operation {
        None => Err(EcrError::new(
            "UnknownOperationException",
            "The operation in X-Amz-Target is not one of Amazon ECR's (AmazonEC2ContainerRegistry_V20150921.<Operation>)",
        )),
        Some(op) => dispatch(op, &ctx).await,
    };
    match answer {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            body.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn dispatch(op: &'static str, ctx: &Ctx<'_>) -> Answer {
    match op {
        "GetAuthorizationToken" => repositories::authorization_token(ctx).await,
        "DescribeRegistry" => Ok(json!({
            "registryId": ctx.id(),
            "replicationConfiguration": { "rules": [] },
        })),
        "CreateRepository" => repositories::create(ctx).await,
        "DescribeRepositories" => repositories::describe(ctx).await,
        "DeleteRepository" => repositories::delete(ctx).await,
        "PutImageTagMutability" => repositories::put_tag_mutability(ctx).await,
        "TagResource" => repositories::tag_resource(ctx).await,
        "UntagResource" => repositories::untag_resource(ctx).await,
        "ListTagsForResource" => repositories::list_tags(ctx).await,
        "DescribeImages" => images::describe(ctx).await,
        "ListImages" => images::list(ctx).await,
        "BatchGetImage" => images::batch_get(ctx).await,
        "BatchDeleteImage" => images::batch_delete(ctx).await,
        "PutImage" => images::put(ctx).await,
        "BatchCheckLayerAvailability" => layers::check(ctx).await,
        "InitiateLayerUpload" => layers::initiate(ctx).await,
        "UploadLayerPart" => layers::upload_part(ctx).await,
        "CompleteLayerUpload" => layers::complete(ctx).await,
        "GetDownloadUrlForLayer" => layers::download_url(ctx).await,
        "PutLifecyclePolicy" => policies::put(ctx).await,
        "GetLifecyclePolicy" => policies::get(ctx).await,
        "DeleteLifecyclePolicy" => policies::delete(ctx).await,
        "StartLifecyclePolicyPreview" => policies::start_preview(ctx).await,
        "GetLifecyclePolicyPreview" => policies::get_preview(ctx).await,
        "CreatePullThroughCacheRule" => pull_through::create(ctx).await,
        "DescribePullThroughCacheRules" => pull_through::describe(ctx).await,
        "UpdatePullThroughCacheRule" => pull_through::update(ctx).await,
        "DeletePullThroughCacheRule" => pull_through::delete(ctx).await,
        "ValidatePullThroughCacheRule" => pull_through::validate(ctx).await,
        other => Err(unsupported(other)),
    }
}

/// The answer of an operation of the model this registry does not serve.
pub fn unsupported(op: &str) -> EcrError {
    EcrError::new(
        "UnsupportedOperationException",
        format!(
            "{op} is not supported by this registry (an ECR-compatible registry without scanning, replication, registry or repository policies, account settings, signing or creation templates); see docs/using/ecr.md for the operations it serves"
        ),
    )
}

/// ECR's name for a repository's tag mutability setting.
fn mutability(i: &storage::metadata::Immutability) -> (&'static str, Value) {
    let filters: Vec<Value> = i
        .exclude
        .iter()
        .map(|f| json!({"filterType": "WILDCARD", "filter": f}))
        .collect();
    match (i.immutable, filters.is_empty()) {
        (false, _) => ("MUTABLE", json!([])),
        (true, true) => ("IMMUTABLE", json!([])),
        (true, false) => ("IMMUTABLE_WITH_EXCLUSION", Value::Array(filters)),
    }
}

/// A setting from `imageTagMutability` and its exclusion filters.
fn parse_mutability(
    setting: Option<&str>,
    filters: Option<&Value>,
) -> Result<storage::metadata::Immutability, EcrError> {
    let exclude: Vec<String> = filters
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.get("filter").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let immutable = match setting.unwrap_or("MUTABLE") {
        "MUTABLE" => false,
        "IMMUTABLE" | "IMMUTABLE_WITH_EXCLUSION" => true,
        "MUTABLE_WITH_EXCLUSION" => {
            return Err(EcrError::invalid(
                "imageTagMutability MUTABLE_WITH_EXCLUSION is not supported by this registry (IMMUTABLE_WITH_EXCLUSION is)",
            ))
        }
        other => {
            return Err(EcrError::invalid(format!(
                "1 validation error detected: Value '{other}' at 'imageTagMutability' failed to satisfy constraint: Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]"
            )))
        }
    };
    Ok(storage::metadata::Immutability {
        immutable,
        exclude: if immutable { exclude } else { Vec::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_mutability_maps_both_ways() {
        assert_eq!(
            decode_token(&encode_token("team/app")).as_deref(),
            Some("team/app")
        );
        assert_eq!(decode_token("!!"), None);
        let i = parse_mutability(
            Some("IMMUTABLE_WITH_EXCLUSION"),
            Some(&json!([{"filterType": "WILDCARD", "filter": "latest"}])),
        )
        .unwrap();
        assert!(i.immutable);
        assert_eq!(mutability(&i).0, "IMMUTABLE_WITH_EXCLUSION");
        assert_eq!(
            mutability(&parse_mutability(None, None).unwrap()).0,
            "MUTABLE"
        );
        assert!(parse_mutability(Some("SOMETIMES"), None).is_err());
        assert!(unsupported("StartImageScan")
            .message
            .contains("not supported"));
    }
}
