//! Layer-history inspection against images built and pushed by the real
//! Docker Engine: `/api/v1` and `registry history` must agree with
//! `docker history` and with the manifest.

use e2e::{
    docker, docker_build_busybox, docker_manifest_list, image_platform, list_platforms, other_arch,
    registry_bin, DockerImages, Registry,
};
use serde_json::Value;

/// Several RUN, COPY, ENV, LABEL and WORKDIR steps, some with empty layers.
const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV APP_MODE=production PATH=/bin
LABEL org.opencontainers.image.title="history test" maintainer="ops@example.com"
WORKDIR /app
RUN echo hello > /app/greeting && echo	tabbed > /app/tabbed
COPY data.txt /app/data.txt
EXPOSE 8080
CMD ["/bin/cat", "/app/greeting"]
"#;

fn build(extra: &str, tag: &str) {
    docker_build_busybox(DOCKERFILE, extra, tag);
}

fn api(reg: &Registry, path: &str) -> Value {
    let resp = reg
        .client()
        .get(&format!("/api/v1/{path}"))
        .expect_status(200);
    serde_json::from_str(&resp.text()).unwrap()
}

fn registry_cli(reg: &Registry, args: &[&str]) -> String {
    let bin = registry_bin();
    e2e::cmd(bin)
        .arg("history")
        .args(args)
        .args(["--url", &reg.url()])
        .run_ok()
        .stdout
}

#[test]
fn api_and_cli_match_docker_history() {
    let reg = Registry::start();
    let tag = format!("{}/hist/app:v1", reg.host());
    let _images = DockerImages(vec![tag.clone()]);
    build("one", &tag);
    docker().args(["push", &tag]).run_ok();

    let docker_lines: Vec<String> = docker()
        .args(["history", "--no-trunc", "--format", "{{.CreatedBy}}", &tag])
        .run_ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(docker_lines.len() >= 9, "docker history: {docker_lines:?}");

    let detail = api(&reg, "images/hist/app:v1");
    let images = detail["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    // The engine builds for its own platform, whatever the host.
    assert_eq!(image["platform"], image_platform(&tag).as_str());
    let history = image["history"].as_array().unwrap();
    // docker history lists newest first; the API lists build order.
    let api_lines: Vec<String> = history
        .iter()
        .rev()
        .map(|h| h["created_by"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(api_lines, docker_lines);
    assert!(image["mismatch"].is_null(), "{}", image["mismatch"]);

    // The layers are the manifest's, in order, and each real history step
    // takes the next one.
    let manifest: Value =
        serde_json::from_str(&reg.client().get_manifest("hist/app", "v1").text()).unwrap();
    let manifest_layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let api_layers: Vec<&str> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(api_layers, manifest_layers);
    let taken: Vec<u64> = history
        .iter()
        .filter(|h| !h["empty_layer"].as_bool().unwrap())
        .map(|h| h["layer"].as_u64().unwrap())
        .collect();
    assert_eq!(taken, (0..manifest_layers.len() as u64).collect::<Vec<_>>());
    let config = &image["config"];
    assert_eq!(config["working_dir"], "/app");
    assert_eq!(config["labels"]["maintainer"], "ops@example.com");
    assert!(config["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "APP_MODE=production"));
    assert_eq!(config["exposed_ports"][0], "8080/tcp");

    // An SBOM attached to the image shows as a referrer by artifact type,
    // and the artifact itself (no image config, no history) still shows
    // its layer.
    let client = reg.client();
    let empty = client.push_blob("hist/app", b"{}");
    let sbom = client.push_blob("hist/app", br#"{"spdxVersion":"SPDX-2.3"}"#);
    let image_digest = detail["digest"].as_str().unwrap();
    let manifest_bytes = client.get_manifest("hist/app", "v1").body.clone();
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom, "size": 26}],
        "subject": {"mediaType": manifest["mediaType"], "digest": image_digest, "size": manifest_bytes.len()},
    });
    let r = client
        .put_manifest_raw(
            "hist/app",
            "sbom",
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&artifact).unwrap(),
        )
        .expect_status(201);
    let artifact_digest = r.header("docker-content-digest").unwrap();
    let detail = api(&reg, "images/hist/app:v1");
    let referrers = detail["images"][0]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    assert_eq!(referrers[0]["artifact_type"], "application/spdx+json");
    assert_eq!(referrers[0]["digest"], artifact_digest.as_str());
    let art = api(&reg, &format!("images/hist/app@{artifact_digest}"));
    let art_image = &art["images"][0];
    assert!(art_image["config"].is_null());
    assert_eq!(art_image["layers"][0]["digest"], sbom.as_str());
    assert_eq!(art_image["history"][0]["layer"], 0);
    assert!(art_image["mismatch"]
        .as_str()
        .unwrap()
        .contains("no history"));

    // The CLI prints the same commands, newest first, one row each.
    let out = registry_cli(&reg, &["hist/app:v1", "--no-trunc"]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), docker_lines.len(), "{out}");
    for (row, line) in rows.iter().zip(&docker_lines) {
        assert!(row.contains(line.trim_end()), "row {row:?} lacks {line:?}");
    }
    assert!(out.lines().next().unwrap().starts_with("LAYER"), "{out}");
    // Truncated by default, like docker history.
    let short = registry_cli(&reg, &["hist/app:v1"]);
    assert!(short.contains('…'), "{short}");
}

#[test]
fn two_platform_list_shows_both_platforms() {
    let reg = Registry::start();
    let host = reg.host();
    let native = format!("{host}/hist/multi:native");
    let other = format!("{host}/hist/multi:other");
    let _images = DockerImages(vec![native.clone(), other.clone()]);
    build("native", &native);
    build("other", &other);
    docker().args(["push", &native]).run_ok();
    docker().args(["push", &other]).run_ok();
    // One entry keeps the engine's platform, the other claims another
    // architecture (its content is the same kind of image).
    let native_platform = image_platform(&native);
    let native_arch = native_platform.split('/').nth(1).expect("os/arch");
    let (other_arch, other_variant) = other_arch(native_arch);
    let list = format!("{host}/hist/multi:list");
    docker_manifest_list(
        &list,
        &[
            (&native, native_arch, None),
            (&other, other_arch, other_variant),
        ],
    );
    let served: Value =
        serde_json::from_slice(&reg.client().get_manifest("hist/multi", "list").body).unwrap();
    let platforms = list_platforms(&served);
    assert_eq!(platforms.len(), 2, "{served}");
    assert_eq!(platforms[0], native_platform, "{served}");
    let other_platform = platforms[1].clone();
    assert!(
        other_platform.starts_with(&format!("linux/{other_arch}")),
        "{served}"
    );

    let detail = api(&reg, "images/hist/multi:list");
    assert_eq!(
        detail["media_type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let shown: Vec<&str> = detail["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["platform"].as_str().unwrap())
        .collect();
    assert_eq!(shown, platforms);
    for image in detail["images"].as_array().unwrap() {
        assert!(image["history"].as_array().unwrap().len() >= 9);
    }
    let filtered = api(
        &reg,
        &format!("images/hist/multi:list?platform=linux/{other_arch}"),
    );
    assert_eq!(filtered["images"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["images"][0]["platform"], other_platform.as_str());

    let tags = api(&reg, "repositories/hist/multi/tags");
    let list_row = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "list")
        .unwrap()
        .clone();
    assert_eq!(list_row["platforms"], serde_json::json!(platforms));

    // The CLI picks a platform like docker does, or the one asked for.
    let other_out = registry_cli(
        &reg,
        &[
            "hist/multi:list",
            "--platform",
            &format!("linux/{other_arch}"),
        ],
    );
    let other_detail = api(&reg, "images/hist/multi:other");
    let other_top = other_detail["images"][0]["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = &other_top["sha256:".len().."sha256:".len() + 12];
    assert!(other_out.contains(short), "{other_out}");
    let err = e2e::cmd(registry_bin())
        .args([
            "history",
            "hist/multi:list",
            "--platform",
            "windows/amd64",
            "--url",
            &reg.url(),
        ])
        .run_fail();
    let available = format!("available: {}", platforms.join(", "));
    assert!(err.stderr.contains(&available), "{}", err.stderr);
}
