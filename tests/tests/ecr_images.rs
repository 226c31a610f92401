//! ECR's image and layer planes (issue 22) with the aws CLI, boto3 and
//! Docker, on each metadata backend: describe and list images after
//! `docker push` (tag filters, boto3's pages), batch-get (accepted media
//! types, failures), put-image retags (ImageAlreadyExists, immutable tags),
//! batch-delete with ECR's failure codes; a layer pushed part by part with
//! boto3 and an image put on it, its download URL; delete-repository with
//! and without force.

use e2e::auth::{docker_config_dir, docker_in, Metadata};
use e2e::client_auth::DOCKERFILE;
use e2e::ecr::{Ecr, BACKENDS, PUSH};
use e2e::{docker_build_busybox, DockerImages};
use serde_json::{json, Value};

fn details(v: &Value) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = v["imageDetails"]
        .as_array()
        .unwrap_or_else(|| panic!("no imageDetails in {v}"))
        .iter()
        .map(|d| {
            let tags = d["imageTags"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            (d["imageDigest"].as_str().unwrap().to_owned(), tags)
        })
        .collect();
    out.sort();
    out
}

fn image_planes(metadata: Metadata) {
    let ecr = Ecr::start(metadata);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("bob", &[]);
    let (alice, bob) = (ecr.key("alice"), ecr.key("bob"));
    let host = ecr.reg.host();
    let repo = "team/images";
    ecr.aws_ok(&alice, &["create-repository", "--repository-name", repo]);

    // Two images pushed by Docker: one with two tags.
    let (one, two) = (format!("{host}/{repo}:one"), format!("{host}/{repo}:two"));
    let also = format!("{host}/{repo}:also");
    let _images = DockerImages(vec![one.clone(), two.clone(), also.clone()]);
    let cfg = docker_config_dir();
    let login = ecr.docker_login(&alice, cfg.path());
    assert!(login.success(), "{}", login.combined());
    docker_build_busybox(DOCKERFILE, &format!("one {metadata:?}"), &one);
    docker_build_busybox(DOCKERFILE, &format!("two {metadata:?}"), &two);
    e2e::docker().args(["tag", &one, &also]).run_ok();
    for r in [&one, &two, &also] {
        docker_in(cfg.path()).args(["push", r]).run_ok();
    }

    let all = ecr.aws_ok(&bob, &["describe-images", "--repository-name", repo]);
    let found = details(&all);
    assert_eq!(found.len(), 2, "{all}");
    let tags: Vec<_> = found.iter().map(|(_, t)| t.clone()).collect();
    assert!(
        tags.contains(&vec!["also".to_owned(), "one".to_owned()]),
        "{all}"
    );
    assert!(tags.contains(&vec!["two".to_owned()]), "{all}");
    let one_digest = found
        .iter()
        .find(|(_, t)| t.contains(&"one".to_owned()))
        .unwrap()
        .0
        .clone();
    let two_digest = found
        .iter()
        .find(|(_, t)| t.contains(&"two".to_owned()))
        .unwrap()
        .0
        .clone();
    for d in all["imageDetails"].as_array().unwrap() {
        assert_eq!(d["repositoryName"], repo);
        assert!(d["imageSizeInBytes"].as_u64().unwrap() > 500_000, "{d}");
        assert!(d.get("imagePushedAt").is_some(), "{d}");
        assert_eq!(
            d["artifactMediaType"],
            "application/vnd.docker.container.image.v1+json"
        );
    }
    let by_tag = ecr.aws_ok(
        &bob,
        &[
            "describe-images",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=two",
        ],
    );
    assert_eq!(
        details(&by_tag),
        [(two_digest.clone(), vec!["two".to_owned()])]
    );
    let (code, _) = ecr.aws_err(
        &bob,
        &[
            "describe-images",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=nope",
        ],
    );
    assert_eq!(code, "ImageNotFoundException");
    let (code, _) = ecr.aws_err(&bob, &["describe-images", "--repository-name", "team/none"]);
    assert_eq!(code, "RepositoryNotFoundException");

    let listed = ecr.aws_ok(&bob, &["list-images", "--repository-name", repo]);
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 3, "{listed}");

    // batch-get: the manifest bytes as pushed; failures for what is not.
    let got = ecr.aws_ok(
        &bob,
        &[
            "batch-get-image",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=one",
            "imageTag=missing",
            "imageDigest=sha256:nothex",
        ],
    );
    assert_eq!(got["images"].as_array().unwrap().len(), 1, "{got}");
    let manifest = got["images"][0]["imageManifest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(e2e::sha256_digest(manifest.as_bytes()), one_digest);
    let codes: Vec<&str> = got["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failureCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ImageNotFound", "InvalidImageDigest"], "{got}");
    let oci_only = ecr.aws_ok(
        &bob,
        &[
            "batch-get-image",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=one",
            "--accepted-media-types",
            "application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(oci_only["images"], json!([]), "{oci_only}");
    assert_eq!(oci_only["failures"][0]["failureCode"], "ImageNotFound");

    // put-image: a retag by manifest; the same again is refused.
    let put = ecr.aws_ok(
        &alice,
        &[
            "put-image",
            "--repository-name",
            repo,
            "--image-tag",
            "release",
            "--image-manifest",
            &manifest,
        ],
    );
    assert_eq!(put["image"]["imageId"]["imageDigest"], one_digest.as_str());
    let (code, _) = ecr.aws_err(
        &alice,
        &[
            "put-image",
            "--repository-name",
            repo,
            "--image-tag",
            "release",
            "--image-manifest",
            &manifest,
        ],
    );
    assert_eq!(code, "ImageAlreadyExistsException");
    let (code, _) = ecr.aws_err(
        &bob,
        &[
            "put-image",
            "--repository-name",
            repo,
            "--image-tag",
            "bob",
            "--image-manifest",
            &manifest,
        ],
    );
    assert_eq!(code, "AccessDeniedException");
    // Immutable: a tag does not move.
    ecr.aws_ok(
        &alice,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            repo,
            "--image-tag-mutability",
            "IMMUTABLE",
        ],
    );
    let (code, message) = ecr.aws_err(
        &alice,
        &[
            "put-image",
            "--repository-name",
            repo,
            "--image-tag",
            "two",
            "--image-manifest",
            &manifest,
        ],
    );
    assert_eq!(code, "ImageTagAlreadyExistsException", "{message}");

    // Filters.
    let tagged = ecr.aws_ok(
        &bob,
        &[
            "describe-images",
            "--repository-name",
            repo,
            "--filter",
            "tagStatus=UNTAGGED",
        ],
    );
    assert_eq!(tagged["imageDetails"], json!([]));

    // batch-delete: a tag (the image keeps its others), a digest (all its
    // tags), one missing.
    let del = ecr.aws_ok(
        &alice,
        &[
            "batch-delete-image",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=release",
            &format!("imageDigest={two_digest}"),
            "imageTag=ghost",
        ],
    );
    assert_eq!(del["imageIds"].as_array().unwrap().len(), 2, "{del}");
    assert_eq!(del["failures"][0]["failureCode"], "ImageNotFound", "{del}");
    assert_eq!(del["failures"][0]["imageId"]["imageTag"], "ghost");
    let left = ecr.aws_ok(&bob, &["describe-images", "--repository-name", repo]);
    assert_eq!(
        details(&left),
        [(
            one_digest.clone(),
            vec!["also".to_owned(), "one".to_owned()]
        )]
    );
    // The last tag of an image removed: the image goes with it.
    ecr.aws_ok(
        &alice,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            repo,
            "--image-tag-mutability",
            "MUTABLE",
        ],
    );
    ecr.aws_ok(
        &alice,
        &[
            "batch-delete-image",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=also",
            "imageTag=one",
        ],
    );
    let empty = ecr.aws_ok(&bob, &["describe-images", "--repository-name", repo]);
    assert_eq!(empty["imageDetails"], json!([]), "{empty}");

    // The layer plane with boto3: five images, described 2 per page; a
    // layer's download URL serves its bytes to the key's login.
    ecr.aws_ok(
        &alice,
        &["create-repository", "--repository-name", "team/parts"],
    );
    let r = ecr.boto3(
        &alice,
        &format!(
            "{PUSH}\n\
             digests = [image('team/parts', 'p%d' % i, ['v%d' % i]) for i in range(5)]\n\
             pages = list(ecr.get_paginator('describe_images').paginate(repositoryName='team/parts', PaginationConfig={{'PageSize': 2}}))\n\
             seen = sorted(d['imageDigest'] for p in pages for d in p['imageDetails'])\n\
             layer = ('layer of p0 ').encode() * 64\n\
             ld = 'sha256:' + hashlib.sha256(layer).hexdigest()\n\
             url = ecr.get_download_url_for_layer(repositoryName='team/parts', layerDigest=ld)['downloadUrl']\n\
             import urllib.request\n\
             token = ecr.get_authorization_token()['authorizationData'][0]['authorizationToken']\n\
             fetched = urllib.request.urlopen(urllib.request.Request(url, headers={{'Authorization': 'Basic ' + token}})).read() == layer\n\
             missing = ecr.batch_check_layer_availability(repositoryName='team/parts', layerDigests=['sha256:' + '0' * 64])\n\
             try:\n    ecr.put_image(repositoryName='team/parts', imageManifest=json.dumps({{'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'config': {{'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': 'sha256:' + '1' * 64, 'size': 3}}, 'layers': []}}), imageTag='broken')\n    put_missing = 'accepted'\n\
             except ClientError as e:\n    put_missing = e.response['Error']['Code']\n\
             result = {{'pages': len(pages), 'sizes': [len(p['imageDetails']) for p in pages], 'same': seen == sorted(digests), 'url': url, 'fetched': fetched, 'missing': missing['failures'][0]['failureCode'], 'put_missing': put_missing}}"
        ),
    );
    assert_eq!(r["sizes"], json!([2, 2, 1]), "{r}");
    assert_eq!(r["same"], true, "{r}");
    assert_eq!(r["missing"], "MissingLayerDigest");
    assert_eq!(
        r["fetched"], true,
        "the download URL did not serve the layer: {r}"
    );
    assert_eq!(r["put_missing"], "LayersNotFoundException");
    let url = r["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v2/team/parts/blobs/sha256:", ecr.endpoint())),
        "{url}"
    );

    // Not empty: refused unless forced.
    let (code, _) = ecr.aws_err(
        &alice,
        &["delete-repository", "--repository-name", "team/parts"],
    );
    assert_eq!(code, "RepositoryNotEmptyException");
    ecr.aws_ok(
        &alice,
        &[
            "delete-repository",
            "--repository-name",
            "team/parts",
            "--force",
        ],
    );
    let (code, _) = ecr.aws_err(
        &bob,
        &["describe-images", "--repository-name", "team/parts"],
    );
    assert_eq!(code, "RepositoryNotFoundException");
}

#[test]
fn image_planes_on_sqlite() {
    image_planes(BACKENDS[0]);
}

#[test]
fn image_planes_on_postgres() {
    image_planes(BACKENDS[1]);
}

/// Blobs on S3 (moto): a layer uploaded part by part through the ECR API
/// lands in the bucket, and `GetDownloadUrlForLayer` answers a presigned
/// S3 URL that serves its bytes with no credentials of the registry's.
#[test]
fn layers_on_s3_download_from_presigned_urls() {
    let bucket = e2e::cluster::Bucket::shared();
    let config = format!(
        "{}\n[storage]\nkind = \"s3\"\nbucket = \"{}\"\nprefix = \"{}\"\nendpoint = \"{}\"\npath_style = true\nallow_http = true\nregion = \"us-east-1\"\n",
        e2e::ecr::CONFIG,
        bucket.bucket,
        bucket.prefix,
        bucket.endpoint
    );
    let ecr = Ecr::start_with(&config, Metadata::Postgres);
    ecr.reg.add_user("alice", &[]);
    let alice = ecr.key("alice");
    ecr.aws_ok(
        &alice,
        &["create-repository", "--repository-name", "team/s3"],
    );
    let r = ecr.boto3(
        &alice,
        &format!(
            "{PUSH}\n\
             import urllib.request\n\
             image('team/s3', 's3', ['v1'])\n\
             layer = ('layer of s3 ').encode() * 64\n\
             ld = 'sha256:' + hashlib.sha256(layer).hexdigest()\n\
             url = ecr.get_download_url_for_layer(repositoryName='team/s3', layerDigest=ld)['downloadUrl']\n\
             result = {{'url': url, 'fetched': urllib.request.urlopen(url).read() == layer}}"
        ),
    );
    let url = r["url"].as_str().unwrap();
    assert!(
        url.starts_with(&bucket.endpoint),
        "not the bucket's URL: {url}"
    );
    assert!(url.contains("X-Amz-Signature="), "not presigned: {url}");
    assert_eq!(r["fetched"], true, "{r}");
}
