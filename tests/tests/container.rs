//! The registry as a container: `deploy/rootfs.sh` and
//! `deploy/Dockerfile.prebuilt` make an image `FROM scratch` of the built
//! binary (no base image can be pulled here); Docker runs it (non-root,
//! its HEALTHCHECK turning healthy), and Docker pushes an image into it
//! and pulls it back out.

use e2e::{docker, docker_build_busybox, free_port, registry_bin, workspace_root, DockerImages};
use std::time::{Duration, Instant};

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", &self.0]).run();
    }
}

#[test]
fn the_registry_runs_as_a_container_and_serves_docker() {
    e2e::require_env("DOCKER_HOST");
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    e2e::cmd(workspace_root().join("deploy/rootfs.sh"))
        .arg(registry_bin())
        .arg(&rootfs)
        .run_ok();
    let image = format!("registry-under-test:{}", std::process::id());
    let _images = DockerImages(vec![image.clone()]);
    docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", &image])
        .arg(&rootfs)
        .run_ok();
    let user = docker()
        .args(["image", "inspect", "--format", "{{.Config.User}}", &image])
        .run_ok()
        .stdout;
    assert_eq!(user.trim(), "65532:65532", "runs as non-root");

    // Host networking on loopback (the engine here has no bridge).
    let port = free_port();
    let name = format!("registry-{}", std::process::id());
    let _container = Container(name.clone());
    docker()
        .args(["run", "-d", "--name", &name, "--network", "host"])
        .args(["--health-interval", "1s"])
        .args(["-e", &format!("REGISTRY_LISTEN=127.0.0.1:{port}")])
        .args(["-e", &format!("REGISTRY_URL=http://127.0.0.1:{port}")])
        .args(["-e", "REGISTRY_SHUTDOWN_DRAIN_SECS=0"])
        .arg(&image)
        .run_ok();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = docker()
            .args(["inspect", "--format", "{{.State.Health.Status}}", &name])
            .run_ok()
            .stdout;
        if health.trim() == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container never turned healthy ({}): {}",
            health.trim(),
            docker().args(["logs", &name]).run().combined()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let host = format!("127.0.0.1:{port}");
    let tag = format!("{host}/contained/app:v1");
    let _pushed = DockerImages(vec![tag.clone()]);
    docker_build_busybox(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n",
        "contained",
        &tag,
    );
    docker().args(["push", &tag]).run_ok();
    docker().args(["rmi", &tag]).run_ok();
    docker().args(["pull", &tag]).run_ok();
    let client = e2e::http::Client::new(&url);
    assert_eq!(client.tags("contained/app"), vec!["v1".to_string()]);
    // Its log is JSON on stdout, as the image configures.
    let logs = docker().args(["logs", &name]).run_ok().combined();
    assert!(
        logs.contains("\"route\":\"/v2/{name}/manifests/{reference}\""),
        "{logs}"
    );
}
