//! Pull-through cache rules through the ECR API (`Create`, `Describe`,
//! `Update`, `Delete`, `ValidatePullThroughCacheRule`): rows of the
//! metadata database that every node turns into `[[cache]]` rules beside
//! its configuration's (reloaded every few seconds, and at once on the
//! node that made the change). Rules of the configuration are listed too,
//! and are changed only there.

use super::{ts_secs, Answer, Ctx};
use crate::http::ecr_error::EcrError;
use crate::proxy::{CacheRule, Proxy};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use storage::metadata::PullThroughRuleRow;
use storage::Registry;

/// How often a node reads the rules other nodes may have changed.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// An upstream URL as a rule takes it (ECR's are host names).
fn upstream_url(u: &str) -> String {
    if u.starts_with("http://") || u.starts_with("https://") {
        u.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", u.trim_end_matches('/'))
    }
}

/// The `[[cache]]` rules the database's rows stand for (with the
/// defaults of a rule written in the configuration).
pub fn api_rules(rows: &[PullThroughRuleRow]) -> Vec<CacheRule> {
    rows.iter()
        .filter_map(|r| {
            serde_json::from_value(json!({
                "prefix": r.prefix,
                "upstream": upstream_url(&r.upstream_url),
            }))
            .ok()
        })
        .collect()
}

async fn reload(reg: &Registry, proxy: &Proxy) -> Result<(), String> {
    let rows = reg.pull_through_rules().await.map_err(|e| e.message)?;
    proxy.set_api_rules(&api_rules(&rows))
}

/// Keep this node's rules in step with the database.
pub fn spawn_rule_reloader(reg: Registry, proxy: Arc<Proxy>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = reload(&reg, &proxy).await {
                tracing::warn!(error = %e, "pull-through rules from the database could not be loaded");
            }
            tokio::time::sleep(RELOAD_EVERY).await;
        }
    });
}

fn prefix<'a>(ctx: &'a Ctx<'_>) -> Result<&'a str, EcrError> {
    let p = ctx.required("ecrRepositoryPrefix")?;
    if p.len() < 2 || p.len() > 30 {
        return Err(EcrError::invalid(
            "Invalid parameter at 'ecrRepositoryPrefix' failed to satisfy constraint: 'Member must have length between 2 and 30'",
        ));
    }
    Ok(p)
}

fn not_found(ctx: &Ctx<'_>, p: &str) -> EcrError {
    EcrError::new(
        "PullThroughCacheRuleNotFoundException",
        format!(
            "The pull-through cache rule with prefix '{p}' does not exist in the registry with id '{}'",
            ctx.id()
        ),
    )
}

fn configured_only(p: &str) -> EcrError {
    EcrError::invalid(format!(
        "The pull-through cache rule with prefix '{p}' is a [[cache]] rule of the registry's configuration: change it there"
    ))
}

fn no_secrets() -> EcrError {
    EcrError::invalid(
        "credentialArn (AWS Secrets Manager) is not supported by this registry: give upstream credentials in a [[cache]] rule of the configuration (username/password or credentials_file)",
    )
}

fn row_json(ctx: &Ctx<'_>, r: &PullThroughRuleRow) -> Value {
    let mut v = json!({
        "ecrRepositoryPrefix": r.prefix,
        "upstreamRegistryUrl": r.upstream_url,
        "createdAt": ts_secs(r.created_at),
        "updatedAt": ts_secs(r.updated_at),
        "registryId": ctx.id(),
    });
    if let Some(u) = &r.upstream_registry {
        v["upstreamRegistry"] = u.as_str().into();
    }
    v
}

/// Every rule: the configuration's, then the database's.
async fn all_rules(ctx: &Ctx<'_>) -> Result<Vec<Value>, EcrError> {
    let rows = ctx
        .reg
        .pull_through_rules()
        .await
        .map_err(|e| ctx.storage(e))?;
    let mut out: Vec<(String, Value)> = Vec::new();
    for c in &ctx.state.proxy.configured_rules() {
        out.push((
            c.prefix.clone(),
            json!({
                "ecrRepositoryPrefix": c.prefix,
                "upstreamRegistryUrl": c.upstream,
                "registryId": ctx.id(),
            }),
        ));
    }
    for r in rows
        .iter()
        .filter(|r| !ctx.state.proxy.configured(&r.prefix))
    {
        out.push((r.prefix.clone(), row_json(ctx, r)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

async fn api_row(ctx: &Ctx<'_>, p: &str) -> Result<Option<PullThroughRuleRow>, EcrError> {
    Ok(ctx
        .reg
        .pull_through_rules()
        .await
        .map_err(|e| ctx.storage(e))?
        .into_iter()
        .find(|r| r.prefix == p))
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Answer {
    let p = prefix(ctx)?;
    let url = ctx.required("upstreamRegistryUrl")?;
    if ctx.str("credentialArn").is_some() {
        return Err(no_secrets());
    }
    if ctx
        .str("upstreamRepositoryPrefix")
        .is_some_and(|u| u != "ROOT")
    {
        return Err(EcrError::invalid(
            "upstreamRepositoryPrefix is not supported by this registry: PREFIX/NAME is always the upstream's NAME",
        ));
    }
    let rule: CacheRule =
        serde_json::from_value(json!({ "prefix": p, "upstream": upstream_url(url) }))
            .map_err(|e| EcrError::invalid(e.to_string()))?;
    rule.validate().map_err(EcrError::invalid)?;
    let exists = || {
        EcrError::new(
            "PullThroughCacheRuleAlreadyExistsException",
            format!(
                "A pull-through cache rule with prefix '{p}' already exists in the registry with id '{}'",
                ctx.id()
            ),
        )
    };
    if ctx.state.proxy.configured(p) {
        return Err(exists());
    }
    let now = auth::now_unix() as i64;
    let row = PullThroughRuleRow {
        prefix: p.to_owned(),
        upstream_url: url.to_owned(),
        upstream_registry: ctx.str("upstreamRegistry").map(str::to_owned),
        upstream_prefix: None,
        credential_arn: None,
        created_at: now,
        updated_at: now,
    };
    if !ctx
        .reg
        .add_pull_through_rule(&row)
        .await
        .map_err(|e| ctx.storage(e))?
    {
        return Err(exists());
    }
    reload(&ctx.reg, &ctx.state.proxy)
        .await
        .map_err(EcrError::server)?;
    tracing::info!(
        prefix = p,
        upstream = url,
        "pull-through cache rule created (ECR API)"
    );
    Ok(row_json(ctx, &row))
}

pub(super) async fn describe(ctx: &Ctx<'_>) -> Answer {
    let mut rules = all_rules(ctx).await?;
    if let Some(wanted) = ctx
        .req
        .input
        .get("ecrRepositoryPrefixes")
        .and_then(Value::as_array)
    {
        let mut out = Vec::new();
        for w in wanted.iter().filter_map(Value::as_str) {
            match rules.iter().find(|r| r["ecrRepositoryPrefix"] == w) {
                Some(r) => out.push(r.clone()),
                None => return Err(not_found(ctx, w)),
            }
        }
        return Ok(json!({ "pullThroughCacheRules": out }));
    }
    let max = ctx.max_results(100, 1000)? as usize;
    if let Some(after) = ctx.next_token()? {
        rules.retain(|r| r["ecrRepositoryPrefix"].as_str().unwrap_or_default() > after.as_str());
    }
    let mut body = json!({});
    if rules.len() > max {
        rules.truncate(max);
        let last = rules[max - 1]["ecrRepositoryPrefix"]
            .as_str()
            .unwrap_or_default();
        body["nextToken"] = super::encode_token(last).into();
    }
    body["pullThroughCacheRules"] = Value::Array(rules);
    Ok(body)
}

pub(super) async fn update(ctx: &Ctx<'_>) -> Answer {
    let p = prefix(ctx)?;
    if ctx.str("credentialArn").is_some() {
        return Err(no_secrets());
    }
    if ctx.state.proxy.configured(p) {
        return Err(configured_only(p));
    }
    if !ctx
        .reg
        .update_pull_through_rule(p, None)
        .await
        .map_err(|e| ctx.storage(e))?
    {
        return Err(not_found(ctx, p));
    }
    let row = api_row(ctx, p).await?.ok_or_else(|| not_found(ctx, p))?;
    Ok(json!({
        "ecrRepositoryPrefix": p,
        "registryId": ctx.id(),
        "updatedAt": ts_secs(row.updated_at),
    }))
}

pub(super) async fn delete(ctx: &Ctx<'_>) -> Answer {
    let p = prefix(ctx)?;
    if ctx.state.proxy.configured(p) {
        return Err(configured_only(p));
    }
    let row = api_row(ctx, p).await?.ok_or_else(|| not_found(ctx, p))?;
    ctx.reg
        .delete_pull_through_rule(p)
        .await
        .map_err(|e| ctx.storage(e))?;
    reload(&ctx.reg, &ctx.state.proxy)
        .await
        .map_err(EcrError::server)?;
    let mut v = row_json(ctx, &row);
    if let Some(o) = v.as_object_mut() {
        o.remove("updatedAt");
    }
    Ok(v)
}

/// Whether the upstream answers its `/v2/` (200, or 401 asking for
/// credentials, are both a registry there).
pub(super) async fn validate(ctx: &Ctx<'_>) -> Answer {
    let p = prefix(ctx)?;
    let rules = all_rules(ctx).await?;
    let rule = rules
        .iter()
        .find(|r| r["ecrRepositoryPrefix"] == p)
        .ok_or_else(|| not_found(ctx, p))?;
    let url = rule["upstreamRegistryUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| EcrError::server(e.to_string()))?;
    let probe = client
        .get(format!("{}/v2/", upstream_url(&url)))
        .send()
        .await;
    let failure = match probe {
        Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED => None,
        Ok(r) => Some(format!("the upstream's /v2/ answered {}", r.status())),
        Err(e) => Some(format!("the upstream could not be reached: {e}")),
    };
    let mut body = json!({
        "ecrRepositoryPrefix": p,
        "registryId": ctx.id(),
        "upstreamRegistryUrl": url,
        "isValid": failure.is_none(),
    });
    if let Some(f) = failure {
        body["failure"] = f.into();
    }
    Ok(body)
}
