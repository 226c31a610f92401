//! Zero-downtime stops: on SIGTERM a node fails `/readyz` at once, keeps
//! serving (a whole push goes through) for its drain delay, then stops
//! listening, finishes what is in flight and exits 0.

use e2e::oci::simple_image;
use e2e::Registry;
use std::time::{Duration, Instant};

#[test]
fn sigterm_fails_readiness_then_serves_through_the_drain_and_exits_cleanly() {
    let mut reg = Registry::start_with(&["--shutdown-drain-secs", "3"]);
    let client = reg.client();
    client.get("/readyz").expect_status(200);
    let pid = reg.pid().unwrap() as i32;
    let sent = Instant::now();
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
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
    let status = reg.stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        sent.elapsed() >= Duration::from_secs(3),
        "stopped before the drain ended: {:?}",
        sent.elapsed()
    );
    let log = reg.log_text();
    assert!(log.contains("SIGTERM: /readyz fails now"), "{log}");
}
