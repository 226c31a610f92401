//! The ECR API at scale: `DescribeImages` walked over a repository of
//! 10,000 images (`--quick`: 1,000) in pages of 1,000 (`maxResults`,
//! `nextToken`), each page's latency and the whole walk, three walks; and
//! the cost of one SigV4 verification (`auth::sigv4`, in process: the
//! benchmarked server runs without authentication, so its figures are the
//! operation's own; a signed request adds the verification measured here,
//! the key's row read and its secret unsealed).

use super::client::{Conn, ReqBody};
use super::data;
use super::load::{run_ops, Limit};
use super::ops::{self, OCI_MANIFEST};
use super::report::Better;
use super::Bench;
use anyhow::{bail, Result};
use hyper::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPO: &str = "bench/ecr";
const PAGE: usize = 1_000;
const WALKS: usize = 3;
const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.DescribeImages";

/// One `DescribeImages` call: the page's image count and next token.
async fn describe(conn: &mut Conn, token: Option<&str>) -> Result<(usize, Option<String>)> {
    let mut body = serde_json::json!({ "repositoryName": REPO, "maxResults": PAGE });
    if let Some(t) = token {
        body["nextToken"] = t.into();
    }
    let mut req = conn.request(Method::POST, "/", ReqBody::bytes(body.to_string()));
    req.headers_mut().insert("x-amz-target", TARGET.parse()?);
    req.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1".parse()?);
    let done = conn
        .call(req, true)
        .await?
        .expect("DescribeImages", &[200])?;
    let v: serde_json::Value = serde_json::from_slice(&done.body)?;
    let n = v["imageDetails"].as_array().map_or(0, Vec::len);
    Ok((n, v["nextToken"].as_str().map(str::to_owned)))
}

/// Microseconds one SigV4 verification takes (median of batches).
pub fn sigv4_verify_micros() -> f64 {
    use auth::sigv4::{
        check_scope, parse_amz_date, sign_for_tests, verify, Authorization, Request,
    };
    let now = auth::now_unix();
    let date = auth::sigv4::format_amz_date(now);
    let body = br#"{"repositoryName":"team/app","maxResults":1000}"#;
    let req = Request {
        method: "POST",
        path_and_query: "/",
        headers: vec![
            ("host", "registry.example.com"),
            ("x-amz-date", &date),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", TARGET),
        ],
        body,
    };
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let header = sign_for_tests(&req, "AKIAEXAMPLEEXAMPLE00", secret, "us-east-1", "ecr");
    let mut batches = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..2_000 {
            let auth = Authorization::parse(&header).expect("header");
            let at =
                check_scope(&auth, &req, "ecr", &["us-east-1".to_owned()], now).expect("scope");
            verify(&auth, &req, secret, at).expect("signature");
        }
        batches.push(t.elapsed().as_secs_f64() * 1e6 / 2_000.0);
    }
    assert!(parse_amz_date(&date).is_some());
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

pub async fn ecr(b: &mut Bench, i: usize) -> Result<()> {
    let target = b.subjects[i].target.clone();
    let mut conn = Conn::open(&target).await?;
    let mut probe = conn.request(Method::POST, "/", ReqBody::bytes("{}"));
    probe.headers_mut().insert(
        "x-amz-target",
        "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry".parse()?,
    );
    if conn.call(probe, true).await?.status.as_u16() != 200 {
        eprintln!("  {}: no ECR API, skipped", target.name);
        return Ok(());
    }
    let images = b.sizes.ecr_images;
    // One config and one layer; each image's manifest differs by an
    // annotation, so each is an image of its own.
    let config = bytes::Bytes::from(
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = data::bytes(0x0065_6372, 0, 4096);
    let (cd, ld) = (data::digest_of(&config), data::digest_of(&layer));
    ops::push_blob(&mut conn, REPO, &cd, ReqBody::bytes(config.clone())).await?;
    ops::push_blob(&mut conn, REPO, &ld, ReqBody::bytes(layer.clone())).await?;
    let manifest = move |n: u64| {
        bytes::Bytes::from(
            serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len() },
                "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": layer.len() }],
                "annotations": { "n": n.to_string() },
            })
            .to_string(),
        )
    };
    let manifest = Arc::new(manifest);
    let t = Instant::now();
    run_ops(
        &target,
        16,
        Limit::ops(images as u64, Duration::from_secs(3600)),
        move |mut conn: Conn, n| {
            let manifest = manifest.clone();
            async move {
                ops::put_manifest(&mut conn, REPO, &format!("t{n:06}"), &manifest(n)).await?;
                Ok((conn, 0))
            }
        },
    )
    .await?;
    eprintln!(
        "  {images} images pushed in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let mut pages_ms = Vec::new();
    let mut walks_s = Vec::new();
    for _ in 0..WALKS {
        let walk = Instant::now();
        let (mut seen, mut token) = (0, None);
        loop {
            let t = Instant::now();
            let (n, next) = describe(&mut conn, token.as_deref()).await?;
            pages_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            seen += n;
            token = next;
            if token.is_none() {
                break;
            }
        }
        if seen != images {
            bail!("DescribeImages walked {seen} images, not {images}");
        }
        walks_s.push(walk.elapsed().as_secs_f64());
    }
    pages_ms.sort_by(f64::total_cmp);
    walks_s.sort_by(f64::total_cmp);
    let who = target.name.clone();
    let label = format!("ECR DescribeImages, page of {PAGE} of {images} images");
    b.report.set(
        &format!("{label}, p50"),
        "ms",
        Better::Lower,
        &who,
        pages_ms[pages_ms.len() / 2],
    );
    b.report.set(
        &format!("{label}, max"),
        "ms",
        Better::Lower,
        &who,
        pages_ms[pages_ms.len() - 1],
    );
    b.report.set(
        &format!("ECR DescribeImages, walk of {images} images (median of {WALKS})"),
        "s",
        Better::Lower,
        &who,
        walks_s[walks_s.len() / 2],
    );
    b.report.set(
        "ECR SigV4 verification, one request (in process, median)",
        "µs",
        Better::Lower,
        &who,
        sigv4_verify_micros(),
    );
    Ok(())
}
