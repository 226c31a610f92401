//! What token authentication costs: manifest GET by tag and blob HEAD at
//! many connections on an instance with `--auth token` (a bearer token on
//! every request: verified once, then found by its hash) against our
//! default instance (authentication off), measured in turn, medians of
//! three; and `GET /token` latency for a user with Basic credentials.

use super::client::{Conn, Target};
use super::load::{latency, run_requests, Limit, RequestSpec};
use super::ops::OCI_MANIFEST;
use super::report::Better;
use super::servers::Server;
use super::work_small::{ensure_image, READS};
use super::Bench;
use anyhow::{bail, Context as _, Result};
use hyper::Method;
use std::io::Write;
use std::process::{Command, Stdio};

pub const GET_OFF: &str = "manifest GET by tag, auth off";
pub const GET_ON: &str = "manifest GET by tag, auth on (bearer token)";
pub const HEAD_OFF: &str = "blob HEAD, auth off";
pub const HEAD_ON: &str = "blob HEAD, auth on (bearer token)";
pub const TOKEN_P50: &str = "GET /token, Basic credentials, 1 connection, p50";

const ROUNDS: usize = 3;
const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `registry user add` on a stopped instance's data directory.
fn add_user(bin: &std::path::Path, data_dir: &std::path::Path) -> Result<()> {
    let mut child = Command::new(bin)
        .args(["user", "add", USER, "--admin", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().context("stdin")?, "{PASSWORD}")?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "registry user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A token for `scope` from `GET /token` with Basic credentials.
async fn token(target: &Target, scope: &str) -> Result<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let mut conn = Conn::open(target).await?;
    let mut req = conn.request(
        Method::GET,
        &format!("/token?service=registry&scope={scope}"),
        super::client::ReqBody::Empty,
    );
    req.headers_mut()
        .insert("authorization", format!("Basic {basic}").parse()?);
    let d = conn.call(req, true).await?;
    if d.status.as_u16() != 200 {
        bail!("GET /token: {}", d.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&d.body)?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}

pub async fn auth(b: &mut Bench, i: usize) -> Result<()> {
    let subject = &b.subjects[i];
    if subject.target.name != "ours" || subject.server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let layer = img.blobs[1].0.clone();
    let open = b.subjects[i].target.clone();
    // Seed a second instance with the same image while it is open, then
    // restart it with authentication on.
    let root = b.work.join("ours-auth");
    {
        let seed = Server::start_ours_with(&bin, &root, "ours (seeding)", &[])?;
        let mut conn = Conn::open(&seed.target).await?;
        img.push(&mut conn, READS, "v1").await?;
    }
    add_user(&bin, &root.join("data"))?;
    let secured =
        Server::start_ours_with(&bin, &root, "ours (auth on)", &[("REGISTRY_AUTH", "token")])?;
    let bearer = format!(
        "Bearer {}",
        token(&secured.target, &format!("repository:{READS}:pull")).await?
    );
    let manifest = format!("/v2/{READS}/manifests/v1");
    let blob = format!("/v2/{READS}/blobs/{layer}");
    type Case<'a> = (&'a str, &'a Target, Method, &'a str, Option<&'a str>);
    let cases: [Case; 4] = [
        (GET_OFF, &open, Method::GET, &manifest, None),
        (
            GET_ON,
            &secured.target,
            Method::GET,
            &manifest,
            Some(&bearer),
        ),
        (HEAD_OFF, &open, Method::HEAD, &blob, None),
        (HEAD_ON, &secured.target, Method::HEAD, &blob, Some(&bearer)),
    ];
    let spec = |method: &Method, path: &str, auth: Option<&str>| {
        let mut s =
            RequestSpec::new(method.clone(), path.to_owned()).header("accept", OCI_MANIFEST);
        if let Some(a) = auth {
            s = s.header("authorization", a);
        }
        s
    };
    let conns = b.sizes.read_conns;
    for (_, target, method, path, auth) in &cases {
        run_requests(
            target,
            conns,
            Limit::time(b.sizes.run / 5),
            spec(method, path, *auth),
        )
        .await?;
    }
    let mut rates = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (n, (_, target, method, path, auth)) in cases.iter().enumerate() {
            let s = run_requests(
                target,
                conns,
                Limit::time(b.sizes.run),
                spec(method, path, *auth),
            )
            .await?;
            rates[n].push(s.per_sec());
        }
    }
    for ((label, ..), r) in cases.iter().zip(rates) {
        b.report.set(
            &format!("{label}, {conns} connections (median of {ROUNDS}, in turn)"),
            "req/s",
            Better::Higher,
            "ours",
            median(r),
        );
    }
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let token_spec = RequestSpec::new(
        Method::GET,
        format!("/token?service=registry&scope=repository:{READS}:pull"),
    )
    .header("authorization", &format!("Basic {basic}"));
    let s = latency(&secured.target, Limit::time(b.sizes.run), token_spec).await?;
    b.report
        .set(TOKEN_P50, "ms", Better::Lower, "ours", s.p50_ms());
    Ok(())
}
