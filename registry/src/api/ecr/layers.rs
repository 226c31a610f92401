//! The layer plane: `BatchCheckLayerAvailability`, the three calls of a
//! layer upload (on the registry's own upload sessions) and
//! `GetDownloadUrlForLayer` (a presigned URL where blobs are on S3, the
//! registry's blob URL otherwise).

use super::{Answer, Ctx};
use crate::http::ecr_error::EcrError;
use serde_json::{json, Value};
use storage::{ChunkSpec, Digest, ErrorCode};

/// The part size `InitiateLayerUpload` suggests (ECR's minimum part).
const PART_SIZE: u64 = 5 << 20;

fn digest_list<'a>(ctx: &'a Ctx<'_>, key: &str) -> Result<Vec<&'a str>, EcrError> {
    let list = ctx
        .req
        .input
        .get(key)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 100)
        .ok_or_else(|| {
            EcrError::invalid(format!(
                "1 validation error detected: Value at '{key}' failed to satisfy constraint: Member must have length between 1 and 100"
            ))
        })?;
    Ok(list
        .iter()
        .map(|d| d.as_str().unwrap_or_default())
        .collect())
}

pub(super) async fn check(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for d in digest_list(ctx, "layerDigests")? {
        let Ok(digest) = d.parse::<Digest>() else {
            failures.push(json!({
                "layerDigest": d,
                "failureCode": "InvalidLayerDigest",
                "failureReason": "Invalid layer digest",
            }));
            continue;
        };
        match ctx.reg.blob(repo, &digest).await {
            Ok(b) => layers.push(json!({
                "layerDigest": d,
                "layerAvailability": "AVAILABLE",
                "layerSize": b.size,
            })),
            Err(e) if e.code == ErrorCode::BlobUnknown => failures.push(json!({
                "layerDigest": d,
                "failureCode": "MissingLayerDigest",
                "failureReason": "Could not find layer",
            })),
            Err(e) => return Err(ctx.storage(e)),
        }
    }
    Ok(json!({ "layers": layers, "failures": failures }))
}

pub(super) async fn initiate(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    ctx.state
        .proxy
        .check_writable(repo)
        .map_err(|e| EcrError::invalid(e.message))?;
    let id = ctx
        .reg
        .start_upload(repo)
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({ "uploadId": id, "partSize": PART_SIZE }))
}

fn upload_error(ctx: &Ctx<'_>, e: storage::Error) -> EcrError {
    match e.code {
        ErrorCode::BlobUploadUnknown => EcrError::new("UploadNotFoundException", e.message),
        ErrorCode::RangeInvalid => EcrError::new("InvalidLayerPartException", e.message),
        _ => ctx.storage(e),
    }
}

pub(super) async fn upload_part(ctx: &Ctx<'_>) -> Answer {
    use base64::Engine;
    let repo = ctx.existing_repo().await?;
    let id = ctx.required("uploadId")?;
    let number = |k: &str| ctx.req.input.get(k).and_then(Value::as_u64);
    let (Some(first), Some(last)) = (number("partFirstByte"), number("partLastByte")) else {
        return Err(EcrError::invalid(
            "partFirstByte and partLastByte are required, and non-negative",
        ));
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(ctx.required("layerPartBlob")?)
        .map_err(|_| EcrError::invalid("layerPartBlob is not base64"))?;
    if last < first || last - first + 1 != blob.len() as u64 {
        return Err(EcrError::new(
            "InvalidLayerPartException",
            format!(
                "The part is {} bytes, but partFirstByte {first} to partLastByte {last} says {}",
                blob.len(),
                (last + 1).saturating_sub(first)
            ),
        ));
    }
    let have = ctx
        .reg
        .upload_status(repo, id)
        .await
        .map_err(|e| upload_error(ctx, e))?;
    if have != first {
        return Err(EcrError::new(
            "InvalidLayerPartException",
            format!(
                "The upload has {have} bytes: the next part must start at byte {have}, not {first}"
            ),
        ));
    }
    let stream = futures::stream::once(async move { Ok(bytes::Bytes::from(blob)) });
    let size = ctx
        .reg
        .upload_chunk(
            repo,
            id,
            Box::pin(stream),
            ChunkSpec {
                start: Some(first),
                len: Some(last - first + 1),
            },
        )
        .await
        .map_err(|e| upload_error(ctx, e))?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "uploadId": id,
        "lastByteReceived": size.saturating_sub(1),
    }))
}

pub(super) async fn complete(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let id = ctx.required("uploadId")?;
    let digests = digest_list(ctx, "layerDigests")?;
    let [d] = digests[..] else {
        return Err(EcrError::invalid(
            "layerDigests must name exactly one digest: the layer's",
        ));
    };
    let digest: Digest = d
        .parse()
        .map_err(|_| EcrError::new("InvalidLayerException", format!("Invalid layer digest {d}")))?;
    let size = ctx
        .reg
        .upload_status(repo, id)
        .await
        .map_err(|e| upload_error(ctx, e))?;
    if size == 0 {
        return Err(EcrError::new(
            "EmptyUploadException",
            format!("The upload {id} has no layer parts"),
        ));
    }
    if ctx.reg.blob(repo, &digest).await.is_ok() {
        ctx.reg.cancel_upload(repo, id).await.ok();
        return Err(EcrError::new(
            "LayerAlreadyExistsException",
            format!("The layer {digest} already exists in the repository with name '{repo}'"),
        ));
    }
    ctx.reg
        .finish_upload(repo, id, &digest, None)
        .await
        .map_err(|e| match e.code {
            ErrorCode::DigestInvalid => EcrError::new(
                "InvalidLayerException",
                format!(
                    "The layer's bytes do not have digest {digest}: {}",
                    e.message
                ),
            ),
            _ => upload_error(ctx, e),
        })?;
    Ok(json!({
        "registryId": ctx.id(),
        "repositoryName": repo,
        "uploadId": id,
        "layerDigest": digest.to_string(),
    }))
}

pub(super) async fn download_url(ctx: &Ctx<'_>) -> Answer {
    let repo = ctx.existing_repo().await?;
    let d = ctx.required("layerDigest")?;
    let not_found = || {
        EcrError::new(
            "LayersNotFoundException",
            format!(
                "The specified layer {d} could not be found in the repository with name '{repo}'"
            ),
        )
    };
    let digest: Digest = d.parse().map_err(|_| not_found())?;
    let blob = match ctx.reg.blob(repo, &digest).await {
        Ok(b) => b,
        Err(e) if e.code == ErrorCode::BlobUnknown => return Err(not_found()),
        Err(e) => return Err(ctx.storage(e)),
    };
    let url = match ctx
        .reg
        .blob_redirect(&digest, &blob)
        .await
        .map_err(|e| ctx.storage(e))?
    {
        Some(presigned) => presigned,
        None => format!("{}/v2/{repo}/blobs/{digest}", ctx.req.base_url),
    };
    Ok(json!({ "downloadUrl": url, "layerDigest": d }))
}
