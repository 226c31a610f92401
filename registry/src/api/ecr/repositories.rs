//! The repository plane: `GetAuthorizationToken`, `CreateRepository`,
//! `DescribeRepositories`, `DeleteRepository`, `PutImageTagMutability`
//! and the resource tags of repositories.

use super::{mutability, parse_mutability, ts_secs, Answer, Ctx};
use crate::http::ecr_error::EcrError;
use serde_json::{json, Value};
use storage::metadata::EcrRepoRow;
use storage::RepoRefusal;

/// ECR's limit of resource tags per repository.
const MAX_TAGS: usize = 50;

fn repository(ctx: &Ctx<'_>, r: &EcrRepoRow) -> Value {
    let (setting, filters) = mutability(&storage::metadata::Immutability {
        immutable: r.immutable,
        exclude: r.exclusions.clone(),
    });
    let mut v = json!({
        "repositoryArn": ctx.cfg().repository_arn(&r.name),
        "registryId": ctx.id(),
        "repositoryName": r.name,
        "repositoryUri": format!("{}/{}", ctx.host(), r.name),
        "createdAt": ts_secs(r.created_at),
        "imageTagMutability": setting,
        "imageScanningConfiguration": { "scanOnPush": false },
        "encryptionConfiguration": { "encryptionType": "AES256" },
    });
    if filters.as_array().is_some_and(|a| !a.is_empty()) {
        v["imageTagMutabilityExclusionFilters"] = filters;
    }
    v
}

/// `[{Key, Value}]` as pairs, checked as ECR does.
fn parse_tags(v: Option<&Value>) -> Result<Vec<(String, String)>, EcrError> {
    let Some(list) = v else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| EcrError::new("InvalidTagParameterException", "tags must be a list"))?;
    if list.len() > MAX_TAGS {
        return Err(EcrError::new(
            "TooManyTagsException",
            format!("A repository can have at most {MAX_TAGS} tags"),
        ));
    }
    list.iter()
        .map(|t| {
            let k = t.get("Key").and_then(Value::as_str).unwrap_or_default();
            let v = t.get("Value").and_then(Value::as_str);
            match v {
                Some(v) if !k.is_empty() && k.len() <= 128 && v.len() <= 256 => {
                    Ok((k.to_owned(), v.to_owned()))
                }
                _ => Err(EcrError::new(
                    "InvalidTagParameterException",
                    "Each tag needs a Key (1 to 128 characters) and a Value (at most 256)",
                )),
            }
        })
        .collect()
}

/// `GetAuthorizationToken`: `AWS:<password>` in base64, the password
/// good for 12 hours with exactly the signing key's rights.
pub(super) async fn authorization_token(ctx: &Ctx<'_>) -> Answer {
    use base64::Engine;
    let (password, expires) = match ctx.access.access_key() {
        Some(key) => ctx.state.gate.ecr_login_password(key).await?,
        // Authentication off: any password does.
        None => (
            "open".to_owned(),
            auth::now_unix() + auth::access_key::LOGIN_TTL_SECS,
        ),
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    Ok(json!({
        "authorizationData": [{
            "authorizationToken": token,
            "expiresAt": expires,
            "proxyEndpoint": ctx.req.base_url,
        }]
    }))
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Answer {
    let name = ctx.repo()?;
    let input = &ctx.req.input;
    if name.len() < 2 {
        return Err(EcrError::invalid(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must be between 2 and 256 characters'",
        ));
    }
    let immutability = parse_mutability(
        ctx.str("imageTagMutability"),
        input.get("imageTagMutabilityExclusionFilters"),
    )?;
    let tags = parse_tags(input.get("tags"))?;
    if ctx.state.proxy.upstream_of(name).is_some() {
        return Err(EcrError::invalid(format!(
            "{name} is under a pull-through cache rule's prefix: its repositories are made on first pull"
        )));
    }
    match ctx
        .reg
        .ecr_create_repository(name, &immutability, &tags)
        .await
        .map_err(|e| ctx.storage(e))?
    {
        Ok(row) => Ok(json!({ "repository": repository(ctx, &row) })),
        Err(_) => Err(EcrError::new(
            "RepositoryAlreadyExistsException",
            format!(
                "The repository with name '{name}' already exists in the registry with id '{}'",
                ctx.id()
            ),
        )),
    }
}

pub(super) async fn describe(ctx: &Ctx<'_>) -> Answer {
    if let Some(other) = ctx.str("registryId").filter(|r| *r != ctx.id()) {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'registryId': this registry's ID is {}, not {other}",
            ctx.id()
        )));
    }
    if let Some(names) = ctx
        .req
        .input
        .get("repositoryNames")
        .and_then(Value::as_array)
    {
        if ctx.str("nextToken").is_some() || ctx.req.input.get("maxResults").is_some() {
            return Err(EcrError::invalid(
                "Invalid parameter: repositoryNames cannot be combined with nextToken or maxResults",
            ));
        }
        let mut out = Vec::new();
        for n in names {
            let n = n.as_str().unwrap_or_default();
            // One the caller may not read answers as one that does not
            // exist: its name must not leak.
            let row = if storage::names::validate_name(n).is_ok() && ctx.access.reads(n) {
                ctx.reg
                    .ecr_repository(n)
                    .await
                    .map_err(|e| ctx.storage(e))?
            } else {
                None
            };
            match row {
                Some(r) => out.push(repository(ctx, &r)),
                None => return Err(EcrError::repository_not_found(n, ctx.id())),
            }
        }
        return Ok(json!({ "repositories": out }));
    }
    let max = ctx.max_results(100, 1000)? as usize;
    let mut after = ctx.next_token()?;
    let mut out: Vec<EcrRepoRow> = Vec::new();
    // Pages of what the caller may read: fetched until full or exhausted.
    loop {
        let want = (max + 1 - out.len()).max(100) as i64;
        let batch = ctx
            .reg
            .ecr_repositories(after.as_deref(), want)
            .await
            .map_err(|e| ctx.storage(e))?;
        let exhausted = (batch.len() as i64) < want;
        after = batch.last().map(|r| r.name.clone()).or(after);
        out.extend(batch.into_iter().filter(|r| ctx.access.reads(&r.name)));
        if out.len() > max || exhausted {
            break;
        }
    }
    let mut body = json!({});
    if out.len() > max {
        out.truncate(max);
        body["nextToken"] = super::encode_token(&out[max - 1].name).into();
    }
    body["repositories"] = out.iter().map(|r| repository(ctx, r)).collect();
    Ok(body)
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Answer {
    let name = ctx.repo()?;
    let force = ctx
        .req
        .input
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match ctx
        .reg
        .ecr_delete_repository(name, force)
        .await
        .map_err(|e| ctx.storage(e))?
    {
        Ok(row) => Ok(json!({ "repository": repository(ctx, &row) })),
        Err(RepoRefusal::NotEmpty) => Err(EcrError::new(
            "RepositoryNotEmptyException",
            format!(
                "The repository with name '{name}' in registry with id '{}' cannot be deleted because it still contains images",
                ctx.id()
            ),
        )),
        Err(_) => Err(EcrError::repository_not_found(name, ctx.id())),
    }
}

pub(super) async fn put_tag_mutability(ctx: &Ctx<'_>) -> Answer {
    let name = ctx.existing_repo().await?;
    ctx.required("imageTagMutability")?;
    let i = parse_mutability(
        ctx.str("imageTagMutability"),
        ctx.req.input.get("imageTagMutabilityExclusionFilters"),
    )?;
    ctx.reg
        .set_immutability(name, &i)
        .await
        .map_err(|e| ctx.storage(e))?;
    let (setting, filters) = mutability(&i);
    let mut body = json!({
        "registryId": ctx.id(),
        "repositoryName": name,
        "imageTagMutability": setting,
    });
    if filters.as_array().is_some_and(|a| !a.is_empty()) {
        body["imageTagMutabilityExclusionFilters"] = filters;
    }
    Ok(body)
}

/// The repository a `resourceArn` names, checked to be of this registry
/// and to exist.
async fn resource(ctx: &Ctx<'_>) -> Result<String, EcrError> {
    let arn = ctx.required("resourceArn")?;
    let bad = || {
        EcrError::invalid(format!(
            "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN' (this registry's repositories are {})",
            ctx.cfg().repository_arn("NAME")
        ))
    };
    let name = ctx.cfg().repository_of_arn(arn).ok_or_else(bad)?;
    // The gate checked the name it parsed from the same ARN.
    if ctx.req.call.repository.as_deref() != Some(name) {
        return Err(bad());
    }
    match ctx.reg.ecr_repository(name).await {
        Ok(Some(_)) => Ok(name.to_owned()),
        Ok(None) => Err(EcrError::repository_not_found(name, ctx.id())),
        Err(e) => Err(ctx.storage(e)),
    }
}

pub(super) async fn tag_resource(ctx: &Ctx<'_>) -> Answer {
    let name = resource(ctx).await?;
    let tags = parse_tags(ctx.req.input.get("tags"))?;
    let existing = ctx
        .reg
        .repository_tags(&name)
        .await
        .map_err(|e| ctx.storage(e))?;
    let mut keys: std::collections::BTreeSet<&str> =
        existing.iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(tags.iter().map(|(k, _)| k.as_str()));
    if keys.len() > MAX_TAGS {
        return Err(EcrError::new(
            "TooManyTagsException",
            format!("A repository can have at most {MAX_TAGS} tags"),
        ));
    }
    ctx.reg
        .tag_repository(&name, &tags)
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({}))
}

pub(super) async fn untag_resource(ctx: &Ctx<'_>) -> Answer {
    let name = resource(ctx).await?;
    let keys: Vec<String> = ctx
        .req
        .input
        .get("tagKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ctx.reg
        .untag_repository(&name, &keys)
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({}))
}

pub(super) async fn list_tags(ctx: &Ctx<'_>) -> Answer {
    let name = resource(ctx).await?;
    let tags = ctx
        .reg
        .repository_tags(&name)
        .await
        .map_err(|e| ctx.storage(e))?;
    Ok(json!({
        "tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()
    }))
}
