//! SigV4 at the ECR endpoint (issue 22), with the real clients making the
//! bad requests: unsigned (boto3's UNSIGNED), a date 15 minutes and more
//! away (botocore's clock moved), a wrong secret, a body changed after
//! signing (a botocore `before-send` hook), another region, a disabled,
//! deleted or unknown key, a key whose user is gone, and keys whose
//! accounts lack the right (AccessDeniedException). Each refusal is ECR's
//! shape: HTTP 400, `x-amzn-ErrorType`, `{"__type", "message"}`. Model
//! operations not served, and targets outside the model, answer in the
//! same shape; so does an oversized or non-JSON body.

use e2e::auth::Metadata;
use e2e::ecr::{Ecr, Key};
use serde_json::Value;

/// Run `call` (a boto3 expression on `ecr`) after `setup`; the error's
/// code, HTTP status, `x-amzn-errortype` and message, or "ok".
fn outcome(ecr: &Ecr, key: &Key, setup: &str, call: &str) -> Value {
    ecr.boto3(
        key,
        &format!(
            "{setup}\n\
             try:\n    {call}\n    result = {{'code': 'ok'}}\n\
             except ClientError as e:\n    r = e.response\n    result = {{'code': r['Error']['Code'], 'message': r['Error'].get('Message', ''), \
             'status': r['ResponseMetadata']['HTTPStatusCode'], 'type': r['ResponseMetadata']['HTTPHeaders'].get('x-amzn-errortype')}}"
        ),
    )
}

fn refused(v: &Value, code: &str) {
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["status"], 400, "{v}");
    assert_eq!(v["type"], code, "{v}");
    assert!(!v["message"].as_str().unwrap_or_default().is_empty(), "{v}");
}

const DESCRIBE: &str = "ecr.describe_repositories()";

#[test]
fn bad_signatures_and_missing_rights_are_refused_in_ecrs_shape() {
    let ecr = Ecr::start(Metadata::Sqlite);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("bob", &[]);
    ecr.reg.add_user("carol", &[]);
    let (alice, bob, carol) = (ecr.key("alice"), ecr.key("bob"), ecr.key("carol"));
    ecr.aws_ok(
        &alice,
        &["create-repository", "--repository-name", "team/app"],
    );
    assert_eq!(outcome(&ecr, &alice, "", DESCRIBE)["code"], "ok");

    // Unsigned.
    let v = outcome(
        &ecr,
        &alice,
        "ecr = boto3.client('ecr', endpoint_url=ecr.meta.endpoint_url, region_name='us-east-1', \
         config=botocore.config.Config(signature_version=botocore.UNSIGNED))",
        DESCRIBE,
    );
    refused(&v, "UnrecognizedClientException");

    // Signed 20 minutes ago, and 20 minutes ahead.
    for minutes in [-20, 20] {
        let v = outcome(
            &ecr,
            &alice,
            &format!(
                "import botocore.auth\n\
                 botocore.auth.get_current_datetime = lambda remove_tzinfo=True: \
                 (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes={minutes})).replace(tzinfo=None)"
            ),
            DESCRIBE,
        );
        refused(&v, "InvalidSignatureException");
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains("Signature expired") || m.contains("not yet current"),
            "{m}"
        );
    }
    // Within the skew: fine.
    let v = outcome(
        &ecr,
        &alice,
        "import botocore.auth\n\
         botocore.auth.get_current_datetime = lambda remove_tzinfo=True: \
         (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)).replace(tzinfo=None)",
        DESCRIBE,
    );
    assert_eq!(v["code"], "ok", "{v}");

    // A wrong secret (the CLI's words too).
    let wrong = Key {
        id: alice.id.clone(),
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    };
    refused(
        &outcome(&ecr, &wrong, "", DESCRIBE),
        "InvalidSignatureException",
    );
    let (code, _) = ecr.aws_err(&wrong, &["describe-repositories"]);
    assert_eq!(code, "InvalidSignatureException");

    // The body changed after signing: another repository named.
    let v = outcome(
        &ecr,
        &alice,
        "def tamper(request, **kw):\n    request.body = request.body.replace(b'team/app', b'team/xyz')\n\
         ecr.meta.events.register('before-send.ecr.*', tamper)",
        "ecr.describe_images(repositoryName='team/app')",
    );
    refused(&v, "InvalidSignatureException");

    // Another region than the registry's.
    let v = outcome(
        &ecr,
        &alice,
        "ecr = boto3.client('ecr', endpoint_url=ecr.meta.endpoint_url, region_name='eu-west-1', \
         aws_access_key_id=ecr._request_signer._credentials.access_key, \
         aws_secret_access_key=ecr._request_signer._credentials.secret_key)",
        DESCRIBE,
    );
    refused(&v, "InvalidSignatureException");

    // An unknown key.
    let stranger = Key {
        id: "AKIAAAAAAAAAAAAAAAAA".into(),
        secret: alice.secret.clone(),
    };
    refused(
        &outcome(&ecr, &stranger, "", DESCRIBE),
        "UnrecognizedClientException",
    );

    // Rights: bob reads, carol has none; neither is an admin.
    refused(
        &outcome(
            &ecr,
            &bob,
            "",
            "ecr.create_repository(repositoryName='team/bobs')",
        ),
        "AccessDeniedException",
    );
    refused(
        &outcome(
            &ecr,
            &bob,
            "",
            "ecr.batch_delete_image(repositoryName='team/app', imageIds=[{'imageTag': 'x'}])",
        ),
        "AccessDeniedException",
    );
    assert_eq!(
        outcome(
            &ecr,
            &bob,
            "",
            "ecr.describe_images(repositoryName='team/app')"
        )["code"],
        "ok"
    );
    refused(
        &outcome(
            &ecr,
            &carol,
            "",
            "ecr.describe_images(repositoryName='team/app')",
        ),
        "AccessDeniedException",
    );
    refused(
        &outcome(&ecr, &carol, "", "ecr.describe_registry()"),
        "AccessDeniedException",
    );
    refused(
        &outcome(&ecr, &alice, "", "ecr.describe_pull_through_cache_rules()"),
        "AccessDeniedException",
    );
    // The access log names the operation, its repository and the refusal.
    e2e::client_auth::wait_access(&ecr.reg, "bob's refused CreateRepository", |v| {
        v["route"] == "CreateRepository"
            && v["repository"] == "team/bobs"
            && v["user"] == "bob"
            && v["status"] == 400
            && v["error"] == "AccessDeniedException"
    });
    // A robot's key acts within the robot's scopes.
    ecr.reg.add_robot("ci", &["repository:team/*:pull"], None);
    let ci = ecr.key("robot/ci");
    assert_eq!(
        outcome(
            &ecr,
            &ci,
            "",
            "ecr.describe_images(repositoryName='team/app')"
        )["code"],
        "ok"
    );
    refused(
        &outcome(
            &ecr,
            &ci,
            "",
            "ecr.create_repository(repositoryName='team/ci')",
        ),
        "AccessDeniedException",
    );
    // A listing shows carol nothing, but refuses nothing.
    let v = ecr.aws_ok(&carol, &["describe-repositories"]);
    assert_eq!(v["repositories"], serde_json::json!([]));

    // Not served here, and not ECR at all: said so, in ECR's shape.
    let v = outcome(
        &ecr,
        &alice,
        "",
        "ecr.start_image_scan(repositoryName='team/app', imageId={'imageTag': 'v1'})",
    );
    refused(&v, "UnsupportedOperationException");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("StartImageScan is not supported"),
        "{v}"
    );
    refused(
        &outcome(&ecr, &alice, "", "ecr.get_registry_policy()"),
        "UnsupportedOperationException",
    );
    let raw = ecr.boto3(
        &alice,
        "from botocore.awsrequest import AWSRequest\n\
         from botocore.auth import SigV4Auth\n\
         import urllib.request, urllib.error\n\
         creds = ecr._request_signer._credentials\n\
         def send(target, body):\n    \
             req = AWSRequest(method='POST', url=ecr.meta.endpoint_url + '/', data=body, headers={'X-Amz-Target': target, 'Content-Type': 'application/x-amz-json-1.1'})\n    \
             SigV4Auth(creds, 'ecr', 'us-east-1').add_auth(req)\n    \
             try:\n        r = urllib.request.urlopen(urllib.request.Request(req.url, data=req.body, headers=dict(req.headers), method='POST'))\n        return [r.status, json.loads(r.read())]\n    \
             except urllib.error.HTTPError as e:\n        return [e.code, json.loads(e.read())]\n\
         result = [send('AmazonEC2ContainerRegistry_V20150921.ListFoo', b'{}'), send('AmazonEC2ContainerRegistry_V20150921.DescribeImages', b'[1,2]')]",
    );
    assert_eq!(raw[0][0], 400, "{raw}");
    assert_eq!(raw[0][1]["__type"], "UnknownOperationException", "{raw}");
    assert_eq!(raw[1][1]["__type"], "SerializationException", "{raw}");

    // Disabled, enabled, deleted; a key whose user is gone.
    assert!(ecr
        .reg
        .cli(&["access-key", "disable", &bob.id], "")
        .success());
    refused(
        &outcome(&ecr, &bob, "", DESCRIBE),
        "UnrecognizedClientException",
    );
    assert!(ecr
        .reg
        .cli(&["access-key", "disable", "--enable", &bob.id], "")
        .success());
    assert_eq!(outcome(&ecr, &bob, "", DESCRIBE)["code"], "ok");
    assert!(ecr
        .reg
        .cli(&["access-key", "delete", &bob.id], "")
        .success());
    refused(
        &outcome(&ecr, &bob, "", DESCRIBE),
        "UnrecognizedClientException",
    );
    assert!(ecr.reg.cli(&["user", "del", "carol"], "").success());
    // The account cache forgets within 30 s: poll with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = outcome(&ecr, &carol, "", DESCRIBE);
        if v["code"] == "UnrecognizedClientException" {
            refused(&v, "UnrecognizedClientException");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a deleted user's key still works: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Keys for accounts that do not exist are not made.
    let out = ecr.reg.cli(&["access-key", "create", "nobody"], "");
    assert!(
        !out.success() && out.stderr.contains("no account"),
        "{}",
        out.combined()
    );
}
