//! The files view and the waste report in a real headless Chromium: from an
//! image page to a layer's files, into a directory and back with the
//! browser's back button, the stacked tree, the waste report; the pages
//! work under their content security policy (the stylesheet applies, no
//! script), and file names that are HTML stay text. Screenshots are saved
//! with the web view's others.

use e2e::{docker, docker_build_busybox, DockerImages, Registry};
use fantoccini::{Client, Locator};

mod browser;
use browser::{assert_no_script, connect, screenshot, start_chromedriver, texts, wait_for_url};

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
RUN mkdir -p /srv/app/static /root/.ssh && head -c 200000 /dev/zero > /srv/app/bundle.js && echo '<script>window.pwned=1</script>' > '/srv/app/static/<img src=x onerror=window.pwned=2>.html' && echo KEY > /root/.ssh/id_rsa
RUN head -c 50000 /dev/zero > /srv/app/bundle.js && rm /root/.ssh/id_rsa
"#;

async fn click_link(c: &Client, text: &str) {
    c.find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("link {text:?}: {e:?}"))
        .click()
        .await
        .unwrap();
}

#[test]
fn browse_into_a_directory_and_back_then_read_the_waste_report() {
    let reg = Registry::start();
    let tag = format!("{}/web/files:v1", reg.host());
    let _images = DockerImages(vec![tag.clone()]);
    docker_build_busybox(DOCKERFILE, "unused", &tag);
    docker().args(["push", &tag]).run_ok();

    let driver = start_chromedriver();
    let base = reg.url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = connect(&driver).await;
        c.goto(&format!("{base}/ui/images/web/files:v1"))
            .await
            .unwrap();
        // The stylesheet applies under the policy: the header is dark.
        let bg = c
            .find(Locator::Css("header"))
            .await
            .unwrap()
            .css_value("background-color")
            .await
            .unwrap();
        assert_eq!(bg, "rgba(17, 24, 39, 1)", "the stylesheet did not apply");

        // The stacked files, from the image page.
        click_link(&c, "Files").await;
        wait_for_url(&c, "/files?").await;
        let names = texts(&c, "table.files tbody td.name").await;
        assert!(names.iter().any(|n| n == "srv/"), "{names:?}");
        click_link(&c, "srv/").await;
        wait_for_url(&c, "path=%2Fsrv").await;
        click_link(&c, "app/").await;
        wait_for_url(&c, "path=%2Fsrv%2Fapp").await;
        let names = texts(&c, "table.files tbody td.name").await;
        assert!(names.iter().any(|n| n == "bundle.js"), "{names:?}");
        click_link(&c, "static/").await;
        wait_for_url(&c, "path=%2Fsrv%2Fapp%2Fstatic").await;
        let names = texts(&c, "table.files tbody td.name").await;
        assert_eq!(
            names
                .iter()
                .filter(|n| n.contains("<img src=x onerror=window.pwned=2>.html"))
                .count(),
            1,
            "the HTML name is shown as text: {names:?}"
        );
        assert!(c
            .find_all(Locator::Css("td.name img"))
            .await
            .unwrap()
            .is_empty());
        assert_no_script(&c).await;

        // Back, with the browser's button: the directory above again.
        c.back().await.unwrap();
        wait_for_url(&c, "path=%2Fsrv%2Fapp").await;
        let url = c.current_url().await.unwrap();
        assert!(url.as_str().ends_with("path=%2Fsrv%2Fapp"), "{url}");
        let names = texts(&c, "table.files tbody td.name").await;
        assert!(names.iter().any(|n| n == "bundle.js"), "{names:?}");
        screenshot(&c, "10-files.png").await;

        // One layer: the last deleted the key.
        let layer3 = c
            .find(Locator::Css("nav.layers a:last-child"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert!(layer3.contains("layer=3"), "{layer3}");
        c.goto(&format!(
            "{base}{}",
            layer3.replace("path=%2Fsrv%2Fapp", "path=%2Froot%2F.ssh")
        ))
        .await
        .unwrap();
        wait_for_url(&c, "layer=3").await;
        let deleted = texts(&c, "table.files tr.deleted td.name").await;
        assert_eq!(deleted, ["id_rsa"], "the deletion is listed");

        // The waste report.
        click_link(&c, "Wasted space and secrets").await;
        wait_for_url(&c, "/waste").await;
        let wasted = texts(&c, "table.wasted tbody td:first-child").await;
        assert_eq!(
            wasted.first().map(String::as_str),
            Some("/srv/app/bundle.js"),
            "{wasted:?}"
        );
        let secrets = texts(&c, "table.secrets tbody td:first-child").await;
        assert_eq!(secrets, ["/root/.ssh/id_rsa"]);
        let eff = texts(&c, "#efficiency").await;
        assert!(eff[0].ends_with('%'), "{eff:?}");
        assert_no_script(&c).await;
        screenshot(&c, "11-waste.png").await;
        c.close().await.unwrap();
    });
}
