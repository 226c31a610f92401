//! Copying a whole registry into another (`registry migrate`): a local
//! registry into S3 + PostgreSQL when a team outgrows one machine.
//!
//! Everything goes through the target's own push path, so every blob is
//! hashed again on the way in and every manifest's references are checked;
//! nothing is written that the target would not accept from a client.
//! Each step skips what the target already has, so a run that stopped
//! (killed, network gone) is simply started again. Upload sessions in
//! progress are not copied: clients restart those pushes.

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::service::{ChunkSpec, Registry};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;

/// What [`migrate`] reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Blobs to consider and their bytes.
    Blobs { count: u64, bytes: u64 },
    /// One blob done (copied or already there).
    Blob { bytes: u64, copied: bool },
    /// Manifests and tags: how many so far.
    Manifests { done: u64 },
}

/// What a run did, and the final comparison.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub blobs: u64,
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    pub links: u64,
    pub manifests: u64,
    pub tags: u64,
    pub users: u64,
    pub robots: u64,
    /// ECR access keys (sealed as they are: the target needs the same
    /// `[ecr] secret_key_file`) and pull-through rules made through the API.
    pub access_keys: u64,
    pub pull_through_rules: u64,
    /// Repository settings copied (tag immutability, lifecycle policies).
    pub settings: u64,
}

/// Manifests read per query.
const PAGE: i64 = 256;

/// Copy everything of `from` into `to`, `jobs` blobs at a time; then check
/// that every link, manifest and tag of `from` is in `to`.
pub async fn migrate(
    from: &Registry,
    to: &Registry,
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let mut report = Report::default();
    copy_blobs(from, to, jobs, progress, &mut report).await?;
    copy_manifests(from, to, progress, &mut report).await?;
    copy_tags(from, to, &mut report).await?;
    // After the tags: an immutable repository would refuse their copies.
    copy_settings(from, to, &mut report).await?;
    copy_accounts(from, to, &mut report).await?;
    compare(from, to).await?;
    Ok(report)
}

async fn copy_blobs(
    from: &Registry,
    to: &Registry,
    jobs: usize,
    progress: &(dyn Fn(Progress) + Sync),
    report: &mut Report,
) -> Result<()> {
    // digest -> (size, repositories linking it)
    let mut blobs: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    for (repo, digest, size) in from.meta().blob_links().await? {
        blobs
            .entry(digest)
            .or_insert((size, Vec::new()))
            .1
            .push(repo);
        report.links += 1;
    }
    progress(Progress::Blobs {
        count: blobs.len() as u64,
        bytes: blobs.values().map(|(s, _)| s).sum(),
    });
    report.blobs = blobs.len() as u64;
    let done: Vec<(u64, bool)> = futures::stream::iter(blobs)
        .map(|(digest, (size, repos))| async move {
            let digest: Digest = digest.parse()?;
            let copied = copy_blob(from, to, &digest, size, &repos).await?;
            progress(Progress::Blob {
                bytes: size,
                copied,
            });
            Ok::<_, Error>((size, copied))
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    for (size, copied) in done {
        if copied {
            report.blobs_copied += 1;
            report.bytes_copied += size;
        }
    }
    Ok(())
}

/// One blob into every repository that links it; true if bytes moved.
async fn copy_blob(
    from: &Registry,
    to: &Registry,
    digest: &Digest,
    size: u64,
    repos: &[String],
) -> Result<bool> {
    let first = &repos[0];
    let mut copied = false;
    if to.meta().linked_blob(first, digest).await?.is_none() {
        // In the target under another repository (an earlier run, or a
        // push since): a link is enough.
        let holder = to.repos_with_blob(digest).await?.into_iter().next();
        let linked = match holder {
            Some(h) => to.mount(first, digest, &h).await?,
            None => false,
        };
        if !linked {
            let blob = from.blob(first, digest).await?;
            let bytes = from.blob_bytes(digest, &blob, None).await?;
            let id = to.start_upload(first).await?;
            let chunk = ChunkSpec {
                start: None,
                len: Some(size),
            };
            if let Err(e) = to
                .finish_upload(first, &id, digest, Some((bytes, chunk)))
                .await
            {
                to.cancel_upload(first, &id).await.ok();
                return Err(e);
            }
            copied = true;
        }
    }
    for repo in &repos[1..] {
        if to.meta().linked_blob(repo, digest).await?.is_none()
            && !to.mount(repo, digest, first).await?
        {
            return Err(Error::internal(format_args!(
                "could not link {digest} into {repo} in the target"
            )));
        }
    }
    Ok(copied)
}

async fn copy_manifests(
    from: &Registry,
    to: &Registry,
    progress: &(dyn Fn(Progress) + Sync),
    report: &mut Report,
) -> Result<()> {
    // An index may come before the manifests it lists (pages go by
    // digest): it waits for a later round.
    let mut waiting = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = from
            .meta()
            .manifest_page(after.as_ref().map(|(r, d)| (r.as_str(), d.as_str())), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.repo.clone(), last.digest.clone()));
        for m in page {
            match to
                .put_manifest(&m.repo, &m.digest, Some(&m.media_type), &m.content)
                .await
            {
                Ok(_) => {
                    report.manifests += 1;
                    progress(Progress::Manifests {
                        done: report.manifests,
                    });
                }
                Err(e) if e.code == ErrorCode::ManifestBlobUnknown => waiting.push((m, e)),
                Err(e) => return Err(named(e, &m.repo, &m.digest)),
            }
        }
    }
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut still = Vec::new();
        for (m, _) in waiting {
            match to
                .put_manifest(&m.repo, &m.digest, Some(&m.media_type), &m.content)
                .await
            {
                Ok(_) => report.manifests += 1,
                Err(e) if e.code == ErrorCode::ManifestBlobUnknown => still.push((m, e)),
                Err(e) => return Err(named(e, &m.repo, &m.digest)),
            }
        }
        if still.len() == before {
            let (m, e) = still.swap_remove(0);
            return Err(named(e, &m.repo, &m.digest));
        }
        waiting = still;
    }
    Ok(())
}

fn named(e: Error, repo: &str, digest: &str) -> Error {
    Error::new(e.code, format!("{repo}@{digest}: {}", e.message))
}

async fn copy_tags(from: &Registry, to: &Registry, report: &mut Report) -> Result<()> {
    for (repo, tag, digest) in from.meta().all_tags().await? {
        let d: Digest = digest.parse()?;
        let current = to.meta().manifest_by_tag(&repo, &tag).await?;
        if current.is_none_or(|m| m.digest != d) {
            let m = to.manifest(&repo, &digest).await?;
            to.put_manifest(&repo, &tag, Some(&m.media_type), &m.content)
                .await
                .map_err(|e| named(e, &repo, &tag))?;
        }
        report.tags += 1;
    }
    Ok(())
}

/// Each repository's tag immutability and lifecycle policy. (The tag
/// history starts anew in the target: its own triggers record the copies.)
async fn copy_settings(from: &Registry, to: &Registry, report: &mut Report) -> Result<()> {
    let mut last: Option<String> = None;
    loop {
        let page = from.catalog(last.as_deref(), Some(PAGE)).await?;
        let Some(end) = page.last().cloned() else {
            return Ok(());
        };
        for repo in &page {
            let immutability = from.immutability(repo).await?;
            if immutability != crate::metadata::Immutability::default() {
                to.set_immutability(repo, &immutability).await?;
                report.settings += 1;
            }
            if let Some(policy) = from.meta().lifecycle_policy(repo).await?.flatten() {
                to.meta().set_lifecycle_policy(repo, Some(&policy)).await?;
                report.settings += 1;
            }
        }
        last = Some(end);
    }
}

async fn copy_accounts(from: &Registry, to: &Registry, report: &mut Report) -> Result<()> {
    let (src, dst) = (from.accounts(), to.accounts());
    for u in src.users().await? {
        // As they are (times and credential generation too): the refresh
        // tokens of the source stay good on the target, and only those.
        if dst.user(&u.name).await?.is_none() {
            dst.import_user(&u).await?;
        }
        report.users += 1;
    }
    for r in src.robots().await? {
        if dst.robot(&r.name).await?.is_none() {
            dst.import_robot(&r).await?;
        }
        report.robots += 1;
    }
    for k in src.access_keys(None).await? {
        // A key already there (a run resumed) stays as it is.
        dst.add_access_key(&k).await?;
        report.access_keys += 1;
    }
    for r in from.pull_through_rules().await? {
        to.add_pull_through_rule(&r).await?;
        report.pull_through_rules += 1;
    }
    Ok(())
}

/// The final check: everything `from` has, `to` has too.
async fn compare(from: &Registry, to: &Registry) -> Result<()> {
    let missing = |what: &str, n: usize, example: String| {
        Error::new(
            ErrorCode::Internal,
            format!("after copying, the target lacks {n} {what} of the source (e.g. {example})"),
        )
    };
    let target_links: std::collections::HashSet<(String, String)> = to
        .meta()
        .blob_links()
        .await?
        .into_iter()
        .map(|(r, d, _)| (r, d))
        .collect();
    let lost: Vec<_> = from
        .meta()
        .blob_links()
        .await?
        .into_iter()
        .filter(|(r, d, _)| !target_links.contains(&(r.clone(), d.clone())))
        .collect();
    if let Some((r, d, _)) = lost.first() {
        return Err(missing("blob links", lost.len(), format!("{r}@{d}")));
    }
    let target_tags: std::collections::HashSet<(String, String, String)> =
        to.meta().all_tags().await?.into_iter().collect();
    let lost: Vec<_> = from
        .meta()
        .all_tags()
        .await?
        .into_iter()
        .filter(|t| !target_tags.contains(t))
        .collect();
    if let Some((r, t, _)) = lost.first() {
        return Err(missing("tags", lost.len(), format!("{r}:{t}")));
    }
    let mut after: Option<(String, String)> = None;
    loop {
        let page = from
            .meta()
            .manifest_page(after.as_ref().map(|(r, d)| (r.as_str(), d.as_str())), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.repo.clone(), last.digest.clone()));
        for m in &page {
            let d: Digest = m.digest.parse()?;
            if to.meta().manifest_by_digest(&m.repo, &d).await?.is_none() {
                return Err(missing("manifests", 1, format!("{}@{}", m.repo, m.digest)));
            }
        }
    }
    Ok(())
}
