//! ECR lifecycle policies through the ECR API (issue 22): put, get,
//! preview and delete with the aws CLI, on ECR's documented example
//! policies and repositories ("Examples of lifecycle policies in Amazon
//! ECR": filtering on image count, and on multiple rules, examples A and
//! B), giving the documented results. Images are pushed in the documented
//! order (oldest first) through the ECR layer plane with boto3.

use e2e::auth::Metadata;
use e2e::ecr::{Ecr, Key, PUSH};
use serde_json::{json, Value};

const KEEP_ONE_UNTAGGED: &str = r#"{"rules": [{"rulePriority": 1, "description": "Keep only one untagged image, expire all others", "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;

fn two_rules(first: &str, second: &str) -> String {
    format!(
        r#"{{"rules": [
          {{"rulePriority": 1, "description": "Rule 1", "selection": {{"tagStatus": "tagged", "tagPrefixList": {first}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}},
          {{"rulePriority": 2, "description": "Rule 2", "selection": {{"tagStatus": "tagged", "tagPrefixList": {second}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}}
        ]}}"#
    )
}

/// Push `images` (name, tags) into `repo`, oldest first; name -> digest.
fn push(ecr: &Ecr, key: &Key, repo: &str, images: &[(&str, &[&str])]) -> Value {
    ecr.aws_ok(key, &["create-repository", "--repository-name", repo]);
    let list: Vec<String> = images
        .iter()
        .map(|(n, tags)| format!("({n:?}, {tags:?})"))
        .collect();
    ecr.boto3(
        key,
        &format!(
            "{}\nresult = {{}}\nfor name, tags in [{}]:\n    result[name] = image({repo:?}, name, list(tags))\n",
            PUSH,
            list.join(", ")
        ),
    )
}

/// The images a preview of `policy` would expire, by name.
fn preview(ecr: &Ecr, key: &Key, repo: &str, policy: &str, names: &Value) -> Vec<String> {
    let started = ecr.aws_ok(
        key,
        &[
            "start-lifecycle-policy-preview",
            "--repository-name",
            repo,
            "--lifecycle-policy-text",
            policy,
        ],
    );
    assert_eq!(started["status"], "IN_PROGRESS");
    let got = ecr.aws_ok(
        key,
        &["get-lifecycle-policy-preview", "--repository-name", repo],
    );
    assert_eq!(got["status"], "COMPLETE", "{got}");
    let results = got["previewResults"].as_array().unwrap();
    assert_eq!(
        got["summary"]["expiringImageTotalCount"],
        results.len(),
        "{got}"
    );
    let mut out: Vec<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r["action"]["type"], "EXPIRE", "{r}");
            let digest = &r["imageDigest"];
            names
                .as_object()
                .unwrap()
                .iter()
                .find(|(_, d)| *d == digest)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| panic!("{digest} is none of {names}"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn documented_example_policies_give_the_documented_results() {
    let ecr = Ecr::start(Metadata::Sqlite);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("bob", &[]);
    let (alice, bob) = (ecr.key("alice"), ecr.key("bob"));

    // Filtering on image count: three untagged images, the newest kept.
    let untagged = push(
        &ecr,
        &alice,
        "team/count",
        &[("u1", &[]), ("u2", &[]), ("u3", &[]), ("t", &["v1"])],
    );
    assert_eq!(
        preview(&ecr, &alice, "team/count", KEEP_ONE_UNTAGGED, &untagged),
        ["u1", "u2"]
    );

    // Filtering on multiple rules, example A: image A expires.
    let a = push(
        &ecr,
        &alice,
        "team/example-a",
        &[
            ("A", &["beta-1", "prod-1"]),
            ("B", &["beta-2", "prod-2"]),
            ("C", &["beta-3"]),
        ],
    );
    let policy_a = two_rules(r#"["prod"]"#, r#"["beta"]"#);
    assert_eq!(
        preview(&ecr, &alice, "team/example-a", &policy_a, &a),
        ["A"]
    );

    // Example B: images A and B expire.
    let b = push(
        &ecr,
        &alice,
        "team/example-b",
        &[
            ("A", &["beta-1", "prod-1"]),
            ("B", &["beta-2", "prod-2"]),
            ("C", &["beta-3", "prod-3"]),
        ],
    );
    let policy_b = two_rules(r#"["beta", "prod"]"#, r#"["beta"]"#);
    assert_eq!(
        preview(&ecr, &alice, "team/example-b", &policy_b, &b),
        ["A", "B"]
    );

    // Put, get (another reader), preview of the policy in place, delete.
    let put = ecr.aws_ok(
        &alice,
        &[
            "put-lifecycle-policy",
            "--repository-name",
            "team/example-b",
            "--lifecycle-policy-text",
            &policy_b,
        ],
    );
    assert_eq!(put["repositoryName"], "team/example-b");
    let got = ecr.aws_ok(
        &bob,
        &[
            "get-lifecycle-policy",
            "--repository-name",
            "team/example-b",
        ],
    );
    let text: Value = serde_json::from_str(got["lifecyclePolicyText"].as_str().unwrap()).unwrap();
    let given: Value = serde_json::from_str(&policy_b).unwrap();
    assert_eq!(
        text["rules"][0]["selection"],
        given["rules"][0]["selection"]
    );
    assert_eq!(text["rules"][1]["rulePriority"], json!(2));
    ecr.aws_ok(
        &alice,
        &[
            "start-lifecycle-policy-preview",
            "--repository-name",
            "team/example-b",
        ],
    );
    let again = ecr.aws_ok(
        &alice,
        &[
            "get-lifecycle-policy-preview",
            "--repository-name",
            "team/example-b",
        ],
    );
    assert_eq!(again["summary"]["expiringImageTotalCount"], 2, "{again}");
    // A reader may not change it; an invalid policy is refused.
    let (code, _) = ecr.aws_err(
        &bob,
        &[
            "delete-lifecycle-policy",
            "--repository-name",
            "team/example-b",
        ],
    );
    assert_eq!(code, "AccessDeniedException");
    let invalid = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#;
    let (code, message) = ecr.aws_err(
        &alice,
        &[
            "put-lifecycle-policy",
            "--repository-name",
            "team/example-b",
            "--lifecycle-policy-text",
            invalid,
        ],
    );
    assert_eq!(code, "InvalidParameterException", "{message}");
    ecr.aws_ok(
        &alice,
        &[
            "delete-lifecycle-policy",
            "--repository-name",
            "team/example-b",
        ],
    );
    let (code, _) = ecr.aws_err(
        &alice,
        &[
            "get-lifecycle-policy",
            "--repository-name",
            "team/example-b",
        ],
    );
    assert_eq!(code, "LifecyclePolicyNotFoundException");
    let (code, _) = ecr.aws_err(
        &alice,
        &[
            "get-lifecycle-policy-preview",
            "--repository-name",
            "team/none",
        ],
    );
    assert_eq!(code, "RepositoryNotFoundException");
    // Previewing changed nothing: every image (three, six tags) is there.
    let left = ecr.aws_ok(
        &bob,
        &["list-images", "--repository-name", "team/example-b"],
    );
    assert_eq!(left["imageIds"].as_array().unwrap().len(), 6, "{left}");
}
