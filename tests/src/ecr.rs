//! The ECR API's tests (`tests/ecr_*.rs`) with the real clients: the `aws`
//! CLI and `boto3` from PyPI, installed in a venv under the target
//! directory by `scripts/test-all.sh` (`install_ecr_tools`), against a
//! registry with token auth whose access keys come from `registry
//! access-key create`.
//!
//! A missing venv is a failure that says how to make it, never a skip.
//! The clients get a clean environment: only the key the test gives them,
//! the region and the endpoint (the S3 test servers' `AWS_*` variables of
//! the test run never reach them).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::auth::{run_with_stdin, AuthRegistry, Metadata};
use crate::cmd::CmdOutput;

pub const REGION: &str = "us-east-1";
pub const REGISTRY_ID: &str = "123456789012";

/// `alice` owns `team/**`; `bob` may only pull `team/**`; admins (the
/// `--admin` users) everything. The registry ID is a test's own.
pub const CONFIG: &str = r#"
[ecr]
registry_id = "123456789012"
region = "us-east-1"

[[access.rules]]
description = "alice's team"
repositories = "team/**"
users = ["alice"]
actions = ["pull", "push", "delete"]

[[access.rules]]
description = "bob reads the team's images"
repositories = "team/**"
users = ["bob"]
actions = ["pull"]
"#;

/// The venv with `aws` and `boto3` (`$ECR_TOOLS_VENV`, default
/// `<target>/ecr-venv`).
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("ECR_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::registry_bin()
                .parent()
                .and_then(|d| d.parent())
                .expect("target dir")
                .join("ecr-venv")
        });
    for tool in ["bin/aws", "bin/python"] {
        assert!(
            dir.join(tool).exists(),
            "{} not found: the ECR tests need the aws CLI and boto3 from PyPI in a venv; \
             scripts/test-all.sh installs them (install_ecr_tools), or run \
             `python3 -m venv {d} && {d}/bin/pip install awscli boto3`",
            dir.join(tool).display(),
            d = dir.display()
        );
    }
    dir
}

/// An access key, as `registry access-key create` printed it.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// A registry with token auth and the ECR API, and its clients.
pub struct Ecr {
    pub reg: AuthRegistry,
    venv: PathBuf,
    /// The clients' config file: the CLI must not fetch `http://` values
    /// (`--upstream-registry-url`) as it does by default.
    aws_config: tempfile::TempDir,
}

impl Ecr {
    pub fn start(metadata: Metadata) -> Ecr {
        Ecr::start_with(CONFIG, metadata)
    }

    pub fn start_with(config: &str, metadata: Metadata) -> Ecr {
        let venv = venv();
        let aws_config = tempfile::Builder::new()
            .prefix("e2e-aws-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(
            aws_config.path().join("config"),
            "[default]\ncli_follow_urlparam = false\n",
        )
        .expect("aws config");
        Ecr {
            reg: AuthRegistry::start_on(config, metadata),
            venv,
            aws_config,
        }
    }

    pub fn endpoint(&self) -> String {
        self.reg.url()
    }

    /// `registry access-key create OWNER`: its two lines, parsed.
    pub fn key(&self, owner: &str) -> Key {
        let out = self.reg.cli(&["access-key", "create", owner], "");
        assert!(out.success(), "access-key create:\n{}", out.combined());
        let line = |name: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= line in:\n{}", out.stdout))
                .to_owned()
        };
        let key = Key {
            id: line("AWS_ACCESS_KEY_ID"),
            secret: line("AWS_SECRET_ACCESS_KEY"),
        };
        self.reg
            .note_secret(&format!("secret of {}", key.id), &key.secret);
        key
    }

    fn client_env(&self, c: &mut Command, key: &Key) {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("AWS_") {
                c.env_remove(&k);
            }
        }
        c.env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", self.aws_config.path().join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard");
    }

    /// `aws ecr ARGS --endpoint-url URL --output json` as `key`.
    pub fn aws(&self, key: &Key, args: &[&str]) -> CmdOutput {
        let mut c = Command::new(self.venv.join("bin/aws"));
        self.client_env(&mut c, key);
        c.arg("ecr")
            .args(args)
            .args(["--endpoint-url", &self.endpoint(), "--output", "json"]);
        run_with_stdin(&mut c, "", Duration::from_secs(120))
    }

    /// [`Ecr::aws`] that must succeed: its JSON (`{}` for no output).
    pub fn aws_ok(&self, key: &Key, args: &[&str]) -> Value {
        let out = self.aws(key, args);
        assert!(out.success(), "aws ecr {args:?}:\n{}", out.combined());
        if out.stdout.trim().is_empty() {
            return Value::Object(Default::default());
        }
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("aws ecr {args:?}: not JSON ({e}):\n{}", out.stdout))
    }

    /// [`Ecr::aws`] that must fail with an ECR error: its code, as the CLI
    /// printed it (`An error occurred (CODE) when calling ...`), and the
    /// whole message.
    pub fn aws_err(&self, key: &Key, args: &[&str]) -> (String, String) {
        let out = self.aws(key, args);
        assert!(
            !out.success(),
            "aws ecr {args:?} succeeded:\n{}",
            out.stdout
        );
        let code = out
            .stderr
            .split("An error occurred (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_else(|| panic!("aws ecr {args:?}: no ECR error in:\n{}", out.stderr))
            .to_owned();
        (code, out.stderr.clone())
    }

    /// Run `body` (Python) with `ecr`, a boto3 ECR client signed with
    /// `key`, and `json` imported; it must set `result`, printed as JSON.
    pub fn boto3(&self, key: &Key, body: &str) -> Value {
        let out = self.python(key, body);
        assert!(
            out.success(),
            "boto3 script failed:\n{}\n{body}",
            out.combined()
        );
        let last = out.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("boto3: not JSON ({e}):\n{}", out.stdout))
    }

    /// The script of [`Ecr::boto3`], whatever its outcome.
    pub fn python(&self, key: &Key, body: &str) -> CmdOutput {
        let script = format!(
            "import json, datetime, boto3, botocore\n\
             from botocore.exceptions import ClientError\n\
             ecr = boto3.client('ecr', endpoint_url={endpoint:?}, region_name={REGION:?}, \
             aws_access_key_id={id:?}, aws_secret_access_key={secret:?}, \
             config=botocore.config.Config(retries={{'max_attempts': 1, 'mode': 'standard'}}))\n\
             result = None\n\
             {body}\n\
             print(json.dumps(result, default=str))\n",
            endpoint = self.endpoint(),
            id = key.id,
            secret = key.secret,
        );
        let mut c = Command::new(self.venv.join("bin/python"));
        self.client_env(&mut c, key);
        c.arg("-c").arg(script);
        run_with_stdin(&mut c, "", Duration::from_secs(300))
    }

    /// `aws ecr get-login-password` piped into `docker login --username
    /// AWS --password-stdin HOST`, with `config` as Docker's client
    /// config directory.
    pub fn docker_login(&self, key: &Key, config: &std::path::Path) -> CmdOutput {
        let out = self.aws(key, &["get-login-password"]);
        assert!(out.success(), "get-login-password:\n{}", out.combined());
        let password = out.stdout.trim().to_owned();
        self.reg
            .note_secret(&format!("login password of {}", key.id), &password);
        crate::require_env("DOCKER_HOST");
        let bin = std::env::var("DOCKER_BIN").unwrap_or_else(|_| "/usr/bin/docker".to_string());
        let mut c = Command::new(bin);
        c.env("DOCKER_CONFIG", config).args([
            "login",
            "--username",
            "AWS",
            "--password-stdin",
            &self.reg.host(),
        ]);
        run_with_stdin(&mut c, &password, Duration::from_secs(120))
    }
}

/// boto3 helpers: a blob pushed in two parts through the ECR layer plane,
/// and an image of a config and a layer put with `tags`.
pub const PUSH: &str = r#"
import hashlib
def blob(repo, data):
    d = 'sha256:' + hashlib.sha256(data).hexdigest()
    if ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[d])['layers']:
        return d, len(data)
    up = ecr.initiate_layer_upload(repositoryName=repo)['uploadId']
    half = len(data) // 2
    r = ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0, partLastByte=half - 1, layerPartBlob=data[:half])
    assert r['lastByteReceived'] == half - 1, r
    ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=half, partLastByte=len(data) - 1, layerPartBlob=data[half:])
    done = ecr.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[d])
    assert done['layerDigest'] == d, done
    return d, len(data)

def image(repo, name, tags):
    config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': []}, 'config': {'Labels': {'name': name}}}).encode()
    cd, cs = blob(repo, config)
    ld, ls = blob(repo, ('layer of %s ' % name).encode() * 64)
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
        'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cd, 'size': cs},
        'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': ld, 'size': ls}]})
    digest = None
    for t in tags or [None]:
        kw = {'imageTag': t} if t else {}
        digest = ecr.put_image(repositoryName=repo, imageManifest=manifest, **kw)['image']['imageId']['imageDigest']
    return digest
"#;

/// The two metadata backends, for tests that run on each.
pub const BACKENDS: [Metadata; 2] = [Metadata::Sqlite, Metadata::Postgres];
