//! Push and delete events reach a webhook in the CNCF registry's envelope:
//! a receiver that refuses the first deliveries still gets every event
//! once the retries succeed, in order, each once; and events written while
//! it was down reach it after the registry restarted.

use e2e::oci::simple_image;
use e2e::Registry;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver: refuses (503) while `refuse` is above zero
/// (counting down), then keeps each accepted body and its content type.
struct Receiver {
    port: u16,
    refuse: Arc<AtomicUsize>,
    /// Requests seen, refused or not.
    attempts: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    fn start(refuse_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refuse = Arc::new(AtomicUsize::new(refuse_first));
        let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let (r, g, a) = (refuse.clone(), got.clone(), attempts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut len, mut ctype) = (0usize, String::new());
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = lower.strip_prefix("content-type:") {
                        ctype = v.trim().to_owned();
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                a.fetch_add(1, Ordering::SeqCst);
                let refusing = r
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let status = if refusing {
                    "503 Service Unavailable"
                } else {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        g.lock().unwrap().push((ctype.clone(), v));
                    }
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver {
            port,
            refuse,
            attempts,
            got,
        }
    }

    /// Every event accepted so far: (action, repository, tag, id).
    fn events(&self) -> Vec<(String, String, Option<String>, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, v)| v["events"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"]["repository"].as_str().unwrap().to_owned(),
                    e["target"]["tag"].as_str().map(str::to_owned),
                    e["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.events().len() < n {
            assert!(
                Instant::now() < deadline,
                "the receiver got {:?}, wanted {n} events",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn webhooks_get_each_push_and_delete_once_through_refusals_and_restarts() {
    let receiver = Receiver::start(2);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "[[notifications]]\nname = \"ci\"\nurl = \"http://127.0.0.1:{}/events\"\nrepositories = [\"team/*\"]\n",
            receiver.port
        ),
    )
    .unwrap();
    let mut reg = Registry::start_in(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = reg.client();
    let image = simple_image("events-1");
    client.push_image("team/app", "v1", &image);
    client.push_image("other/app", "v1", &simple_image("events-other"));
    client
        .delete("/v2/team/app/manifests/v1")
        .expect_status(202);

    // Two refusals first (backoff 1 s, then 2 s), then both, once each.
    receiver.wait_for(2);
    let events = receiver.events();
    assert_eq!(
        events
            .iter()
            .map(|(a, r, t, _)| (a.as_str(), r.as_str(), t.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("push", "team/app", Some("v1")),
            ("delete", "team/app", Some("v1"))
        ],
        "{events:?}"
    );
    let (ctype, first) = receiver.got.lock().unwrap()[0].clone();
    assert_eq!(ctype, "application/vnd.docker.distribution.events.v1+json");
    assert_eq!(
        first["events"][0]["target"]["digest"],
        image.manifest.digest.as_str()
    );
    assert_eq!(
        first["events"][0]["target"]["mediaType"],
        image.manifest.media_type.as_str()
    );

    // Down while an image is pushed, the registry restarted meanwhile: the
    // event is still delivered, once.
    receiver.refuse.store(usize::MAX, Ordering::SeqCst);
    let tried = receiver.attempts.load(Ordering::SeqCst);
    client.push_image("team/app", "v2", &simple_image("events-2"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.attempts.load(Ordering::SeqCst) == tried {
        assert!(Instant::now() < deadline, "no delivery was tried");
        std::thread::sleep(Duration::from_millis(50));
    }
    reg.stop();
    reg.restart();
    receiver.refuse.store(0, Ordering::SeqCst);
    receiver.wait_for(3);
    // One more after it: in order, so a repeat of v2 would come first.
    let client = reg.client();
    client.push_image("team/app", "v3", &simple_image("events-3"));
    receiver.wait_for(4);
    let events = receiver.events();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        (events[2].0.as_str(), events[2].2.as_deref()),
        ("push", Some("v2"))
    );
    assert_eq!(
        (events[3].0.as_str(), events[3].2.as_deref()),
        ("push", Some("v3"))
    );
    // Four distinct ids: a repeat anywhere, not only next to itself.
    let ids: std::collections::BTreeSet<&String> = events.iter().map(|e| &e.3).collect();
    assert_eq!(ids.len(), 4, "an event came twice: {events:?}");
}
