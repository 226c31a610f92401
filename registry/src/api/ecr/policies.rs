//! Lifecycle policies: `Put`/`Get`/`DeleteLifecyclePolicy` and the
//! preview (`Start`/`GetLifecyclePolicyPreview`), on the registry's own
//! evaluator (`storage::lifecycle`, ECR's rules). A preview keeps the
//! policy it was started with; reading it evaluates that policy against
//! the images as they are then, so it is complete at once.

use super::{ts_secs, Answer, Ctx};
use crate::http::ecr_error::EcrError;
use serde_json::{json, Value};
use storage::ErrorCode;

fn invalid_policy(e: storage::Error) -> EcrError {
    EcrError::invalid(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {}'",
        e.message
    ))
}

fn no_policy(ctx: &Ctx<'_>, repo: &str) -> EcrError {
    EcrError::new(
        "LifecyclePolicyNotFoundException",
        format!(
            "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '{}'",
            ctx.id()
        ),
    )
}

/// The repository's policy as stored (its canonical text), if any.
async fn stored(ctx: &Ctx<'_>, repo: &str) -> Result<Option<String>, EcrError> {
    match ctx.reg.lifecycle_policy(repo).await {
        Ok(p) => Ok(p.map(|p| serde_json::to_string(&p).unwrap_or_default())),
        Err(e) if e.code == ErrorCode::NameUnknown => {
            Err(EcrError::repository_not_found(repo, ctx.id()))
        }
        Err(e) => Err(ctx.storage(e)),
    }
}

pub(super) async fn put(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let text = ctx.required("lifecyclePolicyText")?;
    ctx.reg
        .set_lifecycle_policy(repo, text)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NameUnknown => ctx.storage(e),
            _ => invalid_policy(e),
        })?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "lifecyclePolicyText": text,
    }))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let text = stored(ctx, repo)
        .await?
        .ok_or_else(|| no_policy(ctx, repo))?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "lifecyclePolicyText": text,
    }))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let text = stored(ctx, repo)
        .await?
        .ok_or_else(|| no_policy(ctx, repo))?;
    ctx.reg
        .delete_lifecycle_policy(repo)
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "lifecyclePolicyText": text,
    }))
}

pub(super) async fn start_preview(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let text = ctx.str("lifecyclePolicyText");
    if text.is_none() && stored(ctx, repo).await?.is_none() {
        return Err(no_policy(ctx, repo));
    }
    let canonical = ctx
        .reg
        .start_lifecycle_preview(repo, text)
        .await
        .map_err(invalid_policy)?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "lifecyclePolicyText": text.map_or(canonical, str::to_owned),
        "status": "IN_PROGRESS",
    }))
}

pub(super) async fn get_preview(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let Some((text, expired)) = ctx
        .reg
        .lifecycle_preview_results(repo)
        .await
        .map_err(|e| ctx.storage(e))?
    else {
        return Err(EcrError::new(
            "LifecyclePolicyPreviewNotFoundException",
            format!(
                "There is no lifecycle policy preview for the repository with name '{repo}' in the registry with id '{}'",
                ctx.id()
            ),
        ));
    };
    let total = expired.len();
    let status = ctx
        .req
        .input
        .get("filter")
        .and_then(|f| f.get("tagStatus"))
        .and_then(Value::as_str)
        .unwrap_or("ANY");
    let wanted: Option<Vec<(Option<&str>, Option<&str>)>> = ctx
        .req
        .input
        .get("imageIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .map(|i| {
                    (
                        i.get("imageDigest").and_then(Value::as_str),
                        i.get("imageTag").and_then(Value::as_str),
                    )
                })
                .collect()
        });
    let mut results: Vec<_> = expired
        .into_iter()
        .filter(|e| match status {
            "TAGGED" => !e.tags.is_empty(),
            "UNTAGGED" => e.tags.is_empty(),
            _ => true,
        })
        .filter(|e| {
            wanted.as_ref().is_none_or(|w| {
                w.iter().any(|(d, t)| {
                    d.is_none_or(|d| d == e.digest)
                        && t.is_none_or(|t| e.tags.iter().any(|x| x == t))
                })
            })
        })
        .collect();
    results.sort_by(|a, b| a.digest.cmp(&b.digest));
    let max = ctx.max_results(100, 100)? as usize;
    let after = ctx.next_token()?;
    let start = after.map_or(0, |a| results.partition_point(|e| e.digest <= a));
    let page: Vec<_> = results.iter().skip(start).take(max).collect();
    let mut body = json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "lifecyclePolicyText": text,
        "status": "COMPLETE",
        "previewResults": page.iter().map(|e| {
            let mut v = json!({
                "imageDigest": e.digest,
                "imagePushedAt": ts_secs(e.pushed_at),
                "action": { "type": "EXPIRE" },
                "appliedRulePriority": e.rule_priority,
                "storageClass": "STANDARD",
            });
            if !e.tags.is_empty() {
                v["imageTags"] = json!(e.tags);
            }
            v
        }).collect::<Vec<_>>(),
        "summary": { "expiringImageTotalCount": total },
    });
    if start + page.len() < results.len() {
        if let Some(last) = page.last() {
            body["nextToken"] = super::encode_token(&last.digest).into();
        }
    }
    Ok(body)
}
