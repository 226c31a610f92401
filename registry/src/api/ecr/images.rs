//! The image plane: `DescribeImages`, `ListImages`, `BatchGetImage`,
//! `BatchDeleteImage` and `PutImage`, on the repository's manifests and
//! tags.

use super::{ts_ms, ts_secs, Answer, Ctx};
use crate::http::ecr_error::EcrError;
use serde_json::{json, Value};
use storage::metadata::{EcrImageRow, TagFilter};
use storage::{Digest, ErrorCode};

/// An `imageIds` entry, resolved.
struct Resolved {
    digest: String,
    tag: Option<String>,
}

/// Why an `imageIds` entry names nothing: ECR's failure code and reason.
struct Failure {
    code: &'static str,
    reason: String,
}

fn failure(id: &Value, f: Failure) -> Value {
    json!({ "imageId": id, "failureCode": f.code, "failureReason": f.reason })
}

fn image_ids(ctx: &Ctx<'_>, required: bool) -> Result<Option<Vec<Value>>, EcrError> {
    match ctx.req.input.get("imageIds") {
        Some(Value::Array(a)) => {
            if a.is_empty() || a.len() > 100 {
                return Err(EcrError::invalid(
                    "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and 100'",
                ));
            }
            Ok(Some(a.clone()))
        }
        None | Some(Value::Null) if !required => Ok(None),
        _ => Err(EcrError::invalid(
            "1 validation error detected: Value null at 'imageIds' failed to satisfy constraint: Member must not be null",
        )),
    }
}

/// The manifest an `{imageDigest, imageTag}` names in `repo`.
async fn resolve(
    ctx: &Ctx<'_>,
    repo: &str,
    id: &Value,
) -> Result<Result<Resolved, Failure>, EcrError> {
    let digest = id.get("imageDigest").and_then(Value::as_str);
    let tag = id.get("imageTag").and_then(Value::as_str);
    let not_found = || Failure {
        code: "ImageNotFound",
        reason: "Requested image not found".into(),
    };
    if let Some(d) = digest {
        if d.parse::<Digest>().is_err() {
            return Ok(Err(Failure {
                code: "InvalidImageDigest",
                reason: "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into(),
            }));
        }
    }
    if let Some(t) = tag {
        if storage::names::Reference::parse(t).is_err() || t.contains(':') {
            return Ok(Err(Failure {
                code: "InvalidImageTag",
                reason: "Invalid request parameters: image tag is not valid".into(),
            }));
        }
    }
    let found = match (digest, tag) {
        (None, None) => {
            return Ok(Err(Failure {
                code: "MissingDigestAndTag",
                reason: "Invalid request parameters: both tag and digest cannot be null".into(),
            }))
        }
        (_, Some(t)) => ctx.reg.manifest_shared(repo, t).await,
        (Some(d), None) => ctx.reg.manifest_shared(repo, d).await,
    };
    match found {
        Ok(m) => {
            let actual = m.digest.to_string();
            if digest.is_some_and(|d| d != actual) {
                return Ok(Err(Failure {
                    code: "ImageTagDoesNotMatchDigest",
                    reason:
                        "Invalid request parameters: given tag does not map to the given digest"
                            .into(),
                }));
            }
            Ok(Ok(Resolved {
                digest: actual,
                tag: tag.map(str::to_owned),
            }))
        }
        Err(e) if e.code == ErrorCode::ManifestUnknown => Ok(Err(not_found())),
        Err(e) => Err(ctx.storage(e)),
    }
}

/// The config media type an image's manifest type implies, when the
/// manifest has no `artifactType` of its own.
fn artifact_media_type(i: &EcrImageRow) -> Option<&str> {
    if let Some(a) = &i.artifact_type {
        return Some(a);
    }
    match i.media_type.as_str() {
        "application/vnd.docker.distribution.manifest.v2+json" => {
            Some("application/vnd.docker.container.image.v1+json")
        }
        "application/vnd.oci.image.manifest.v1+json" => {
            Some("application/vnd.oci.image.config.v1+json")
        }
        _ => None,
    }
}

fn detail(ctx: &Ctx<'_>, repo: &str, i: &EcrImageRow) -> Value {
    let mut v = json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "imageDigest": i.digest,
        "imageSizeInBytes": i.size,
        "imagePushedAt": ts_ms(i.pushed_ms),
        "imageManifestMediaType": i.media_type,
        "imageStatus": "ACTIVE",
    });
    if !i.tags.is_empty() {
        v["imageTags"] = json!(i.tags);
    }
    if let Some(a) = artifact_media_type(i) {
        v["artifactMediaType"] = a.into();
    }
    if let Some(t) = i.last_pulled {
        v["lastRecordedPullTime"] = ts_secs(t);
    }
    if let Some(s) = &i.subject {
        v["subjectManifestDigest"] = s.as_str().into();
    }
    v
}

fn tag_filter(ctx: &Ctx<'_>) -> Result<TagFilter, EcrError> {
    let status = ctx
        .req
        .input
        .get("filter")
        .and_then(|f| f.get("tagStatus"))
        .and_then(Value::as_str);
    match status {
        None | Some("ANY") => Ok(TagFilter::Any),
        Some("TAGGED") => Ok(TagFilter::Tagged),
        Some("UNTAGGED") => Ok(TagFilter::Untagged),
        Some(other) => Err(EcrError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'filter.tagStatus' failed to satisfy constraint: Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]"
        ))),
    }
}

/// A page of images after the request's `nextToken`, and the next one's.
async fn page(
    ctx: &Ctx<'_>,
    repo: &str,
    default: i64,
) -> Result<(Vec<EcrImageRow>, Option<String>), EcrError> {
    let max = ctx.max_results(default, 1000)?;
    let after = ctx.next_token()?;
    let mut images = ctx
        .reg
        .ecr_images(repo, after.as_deref(), max + 1, tag_filter(ctx)?)
        .await
        .map_err(|e| ctx.storage(e))?;
    let next = if images.len() as i64 > max {
        images.truncate(max as usize);
        images.last().map(|i| super::encode_token(&i.digest))
    } else {
        None
    };
    Ok((images, next))
}

pub(super) async fn describe(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    if let Some(ids) = image_ids(ctx, false)? {
        let mut digests = Vec::new();
        for id in &ids {
            match resolve(ctx, repo, id).await? {
                Ok(r) => digests.push(r.digest),
                Err(_) => {
                    return Err(EcrError::new(
                        "ImageNotFoundException",
                        format!(
                            "The image with imageId {id} does not exist within the repository with name '{repo}' in the registry with id '{}'",
                            ctx.id()
                        ),
                    ))
                }
            }
        }
        digests.sort();
        digests.dedup();
        let images = ctx
            .reg
            .ecr_images_by_digest(repo, &digests)
            .await
            .map_err(|e| ctx.storage(e))?;
        let details: Vec<Value> = images.iter().map(|i| detail(ctx, repo, i)).collect();
        return Ok(json!({ "imageDetails": details }));
    }
    let (images, next) = page(ctx, repo, 100).await?;
    let mut body = json!({
        "imageDetails": images.iter().map(|i| detail(ctx, repo, i)).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        body["nextToken"] = n.into();
    }
    Ok(body)
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let (images, next) = page(ctx, repo, 100).await?;
    let mut ids = Vec::new();
    for i in &images {
        if i.tags.is_empty() {
            ids.push(json!({ "imageDigest": i.digest }));
        }
        for t in &i.tags {
            ids.push(json!({ "imageDigest": i.digest, "imageTag": t }));
        }
    }
    let mut body = json!({ "imageIds": ids });
    if let Some(n) = next {
        body["nextToken"] = n.into();
    }
    Ok(body)
}

pub(super) async fn batch_get(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let ids = image_ids(ctx, true)?.unwrap_or_default();
    let accepted: Option<Vec<&str>> = ctx
        .req
        .input
        .get("acceptedMediaTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let (mut images, mut failures) = (Vec::new(), Vec::new());
    for id in &ids {
        let r = match resolve(ctx, repo, id).await? {
            Ok(r) => r,
            Err(f) => {
                failures.push(failure(id, f));
                continue;
            }
        };
        let m = ctx
            .reg
            .manifest_shared(repo, &r.digest)
            .await
            .map_err(|e| ctx.storage(e))?;
        if accepted
            .as_ref()
            .is_some_and(|a| !a.is_empty() && !a.contains(&m.media_type.as_str()))
        {
            failures.push(failure(
                id,
                Failure {
                    code: "ImageNotFound",
                    reason: format!(
                        "Requested image has media type {}, which is not among acceptedMediaTypes (this registry does not convert manifests)",
                        m.media_type
                    ),
                },
            ));
            continue;
        }
        ctx.reg.note_pull(repo, &m.digest);
        let mut image_id = json!({ "imageDigest": r.digest });
        if let Some(t) = &r.tag {
            image_id["imageTag"] = t.as_str().into();
        }
        images.push(json!({
            "registryId": ctx.id(),
            "repositoryName": repo,
            "imageId": image_id,
            "imageManifest": String::from_utf8_lossy(&m.content),
            "imageManifestMediaType": m.media_type,
        }));
    }
    Ok(json!({ "images": images, "failures": failures }))
}

/// Delete what each id names: a digest, the image and all its tags; a
/// tag, that tag, and the image with it when it was the image's last.
pub(super) async fn batch_delete(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let ids = image_ids(ctx, true)?.unwrap_or_default();
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in &ids {
        let r = match resolve(ctx, repo, id).await? {
            Ok(r) => r,
            Err(f) => {
                failures.push(failure(id, f));
                continue;
            }
        };
        let outcome = match &r.tag {
            Some(t) if id.get("imageDigest").is_none() => {
                ctx.reg.delete_manifest(repo, t).await?;
                // Untagged now? Then the image goes too, as on ECR.
                let left = ctx
                    .reg
                    .ecr_images_by_digest(repo, std::slice::from_ref(&r.digest))
                    .await
                    .map_err(|e| ctx.storage(e))?;
                if left.first().is_some_and(|i| i.tags.is_empty()) {
                    ctx.reg.delete_manifest(repo, &r.digest).await
                } else {
                    Ok(())
                }
            }
            _ => ctx.reg.delete_manifest(repo, &r.digest).await,
        };
        match outcome {
            Ok(()) => {
                let mut out = json!({ "imageDigest": r.digest });
                if let Some(t) = &r.tag {
                    out["imageTag"] = t.as_str().into();
                }
                deleted.push(out);
            }
            Err(e) if e.code == ErrorCode::ManifestUnknown => failures.push(failure(
                id,
                Failure {
                    code: "ImageNotFound",
                    reason: "Requested image not found".into(),
                },
            )),
            Err(e) if e.code == ErrorCode::Denied || e.code == ErrorCode::Unsupported => failures
                .push(failure(
                    id,
                    Failure {
                        code: "ImageReferencedByManifestList",
                        reason: e.message,
                    },
                )),
            Err(e) => return Err(ctx.storage(e)),
        }
    }
    Ok(json!({ "imageIds": deleted, "failures": failures }))
}

pub(super) async fn put(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let manifest = ctx.required("imageManifest")?;
    ctx.state
        .proxy
        .check_writable(repo)
        .map_err(|e| EcrError::invalid(e.message))?;
    let tag = ctx.str("imageTag");
    let actual = Digest::sha256_of(manifest.as_bytes());
    if let Some(d) = ctx.str("imageDigest") {
        if d != actual.to_string() {
            return Err(EcrError::new(
                "ImageDigestDoesNotMatchException",
                format!("Invalid parameter at 'imageDigest': the manifest's digest is {actual}, not {d}"),
            ));
        }
    }
    let already = |what: String| {
        EcrError::new(
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{actual}' and {what} already exists in the repository with name '{repo}' in registry with id '{}'",
                ctx.id()
            ),
        )
    };
    let current = match tag {
        Some(t) => match ctx.reg.manifest_shared(repo, t).await {
            Ok(m) => Some(m.digest.clone()),
            Err(e) if e.code == ErrorCode::ManifestUnknown => None,
            Err(e) => return Err(ctx.storage(e)),
        },
        None => None,
    };
    match (tag, &current) {
        (Some(t), Some(d)) if *d == actual => return Err(already(format!("tag '{t}'"))),
        (Some(t), Some(_)) => {
            let i = ctx
                .reg
                .immutability(repo)
                .await
                .map_err(|e| ctx.storage(e))?;
            if i.protects(t) {
                return Err(EcrError::new(
                    "ImageTagAlreadyExistsException",
                    format!(
                        "The image tag '{t}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."
                    ),
                ));
            }
        }
        (None, _) => {
            let have = ctx
                .reg
                .ecr_images_by_digest(repo, &[actual.to_string()])
                .await
                .map_err(|e| ctx.storage(e))?;
            if !have.is_empty() {
                return Err(already("no tag".into()));
            }
        }
        _ => {}
    }
    let media_type = ctx
        .str("imageManifestMediaType")
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_str::<Value>(manifest).ok().and_then(|v| {
                v.get("mediaType")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        });
    let reference = tag.map_or_else(|| actual.to_string(), str::to_owned);
    let pushed = ctx
        .reg
        .put_manifest(repo, &reference, media_type.as_deref(), manifest.as_bytes())
        .await
        .map_err(|e| match e.code {
            ErrorCode::ManifestBlobUnknown => EcrError::new(
                "LayersNotFoundException",
                format!("The specified layers could not be found, or the specified layer is not valid for this repository: {}", e.message),
            ),
            ErrorCode::TagInvalid if e.message.contains("immutable") => {
                EcrError::new("ImageTagAlreadyExistsException", e.message)
            }
            _ => ctx.storage(e),
        })?;
    let mut image_id = json!({ "imageDigest": pushed.digest.to_string() });
    if let Some(t) = tag {
        image_id["imageTag"] = t.into();
    }
    let m = ctx
        .reg
        .manifest_shared(repo, &pushed.digest.to_string())
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({
        "image": {
            "registryId": ctx.id(),
            "repositoryName": repo,
            "imageId": image_id,
            "imageManifest": manifest,
            "imageManifestMediaType": m.media_type,
        }
    }))
}
