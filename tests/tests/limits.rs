//! Connection limits and timeouts against the real binary: silent and
//! trickling clients are closed on time while others are served, stalled
//! uploads are abandoned but slow ones succeed, the connection cap queues
//! and says so, hostile numbers get 4xx, and idle connections stay cheap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::Registry;

fn connect(reg: &Registry) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", reg.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Read until the server closes the connection (EOF or reset); the time it
/// took from `since`.
fn wait_closed(mut s: TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

/// Send a raw request and read the status line's code.
fn raw_status(s: &mut TcpStream, request: &[u8]) -> u16 {
    s.write_all(request).unwrap();
    read_status(s)
}

fn read_status(s: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "connection ended before a response head ({other:?}); got {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {text:?}"))
}

/// Headers of a response whose head was read by [`read_status`]: the
/// `Content-Length` body, read whole.
fn get_ok(reg: &Registry) -> bool {
    reqwest::blocking::Client::new()
        .get(format!("{}/v2/", reg.url()))
        .timeout(Duration::from_secs(5))
        .send()
        .map(|r| r.status().as_u16() == 200)
        .unwrap_or(false)
}

#[test]
fn silent_and_trickling_clients_are_closed_while_others_are_served() {
    let reg = Registry::start_with(&["--header-timeout-secs", "2"]);
    let started = Instant::now();
    let silent = connect(&reg);
    let mut trickle = connect(&reg);
    let trickler = std::thread::spawn(move || {
        // A request head at two bytes a second would take a minute.
        let head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris-test-client\r\n\r\n";
        for b in head.iter() {
            if trickle.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            let mut probe = [0u8; 1];
            trickle.set_nonblocking(true).unwrap();
            let closed = matches!(trickle.read(&mut probe), Ok(0));
            trickle.set_nonblocking(false).unwrap();
            if closed {
                break;
            }
        }
        started.elapsed()
    });
    // Meanwhile everyone else is served.
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(2) {
        assert!(
            get_ok(&reg),
            "a normal request failed while slow clients held connections"
        );
        served += 1;
    }
    assert!(served > 5, "only {served} requests served in 2 s");
    let silent_closed = wait_closed(silent, started);
    let trickle_closed = trickler.join().unwrap();
    for (what, t) in [("silent", silent_closed), ("trickling", trickle_closed)] {
        assert!(
            t >= Duration::from_millis(1900) && t < Duration::from_secs(6),
            "{what} connection closed after {t:?}, the header timeout is 2 s"
        );
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let reg = Registry::start_with(&["--idle-timeout-secs", "2", "--header-timeout-secs", "30"]);
    let mut s = connect(&reg);
    let status = raw_status(&mut s, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    let idle_from = Instant::now();
    let t = wait_closed(s, idle_from);
    assert!(
        t >= Duration::from_millis(1900) && t < Duration::from_secs(6),
        "idle connection closed after {t:?}; idle timeout 2 s, header timeout 30 s"
    );
}

fn start_session(reg: &Registry, repo: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v2/{repo}/blobs/uploads/", reg.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    r.headers()["location"].to_str().unwrap().to_string()
}

#[test]
fn a_stalled_upload_is_abandoned_and_a_slow_one_succeeds() {
    let reg = Registry::start_with(&["--body-timeout-secs", "1"]);
    // Stalled: 10 of 1000 declared bytes, then nothing.
    let location = start_session(&reg, "slow/app");
    let mut s = connect(&reg);
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[1u8; 10]).unwrap();
    let stalled_at = Instant::now();
    let t = wait_closed(s, stalled_at);
    assert!(
        t >= Duration::from_millis(900) && t < Duration::from_secs(5),
        "stalled upload closed after {t:?}; body timeout 1 s"
    );
    let status = reqwest::blocking::Client::new()
        .get(format!("{}{location}", reg.url()))
        .send()
        .unwrap();
    assert_eq!(status.status().as_u16(), 204);
    assert_eq!(
        status.headers()["range"].to_str().unwrap(),
        "0-0",
        "the broken chunk was rolled back"
    );

    // Slow but steady: 20 pieces 400 ms apart, 8 s in all, never 1 s idle.
    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let digest = e2e::sha256_digest(&data);
    let location = start_session(&reg, "slow/app");
    let mut s = connect(&reg);
    let head = format!(
        "PUT {location}?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    for piece in data.chunks(100) {
        std::thread::sleep(Duration::from_millis(400));
        s.write_all(piece).unwrap();
    }
    assert_eq!(read_status(&mut s), 201, "slow upload refused");
    let got = reqwest::blocking::get(format!("{}/v2/slow/app/blobs/{digest}", reg.url()))
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&got[..], &data[..]);
}

#[test]
fn the_connection_cap_queues_new_connections_and_says_so() {
    let reg = Registry::start_with(&["--max-connections", "3", "--header-timeout-secs", "60"]);
    // Three connections holding a partial request head.
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(&reg);
            s.write_all(b"GET /v2/ HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    let url = format!("{}/v2/", reg.url());
    let waiting = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .map(|r| r.status().as_u16())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reg.log_text().contains("connection limit reached") {
        assert!(
            Instant::now() < deadline,
            "no log line about the connection limit:\n{}",
            reg.log_tail(20)
        );
        assert!(
            !waiting.is_finished(),
            "a fourth connection was served past the cap"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !waiting.is_finished(),
        "a fourth connection was served past the cap"
    );
    // One slot frees: the queued request is served.
    drop(held.pop());
    assert_eq!(waiting.join().unwrap().expect("queued request"), 200);
    let line = reg
        .log_text()
        .lines()
        .find(|l| l.contains("connection limit reached"))
        .unwrap()
        .to_string();
    assert!(line.contains("max_connections"), "{line}");
}

#[test]
fn hostile_numbers_get_client_errors() {
    let reg = Registry::start();
    let c = reqwest::blocking::Client::new();
    let location = start_session(&reg, "num/app");
    let r = c
        .patch(format!("{}{location}", reg.url()))
        .header("Content-Range", "0-18446744073709551615")
        .body(vec![0u8; 4])
        .send()
        .unwrap();
    assert!(
        matches!(r.status().as_u16(), 400 | 416),
        "PATCH with a wrapping Content-Range: {}",
        r.status()
    );
    let base = reg.url();
    for (path, want) in [
        ("/v2/num/app/tags/list?n=9223372036854775807", 404), // no tags yet: NAME_UNKNOWN
        ("/v2/_catalog?n=9223372036854775807", 200),
        ("/v2/_catalog?n=18446744073709551615", 200),
        ("/v2/_catalog?n=18446744073709551616", 400),
        ("/v2/_catalog?n=-1", 400),
        ("/api/v1/repositories?n=9223372036854775807", 200),
        ("/ui/repos?n=9223372036854775807", 200),
    ] {
        let status = c.get(format!("{base}{path}")).send().unwrap().status();
        assert_eq!(status.as_u16(), want, "{path}");
    }
    reg.log_barrier();
    assert!(
        !reg.log_text().contains("\"status\":5"),
        "a 5xx was logged:\n{}",
        reg.log_tail(30)
    );
}

#[test]
fn an_oversized_manifest_is_refused_before_its_body() {
    let reg = Registry::start();
    // Content-Length over the limit: answered without sending a byte of body.
    let mut s = connect(&reg);
    let head = "PUT /v2/big/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
                Content-Length: 100000000\r\n\r\n";
    assert_eq!(raw_status(&mut s, head.as_bytes()), 413);
    // Chunked: refused once the limit is passed, with the body still open.
    let mut s = connect(&reg);
    let head = "PUT /v2/big/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let piece = vec![b' '; 1 << 20];
    for _ in 0..5 {
        s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        s.write_all(&piece).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    assert_eq!(read_status(&mut s), 413);
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn a_flood_of_keep_alive_connections_stays_cheap_and_is_given_back() {
    let reg = Registry::start();
    let pid = reg.pid().unwrap();
    let baseline = rss_kib(pid, "VmRSS:");
    let mut conns = Vec::new();
    for _ in 0..1000 {
        let mut s = connect(&reg);
        assert_eq!(
            raw_status(&mut s, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"),
            200
        );
        let mut body = [0u8; 2];
        s.read_exact(&mut body).unwrap();
        conns.push(s);
    }
    // An upload on 300 of them: the per-connection read buffer it grows is
    // bounded, so idle connections that once uploaded stay cheap.
    let blob = vec![9u8; 1 << 20];
    let digest = e2e::sha256_digest(&blob);
    for (i, s) in conns.iter_mut().take(300).enumerate() {
        let head = format!(
            "POST /v2/flood/r{}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            i % 10,
            blob.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        assert_eq!(raw_status(s, &blob), 201);
    }
    assert!(get_ok(&reg));
    let rss = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    eprintln!("1000 keep-alive connections, 300 uploads: RSS {rss} KiB, peak {peak} KiB (baseline {baseline} KiB)");
    assert!(
        peak < 64 << 10,
        "peak RSS {peak} KiB with 1000 idle connections"
    );
    // The flood did cost memory (else "given back" below would be vacuous).
    let rise = rss.saturating_sub(baseline);
    assert!(
        rise >= 8 << 10,
        "RSS rose only {rise} KiB over the baseline {baseline} KiB during the flood"
    );
    drop(conns);
    // Freed memory goes back to the system (the registry trims every 30 s):
    // at least half of what the flood took.
    let deadline = Instant::now() + Duration::from_secs(45);
    let started = Instant::now();
    loop {
        let now = rss_kib(pid, "VmRSS:");
        if now <= baseline + rise / 2 {
            eprintln!(
                "RSS {now} KiB {:?} after the flood (baseline {baseline}, flood {rss} KiB)",
                started.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS still {now} KiB 45 s after the flood ended (baseline {baseline} KiB, \
             {rss} KiB during it)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
