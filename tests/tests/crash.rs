//! Crash torture: clients push in every upload style (monolithic, POST +
//! PUT, chunked, cross-repository mounts, manifests with tags) while the
//! registry is killed with SIGKILL at random moments. After every restart,
//! everything the registry acknowledged is there, byte for byte, and
//! `registry check` finds no problem and no staging file without a session.
//!
//! `CRASH_ROUNDS` sets the number of rounds (default 20), `CRASH_SEED` the
//! random seed (printed, to replay a failure).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use e2e::rng::Rng;
use e2e::{cmd, registry_bin, sha256_digest, Registry};
use reqwest::blocking::Client;

/// What the registry acknowledged with a 2xx.
#[derive(Default)]
struct Ledger {
    /// (repository, digest) -> sha256 of the bytes sent (= the digest).
    blobs: Vec<(String, String)>,
    /// (repository, digest) -> exact manifest bytes.
    manifests: Vec<(String, String, Vec<u8>)>,
    /// (repository, tag) -> manifest digest (tags are never reused).
    tags: HashMap<(String, String), String>,
    /// Blobs acknowledged per upload style: monolithic POST, POST + PUT,
    /// chunked, cross-repository mount.
    styles: [usize; 4],
}

const STYLES: [&str; 4] = ["monolithic POST", "POST + PUT", "chunked", "mount"];

struct Pusher {
    http: Client,
    base: String,
    ledger: Arc<Mutex<Ledger>>,
    rng: Rng,
    worker: usize,
}

/// Err: the registry did not answer (it was killed mid-request). An answer
/// other than the one expected is no such error: the test fails at once.
type Step<T> = Result<T, String>;

impl Pusher {
    fn url(&self, loc: &str) -> String {
        if loc.starts_with("http") {
            loc.to_string()
        } else {
            format!("{}{loc}", self.base)
        }
    }

    fn status(
        r: reqwest::Result<reqwest::blocking::Response>,
    ) -> Step<reqwest::blocking::Response> {
        r.map_err(|e| format!("transport: {e}"))
    }

    /// The answer must be `want`: the registry answered, so it was alive
    /// and must have answered properly, whatever the crash timing (a 4xx
    /// would otherwise stop a worker as silently as a kill).
    fn expect(r: reqwest::blocking::Response, want: u16) -> reqwest::blocking::Response {
        let status = r.status().as_u16();
        if status != want {
            let url = r.url().to_string();
            let body = r.text().unwrap_or_default();
            panic!("registry answered {status}, not {want}, to {url}: {body}");
        }
        r
    }

    fn location(r: &reqwest::blocking::Response) -> String {
        r.headers()
            .get("location")
            .expect("upload response without Location")
            .to_str()
            .unwrap()
            .to_string()
    }

    fn start(&self, repo: &str) -> Step<String> {
        let r = Self::status(
            self.http
                .post(format!("{}/v2/{repo}/blobs/uploads/", self.base))
                .send(),
        )?;
        Ok(self.url(&Self::location(&Self::expect(r, 202))))
    }

    fn with_digest(loc: &str, digest: &str) -> String {
        let sep = if loc.contains('?') { '&' } else { '?' };
        format!("{loc}{sep}digest={digest}")
    }

    /// Push `data` to `repo` in a style chosen at random; the digest once
    /// acknowledged.
    fn push_blob(&mut self, repo: &str, data: &[u8]) -> Step<String> {
        let digest = sha256_digest(data);
        let style = self.rng.below(3) as usize;
        match style {
            0 => {
                let r = Self::status(
                    self.http
                        .post(format!(
                            "{}/v2/{repo}/blobs/uploads/?digest={digest}",
                            self.base
                        ))
                        .body(data.to_vec())
                        .send(),
                )?;
                Self::expect(r, 201);
            }
            1 => {
                let loc = self.start(repo)?;
                let r = Self::status(
                    self.http
                        .put(Self::with_digest(&loc, &digest))
                        .header("Content-Type", "application/octet-stream")
                        .body(data.to_vec())
                        .send(),
                )?;
                Self::expect(r, 201);
            }
            _ => {
                let mut loc = self.start(repo)?;
                let mut at = 0;
                while at < data.len() {
                    let n = (1 + self.rng.below(data.len() as u64 / 2 + 1) as usize)
                        .min(data.len() - at);
                    let r = Self::status(
                        self.http
                            .patch(&loc)
                            .header("Content-Type", "application/octet-stream")
                            .header("Content-Range", format!("{at}-{}", at + n - 1))
                            .body(data[at..at + n].to_vec())
                            .send(),
                    )?;
                    loc = self.url(&Self::location(&Self::expect(r, 202)));
                    at += n;
                }
                let r = Self::status(self.http.put(Self::with_digest(&loc, &digest)).send())?;
                Self::expect(r, 201);
            }
        }
        let mut l = self.ledger.lock().unwrap();
        l.blobs.push((repo.to_string(), digest.clone()));
        l.styles[style] += 1;
        Ok(digest)
    }

    /// Mount a blob acknowledged in another repository: it is there, so
    /// the answer must be 201 (a 202 would be a fallback to an upload,
    /// which this test would neither finish nor record).
    fn mount(&mut self, repo: &str) -> Step<()> {
        // From another repository: a "mount" within one may open an
        // upload session instead (202), as the spec allows.
        let known = {
            let l = self.ledger.lock().unwrap();
            let others: Vec<&(String, String)> = l.blobs.iter().filter(|b| b.0 != repo).collect();
            if others.is_empty() {
                return Ok(());
            }
            others[self.rng.below(others.len() as u64) as usize].clone()
        };
        let (from, digest) = known;
        let r = Self::status(
            self.http
                .post(format!(
                    "{}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}",
                    self.base
                ))
                .send(),
        )?;
        Self::expect(r, 201);
        let mut l = self.ledger.lock().unwrap();
        l.blobs.push((repo.to_string(), digest));
        l.styles[3] += 1;
        Ok(())
    }

    fn push_image(&mut self, repo: &str, seq: u64) -> Step<()> {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seq":"{}-{seq}"}}"#,
            self.worker
        );
        let small = 1 + self.rng.below(200_000) as usize;
        let large = 300_000 + self.rng.below(3_000_000) as usize;
        let layers = [self.rng.bytes(small), self.rng.bytes(large)];
        let cfg = self.push_blob(repo, config.as_bytes())?;
        let mut descs = Vec::new();
        for l in &layers {
            let d = self.push_blob(repo, l)?;
            descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": config.len()},
            "layers": descs,
        }))
        .unwrap();
        let tag = format!("w{}-{seq}", self.worker);
        let r = Self::status(
            self.http
                .put(format!("{}/v2/{repo}/manifests/{tag}", self.base))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.clone())
                .send(),
        )?;
        Self::expect(r, 201);
        let digest = sha256_digest(&manifest);
        let mut l = self.ledger.lock().unwrap();
        l.manifests
            .push((repo.to_string(), digest.clone(), manifest));
        l.tags.insert((repo.to_string(), tag), digest);
        Ok(())
    }
}

/// Check everything in the ledger from `from` on (indices into its lists).
fn verify(reg: &Registry, ledger: &Ledger, blobs_from: usize, manifests_from: usize) {
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = reg.url();
    for (repo, digest) in &ledger.blobs[blobs_from..] {
        let r = http
            .get(format!("{base}/v2/{repo}/blobs/{digest}"))
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged blob {repo}@{digest} lost"
        );
        let body = r.bytes().unwrap();
        assert_eq!(
            &sha256_digest(&body),
            digest,
            "blob {repo}@{digest} corrupt"
        );
    }
    for (repo, digest, bytes) in &ledger.manifests[manifests_from..] {
        let r = http
            .get(format!("{base}/v2/{repo}/manifests/{digest}"))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged manifest {repo}@{digest} lost"
        );
        assert_eq!(
            &r.bytes().unwrap()[..],
            &bytes[..],
            "manifest {repo}@{digest} changed"
        );
    }
    for ((repo, tag), digest) in &ledger.tags {
        let r = http
            .head(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged tag {repo}:{tag} lost"
        );
        let got = r.headers()["docker-content-digest"].to_str().unwrap();
        assert_eq!(got, digest, "tag {repo}:{tag} moved");
    }
}

#[test]
fn acknowledged_pushes_survive_sigkill_at_random_moments() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash torture: {rounds} rounds, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut reg = Registry::start();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (mut blobs_seen, mut manifests_seen) = (0, 0);
    // Rounds whose kill caught at least one push mid-request.
    let mut rounds_caught_mid_push = 0;
    let mut seq = 0u64;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..6)
            .map(|worker| {
                let mut p = Pusher {
                    http: Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap(),
                    base: reg.url(),
                    ledger: ledger.clone(),
                    rng: Rng(rng.next_u64() | 1),
                    worker,
                };
                let stop = stop.clone();
                let first_seq = seq + worker as u64 * 1000;
                // True when the kill caught this worker mid-request.
                std::thread::spawn(move || {
                    let mut n = first_seq;
                    while !stop.load(Ordering::Relaxed) {
                        let repo = format!("crash/r{}", p.rng.below(4));
                        let step = match p.rng.below(4) {
                            0 => p.mount(&repo),
                            _ => p.push_image(&repo, n),
                        };
                        n += 1;
                        if step.is_err() {
                            // The registry went away mid-push.
                            return true;
                        }
                    }
                    false
                })
            })
            .collect();
        seq += 1_000_000;
        // Kill at a random moment of the round (the torture's own timing,
        // not a wait for anything).
        let at = Duration::from_millis(150 + rng.below(900));
        let started = Instant::now();
        while started.elapsed() < at {
            std::thread::sleep(Duration::from_millis(10));
        }
        reg.kill();
        stop.store(true, Ordering::Relaxed);
        let mut caught = 0;
        for w in workers {
            caught += usize::from(w.join().expect("a pusher panicked (see above)"));
        }
        if caught > 0 {
            rounds_caught_mid_push += 1;
        }
        reg.restart();
        let l = ledger.lock().unwrap();
        verify(&reg, &l, blobs_seen, manifests_seen);
        blobs_seen = l.blobs.len();
        manifests_seen = l.manifests.len();
        eprintln!(
            "round {round}: killed after {at:?}, {caught} of 6 pushers mid-request; {} blobs, \
             {} manifests acknowledged so far, all intact",
            l.blobs.len(),
            l.manifests.len()
        );
    }
    // Everything, once more, then an offline check of the whole store.
    let l = ledger.lock().unwrap();
    verify(&reg, &l, 0, 0);
    // Enough of every kind was acknowledged, and the kills caught pushes
    // in flight, for the survival checks above to mean something.
    let styles: Vec<String> = STYLES
        .iter()
        .zip(l.styles)
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    eprintln!(
        "{manifests_seen} manifests, {} blobs ({}); {rounds_caught_mid_push} of {rounds} kills \
         caught a push mid-request",
        l.blobs.len(),
        styles.join(", ")
    );
    assert!(
        manifests_seen >= 3 * rounds,
        "too little was pushed to mean anything ({manifests_seen} manifests in {rounds} rounds)"
    );
    for (style, n) in STYLES.iter().zip(l.styles) {
        assert!(
            n >= rounds,
            "{style}: {n} blobs acknowledged in {rounds} rounds"
        );
    }
    assert!(
        rounds_caught_mid_push * 2 >= rounds,
        "only {rounds_caught_mid_push} of {rounds} kills caught a push mid-request"
    );
    drop(l);
    reg.stop();
    let out = cmd(registry_bin())
        .arg("check")
        .arg("--data-dir")
        .arg(reg.data_dir())
        .run();
    let text = out.combined();
    assert!(out.success(), "registry check after the torture:\n{text}");
    assert!(
        !text.contains("belongs to no session"),
        "a staging file outlived its session:\n{text}"
    );
}
