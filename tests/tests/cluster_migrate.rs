//! Growing out of one machine: `registry migrate --to nodes.toml` copies a
//! local registry (disk + SQLite) holding Docker-built and generated images
//! into S3 + PostgreSQL; run again it copies nothing; then two nodes behind
//! nginx serve every image byte-identical, and Docker pulls and runs one.

use e2e::cluster::{node_config, shared_database, Bucket, Cluster};
use e2e::{docker, docker_build_busybox, oci, registry_bin, Client, DockerImages, Registry};

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo migrated > /greeting
CMD ["/bin/cat", "/greeting"]
"#;

/// Manifest bytes of `repo:reference` and of every blob it (or its
/// children) names, fetched through `c`.
fn contents(c: &Client, repo: &str, reference: &str) -> Vec<(String, Vec<u8>)> {
    let m = c.get_manifest(repo, reference);
    let mut out = vec![(format!("{repo}:{reference}"), m.body.clone())];
    let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    if let Some(children) = v["manifests"].as_array() {
        for child in children {
            let d = child["digest"].as_str().unwrap();
            out.extend(contents(c, repo, d));
        }
    }
    let blobs = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(v.get("config"))
        .filter_map(|d| d["digest"].as_str());
    for d in blobs {
        out.push((d.to_owned(), c.get_blob_verified(repo, d)));
    }
    out
}

#[test]
fn a_local_registry_migrates_into_s3_and_postgres() {
    e2e::require_env("DOCKER_HOST");
    let mut local = Registry::start();
    let lc = local.client();
    let tag = format!("{}/mig/app:v1", local.host());
    let _images = DockerImages(vec![tag.clone()]);
    docker_build_busybox(DOCKERFILE, "migrate", &tag);
    docker().args(["push", &tag]).run_ok();
    let multi = oci::two_platform_image("migrate-multi");
    lc.push_index("mig/multi", "v1", &multi);
    let simple = oci::simple_image("migrate-simple");
    lc.push_image("mig/simple", "v1", &simple);
    lc.push_image("mig/simple", "v2", &simple);
    // A blob bigger than a multipart part, and one mounted into a second
    // repository (one object in S3, two links).
    let big: Vec<u8> = (0..(9u32 << 20) + 5)
        .map(|i| (i * 7 + (i >> 11)) as u8)
        .collect();
    let big_digest = lc.push_blob("mig/big", &big);
    let mounted = lc.send(lc.request(
        reqwest::Method::POST,
        &format!("/v2/mig/other/blobs/uploads/?mount={big_digest}&from=mig/big"),
    ));
    assert_eq!(mounted.status, 201);
    let wanted: Vec<(&str, &str)> = vec![
        ("mig/app", "v1"),
        ("mig/multi", "v1"),
        ("mig/simple", "v1"),
        ("mig/simple", "v2"),
    ];
    let before: Vec<_> = wanted
        .iter()
        .flat_map(|(r, t)| contents(&lc, r, t))
        .collect();
    // Repository settings go along: immutability and a lifecycle policy.
    let policy = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}]}"#;
    for (path, body) in [
        (
            "/api/v1/repositories/mig/simple/immutability",
            r#"{"immutable": true, "exclude": ["latest"]}"#,
        ),
        ("/api/v1/repositories/mig/simple/lifecycle", policy),
    ] {
        let r = lc.send(lc.request(reqwest::Method::PUT, path).body(body));
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let data_dir = local.data_dir().to_owned();
    local.stop();

    let bucket = Bucket::shared();
    let db = shared_database();
    let work = tempfile::tempdir().unwrap();
    let to = node_config(work.path(), &bucket, &db, "", "");
    let migrate = || {
        e2e::cmd(registry_bin())
            .arg("migrate")
            .arg("--to")
            .arg(&to)
            .arg("--data-dir")
            .arg(&data_dir)
            .current_dir(work.path())
            .env("NO_COLOR", "1")
            .run_ok()
    };
    let first = migrate();
    assert!(
        first
            .stdout
            .contains("the target holds everything the source does"),
        "{}",
        first.combined()
    );
    // Every distinct blob copied once: the mounted one (two links) too.
    let blobs: std::collections::BTreeSet<&str> = before
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("sha256:"))
        .chain([big_digest.as_str()])
        .collect();
    let n = blobs.len();
    assert!(
        first
            .stdout
            .starts_with(&format!("copied {n} of {n} blobs")),
        "{} distinct blobs in the source: {}",
        n,
        first.combined()
    );
    // Again (as after an interruption): nothing left to copy.
    let again = migrate();
    assert!(
        again.stdout.starts_with("copied 0 of"),
        "{}",
        again.combined()
    );

    let c = Cluster::start_with(2, bucket, db, "", "");
    let client = Client::new(&c.url());
    let after: Vec<_> = wanted
        .iter()
        .flat_map(|(r, t)| contents(&client, r, t))
        .collect();
    assert_eq!(before.len(), after.len());
    for ((name, a), (name2, b)) in before.iter().zip(&after) {
        assert_eq!(name, name2);
        assert!(a == b, "{name}: bytes differ after the migration");
    }
    for repo in ["mig/big", "mig/other"] {
        assert!(client.get_blob_verified(repo, &big_digest) == big, "{repo}");
    }
    assert_eq!(client.tags("mig/simple"), ["v1", "v2"]);
    let imm = client
        .get("/api/v1/repositories/mig/simple/immutability")
        .expect_status(200)
        .text();
    assert!(
        imm.contains("\"immutable\":true") && imm.contains("latest"),
        "{imm}"
    );
    let lc_policy = client
        .get("/api/v1/repositories/mig/simple/lifecycle")
        .expect_status(200)
        .text();
    assert!(lc_policy.contains("sinceImagePushed"), "{lc_policy}");

    // Docker pulls the migrated image through the new nodes and runs it.
    let new_tag = format!("{}/mig/app:v1", c.host());
    let _more = DockerImages(vec![new_tag.clone()]);
    docker().args(["pull", &new_tag]).run_ok();
    let out = docker()
        .args(["run", "--rm", "--network", "none", &new_tag])
        .run_ok()
        .stdout;
    assert_eq!(out, "migrated\n");
}
