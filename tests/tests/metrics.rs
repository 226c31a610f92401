//! Prometheus metrics: `/metrics` after real traffic passes `promtool check
//! metrics` (Debian's `prometheus` package), its labels are route templates
//! (never a path or a repository), and a real Prometheus started here
//! scrapes the registry and answers a query for the request counter.

use e2e::oci::simple_image;
use e2e::{free_port, Registry};
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

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    let reg = Registry::start_with(&["--gc-interval-secs", "0"]);
    let client = reg.client();
    let image = simple_image("metrics");
    client.push_image("metrics/app", "v1", &image);
    for _ in 0..3 {
        client.get_manifest("metrics/app", "v1");
    }
    client
        .get("/v2/metrics/app/manifests/nope")
        .expect_status(404);
    let r = client.send(
        client
            .request(reqwest::Method::POST, "/api/v1/gc")
            .json(&serde_json::json!({ "grace_secs": 0 })),
    );
    assert_eq!(r.status, 200);

    let text = client.get("/metrics").expect_status(200).text();
    for want in [
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="GET",status="200"} 3"#,
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="GET",status="404"} 1"#,
        r#"registry_http_requests_total{route="/v2/{name}/manifests/{reference}",method="PUT",status="201"} 1"#,
        "registry_http_request_duration_seconds_bucket{",
        "registry_http_received_bytes_total{",
        "registry_gc_runs_total 1",
        "registry_cache_requests_total{cache=\"tag\",result=\"hit\"}",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert!(
        !text.contains("metrics/app"),
        "a repository name became a label:\n{text}"
    );

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
