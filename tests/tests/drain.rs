//! Zero-downtime stops: on SIGTERM a node fails `/readyz` at once, keeps
//! serving (a whole push goes through) for its drain delay, then stops
//! listening, finishes what is in flight (an upload whose body is still
//! coming) and exits 0.

use e2e::inflight::SlowUpload;
use e2e::oci::simple_image;
use e2e::Registry;
use std::time::{Duration, Instant};

#[test]
fn sigterm_fails_readiness_then_serves_through_the_drain_and_exits_cleanly() {
    let mut reg = Registry::start_with(&["--shutdown-drain-secs", "3"]);
    let client = reg.client();
    client.get("/readyz").expect_status(200);
    // An upload in flight across the whole shutdown: half its body now,
    // the rest once the node has stopped listening.
    let data: Vec<u8> = (0..256u32 << 10).map(|i| (i % 251) as u8).collect();
    let slow = SlowUpload::start(reg.port(), "drain/slow", &data);
    let log_from = reg.log_text().len();
    let sent = Instant::now();
    reg.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while client.get("/readyz").status != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz still ready after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still serving: a whole push and a pull.
    let image = simple_image("drain");
    client.push_image("drain/app", "v1", &image);
    client.get_manifest("drain/app", "v1");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "the test was too slow to use the drain window"
    );

    // The drain ends: the node stops listening with the upload open.
    let stopped = reg.wait_for_line(
        log_from,
        "shutdown requested: draining in-flight requests",
        Duration::from_secs(10),
    );
    assert!(
        sent.elapsed() >= Duration::from_secs(3),
        "stopped listening before the drain ended: {:?}",
        sent.elapsed()
    );
    let v: serde_json::Value = serde_json::from_str(&stopped).expect("a JSON log line");
    let open = v["fields"]["open"].as_u64().or_else(|| v["open"].as_u64());
    assert!(
        open.is_some_and(|n| n >= 1),
        "no connection open when the node stopped listening: {stopped}"
    );
    // Finished after that, and acknowledged.
    assert_eq!(slow.finish(), 201, "the upload in flight was not finished");
    let digest = e2e::sha256_digest(&data);
    let status = reg.stop();
    assert!(status.success(), "exit status {status:?}");
    let log = reg.log_text();
    assert!(log.contains("SIGTERM: /readyz fails now"), "{log}");
    // Its access-log line comes after the node stopped listening.
    let put = log[log_from..]
        .find(&format!("digest={digest}"))
        .expect("the slow upload's access-log line");
    let stop = log[log_from..].find("shutdown requested").unwrap();
    assert!(
        put > stop,
        "the upload was answered before the node stopped listening"
    );
    // And it is there after a restart, whole.
    reg.restart();
    assert_eq!(
        reg.client().get_blob_verified("drain/slow", &digest),
        data,
        "the upload finished during the shutdown is not stored"
    );
}
