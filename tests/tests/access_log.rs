//! The access log as an operator reads it: one line per request with every
//! field, the request id the client saw, no secret from a query string or a
//! header, no colour codes in a file, and no line lost across a SIGTERM
//! under load.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::{docker, docker_build_busybox, DockerImages, Registry};

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n";

/// The access-log lines of the registry's JSON log.
fn access_lines(reg: &Registry) -> Vec<serde_json::Value> {
    reg.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect()
}

#[test]
fn docker_push_and_pull_are_logged_with_every_field() {
    let reg = Registry::start();
    let image = format!("{}/e2e/access-log:v1", reg.host());
    let _cleanup = DockerImages(vec![image.clone()]);
    docker_build_busybox(DOCKERFILE, "access-log", &image);
    docker().args(["push", &image]).run_ok();
    docker().args(["rmi", &image]).run_ok();
    docker().args(["pull", &image]).run_ok();
    reg.log_barrier();

    let lines = access_lines(&reg);
    let docker_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.contains("docker/"))
        })
        .collect();
    assert!(
        docker_lines.len() >= 8,
        "few docker requests logged: {lines:#?}"
    );
    for l in &docker_lines {
        for field in [
            "client",
            "request_id",
            "method",
            "route",
            "path",
            "status",
            "bytes_in",
            "bytes_out",
            "duration_ms",
            "user_agent",
            "complete",
            "timestamp",
        ] {
            assert!(!l[field].is_null(), "{field} missing from {l}");
        }
        let route = l["route"].as_str().unwrap();
        assert!(route.starts_with("/v2/"), "{l}");
        if route != "/v2/" {
            assert_eq!(l["repository"], "e2e/access-log", "{l}");
            assert!(route.contains("{name}"), "route is a template: {l}");
        }
        assert!(
            l["client"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{l}"
        );
    }
    let find = |method: &str, route: &str, status: u64| {
        docker_lines
            .iter()
            .find(|l| l["method"] == method && l["route"] == route && l["status"] == status)
            .unwrap_or_else(|| panic!("no {method} {route} -> {status} in {docker_lines:#?}"))
    };
    // Docker sends layer bytes in a PATCH, then the digest in a PUT.
    let chunk = find("PATCH", "/v2/{name}/blobs/uploads/{uuid}", 202);
    assert!(chunk["bytes_in"].as_u64().unwrap() > 0, "{chunk}");
    let upload = find("PUT", "/v2/{name}/blobs/uploads/{uuid}", 201);
    assert!(
        upload["query"]
            .as_str()
            .unwrap()
            .starts_with("digest=sha256"),
        "{upload}"
    );
    let pull = find("GET", "/v2/{name}/blobs/{digest}", 200);
    assert!(pull["bytes_out"].as_u64().unwrap() > 0, "{pull}");
    assert_eq!(pull["complete"], true);
    let manifest = find("PUT", "/v2/{name}/manifests/{reference}", 201);
    assert!(manifest["bytes_in"].as_u64().unwrap() > 0);
    // Docker checks for blobs before pushing them: 404s with their OCI code.
    let miss = find("HEAD", "/v2/{name}/blobs/{digest}", 404);
    assert_eq!(miss["error"], "BLOB_UNKNOWN", "{miss}");
}

#[test]
fn request_ids_match_and_secrets_stay_out() {
    let reg = Registry::start();
    let http = reqwest::blocking::Client::new();
    let r = http
        .get(format!(
            "{}/v2/?X-Amz-Signature=s3cr3tsig&token=t0kenvalue&n=5",
            reg.url()
        ))
        .header("Authorization", "Basic dXNlcjpodW50ZXIy")
        .header("Cookie", "session=c00kievalue")
        .send()
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let r = http
        .get(format!("{}/v2/_catalog", reg.url()))
        .header("X-Request-Id", "client-chosen-42")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-42");
    reg.log_barrier();
    let lines = access_lines(&reg);
    let first = lines
        .iter()
        .find(|l| l["request_id"] == generated.as_str())
        .unwrap_or_else(|| panic!("no line with request id {generated}"));
    assert_eq!(
        first["query"], "X-Amz-Signature=REDACTED&token=REDACTED&n=5",
        "{first}"
    );
    assert!(lines.iter().any(|l| l["request_id"] == "client-chosen-42"));
    let log = reg.log_text();
    for secret in [
        "s3cr3tsig",
        "t0kenvalue",
        "dXNlcjpodW50ZXIy",
        "hunter2",
        "c00kievalue",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

#[test]
fn text_logs_to_a_file_have_no_colour_codes() {
    let reg = Registry::start_with(&["--log-format", "text"]);
    reqwest::blocking::get(format!("{}/v2/nope/manifests/x", reg.url())).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !reg.log_text().contains("/v2/nope/manifests/x") {
        assert!(
            std::time::Instant::now() < deadline,
            "no access line:\n{}",
            reg.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = reg.log_text();
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );
    assert!(log.contains("registry listening"), "{log}");
}

#[test]
fn no_line_is_lost_across_a_sigterm_under_load() {
    let mut reg = Registry::start();
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/v2/", reg.url());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (answered, stop, url) = (answered.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("load-{w}-{i}");
                    i += 1;
                    let ok = http
                        .get(&url)
                        .header("X-Request-Id", &id)
                        .send()
                        .and_then(|r| r.error_for_status().and_then(|r| r.bytes()))
                        .is_ok();
                    if ok {
                        answered.lock().unwrap().push(id);
                    } else {
                        // The registry is shutting down.
                        break;
                    }
                }
            })
        })
        .collect();
    // Under load: stop once a few thousand requests have been answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 3000 {
        assert!(std::time::Instant::now() < deadline, "load too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = reg.stop();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(status.success(), "SIGTERM exit status {status}");
    let logged: HashSet<String> = access_lines(&reg)
        .iter()
        .filter_map(|l| l["request_id"].as_str().map(str::to_string))
        .collect();
    let answered = answered.lock().unwrap();
    let lost: Vec<&String> = answered.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests have no log line, e.g. {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );
}
