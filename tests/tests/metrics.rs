//! Prometheus metrics: `/metrics` passes `promtool check metrics`
//! (Debian's `prometheus` package) on a registry with every feature that
//! records metrics configured and used (token auth, a pull-through cache
//! of Debian's `docker-registry` with a rule whose limit refuses, webhooks
//! delivering and failing, quotas, lifecycle policies, GC), so that every
//! metric family is present when promtool looks; its labels are route
//! templates (never a path or a repository); and a real Prometheus
//! started here scrapes the registry and answers a query for the request
//! counter.

use e2e::auth::AuthRegistry;
use e2e::free_port;
use e2e::oci::simple_image;
use e2e::upstream::fake::{FakeUpstream, Reply, Request};
use e2e::upstream::CncfRegistry;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tool(name: &str) -> String {
    let path = format!("/usr/bin/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} not found: install Debian's prometheus package"
    );
    path
}

/// Every metric family the registry records (README, Operations).
const FAMILIES: &[&str] = &[
    "registry_http_requests_total",
    "registry_http_request_duration_seconds",
    "registry_http_received_bytes_total",
    "registry_http_sent_bytes_total",
    "registry_uploads_in_progress",
    "registry_cache_requests_total",
    "registry_gc_runs_total",
    "registry_gc_removed_total",
    "registry_gc_freed_bytes_total",
    "registry_gc_duration_seconds",
    "registry_auth_failures_total",
    "registry_pullthrough_requests_total",
    "registry_pullthrough_refusals_total",
    "registry_upstream_fetches_total",
    "registry_upstream_fetches_in_progress",
    "registry_upstream_received_bytes_total",
    "registry_events_delivered_total",
    "registry_event_delivery_failures_total",
];

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    let upstream = CncfRegistry::start();
    let cached = simple_image("metrics: pulled through");
    upstream.http().push_image("lib/app", "1", &cached);
    let hook = FakeUpstream::start(|_: &Request| Reply::json(200, "{}"));
    // Nothing listens there: every delivery fails.
    let dead = free_port();
    let creds = format!(
        "upstream = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
        upstream.url(),
        e2e::upstream::USER,
        upstream.password
    );
    let reg = AuthRegistry::start(&format!(
        "[gc]\ninterval_secs = 0\n\n\
         [[quotas]]\nnamespace = \"small\"\nbytes = 10\n\n\
         [[notifications]]\nname = \"hook\"\nurl = \"{}/events\"\n\n\
         [[notifications]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{dead}/events\"\ntimeout_secs = 1\n\n\
         [[cache]]\nprefix = \"hub\"\n{creds}\n\
         [[cache]]\nprefix = \"tiny\"\n{creds}max_blob_bytes = 1\n",
        hook.url()
    ));
    let admin = reg.add_user("admin", &["--admin"]);
    let client = reg.basic(&admin);
    let image = simple_image("metrics");
    client.push_image("metrics/app", "v1", &image);
    for _ in 0..3 {
        client.get_manifest("metrics/app", "v1");
    }
    client
        .get("/v2/metrics/app/manifests/nope")
        .expect_status(404);
    // Credentials refused.
    let mut wrong = admin.clone();
    wrong.secret.push('x');
    reg.basic(&wrong).get("/v2/").expect_status(401);
    // A quota refuses a push.
    let r = client.upload_blob("small/app", b"more than ten bytes of layer");
    assert_eq!(r.status, 403, "{}", r.describe());
    // A lifecycle policy runs.
    let put = client.send(
        client
            .request(reqwest::Method::PUT, "/api/v1/repositories/metrics/app/lifecycle")
            .json(&serde_json::json!({"rules": [{"rulePriority": 1, "selection":
                {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
                "action": {"type": "expire"}}]})),
    );
    assert!(put.status < 300, "{}", put.describe());
    client
        .send(client.request(
            reqwest::Method::POST,
            "/api/v1/repositories/metrics/app/lifecycle/run",
        ))
        .expect_status(200);
    let r = client.send(
        client
            .request(reqwest::Method::POST, "/api/v1/gc")
            .json(&serde_json::json!({ "grace_secs": 0 })),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // The pull-through cache: a blob over the tiny rule's limit is
    // refused, then the image pulls through the other rule.
    let layer = &cached.layers[0].blob.digest;
    client
        .get(&format!("/v2/tiny/lib/app/blobs/{layer}"))
        .expect_status(403);
    client.get_manifest("hub/lib/app", "1");
    for b in cached.blobs() {
        client
            .get(&format!("/v2/hub/lib/app/blobs/{}", b.digest))
            .expect_status(200);
    }

    let metrics = || client.get("/metrics").expect_status(200).text();
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = metrics();
        let missing: Vec<_> = FAMILIES
            .iter()
            .filter(|f| !text.contains(&format!("# TYPE {f} ")))
            .collect();
        if missing.is_empty() {
            break text;
        }
        // Deliveries and the blobs' storing finish after their answers.
        assert!(
            Instant::now() < deadline,
            "metric families missing after all that traffic: {missing:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for want in [
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="GET",status="200"} 4"#,
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="GET",status="404"} 1"#,
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="PUT",status="201"} 1"#,
        "registry_http_request_duration_seconds_bucket{",
        "registry_http_received_bytes_total{",
        "registry_gc_runs_total ",
        "registry_cache_requests_total{cache=\"tag\",result=\"hit\"}",
        "registry_pullthrough_refusals_total{reason=\"too_large\"} 1",
        "registry_events_delivered_total{endpoint=\"hook\"}",
        "registry_event_delivery_failures_total{endpoint=\"dead\"}",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    for name in ["metrics/app", "lib/app", "small/app"] {
        assert!(
            !text.contains(name),
            "a repository name ({name}) became a label:\n{text}"
        );
    }

    // promtool reads the exposition from stdin.
    let mut check = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scraping every second.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: registry\n    static_configs:\n      - targets: ['{}']\n",
            reg.host()
        ),
    )
    .unwrap();
    let mut prom = Command::new(tool("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=sum(registry_http_requests_total%7Bmethod%3D%22GET%22%7D)"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let got = http
            .get(&query)
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok());
        if let Some(v) = got.filter(|v| {
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        }) {
            break v;
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "Prometheus never answered with the counter: {}",
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let value: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value >= 4.0, "{answer}");
}
