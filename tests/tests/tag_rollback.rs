//! A blue/green rollback with the real client: Docker pushes v1 and then v2
//! as `prod`, `registry tag rollback app:prod` moves the tag back, Docker
//! pulls `prod` and runs v1, and `registry tag history` and the API show
//! all three changes.

use e2e::{docker, docker_build_busybox, registry_bin, sha256_digest, DockerImages, Registry};

fn dockerfile(colour: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN echo {colour} > /colour\nCMD [\"/bin/cat\", \"/colour\"]\n"
    )
}

fn run(image: &str) -> String {
    docker()
        .args(["run", "--rm", "--network", "none", image])
        .run_ok()
        .stdout
}

#[test]
fn blue_green_rollback_with_docker() {
    e2e::require_env("DOCKER_HOST");
    let reg = Registry::start();
    let client = reg.client();
    let blue = format!("{}/bg/app:blue", reg.host());
    let green = format!("{}/bg/app:green", reg.host());
    let prod = format!("{}/bg/app:prod", reg.host());
    let _images = DockerImages(vec![blue.clone(), green.clone(), prod.clone()]);
    docker_build_busybox(&dockerfile("blue"), "blue", &blue);
    docker_build_busybox(&dockerfile("green"), "green", &green);
    for (src, label) in [(&blue, "v1"), (&green, "v2")] {
        docker().args(["tag", src, &prod]).run_ok();
        docker().args(["push", &prod]).run_ok();
        eprintln!("pushed {label} as prod");
    }
    let v2 = sha256_digest(&client.get_manifest("bg/app", "prod").body);
    docker().args(["rmi", &prod]).run_ok();
    docker().args(["pull", &prod]).run_ok();
    assert_eq!(run(&prod), "green\n");

    let out = e2e::cmd(registry_bin())
        .args(["tag", "rollback", "bg/app:prod", "--url", &reg.url()])
        .run_ok()
        .stdout;
    assert!(out.starts_with("bg/app:prod: "), "{out}");
    docker().args(["rmi", &prod]).run_ok();
    docker().args(["pull", &prod]).run_ok();
    assert_eq!(run(&prod), "blue\n", "prod runs v1 after the rollback");
    let v1 = sha256_digest(&client.get_manifest("bg/app", "prod").body);
    assert_ne!(v1, v2);

    // The API: rollback, push, push (newest first).
    let h: serde_json::Value = serde_json::from_str(
        &client
            .get("/api/v1/repositories/bg/app/tags/prod/history")
            .expect_status(200)
            .text(),
    )
    .unwrap();
    let changes: Vec<(String, Option<String>, Option<String>)> = h["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["old_digest"].as_str().map(str::to_owned),
                c["new_digest"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("rollback".into(), Some(v2.clone()), Some(v1.clone())),
            ("push".into(), Some(v1.clone()), Some(v2.clone())),
            ("push".into(), None, Some(v1.clone())),
        ]
    );
    // The CLI table says the same.
    let table = e2e::cmd(registry_bin())
        .args(["tag", "history", "bg/app:prod", "--url", &reg.url()])
        .run_ok()
        .stdout;
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].contains("rollback") && rows[0].contains(&v1[7..19]),
        "{table}"
    );
    assert!(
        rows[2].contains("push") && rows[2].trim_end().ends_with(&v1[7..19]),
        "{table}"
    );
    // Nothing further back than there is; an unknown tag has no history.
    let fail = e2e::cmd(registry_bin())
        .args([
            "tag",
            "rollback",
            "bg/app:prod",
            "--steps",
            "9",
            "--url",
            &reg.url(),
        ])
        .run_fail();
    assert!(fail.stderr.contains("fewer than 9"), "{}", fail.combined());
    let none = client
        .get("/api/v1/repositories/bg/app/tags/none/history")
        .expect_status(200)
        .text();
    assert!(none.contains("\"changes\":[]"), "{none}");
}
