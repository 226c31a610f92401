//! ECR's tag immutability with the real client: `registry repo immutable`
//! switches it on with `latest` excluded; `docker push` of an existing tag
//! to another image fails showing ECR's message, the same image pushes
//! again, `latest` still moves, and off again the tag moves.

use e2e::{docker, docker_build_busybox, registry_bin, sha256_digest, DockerImages, Registry};

fn dockerfile(word: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN echo {word} > /word\nCMD [\"/bin/cat\", \"/word\"]\n"
    )
}

#[test]
fn docker_push_to_an_immutable_tag_shows_ecrs_message() {
    e2e::require_env("DOCKER_HOST");
    let reg = Registry::start();
    let client = reg.client();
    let host = reg.host();
    let (one, two) = (format!("{host}/imm/app:one"), format!("{host}/imm/app:two"));
    let (v1, latest) = (
        format!("{host}/imm/app:v1"),
        format!("{host}/imm/app:latest"),
    );
    let _images = DockerImages(vec![one.clone(), two.clone(), v1.clone(), latest.clone()]);
    docker_build_busybox(&dockerfile("one"), "one", &one);
    docker_build_busybox(&dockerfile("two"), "two", &two);

    let out = e2e::cmd(registry_bin())
        .args([
            "repo",
            "immutable",
            "imm/app",
            "on",
            "--exclude",
            "latest",
            "--url",
            &reg.url(),
        ])
        .run_ok()
        .stdout;
    assert_eq!(out, "imm/app: tags are immutable, except latest\n");
    let setting = client
        .get("/api/v1/repositories/imm/app/immutability")
        .expect_status(200)
        .text();
    assert!(setting.contains("\"immutable\":true"), "{setting}");

    // What each push of `latest` left it pointing at: the images' digests.
    let mut pushed = Vec::new();
    for src in [&one, &two] {
        docker().args(["tag", src, &v1]).run_ok();
        docker().args(["tag", src, &latest]).run_ok();
        let push = docker().args(["push", &v1]).run();
        if src == &one {
            assert!(push.success(), "{}", push.combined());
        } else {
            assert!(!push.success(), "moving v1 was allowed");
            assert!(
                push.combined().contains(
                    "tag invalid: The image tag 'v1' already exists in the 'imm/app' repository \
                     and cannot be overwritten because the repository is immutable."
                ),
                "{}",
                push.combined()
            );
        }
        docker().args(["push", &latest]).run_ok();
        pushed.push(sha256_digest(
            &client.get_manifest("imm/app", "latest").body,
        ));
    }
    // v1 kept the first image; latest moved to the second.
    let (first, second) = (&pushed[0], &pushed[1]);
    assert_ne!(first, second, "the two images have one digest");
    assert_eq!(
        &sha256_digest(&client.get_manifest("imm/app", "v1").body),
        first,
        "v1 moved off the first image"
    );
    let h = client
        .get("/api/v1/repositories/imm/app/tags/latest/history")
        .expect_status(200)
        .text();
    assert_eq!(h.matches("\"push\"").count(), 2, "{h}");
    // The same image again is no move.
    docker().args(["tag", &one, &v1]).run_ok();
    docker().args(["push", &v1]).run_ok();

    // Off: the tag moves.
    e2e::cmd(registry_bin())
        .args(["repo", "immutable", "imm/app", "off", "--url", &reg.url()])
        .run_ok();
    docker().args(["tag", &two, &v1]).run_ok();
    docker().args(["push", &v1]).run_ok();
    assert_eq!(
        &sha256_digest(&client.get_manifest("imm/app", "v1").body),
        second
    );
}
