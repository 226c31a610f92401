//! The web view in a real headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini): every page, the links from repository to tag
//! to image to a shared layer, escaping of hostile history, and screenshots
//! saved under `<target dir>/screenshots/` (or `$SCREENSHOT_DIR`).

use std::time::{Duration, Instant};

use e2e::{
    docker, docker_build_busybox, docker_manifest_list, image_platform, list_platforms, other_arch,
    sha256_digest, DockerImages, Registry,
};
use fantoccini::{Client, Locator};
use serde_json::Value;

mod browser;
use browser::{assert_no_script, connect, screenshot, start_chromedriver, texts, wait_for_url};

/// History and labels that would run script if they were not escaped.
const HOSTILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
LABEL org.opencontainers.image.title="<script>window.pwned=1</script>"
WORKDIR /srv
RUN echo "<script>window.pwned=2</script>" > /srv/index.html
COPY data.txt /srv/data.txt
CMD ["/bin/cat", "/srv/index.html"]
"#;

const HOSTILE_RUN: &str = r#"/bin/sh -c echo "<script>window.pwned=2</script>" > /srv/index.html"#;

#[test]
fn pages_links_escaping_and_screenshots() {
    let reg = Registry::start();
    let host = reg.host();
    let app = format!("{host}/web/app:v1");
    let copy = format!("{host}/web/copy:v1");
    let native = format!("{host}/web/multi:native");
    let other = format!("{host}/web/multi:other");
    let _images = DockerImages(vec![
        app.clone(),
        copy.clone(),
        native.clone(),
        other.clone(),
    ]);
    docker_build_busybox(HOSTILE, "app", &app);
    docker().args(["push", &app]).run_ok();
    docker().args(["tag", &app, &copy]).run_ok();
    docker().args(["push", &copy]).run_ok();
    docker_build_busybox(HOSTILE, "other", &other);
    docker().args(["tag", &app, &native]).run_ok();
    docker().args(["push", &native]).run_ok();
    docker().args(["push", &other]).run_ok();
    // The engine's platform, and another architecture for the second entry.
    let native_platform = image_platform(&native);
    let native_arch = native_platform
        .split('/')
        .nth(1)
        .expect("os/arch")
        .to_string();
    let (other_arch, other_variant) = other_arch(&native_arch);
    docker_manifest_list(
        &format!("{host}/web/multi:list"),
        &[
            (&native, &native_arch, None),
            (&other, other_arch, other_variant),
        ],
    );
    let served: Value =
        serde_json::from_slice(&reg.client().get_manifest("web/multi", "list").body).unwrap();
    let platforms = list_platforms(&served);
    assert_eq!(platforms[0], native_platform, "{served}");
    let detail: Value = serde_json::from_str(
        &reg.client()
            .get("/api/v1/images/web/app:v1")
            .expect_status(200)
            .text(),
    )
    .unwrap();
    let history_len = detail["images"][0]["history"].as_array().unwrap().len();
    let v1_digest = sha256_digest(&reg.client().get_manifest("web/app", "v1").body);

    let driver = start_chromedriver();
    let base = reg.url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = connect(&driver).await;

        // Repositories, with the filter box (a plain GET form).
        c.goto(&format!("{base}/")).await.unwrap();
        assert!(c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/ui/repos"));
        let repos = texts(&c, "#repositories tbody td:first-child").await;
        assert_eq!(repos, ["web/app", "web/copy", "web/multi"]);
        assert_no_script(&c).await;
        screenshot(&c, "01-repositories.png").await;
        c.find(Locator::Css("input[name=q]"))
            .await
            .unwrap()
            .send_keys("cop")
            .await
            .unwrap();
        c.find(Locator::Css("form.filter button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_url(&c, "q=cop").await;
        assert_eq!(
            texts(&c, "#repositories tbody td:first-child").await,
            ["web/copy"]
        );

        // Repository → its tags.
        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        c.find(Locator::LinkText("web/app"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/repos/web/app"));
        assert_eq!(texts(&c, "#tags tbody td:first-child").await, ["v1"]);
        let pull = c
            .find(Locator::Css("#pull"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(
            pull.as_deref(),
            Some(format!("docker pull {host}/web/app").as_str())
        );
        screenshot(&c, "02-repository.png").await;

        // Tag → image: the layer table and the escaping.
        c.find(Locator::LinkText("v1"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let rows = c
            .find_all(Locator::Css("table.layers tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), history_len);
        let commands = texts(&c, "table.layers td.cmd").await;
        assert!(commands.iter().any(|t| t == HOSTILE_RUN), "{commands:?}");
        let config = texts(&c, "dl.config dd").await;
        assert!(
            config
                .iter()
                .any(|t| t.contains("<script>window.pwned=1</script>")),
            "{config:?}"
        );
        assert_no_script(&c).await;
        let sizes = texts(&c, "table.layers tr.layer td.num:nth-child(4)").await;
        assert!(sizes.iter().all(|s| s.ends_with('B')), "{sizes:?}");
        // The tag's history: one push, to this image's digest.
        assert_eq!(
            texts(&c, "#tag-history tbody td:nth-child(2)").await,
            ["push"]
        );
        let to = texts(&c, "#tag-history tbody td:nth-child(5)").await;
        assert_eq!(to, [v1_digest[7..19].to_owned()], "{to:?}");
        screenshot(&c, "03-image.png").await;

        // Image → a shared layer → the other image using it.
        let shared = c
            .find(Locator::XPath(
                "//table[contains(@class,'layers')]//tr[.//span[text()='shared']]//a[starts-with(@href,'/ui/blobs/')]",
            ))
            .await
            .unwrap();
        shared.click().await.unwrap();
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/blobs/sha256:"));
        let users = texts(&c, "#uses tbody td:first-child").await;
        assert!(users.contains(&"web/app:v1".to_owned()), "{users:?}");
        assert!(users.contains(&"web/copy:v1".to_owned()), "{users:?}");
        screenshot(&c, "04-layer.png").await;
        c.find(Locator::LinkText("web/copy:v1"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(
            c.find(Locator::Css("h1"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "web/copy:v1"
        );

        // A manifest list: one section per platform, linked from the top.
        c.goto(&format!("{base}/ui/images/web/multi:list"))
            .await
            .unwrap();
        let sections = c.find_all(Locator::Css("section.platform")).await.unwrap();
        let mut ids = Vec::new();
        for s in sections {
            ids.push(s.attr("id").await.unwrap().unwrap());
        }
        let want_ids: Vec<String> = platforms.iter().map(|p| p.replace('/', "-")).collect();
        assert_eq!(ids, want_ids);
        assert_eq!(texts(&c, "nav.tabs a").await, platforms);
        screenshot(&c, "05-multi-platform.png").await;

        // Unknown things get a readable page with the right status text.
        c.goto(&format!("{base}/ui/repos/no/such")).await.unwrap();
        let h1 = c
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(h1.starts_with("404"), "{h1}");

        c.close().await.unwrap();
    });
}

/// Token auth on: the page a visitor sees before signing in lists only
/// public repositories; the sign-in form (real typing and clicks, the CSRF
/// field and cookie the browser carries) shows the user's private ones and
/// names the user in the header; a wrong password is refused on the form;
/// signing out hides them again.
#[test]
fn sign_in_and_out_in_the_browser() {
    use e2e::auth::AuthRegistry;
    let reg = AuthRegistry::start("[access]\npublic = [\"public/**\"]\n");
    let dev = reg.add_user("dev", &[]);
    let admin = reg.add_user("admin", &["--admin"]);
    let push = reg.basic(&admin);
    push.push_image("public/base", "v1", &e2e::oci::simple_image("web-public"));
    push.push_image("dev/secret", "v1", &e2e::oci::simple_image("web-private"));
    push.push_image("ops/other", "v1", &e2e::oci::simple_image("web-other"));
    let base = reg.url();

    let driver = start_chromedriver();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = connect(&driver).await;
        let repo_names = |c: &Client| {
            let c = c.clone();
            async move { texts(&c, "main a[href^='/ui/repos/']").await.join(" ") }
        };

        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        wait_for_url(&c, "/ui/repos").await;
        let anonymous = repo_names(&c).await;
        assert!(anonymous.contains("public/base"), "{anonymous}");
        assert!(!anonymous.contains("dev/secret"), "{anonymous}");
        let header = texts(&c, "header .who").await.join(" ");
        assert!(header.contains("Sign in"), "header: {header}");

        // A wrong password: the form again, with a message, and no session.
        c.find(Locator::LinkText("Sign in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_url(&c, "/ui/login").await;
        c.find(Locator::Id("user"))
            .await
            .unwrap()
            .send_keys("dev")
            .await
            .unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys("not-the-password")
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let error = loop {
            if let Ok(e) = c.find(Locator::Id("login-error")).await {
                break e.text().await.unwrap();
            }
            assert!(Instant::now() < deadline, "no sign-in error shown");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!error.is_empty());
        assert!(
            c.get_named_cookie("registry_session").await.is_err(),
            "a refused sign-in left a session cookie"
        );

        // The right password (the form is shown again: the user field keeps
        // what was typed, the password field is empty).
        let user = c.find(Locator::Id("user")).await.unwrap();
        user.clear().await.unwrap();
        user.send_keys("dev").await.unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(&dev.secret)
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let header = texts(&c, "header .who").await.join(" ");
            if header.contains("signed in as dev") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "header never named the user: {header:?} at {}",
                c.current_url().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let session = c.get_named_cookie("registry_session").await.unwrap();
        assert_eq!(
            session.http_only(),
            Some(true),
            "session cookie not HttpOnly"
        );
        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        wait_for_url(&c, "/ui/repos").await;
        let signed_in = repo_names(&c).await;
        assert!(signed_in.contains("dev/secret"), "{signed_in}");
        assert!(signed_in.contains("public/base"), "{signed_in}");
        assert!(!signed_in.contains("ops/other"), "{signed_in}");
        screenshot(&c, "signed-in.png").await;
        c.goto(&format!("{base}/ui/repos/dev/secret"))
            .await
            .unwrap();
        wait_for_url(&c, "/ui/repos/dev/secret").await;
        let tags = texts(&c, "main").await.join(" ");
        assert!(tags.contains("v1"), "{tags}");

        // Sign out: the button posts the form with its CSRF field.
        c.find(Locator::Css("header .who form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let header = texts(&c, "header .who").await.join(" ");
            if header.contains("Sign in") {
                break;
            }
            assert!(Instant::now() < deadline, "still signed in: {header:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        wait_for_url(&c, "/ui/repos").await;
        let after = repo_names(&c).await;
        assert!(!after.contains("dev/secret"), "{after}");
        assert!(after.contains("public/base"), "{after}");
        c.goto(&format!("{base}/ui/repos/dev/secret"))
            .await
            .unwrap();
        let body = c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !body.contains("v1"),
            "signed-out visitor sees the private tags: {body}"
        );
        c.close().await.unwrap();
    });
}

/// Namespace usage against quotas: the page a user reaches from the header,
/// one row per namespace with a quota, the fuller limit as the bar.
#[test]
fn namespace_usage_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        "[[quotas]]\nnamespace = \"team\"\nbytes = 1000000\nrepositories = 4\n\n[[quotas]]\nnamespace = \"empty\"\nrepositories = 2\n",
    )
    .unwrap();
    let reg = Registry::start_in(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = reg.client();
    for (repo, salt) in [("team/a", "ns-a"), ("team/b", "ns-b")] {
        client.push_image(repo, "v1", &e2e::oci::simple_image(salt));
    }
    let base = reg.url();
    let driver = start_chromedriver();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = connect(&driver).await;
        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        c.find(Locator::LinkText("namespaces"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_url(&c, "/ui/namespaces").await;
        assert_eq!(
            texts(&c, "#namespaces tbody td:first-child").await,
            ["team", "empty"]
        );
        assert_eq!(
            texts(&c, "#namespaces tbody td:nth-child(2)").await,
            ["2", "0"]
        );
        let quotas = texts(&c, "#namespaces tbody td:nth-child(4)").await;
        assert_eq!(quotas, ["1.00MB, 4 repositories", "2 repositories"]);
        // team: 2 of 4 repositories is the fuller limit (its bytes are far
        // below a megabyte): a bar half full.
        let bar = c
            .find(Locator::Css("#namespaces tbody tr:first-child .bar span"))
            .await
            .unwrap()
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default();
        // A width class of the stylesheet (the policy forbids inline styles).
        assert!(bar.split_whitespace().any(|c| c == "w50"), "{bar}");
        assert_no_script(&c).await;
        screenshot(&c, "07-namespaces.png").await;
        c.close().await.unwrap();
    });
}

#[test]
fn cached_repositories_are_marked_in_the_browser() {
    let upstream = Registry::start();
    let image = e2e::oci::simple_image("web cached");
    upstream.client().push_image("base/tool", "v1", &image);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "[[cache]]\nprefix = \"mirror\"\nupstream = \"{}\"\n",
            upstream.url()
        ),
    )
    .unwrap();
    let reg = Registry::start_in(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = reg.client();
    client.get_manifest("mirror/base/tool", "v1");
    client.push_image("own/app", "v1", &e2e::oci::simple_image("web own"));
    let (base, up) = (reg.url(), upstream.url());
    let driver = start_chromedriver();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = connect(&driver).await;
        c.goto(&format!("{base}/ui/repos")).await.unwrap();
        let rows = texts(&c, "#repositories tbody td:first-child").await;
        assert_eq!(rows, ["mirror/base/tool cached", "own/app"], "{rows:?}");
        let badge = c
            .find(Locator::Css("#repositories .cached"))
            .await
            .unwrap()
            .attr("title")
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(badge, format!("pull-through cache of {up}"));
        c.find(Locator::LinkText("mirror/base/tool"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_url(&c, "/ui/repos/mirror/base/tool").await;
        let note = texts(&c, "#cached").await;
        assert_eq!(note.len(), 1);
        assert!(
            note[0].contains(&format!("Pull-through cache of {up}")),
            "{note:?}"
        );
        assert_eq!(texts(&c, "#tags tbody td:first-child").await, ["v1"]);
        assert_no_script(&c).await;
        screenshot(&c, "08-cached-repository.png").await;
        c.goto(&format!("{base}/ui/repos/own/app")).await.unwrap();
        assert!(texts(&c, "#cached").await.is_empty());
        c.close().await.unwrap();
    });
}
