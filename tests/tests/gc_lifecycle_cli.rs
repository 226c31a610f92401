//! Lifecycle policies and garbage collection as a user drives them: the
//! `registry lifecycle` and `registry gc` commands against a running
//! registry (preview equals run, a dry run equals the collection, the
//! store keeps exactly what is used), both on their schedule, and with
//! token auth on, who may do what.

use e2e::auth::AuthRegistry;
use e2e::client_auth::CONFIG;
use e2e::http::Client;
use e2e::oci::{simple_image, Image};
use e2e::{blob_files, registry_bin, Registry};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const KEEP_ONE: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "the newest v* only",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 1},
   "action": {"type": "expire"}}
]}"#;

fn push(client: &Client, repo: &str, tag: &str, salt: &str) -> Image {
    let image = simple_image(salt);
    client.push_image(repo, tag, &image);
    image
}

fn stored(reg: &Registry) -> BTreeSet<String> {
    blob_files(reg.data_dir())
        .into_iter()
        .map(|(_, name)| format!("sha256:{name}"))
        .collect()
}

fn digests(image: &Image) -> BTreeSet<String> {
    image
        .blobs()
        .into_iter()
        .map(|b| b.digest.clone())
        .collect()
}

fn cli(reg_url: &str, args: &[&str]) -> e2e::cmd::CmdOutput {
    let mut c = e2e::cmd(registry_bin());
    c.args(args).args(["--url", reg_url]);
    c.run()
}

#[test]
fn lifecycle_and_gc_from_the_command_line() {
    let reg = Registry::start_with(&["--gc-interval-secs", "0", "--gc-retention-secs", "0"]);
    let client = reg.client();
    let url = reg.url();
    let v1 = push(&client, "app/web", "v1", "lc-v1");
    let v2 = push(&client, "app/web", "v2", "lc-v2");
    let v3 = push(&client, "app/web", "v3", "lc-v3");
    // An untagged image: garbage for the collector, not a policy's.
    let loose = simple_image("lc-loose");
    for b in loose.blobs() {
        client.push_blob("app/web", &b.data);
    }
    client.push_manifest("app/web", &loose.manifest.digest, &loose.manifest);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, KEEP_ONE).unwrap();
    let put = cli(
        &url,
        &["lifecycle", "put", "app/web", file.to_str().unwrap()],
    );
    assert!(put.status.success(), "{}", put.combined());
    assert!(put.stdout.contains("\"tagPatternList\""), "{}", put.stdout);
    let get = cli(&url, &["lifecycle", "get", "app/web"]);
    assert_eq!(get.stdout, put.stdout, "get shows what put stored");

    let preview = cli(&url, &["lifecycle", "preview", "app/web"]);
    assert!(preview.status.success(), "{}", preview.combined());
    assert!(
        preview.stdout.starts_with("app/web: would expire 2 images"),
        "{}",
        preview.stdout
    );
    assert!(
        preview.stdout.contains("v1") && preview.stdout.contains("v2"),
        "{}",
        preview.stdout
    );
    assert!(!preview.stdout.contains("v3"), "{}", preview.stdout);
    // Through the API: the preview is what the run expires.
    let api_preview: serde_json::Value = serde_json::from_str(
        &client
            .send(client.request(
                reqwest::Method::POST,
                "/api/v1/repositories/app/web/lifecycle/preview",
            ))
            .expect_status(200)
            .text(),
    )
    .unwrap();
    let api_run: serde_json::Value = serde_json::from_str(
        &client
            .send(client.request(
                reqwest::Method::POST,
                "/api/v1/repositories/app/web/lifecycle/run",
            ))
            .expect_status(200)
            .text(),
    )
    .unwrap();
    assert_eq!(api_preview["expired"], api_run["expired"]);
    let expired: BTreeSet<&str> = api_run["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        expired,
        BTreeSet::from([v1.manifest.digest.as_str(), v2.manifest.digest.as_str()])
    );
    assert_eq!(client.tags("app/web"), vec!["v3".to_string()]);
    let again = cli(&url, &["lifecycle", "run", "app/web"]);
    assert!(
        again.stdout.starts_with("app/web: expired 0 images"),
        "{}",
        again.combined()
    );

    // A dry run tells what the collection then does, to the number.
    let dry = cli(&url, &["gc", "--dry-run", "--grace", "0s"]);
    assert!(dry.status.success(), "{}", dry.combined());
    let real = cli(&url, &["gc", "--grace", "0s"]);
    assert!(real.status.success(), "{}", real.combined());
    let numbers = |s: &str| -> Vec<String> {
        s.lines()
            .next()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .take(3)
            .map(str::to_owned)
            .collect()
    };
    assert!(
        dry.stdout.starts_with("dry run: would remove 1 manifests"),
        "{}",
        dry.stdout
    );
    assert!(
        real.stdout.starts_with("removed 1 manifests"),
        "{}",
        real.stdout
    );
    assert_eq!(
        numbers(&dry.stdout),
        numbers(&real.stdout),
        "{}\n{}",
        dry.stdout,
        real.stdout
    );
    // The store holds exactly v3, which still pulls whole.
    assert_eq!(stored(&reg), digests(&v3));
    for b in v3.blobs() {
        client.get_blob_verified("app/web", &b.digest);
    }
    // The node's totals count the runs and what they freed.
    let totals: serde_json::Value =
        serde_json::from_str(&client.get("/api/v1/gc").expect_status(200).text()).unwrap();
    assert_eq!(totals["runs"], 1, "{totals}");
    assert!(totals["bytes_freed"].as_u64().unwrap() > 0, "{totals}");
    assert_eq!(totals["last"]["manifests_removed"], 1, "{totals}");
    let nothing = cli(&url, &["gc", "--grace", "0s"]);
    assert!(
        nothing
            .stdout
            .starts_with("removed 0 manifests, 0 blob links, 0 blobs"),
        "{}",
        nothing.stdout
    );

    // Errors a user can act on.
    std::fs::write(
        &file,
        r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
                      {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#,
    )
    .unwrap();
    let bad = cli(
        &url,
        &["lifecycle", "put", "app/web", file.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(
        bad.stderr.contains("must have the highest rulePriority"),
        "{}",
        bad.combined()
    );
    let unknown = cli(&url, &["lifecycle", "preview", "no/such"]);
    assert!(
        unknown.stderr.contains("no/such: no such repository"),
        "{}",
        unknown.combined()
    );
    let removed = cli(&url, &["lifecycle", "delete", "app/web"]);
    assert!(removed.status.success(), "{}", removed.combined());
    let none = cli(&url, &["lifecycle", "get", "app/web"]);
    assert!(
        none.stdout.contains("no lifecycle policy"),
        "{}",
        none.combined()
    );
}

#[test]
fn policies_and_collection_run_on_their_schedule() {
    let reg = Registry::start_with(&[
        "--gc-interval-secs",
        "1",
        "--gc-grace-secs",
        "0",
        "--gc-retention-secs",
        "0",
    ]);
    let client = reg.client();
    push(&client, "sched/app", "v1", "sched-1");
    let newest = push(&client, "sched/app", "v2", "sched-2");
    let r = client.send(
        client
            .request(
                reqwest::Method::PUT,
                "/api/v1/repositories/sched/app/lifecycle",
            )
            .body(KEEP_ONE),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // Within a few ticks: v1 expired by the policy, its blobs collected.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.tags("sched/app") == vec!["v2".to_string()] && stored(&reg) == digests(&newest) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not expire v1 and free its blobs: tags {:?}, {} blobs stored",
            client.tags("sched/app"),
            stored(&reg).len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn with_auth_collection_needs_an_admin_and_policies_need_delete() {
    let reg = AuthRegistry::start(CONFIG);
    let dev = reg.add_user("dev", &[]);
    let root = reg.add_user("root", &["--admin"]);
    let pusher = reg.add_robot("pusher", &["repository:dev/*:pull,push"], Some("1d"));
    let gc = |http: &e2e::auth::Http| {
        http.send(
            http.request(reqwest::Method::POST, "/api/v1/gc")
                .header("content-type", "application/json")
                .body(r#"{"dry_run": true}"#),
        )
    };
    assert_eq!(gc(&reg.anonymous()).status, 401);
    assert_eq!(gc(&reg.basic(&dev)).status, 403);
    assert_eq!(reg.basic(&dev).get("/api/v1/gc").status, 403);
    let ok = gc(&reg.basic(&root));
    assert_eq!(ok.status, 200, "{}", ok.describe());
    assert!(ok.text().contains("\"report\""), "{}", ok.text());

    let put = |http: &e2e::auth::Http| {
        http.send(
            http.request(
                reqwest::Method::PUT,
                "/api/v1/repositories/dev/app/lifecycle",
            )
            .body(KEEP_ONE),
        )
    };
    assert_eq!(put(&reg.basic(&pusher)).status, 403, "push is not enough");
    let r = put(&reg.basic(&dev));
    assert_eq!(r.status, 200, "{}", r.describe());
    // The CLI signs in from the environment.
    let out = e2e::cmd(registry_bin())
        .args(["gc", "--dry-run", "--url", &reg.url(), "--username", "root"])
        .env("REGISTRY_PASSWORD", &root.secret)
        .run_ok()
        .stdout;
    assert!(out.starts_with("dry run: would remove"), "{out}");
    let refused = e2e::cmd(registry_bin())
        .args(["gc", "--url", &reg.url(), "--username", "dev"])
        .env("REGISTRY_PASSWORD", &dev.secret)
        .run_fail();
    assert!(
        refused.stderr.contains("needs an administrator"),
        "{}",
        refused.combined()
    );
}
