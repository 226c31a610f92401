//! The Docker engine against the registry: build a multi-layer image, push,
//! pull by tag and digest, run, push to a second repository (cross-repo mount,
//! deduplicated storage), and a manifest list via `docker manifest`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use e2e::{
    blob_files, docker, docker_build_busybox, docker_manifest_list, image_platform, list_platforms,
    other_arch, sha256_digest, DockerImages, Registry,
};

const APP_DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo hello > /greeting
COPY data.txt /data/data.txt
CMD ["/bin/sh", "-c", "cat /greeting /data/data.txt"]
"#;

/// `digest: sha256:... size: N` from `docker push` output.
fn pushed_digest(push_output: &str) -> String {
    push_output
        .lines()
        .find_map(|l| {
            let i = l.find("digest: sha256:")?;
            let d = &l[i + "digest: ".len()..];
            Some(d.split_whitespace().next()?.to_string())
        })
        .unwrap_or_else(|| panic!("no digest in docker push output:\n{push_output}"))
}

fn image_id(reference: &str) -> String {
    docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .run_ok()
        .stdout
        .trim()
        .to_string()
}

/// Digests of config + layers of the manifest at repo:reference.
fn manifest_blobs(client: &e2e::Client, repo: &str, reference: &str) -> (String, Vec<String>) {
    let m = client.get_manifest(repo, reference);
    let v: serde_json::Value = serde_json::from_slice(&m.body).expect("manifest JSON");
    let config = v["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    let layers = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_string())
        .collect();
    (config, layers)
}

#[test]
fn docker_build_push_pull_run_and_cross_repo_push() {
    e2e::require_env("DOCKER_HOST");
    let reg = Registry::start();
    let client = reg.client();
    let host = reg.host();
    let app = format!("{host}/e2e/app:v1");
    let copy = format!("{host}/e2e/copy:v1");
    let mut images = DockerImages(vec![app.clone(), copy.clone()]);

    docker_build_busybox(APP_DOCKERFILE, "app", &app);
    let built_id = image_id(&app);

    let push = docker().args(["push", &app]).run_ok().stdout;
    let digest = pushed_digest(&push);
    let m = client.get_manifest("e2e/app", "v1");
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(sha256_digest(&m.body), digest);
    let (config, layers) = manifest_blobs(&client, "e2e/app", "v1");
    assert_eq!(layers.len(), 4, "expected 4 layers (COPY, RUN, RUN, COPY)");
    for d in layers.iter().chain([&config]) {
        client.get_blob_verified("e2e/app", d);
    }
    let repo_digest = docker()
        .args(["inspect", "--format", "{{index .RepoDigests 0}}", &app])
        .run_ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(repo_digest, format!("{host}/e2e/app@{digest}"));

    // Pull by tag.
    docker().args(["rmi", &app]).run_ok();
    docker().args(["image", "inspect", &app]).run_fail();
    docker().args(["pull", &app]).run_ok();
    assert_eq!(image_id(&app), built_id, "pulled image differs from built");
    let out = docker()
        .args(["run", "--rm", "--network", "none", &app])
        .run_ok()
        .stdout;
    assert_eq!(out, "hello\ndata app\n");

    // Pull by digest.
    docker().args(["rmi", &app]).run_ok();
    let by_digest = format!("{host}/e2e/app@{digest}");
    images.0.push(by_digest.clone());
    docker().args(["pull", &by_digest]).run_ok();
    assert_eq!(image_id(&by_digest), built_id);
    let out = docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &by_digest,
            "/bin/sh",
            "-c",
            "ls /bin/ls && cat /greeting",
        ])
        .run_ok()
        .stdout;
    assert_eq!(out, "/bin/ls\nhello\n");

    // Push to a second repository: layers must be mounted or found, never
    // uploaded again.
    docker().args(["tag", &by_digest, &copy]).run_ok();
    let push2 = docker().args(["push", &copy]).run_ok().stdout;
    assert_eq!(pushed_digest(&push2), digest);
    reg.wait_for_request("PUT /v2/e2e/copy/manifests/v1 -> 201", |r| {
        r.method == "PUT" && r.path == "/v2/e2e/copy/manifests/v1" && r.status == 201
    });
    let layer_set: BTreeSet<&str> = layers.iter().map(String::as_str).collect();
    let summary = reg.requests_summary();
    let uploads_prefix = "/v2/e2e/copy/blobs/uploads/";
    // Completed uploads into e2e/copy (PUT ...?digest=) must not be layers.
    let upload_puts = reg.find_requests("PUT", uploads_prefix, None);
    for r in &upload_puts {
        let d = r.param("digest").unwrap_or("");
        assert!(
            !layer_set.contains(d),
            "layer {d} was uploaded again to e2e/copy instead of mounted ({} {} -> {}); requests:\n{summary}",
            r.method,
            r.raw_uri,
            r.status
        );
    }
    // Data PATCHes may only belong to those non-layer uploads (the config).
    let patches = reg.count_requests("PATCH", uploads_prefix, None);
    assert!(
        patches <= upload_puts.len(),
        "{patches} PATCH(es) to e2e/copy uploads but only {} non-layer upload(s); requests:\n{summary}",
        upload_puts.len()
    );
    for l in &layers {
        let mounted = reg
            .find_requests("POST", uploads_prefix, Some(201))
            .iter()
            .any(|r| r.param("mount") == Some(l.as_str()));
        let found = reg.count_requests("HEAD", &format!("/v2/e2e/copy/blobs/{l}"), Some(200)) > 0;
        assert!(
            mounted || found,
            "layer {l} was neither mounted (POST ?mount= -> 201) nor found (HEAD -> 200) in e2e/copy; requests:\n{summary}"
        );
    }
    assert_eq!(
        manifest_blobs(&client, "e2e/copy", "v1"),
        (config.clone(), layers.clone())
    );
    for d in layers.iter().chain([&config]) {
        client.get_blob_verified("e2e/copy", d);
    }

    // Storage is content-addressed and deduplicated across repositories.
    let files = blob_files(reg.data_dir());
    let mut by_name: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for (rel, name) in &files {
        by_name
            .entry(name.as_str())
            .or_default()
            .push(rel.as_path());
    }
    for (name, paths) in &by_name {
        assert_eq!(
            paths.len(),
            1,
            "blob {name} stored more than once: {paths:?}"
        );
        let expected = Path::new("sha256")
            .join(&name[..2.min(name.len())])
            .join(name);
        assert_eq!(paths[0], expected.as_path(), "unexpected blob path layout");
        let data = std::fs::read(reg.data_dir().join("blobs").join(paths[0])).unwrap();
        assert_eq!(
            sha256_digest(&data),
            format!("sha256:{name}"),
            "blob file content does not match its name"
        );
    }
    let stored: BTreeSet<String> = by_name.keys().map(|n| format!("sha256:{n}")).collect();
    let mut referenced: BTreeSet<String> = layers.iter().cloned().collect();
    referenced.insert(config.clone());
    for d in &referenced {
        assert!(
            stored.contains(d),
            "blob {d} not in {}/blobs",
            reg.data_dir().display()
        );
    }
    let mut allowed = referenced.clone();
    allowed.insert(digest.clone()); // the manifest may be stored as a blob too
    let extra: Vec<_> = stored.difference(&allowed).collect();
    assert!(extra.is_empty(), "unexpected files in blobs/: {extra:?}");
    assert!(
        files.len() == referenced.len() || files.len() == referenced.len() + 1,
        "blobs/ holds {} files for {} distinct blobs: {files:?}",
        files.len(),
        referenced.len()
    );
}

#[test]
fn docker_manifest_list_of_two_platforms() {
    e2e::require_env("DOCKER_HOST");
    let reg = Registry::start();
    let client = reg.client();
    let host = reg.host();
    let native = format!("{host}/e2e/multi-src:native");
    let other = format!("{host}/e2e/multi-src:other");
    let list = format!("{host}/e2e/multi:list");
    let mut images = DockerImages(vec![native.clone(), other.clone(), list.clone()]);

    docker_build_busybox(APP_DOCKERFILE, "native", &native);
    let native_digest = pushed_digest(&docker().args(["push", &native]).run_ok().stdout);
    let native_id = image_id(&native);
    let native_platform = image_platform(&native);
    let native_arch = native_platform
        .split('/')
        .nth(1)
        .expect("os/arch")
        .to_string();

    // A second, different image that the list claims for another
    // architecture than the engine's.
    docker_build_busybox(
        &format!("FROM {native}\nCOPY data.txt /other.txt\n"),
        "other stand-in",
        &other,
    );
    let other_digest = pushed_digest(&docker().args(["push", &other]).run_ok().stdout);
    assert_ne!(native_digest, other_digest);
    let (other_arch, other_variant) = other_arch(&native_arch);
    let list_digest = docker_manifest_list(
        &list,
        &[
            (&native, &native_arch, None),
            (&other, other_arch, other_variant),
        ],
    );

    // The registry serves the list with both platforms.
    let m = client.get_manifest("e2e/multi", "list");
    assert_eq!(sha256_digest(&m.body), list_digest);
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(list_digest.as_str())
    );
    let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    assert_eq!(
        v["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json",
        "{v}"
    );
    let platforms: BTreeMap<String, String> = list_platforms(&v)
        .into_iter()
        .zip(v["manifests"].as_array().expect("manifests"))
        .map(|(p, e)| (p, e["digest"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(platforms.get(&native_platform), Some(&native_digest), "{v}");
    let other_entry = platforms
        .iter()
        .find(|(p, _)| p.starts_with(&format!("linux/{other_arch}")))
        .unwrap_or_else(|| panic!("no linux/{other_arch} entry: {v}"));
    assert_eq!(other_entry.1, &other_digest, "{v}");
    // Both referenced manifests are in e2e/multi too.
    client.get_manifest("e2e/multi", &native_digest);
    client.get_manifest("e2e/multi", &other_digest);

    // Pulling the list resolves to the engine's own platform.
    docker().args(["rmi", &native, &other]).run_ok();
    docker().args(["pull", &list]).run_ok();
    assert_eq!(image_id(&list), native_id);
    let out = docker()
        .args(["run", "--rm", "--network", "none", &list])
        .run_ok()
        .stdout;
    assert_eq!(out, "hello\ndata native\n");
    let by_digest = format!("{host}/e2e/multi@{list_digest}");
    images.0.push(by_digest.clone());
    docker().args(["pull", &by_digest]).run_ok();
    assert_eq!(image_id(&by_digest), native_id);
}
