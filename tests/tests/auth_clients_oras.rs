//! Token auth with oras (the Python package, issue 9): login, push and
//! pull of an artifact; refused without credentials or with a wrong
//! password.

use std::path::{Path, PathBuf};

use e2e::auth::AuthRegistry;
use e2e::client_auth::{wait_access, CONFIG};
use serde_json::Value;

/// The Python with the `oras` package: `$ORAS_PYTHON`, else the venv
/// scripts/test-all.sh makes at `target/oras-venv`.
fn oras_python() -> PathBuf {
    let p = std::env::var_os("ORAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e::workspace_root().join("target/oras-venv/bin/python"));
    assert!(
        p.is_file(),
        "{} not found: the oras tests need Python with the oras package. scripts/test-all.sh \
         installs it; by hand: python3 -m venv target/oras-venv && target/oras-venv/bin/pip \
         install oras (or set ORAS_PYTHON)",
        p.display()
    );
    p
}

/// Login, push and pull with oras-py, one step per run, as the `oras`
/// commands would do them. Secrets come by environment, not argv.
///
/// Pushes use oras-py's Basic backend: its token backend keeps the token of
/// its first challenge (pull, from the HEAD that checks for the blob) and,
/// on the upload's 401 `insufficient_scope` (the token spec's answer, which
/// the CNCF registry gives too), retries with that same token; it fetches a
/// new one only after a 403. Pulls use the token backend: the token flow.
const ORAS_SCRIPT: &str = r#"
import json, os, sys, types
import oras.client
import oras.decorator

# oras-py retries a failed request with back-off (3 s to 83 s between
# tries); a step this test expects to be refused fails without the waits.
if os.environ.get("NO_BACKOFF") == "1":
    oras.decorator.time = types.SimpleNamespace(sleep=lambda s: None)

host = os.environ["REG_HOST"]
step = sys.argv[1]
backend = "basic" if step == "push" else "token"
client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend=backend)
if step == "login":
    print(json.dumps(client.login(
        username=os.environ["REG_USER"],
        password=os.environ["REG_PASSWORD"],
        hostname=host,
    )))
elif step == "push":
    r = client.push(target=sys.argv[2], files=[sys.argv[3]])
    print(r.status_code)
    assert r.status_code in (200, 201), r.status_code
elif step == "pull":
    print(json.dumps(client.pull(target=sys.argv[2], outdir=sys.argv[3])))
else:
    sys.exit("unknown step " + step)
"#;

#[test]
fn oras_login_push_and_pull_an_artifact() {
    let python = oras_python();
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("oras_step.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let home = work.path().join("home");
    let files = work.path().join("files");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let content = format!("an artifact {}\n", e2e::auth::random_hex(8));
    std::fs::write(files.join("artifact.txt"), &content).unwrap();
    let target = format!("{host}/dev/artifact:v1");
    let step = |home: &Path, password: &str, args: &[&str]| {
        let mut c = e2e::cmd(&python);
        c.env("NO_BACKOFF", "1");
        c.arg(&script)
            .args(args)
            .current_dir(&files)
            .env("HOME", home)
            .env("REG_HOST", &host)
            .env("REG_USER", &dev.user)
            .env("REG_PASSWORD", password);
        c.run()
    };

    // Not logged in: refused.
    let out = step(&home, "", &["push", &target, "artifact.txt"]);
    assert!(
        !out.success(),
        "oras pushed without credentials:\n{}",
        out.combined()
    );
    // Logged in with a wrong password: refused.
    let wrong = format!("wrong-{}", e2e::auth::random_hex(6));
    reg.note_secret("a wrong password", &wrong);
    let out = step(&home, &wrong, &["login"]);
    assert!(out.success(), "oras login:\n{}", out.combined());
    let out = step(&home, "", &["push", &target, "artifact.txt"]);
    assert!(
        !out.success(),
        "oras pushed with a wrong password:\n{}",
        out.combined()
    );
    // Logged in properly: push and pull.
    let out = step(&home, &dev.secret, &["login"]);
    assert!(out.success(), "oras login:\n{}", out.combined());
    let stored = std::fs::read_to_string(home.join(".docker/config.json"))
        .expect("oras login wrote ~/.docker/config.json");
    assert!(stored.contains(&host), "{stored}");
    let out = step(&home, "", &["push", &target, "artifact.txt"]);
    assert!(out.success(), "oras push:\n{}", out.combined());

    let http = reg.basic(&dev);
    let m = http.get_manifest("dev/artifact", "v1");
    assert_eq!(m.status, 200, "{}", m.describe());
    let manifest: Value = serde_json::from_slice(&m.body).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["digest"].as_str(),
        Some(e2e::sha256_digest(content.as_bytes()).as_str()),
        "{manifest}"
    );
    assert_eq!(
        layer["annotations"]["org.opencontainers.image.title"],
        "artifact.txt"
    );
    wait_access(&reg, "oras's manifest PUT as dev", |v| {
        v["method"] == "PUT" && v["path"] == "/v2/dev/artifact/manifests/v1" && v["user"] == "dev"
    });

    let out_dir = work.path().join("pulled");
    let out = step(&home, "", &["pull", &target, out_dir.to_str().unwrap()]);
    assert!(out.success(), "oras pull:\n{}", out.combined());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("artifact.txt")).unwrap(),
        content
    );
    wait_access(&reg, "a token issued to oras-py", |v| {
        v["path"] == "/token"
            && v["status"] == 200
            && v["user"] == "dev"
            && v["user_agent"] == "oras-py"
    });
    // Someone else (no login) cannot pull it.
    let stranger = work.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let out = step(
        &stranger,
        "",
        &["pull", &target, work.path().join("s").to_str().unwrap()],
    );
    assert!(
        !out.success(),
        "oras pulled without credentials:\n{}",
        out.combined()
    );
}
