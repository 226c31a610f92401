//! A headless Chromium for the web-view tests: chromedriver started on a
//! free port, a WebDriver session, screenshots, and waits that poll with a
//! deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub struct ChromeDriver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free port and waits until it is ready. The port
/// is free when chosen but may be taken before chromedriver binds it: if
/// chromedriver exits during startup, it is tried again on another port.
pub fn start_chromedriver() -> ChromeDriver {
    for bin in ["/usr/bin/chromedriver", "/usr/bin/chromium"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} not found: install Debian's chromium and chromium-driver"
        );
    }
    for _attempt in 0..5 {
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = ChromeDriver {
            child,
            port,
            _profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = format!("http://127.0.0.1:{port}/status");
        loop {
            if driver.child.try_wait().expect("try_wait").is_some() {
                break; // exited: most likely the port was taken
            }
            let ready = reqwest::blocking::get(&status)
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("chromedriver exited during startup five times");
}

pub async fn connect(driver: &ChromeDriver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1366,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("WebDriver session")
}

/// `$SCREENSHOT_DIR`, or `screenshots/` in the cargo target directory
/// (this test runs from `<target>/<profile>/deps/`): never the source tree.
fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("SCREENSHOT_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::current_exe()
            .expect("test executable path")
            .ancestors()
            .nth(3)
            .expect("<target>/<profile>/deps/<test>")
            .join("screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(c: &Client, name: &str) {
    // Full-page height so long layer tables are captured whole.
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1000)
        .clamp(600, 4000);
    c.set_window_size(1366, height as u32).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// The texts of the elements matching `css`, read again if the page
/// replaced them meanwhile (a stale element: it was still loading).
pub async fn texts(c: &Client, css: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    'again: loop {
        let mut out = Vec::new();
        for e in c.find_all(Locator::Css(css)).await.unwrap() {
            match e.text().await {
                Ok(t) => out.push(t),
                Err(err)
                    if Instant::now() < deadline
                        && format!("{err:?}").contains("StaleElementReference") =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue 'again;
                }
                Err(err) => panic!("text of {css}: {err:?}"),
            }
        }
        return out;
    }
}

/// Wait until the browser has navigated to a URL containing `part`.
pub async fn wait_for_url(c: &Client, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await.unwrap();
        if url.as_str().contains(part) && c.find(Locator::Css("h1")).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never navigated to *{part}*: at {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No page may carry script: they work without JavaScript, and hostile text
/// must never become an element.
pub async fn assert_no_script(c: &Client) {
    let scripts = c.find_all(Locator::Css("script")).await.unwrap();
    assert!(
        scripts.is_empty(),
        "page contains {} <script> elements",
        scripts.len()
    );
    let pwned = c
        .execute("return window.pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "injected script ran");
}
