//! Listings at scale: a page of tags near the end of a repository with
//! many tags, and a catalog page near the end of many repositories, each at
//! a small and a large total to show whether latency depends on the total.

use super::client::Conn;
use super::load::{latency, run_ops, Limit, RequestSpec};
use super::ops;
use super::report::Better;
use super::work_small::ensure_image;
use super::Bench;
use anyhow::Result;
use hyper::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED_CONNS: usize = 16;
const LONG: Duration = Duration::from_secs(7200);

fn tag_name(n: u64) -> String {
    format!("t{n:07}")
}

fn repo_name(n: u64) -> String {
    format!("bench/cat/r{n:06}")
}

/// Latency of a page: sequential requests for a while (at least one).
async fn page_latency(b: &Bench, i: usize, path: String) -> Result<f64> {
    let target = &b.subjects[i].target;
    let warm = RequestSpec::new(Method::GET, path.clone());
    latency(target, Limit::ops(1, LONG), warm).await?;
    let limit = Limit::ops(200, b.sizes.run);
    let s = latency(target, limit, RequestSpec::new(Method::GET, path)).await?;
    Ok(s.p50_ms())
}

/// Tag the read image `count` times in `repo` (tags `from..from+count`).
async fn seed_tags(b: &mut Bench, i: usize, repo: &str, count: u64) -> Result<f64> {
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let target = b.subjects[i].target.clone();
    let mut conn = Conn::open(&target).await?;
    img.push(&mut conn, repo, &tag_name(0)).await?;
    let manifest = img.manifest.clone();
    let repo = Arc::new(repo.to_string());
    let t = Instant::now();
    run_ops(
        &target,
        SEED_CONNS,
        Limit::ops(count, LONG),
        move |mut conn: Conn, n| {
            let (manifest, repo) = (manifest.clone(), repo.clone());
            async move {
                ops::put_manifest(&mut conn, &repo, &tag_name(n), &manifest).await?;
                Ok((conn, 0))
            }
        },
    )
    .await?;
    Ok(count as f64 / t.elapsed().as_secs_f64())
}

pub async fn tags(b: &mut Bench, i: usize) -> Result<()> {
    let who = b.subjects[i].target.name.clone();
    for (repo, count) in [
        ("bench/tags-small", b.sizes.tags_small),
        ("bench/tags-large", b.sizes.tags_large),
    ] {
        let rate = seed_tags(b, i, repo, count).await?;
        b.report.set(
            "seeding: tag pushes (manifest PUT), 16 clients",
            "tags/s",
            Better::Higher,
            &who,
            rate,
        );
        let last = tag_name(count.saturating_sub(200));
        let ms = page_latency(b, i, format!("/v2/{repo}/tags/list?n=100&last={last}")).await?;
        b.report.set(
            &format!("tags/list page (n=100, last=) in {count} tags, p50"),
            "ms",
            Better::Lower,
            &who,
            ms,
        );
    }
    Ok(())
}

/// Create repositories `from..to` by mounting the read image's config blob.
async fn seed_repos(b: &mut Bench, i: usize, from: u64, to: u64) -> Result<f64> {
    ensure_image(b, i).await?;
    let digest = Arc::new(
        b.subjects[i].image.as_ref().expect("pushed").blobs[0]
            .0
            .clone(),
    );
    let target = b.subjects[i].target.clone();
    let t = Instant::now();
    run_ops(
        &target,
        SEED_CONNS,
        Limit::ops(to - from, LONG),
        move |mut conn: Conn, n| {
            let digest = digest.clone();
            async move {
                let mounted =
                    ops::mount(&mut conn, &repo_name(from + n), &digest, "bench/reads").await?;
                anyhow::ensure!(mounted, "mount into {} refused", repo_name(from + n));
                Ok((conn, 0))
            }
        },
    )
    .await?;
    Ok((to - from) as f64 / t.elapsed().as_secs_f64())
}

pub async fn catalog(b: &mut Bench, i: usize) -> Result<()> {
    let who = b.subjects[i].target.name.clone();
    let mut have = 0;
    for count in [b.sizes.repos_small, b.sizes.repos_large] {
        let rate = seed_repos(b, i, have, count).await?;
        have = count;
        b.report.set(
            "seeding: repositories (cross-repo mount), 16 clients",
            "repos/s",
            Better::Higher,
            &who,
            rate,
        );
        let last = repo_name(count.saturating_sub(200));
        let ms = page_latency(b, i, format!("/v2/_catalog?n=100&last={last}")).await?;
        b.report.set(
            &format!("_catalog page (n=100, last=) in {count} repositories, p50"),
            "ms",
            Better::Lower,
            &who,
            ms,
        );
    }
    Ok(())
}
