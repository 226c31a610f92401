//! TLS: the registry serves HTTPS with its certificate (HTTP/2 by ALPN and
//! HTTP/1.1), picks up a renewed certificate on SIGHUP without a restart,
//! marks its session cookie `Secure`; and a TLS hello that reaches a
//! plain-HTTP registry gets an HTTP 400 answer (Docker falls back to plain
//! HTTP for an insecure registry only after one).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{cmd, Registry};

/// A self-signed certificate for 127.0.0.1 named `cn`, in `dir`.
fn make_cert(dir: &Path, cn: &str) {
    let out = cmd("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .run();
    assert!(out.success(), "openssl req:\n{}", out.combined());
}

/// `curl` against the registry trusting `ca` only (each certificate here is
/// self-signed: curl accepts no other): status, HTTP version and the
/// certificate's subject as curl saw them.
fn curl(ca: &Path, url: &str) -> (String, String, String) {
    try_curl(ca, url).unwrap_or_else(|e| panic!("{e}"))
}

/// [`curl`], or what went wrong (a handshake refused: another certificate).
fn try_curl(ca: &Path, url: &str) -> Result<(String, String, String), String> {
    let out = cmd("curl")
        .args([
            "-sv",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .run();
    if !out.success() {
        return Err(format!("curl {url}:\n{}", out.combined()));
    }
    let mut w = out.stdout.split_whitespace();
    let status = w.next().unwrap_or_default().to_string();
    let version = w.next().unwrap_or_default().to_string();
    let subject = out
        .stderr
        .lines()
        .find_map(|l| l.split_once("subject:").map(|(_, s)| s.trim().to_string()))
        .unwrap_or_default();
    Ok((status, version, subject))
}

#[test]
fn https_with_http2_and_a_certificate_reloaded_on_sighup() {
    let certs = tempfile::tempdir().unwrap();
    make_cert(certs.path(), "first");
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let reg = Registry::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let url = format!("https://{}/v2/", reg.host());
    let (status, version, subject) = curl(&cert, &url);
    assert_eq!(
        (status.as_str(), version.as_str()),
        ("200", "2"),
        "HTTP/2 over TLS"
    );
    assert!(
        subject.contains("CN=first") || subject.contains("CN = first"),
        "{subject}"
    );

    // Renewed in place, then SIGHUP: new connections get the new one.
    // Until the reload, the handshake fails (the first certificate is not
    // the second): poll on.
    let first = certs.path().join("first.pem");
    std::fs::copy(&cert, &first).unwrap();
    make_cert(certs.path(), "second");
    let second = certs.path().join("second.pem");
    std::fs::copy(&cert, &second).unwrap();
    let pid = reg.pid().unwrap().to_string();
    assert!(cmd("kill").args(["-HUP", &pid]).run().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match try_curl(&second, &url) {
            Ok((status, _, subject)) => {
                assert_eq!(status, "200");
                assert!(subject.contains("second"), "{subject}");
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "certificate not reloaded 10 s after SIGHUP: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reg.log_text().contains("TLS certificate reloaded"));

    // A broken renewal keeps the previous certificate: the second one, and
    // no other, is still served (curl trusting only it), not the first.
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(cmd("kill").args(["-HUP", &pid]).run().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reg.log_text().contains("TLS reload failed") {
        assert!(Instant::now() < deadline, "no reload failure logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, subject) = curl(&second, &url);
    assert_eq!(status, "200", "still serving after a bad reload");
    assert!(subject.contains("second"), "{subject}");
    assert!(
        try_curl(&first, &url).is_err(),
        "the first certificate is served again after a bad reload"
    );
}

#[test]
fn a_tls_hello_to_a_plain_registry_gets_an_http_400() {
    let reg = Registry::start();
    let mut s = TcpStream::connect(("127.0.0.1", reg.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The start of a TLS 1.2 ClientHello record.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    hello.extend_from_slice(&[0u8; 160]);
    s.write_all(&hello).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400"),
        "answer to a TLS hello: {text:?}"
    );
}
