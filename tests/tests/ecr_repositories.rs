//! ECR's repository plane (issue 22) with the aws CLI and boto3, on each
//! metadata backend: create (with tag immutability and resource tags),
//! describe (paged by the CLI and by boto3's paginator, by name, only what
//! the caller may read), resource tags, tag mutability, delete (forced or
//! not), create again; DescribeRegistry for an admin only.

use e2e::auth::Metadata;
use e2e::ecr::{Ecr, BACKENDS, REGISTRY_ID};
use serde_json::json;

fn names(v: &serde_json::Value) -> Vec<String> {
    v["repositories"]
        .as_array()
        .unwrap_or_else(|| panic!("no repositories in {v}"))
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap().to_owned())
        .collect()
}

fn repository_plane(metadata: Metadata) {
    let ecr = Ecr::start(metadata);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("bob", &[]);
    ecr.reg.add_user("root", &["--admin"]);
    let (alice, bob, root) = (ecr.key("alice"), ecr.key("bob"), ecr.key("root"));
    let host = ecr.reg.host();

    let created = ecr.aws_ok(
        &alice,
        &[
            "create-repository",
            "--repository-name",
            "team/api",
            "--image-tag-mutability",
            "IMMUTABLE",
            "--tags",
            "Key=owner,Value=alice",
            "Key=env,Value=prod",
        ],
    );
    let r = &created["repository"];
    assert_eq!(
        r["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{REGISTRY_ID}:repository/team/api")
    );
    assert_eq!(r["registryId"], REGISTRY_ID);
    assert_eq!(r["repositoryUri"], format!("{host}/team/api"));
    assert_eq!(r["imageTagMutability"], "IMMUTABLE");
    assert!(
        r["createdAt"].is_string() || r["createdAt"].is_number(),
        "{r}"
    );
    for name in ["team/web", "team/db", "team/cache", "team/queue"] {
        ecr.aws_ok(&alice, &["create-repository", "--repository-name", name]);
    }
    ecr.aws_ok(
        &root,
        &["create-repository", "--repository-name", "ops/secret"],
    );

    let (code, _) = ecr.aws_err(
        &alice,
        &["create-repository", "--repository-name", "team/api"],
    );
    assert_eq!(code, "RepositoryAlreadyExistsException");
    let (code, _) = ecr.aws_err(
        &alice,
        &["create-repository", "--repository-name", "team/Bad Name"],
    );
    assert_eq!(code, "InvalidParameterException");

    // The CLI follows nextToken page by page (2 at a time here).
    let all = ecr.aws_ok(&alice, &["describe-repositories", "--page-size", "2"]);
    assert_eq!(
        names(&all),
        [
            "team/api",
            "team/cache",
            "team/db",
            "team/queue",
            "team/web"
        ],
        "alice sees her team's repositories only, in order"
    );
    // boto3's paginator: 3 pages of at most 2, the last without a token.
    let pages = ecr.boto3(
        &alice,
        "pages = list(ecr.get_paginator('describe_repositories').paginate(PaginationConfig={'PageSize': 2}))\n\
         result = [[r['repositoryName'] for r in p['repositories']] for p in pages] + [['next' in p] for p in pages] \
         + [['nextToken' in pages[-1]]]",
    );
    assert_eq!(pages[0], json!(["team/api", "team/cache"]));
    assert_eq!(pages[1], json!(["team/db", "team/queue"]));
    assert_eq!(pages[2], json!(["team/web"]));
    assert_eq!(pages[6], json!([false]), "the last page has no nextToken");
    // The admin sees everything.
    assert!(
        names(&ecr.aws_ok(&root, &["describe-repositories"])).contains(&"ops/secret".to_owned())
    );

    // By name; one the caller may not read is as unknown as a missing one.
    let two = ecr.aws_ok(
        &bob,
        &[
            "describe-repositories",
            "--repository-names",
            "team/web",
            "team/api",
        ],
    );
    assert_eq!(names(&two), ["team/web", "team/api"]);
    for missing in ["team/nope", "ops/secret"] {
        let (code, message) = ecr.aws_err(
            &bob,
            &["describe-repositories", "--repository-names", missing],
        );
        assert_eq!(code, "RepositoryNotFoundException", "{message}");
        assert!(message.contains(missing), "{message}");
    }

    // Resource tags.
    let arn = format!("arn:aws:ecr:us-east-1:{REGISTRY_ID}:repository/team/api");
    ecr.aws_ok(
        &alice,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "Key=team,Value=core",
        ],
    );
    ecr.aws_ok(
        &alice,
        &[
            "untag-resource",
            "--resource-arn",
            &arn,
            "--tag-keys",
            "env",
        ],
    );
    let tags = ecr.aws_ok(&bob, &["list-tags-for-resource", "--resource-arn", &arn]);
    assert_eq!(
        tags["tags"],
        json!([{"Key": "owner", "Value": "alice"}, {"Key": "team", "Value": "core"}])
    );
    let (code, _) = ecr.aws_err(
        &bob,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "Key=x,Value=y",
        ],
    );
    assert_eq!(code, "AccessDeniedException");
    let foreign = "arn:aws:ecr:eu-west-1:999999999999:repository/team/api";
    let (code, _) = ecr.aws_err(
        &alice,
        &["list-tags-for-resource", "--resource-arn", foreign],
    );
    assert_eq!(code, "InvalidParameterException");

    // Tag mutability.
    let m = ecr.aws_ok(
        &alice,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            "team/web",
            "--image-tag-mutability",
            "IMMUTABLE_WITH_EXCLUSION",
            "--image-tag-mutability-exclusion-filters",
            "filterType=WILDCARD,filter=latest",
        ],
    );
    assert_eq!(m["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION");
    let web = ecr.aws_ok(
        &alice,
        &["describe-repositories", "--repository-names", "team/web"],
    );
    assert_eq!(
        web["repositories"][0]["imageTagMutabilityExclusionFilters"],
        json!([{"filterType": "WILDCARD", "filter": "latest"}])
    );

    // Delete: gone from listings, then created afresh.
    let (code, _) = ecr.aws_err(&bob, &["delete-repository", "--repository-name", "team/db"]);
    assert_eq!(code, "AccessDeniedException");
    let deleted = ecr.aws_ok(
        &alice,
        &["delete-repository", "--repository-name", "team/db"],
    );
    assert_eq!(deleted["repository"]["repositoryName"], "team/db");
    let (code, _) = ecr.aws_err(
        &alice,
        &["describe-repositories", "--repository-names", "team/db"],
    );
    assert_eq!(code, "RepositoryNotFoundException");
    let (code, _) = ecr.aws_err(
        &alice,
        &["delete-repository", "--repository-name", "team/db"],
    );
    assert_eq!(code, "RepositoryNotFoundException");
    ecr.aws_ok(
        &alice,
        &["create-repository", "--repository-name", "team/db"],
    );
    let again = ecr.aws_ok(
        &alice,
        &["describe-repositories", "--repository-names", "team/db"],
    );
    assert_eq!(again["repositories"][0]["imageTagMutability"], "MUTABLE");

    // The registry: an admin's question.
    let reg = ecr.aws_ok(&root, &["describe-registry"]);
    assert_eq!(reg["registryId"], REGISTRY_ID);
    let (code, _) = ecr.aws_err(&alice, &["describe-registry"]);
    assert_eq!(code, "AccessDeniedException");
}

#[test]
fn repository_plane_on_sqlite() {
    repository_plane(BACKENDS[0]);
}

#[test]
fn repository_plane_on_postgres() {
    repository_plane(BACKENDS[1]);
}
