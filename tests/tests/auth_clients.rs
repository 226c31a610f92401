//! Token auth with the real clients (issue 9): `docker login`, push, pull,
//! logout; containerd's `ctr --user`; `skopeo --creds` and `--authfile` with
//! a Kubernetes image pull secret; oras (the Python package) login, push and
//! pull of an artifact; robots that may only pull, or have expired; and the
//! grep of the registry's log for every password, secret and token.
//!
//! Each docker test has its own client config directory (`DOCKER_CONFIG`),
//! so logins of tests running at once never meet in one `config.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::auth::{
    docker_auth_entry, docker_config_dir, docker_in, docker_login, now, Account, AuthRegistry,
};
use e2e::oci;
use e2e::{containerd_snapshotter, ctr, docker, docker_build_busybox, skopeo, DockerImages};
use serde_json::{json, Value};

/// `dev` owns `dev/**`; `public/**` is anonymous pull.
const CONFIG: &str = r#"
[access]
public = ["public/**"]
"#;

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n";

/// The registry's access log lines (JSON), as written so far.
fn access_lines(reg: &AuthRegistry) -> Vec<Value> {
    reg.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect()
}

/// Wait (bounded) for an access line matching `pred`: lines are written
/// off the request path, shortly after the answer.
fn wait_access(reg: &AuthRegistry, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = access_lines(reg).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {what}; the log:\n{}",
            reg.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The identity token `docker login` stored for `host`: it must be there
/// (the token flow with a refresh token), and no password beside it.
fn stored_identity_token(reg: &AuthRegistry, config: &Path, who: &Account) -> String {
    let host = reg.host();
    let entry = docker_auth_entry(config, &host)
        .unwrap_or_else(|| panic!("docker login stored nothing for {host}"));
    let token = entry["identitytoken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no identity token stored: {entry}"))
        .to_string();
    reg.note_secret("docker's identity token", &token);
    if let Some(auth) = entry["auth"].as_str() {
        let decoded = data_encoding::BASE64
            .decode(auth.as_bytes())
            .expect("auth is base64");
        let decoded = String::from_utf8_lossy(&decoded);
        assert!(
            !decoded.contains(&who.secret),
            "docker stored the password next to the identity token: {entry}"
        );
    }
    token
}

fn image_id(reference: &str) -> String {
    docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .run_ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn docker_login_push_pull_logout_then_private_pull_is_refused_and_public_pull_works() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let admin = reg.add_user("admin", &["--admin"]);
    let private = format!("{host}/dev/app:v1");
    let public = format!("{host}/public/base:v1");
    let _images = DockerImages(vec![private.clone(), public.clone()]);
    let dev_config = docker_config_dir();
    let admin_config = docker_config_dir();
    let cfg = dev_config.path();

    // A public image, pushed by the admin.
    docker_build_busybox(DOCKERFILE, "public", &public);
    let login = docker_login(admin_config.path(), &host, &admin);
    assert!(login.success(), "admin login:\n{}", login.combined());
    stored_identity_token(&reg, admin_config.path(), &admin);
    docker_in(admin_config.path())
        .args(["push", &public])
        .run_ok();

    // dev: login (identity token stored), push, pull.
    let login = docker_login(cfg, &host, &dev);
    assert!(login.success(), "docker login:\n{}", login.combined());
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    let identity = stored_identity_token(&reg, cfg, &dev);
    assert_ne!(identity, dev.secret);
    wait_access(&reg, "a token issued to dev", |v| {
        v["path"] == "/token" && v["status"] == 200 && v["user"] == "dev"
    });

    docker_build_busybox(DOCKERFILE, "private", &private);
    let built = image_id(&private);
    docker_in(cfg).args(["push", &private]).run_ok();
    // The push went through tokens the identity token got (OAuth2 refresh).
    wait_access(&reg, "dev's refresh-token grant", |v| {
        v["method"] == "POST" && v["path"] == "/token" && v["status"] == 200 && v["user"] == "dev"
    });
    wait_access(&reg, "dev's manifest PUT", |v| {
        v["method"] == "PUT"
            && v["path"] == "/v2/dev/app/manifests/v1"
            && v["status"] == 201
            && v["user"] == "dev"
    });
    docker().args(["rmi", &private]).run_ok();
    docker_in(cfg).args(["pull", &private]).run_ok();
    assert_eq!(
        image_id(&private),
        built,
        "pulled image differs from the pushed one"
    );

    // Logout: the entry is gone; the public image still pulls (anonymous),
    // and a private pull is refused with Docker's message for a 401.
    docker_in(cfg).args(["logout", &host]).run_ok();
    assert!(
        docker_auth_entry(cfg, &host).is_none(),
        "docker logout left credentials behind"
    );
    docker().args(["rmi", &public]).run_ok();
    docker_in(cfg).args(["pull", &public]).run_ok();
    let anonymous_pull = wait_access(&reg, "the anonymous manifest GET", |v| {
        v["method"] == "GET"
            && v["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v2/public/base/manifests/"))
            && v["status"] == 200
    });
    assert!(anonymous_pull.get("user").is_none(), "{anonymous_pull}");

    docker().args(["rmi", &private]).run_ok();
    let refused = docker_in(cfg).args(["pull", &private]).run_fail();
    assert!(
        refused
            .combined()
            .contains("unauthorized: authentication required"),
        "docker's message for a refused pull:\n{}",
        refused.combined()
    );
}

#[test]
fn pull_only_robot_cannot_push_and_docker_shows_denied() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let robot = reg.add_robot("puller", &["repository:dev/*:pull"], Some("90d"));
    let image = format!("{host}/dev/app:v1");
    let retag = format!("{host}/dev/app:by-robot");
    let elsewhere = format!("{host}/robot/own:v1");
    let _images = DockerImages(vec![image.clone(), retag.clone(), elsewhere.clone()]);

    let dev_config = docker_config_dir();
    let login = docker_login(dev_config.path(), &host, &dev);
    assert!(login.success(), "{}", login.combined());
    docker_build_busybox(DOCKERFILE, "robot", &image);
    docker_in(dev_config.path()).args(["push", &image]).run_ok();
    docker().args(["rmi", &image]).run_ok();

    let config = docker_config_dir();
    let login = docker_login(config.path(), &host, &robot);
    assert!(login.success(), "robot login:\n{}", login.combined());
    stored_identity_token(&reg, config.path(), &robot);
    docker_in(config.path()).args(["pull", &image]).run_ok();

    docker().args(["tag", &image, &retag]).run_ok();
    docker().args(["tag", &image, &elsewhere]).run_ok();
    for target in [&retag, &elsewhere] {
        let out = docker_in(config.path()).args(["push", target]).run_fail();
        // Docker prints `denied` alone for a DENIED whose message is the
        // code's own and that has no detail (errcode's UnmarshalJSON).
        assert!(
            out.combined()
                .lines()
                .any(|l| l.trim() == "denied" || l.contains("denied: ")),
            "docker's message for a push the robot may not do:\n{}",
            out.combined()
        );
    }
    // Nothing was written.
    let http = reg.basic(&dev);
    let tags = http.get("/v2/dev/app/tags/list");
    assert_eq!(tags.status, 200, "{}", tags.describe());
    let v: Value = serde_json::from_slice(&tags.body).unwrap();
    assert_eq!(v["tags"], json!(["v1"]), "tags of dev/app");
    let admin = reg.add_user("admin", &["--admin"]);
    let mut catalog = reg.basic(&admin).catalog();
    catalog.sort();
    assert_eq!(catalog, ["dev/app"], "repositories");
}

/// Poll the clock (bounded) until `t` (seconds since the epoch) is past.
fn wait_until_past(t: u64) {
    let deadline = Instant::now() + Duration::from_secs(t.saturating_sub(now()) + 10);
    while now() <= t {
        assert!(Instant::now() < deadline, "the clock did not reach {t}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The OAuth2 form on `POST /token`.
fn oauth(reg: &AuthRegistry, form: &[(&str, &str)]) -> e2e::http::Resp {
    let http = reg.anonymous();
    let r = http.send(http.request(reqwest::Method::POST, "/token").form(form));
    if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
        for k in ["access_token", "refresh_token"] {
            if let Some(t) = v[k].as_str() {
                reg.note_secret(k, t);
            }
        }
    }
    r
}

#[test]
fn expired_robot_cannot_log_in() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let robot = reg.add_robot("short", &["repository:dev/*:pull"], Some("1s"));
    // It expires at most a second after `robot add` returned.
    wait_until_past(now() + 1);

    let config = docker_config_dir();
    let login = docker_login(config.path(), &host, &robot);
    assert!(
        !login.success(),
        "an expired robot logged in:\n{}",
        login.combined()
    );
    assert!(
        login.combined().contains("unauthorized"),
        "docker's message:\n{}",
        login.combined()
    );
    assert!(docker_auth_entry(config.path(), &host).is_none());
    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    r.expect_error(&[401], &["UNAUTHORIZED"]);
    let r = reg.basic(&robot).get("/v2/");
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "password"),
            ("username", &robot.user),
            ("password", &robot.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.describe());
}

#[test]
fn robot_that_expires_after_signing_in_is_refused() {
    // Signed in while valid (its password check remembered, a refresh token
    // issued), then expired: neither may let it in afterwards.
    let reg = AuthRegistry::start(CONFIG);
    let t0 = now();
    let robot = reg.add_robot("brief", &["repository:dev/*:pull"], Some("10s"));
    // It expires between t0 + 10 and t1 + 10.
    let t1 = now();
    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    assert_eq!(r.status, 200, "while valid:\n{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "password"),
            ("username", &robot.user),
            ("password", &robot.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(r.status, 200, "while valid:\n{}", r.describe());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let refresh = v["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {v}"))
        .to_string();
    assert!(
        now() < t0 + 9,
        "signing in took too long for this test's 10 s robot"
    );
    wait_until_past(t1 + 10);

    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    assert_eq!(
        r.status,
        401,
        "GET /token with an expired robot's secret (remembered from before it expired?):\n{}",
        r.describe()
    );
    let r = reg.basic(&robot).get("/v2/");
    assert_eq!(r.status, 401, "Basic on /v2/:\n{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "registry"),
            ("client_id", "e2e"),
        ],
    );
    assert_eq!(r.status, 401, "refresh grant:\n{}", r.describe());
}

/// Removes a containerd namespace's images at the end.
struct CtrImages(String, Vec<String>);

impl Drop for CtrImages {
    fn drop(&mut self) {
        for r in &self.1 {
            let _ = ctr(&self.0).args(["image", "rm", "--sync", r]).run();
        }
    }
}

#[test]
fn ctr_pull_and_push_with_user() {
    e2e::require_env("CONTAINERD_ADDRESS");
    let reg = AuthRegistry::start(CONFIG);
    let dev = reg.add_user("dev", &[]);
    let robot = reg.add_robot("reader", &["repository:dev/*:pull"], None);
    let image = oci::simple_image("ctr with auth");
    reg.basic(&dev).push_image("dev/ctr-src", "v1", &image);
    let ns = format!("e2e-auth-{}", reg.port());
    let src = format!("{}/dev/ctr-src:v1", reg.host());
    let dst = format!("{}/dev/ctr-dst:v1", reg.host());
    let _cleanup = CtrImages(ns.clone(), vec![src.clone(), dst.clone()]);
    let pull = |user: Option<&Account>| {
        let mut c = ctr(&ns);
        c.args(["image", "pull", "--plain-http", "--snapshotter"])
            .arg(containerd_snapshotter());
        if let Some(u) = user {
            c.args(["--user", &format!("{}:{}", u.user, u.secret)]);
        }
        c.arg(&src);
        c.run()
    };

    let anonymous = pull(None);
    assert!(
        !anonymous.success(),
        "ctr pulled a private image without --user:\n{}",
        anonymous.combined()
    );
    assert!(
        anonymous.combined().contains("401") || anonymous.combined().contains("nauthorized"),
        "{}",
        anonymous.combined()
    );
    let out = pull(Some(&dev));
    assert!(out.success(), "ctr pull --user:\n{}", out.combined());
    let check = ctr(&ns).args(["image", "check"]).run_ok().stdout;
    assert!(
        check
            .lines()
            .any(|l| l.contains(&src) && l.contains("complete")),
        "{check}"
    );

    // Push to another repository, as dev; a pull-only robot may not.
    let push = |user: &Account| {
        ctr(&ns)
            .args(["image", "push", "--plain-http", "--user"])
            .arg(format!("{}:{}", user.user, user.secret))
            .args([&dst, &src])
            .run()
    };
    let refused = push(&robot);
    assert!(
        !refused.success(),
        "a pull-only robot pushed with ctr:\n{}",
        refused.combined()
    );
    let out = push(&dev);
    assert!(out.success(), "ctr push --user:\n{}", out.combined());
    let m = reg.basic(&dev).get_manifest("dev/ctr-dst", "v1");
    assert_eq!(m.status, 200, "{}", m.describe());
    assert_eq!(
        m.require_header("docker-content-digest"),
        image.manifest.digest
    );
    wait_access(&reg, "ctr's manifest PUT as dev", |v| {
        v["method"] == "PUT" && v["path"] == "/v2/dev/ctr-dst/manifests/v1" && v["user"] == "dev"
    });
}

/// skopeo with no ambient credentials: its own HOME, XDG_RUNTIME_DIR and
/// DOCKER_CONFIG.
fn skopeo_alone(work: &Path) -> e2e::Cmd {
    let mut c = skopeo(work);
    c.env("HOME", work)
        .env("XDG_RUNTIME_DIR", work)
        .env("DOCKER_CONFIG", work.join("no-docker-config"))
        .env("REGISTRY_AUTH_FILE", work.join("no-auth.json"));
    c
}

#[test]
fn skopeo_with_creds_and_a_kubernetes_image_pull_secret() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let puller = reg.add_robot("k8s-node", &["repository:dev/*:pull"], Some("30d"));
    let image = oci::simple_image("skopeo with auth");
    reg.basic(&dev).push_image("dev/sk", "v1", &image);
    let work = tempfile::tempdir().unwrap();
    let src = format!("docker://{host}/dev/sk:v1");

    let out = skopeo_alone(work.path())
        .args(["inspect", "--raw", "--tls-verify=false", &src])
        .run();
    assert!(
        !out.success(),
        "skopeo read a private image with no credentials:\n{}",
        out.combined()
    );

    // --creds
    let creds = format!("{}:{}", dev.user, dev.secret);
    let raw = skopeo_alone(work.path())
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &src,
        ])
        .run_ok()
        .stdout;
    assert_eq!(e2e::sha256_digest(raw.as_bytes()), image.manifest.digest);
    skopeo_alone(work.path())
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(["--src-creds", &creds, "--dest-creds", &creds])
        .arg(&src)
        .arg(format!("docker://{host}/dev/sk-copy:v1"))
        .run_ok();
    let m = reg.basic(&dev).get_manifest("dev/sk-copy", "v1");
    assert_eq!(m.status, 200, "{}", m.describe());

    // --authfile: the `.dockerconfigjson` of a Kubernetes image pull secret
    // (`kubectl create secret docker-registry`) for the robot.
    let basic =
        data_encoding::BASE64.encode(format!("{}:{}", puller.user, puller.secret).as_bytes());
    let secret = json!({"auths": {host.clone(): {
        "username": puller.user,
        "password": puller.secret,
        "auth": basic,
    }}});
    let authfile = work.path().join("dockerconfigjson");
    std::fs::write(&authfile, secret.to_string()).unwrap();
    let layout = work.path().join("layout");
    skopeo_alone(work.path())
        .args(["copy", "--src-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(&src)
        .arg(format!("oci:{}:v1", layout.display()))
        .run_ok();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        Some(image.manifest.digest.as_str()),
        "{index}"
    );
    for b in image.blobs() {
        let p = layout.join("blobs/sha256").join(b.hex());
        assert_eq!(std::fs::read(&p).unwrap(), b.data, "{}", p.display());
    }
    // The node's pull secret cannot push.
    let out = skopeo_alone(work.path())
        .args(["copy", "--dest-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}/dev/sk-by-node:v1"))
        .run();
    assert!(!out.success(), "a pull secret pushed:\n{}", out.combined());
    let r = reg.basic(&dev).get_manifest("dev/sk-by-node", "v1");
    assert!(matches!(r.status, 404), "{}", r.describe());
    wait_access(&reg, "the robot's pull", |v| {
        v["path"] == "/v2/dev/sk/manifests/v1"
            && v["status"] == 200
            && v["user"] == "robot+k8s-node"
    });
}

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

/// Every way a secret travels, on one registry; then its whole log is
/// scanned. The scan is shown to work: a value every line of this test
/// carries, added as a canary, is found.
#[test]
fn no_password_secret_or_token_in_the_logs() {
    let mut reg = AuthRegistry::start(CONFIG);
    let dev = reg.add_user("dev", &[]);
    let robot = reg.add_robot("ci", &["repository:dev/*:pull,push"], None);
    let image = oci::simple_image("log grep");

    // Basic on /v2/, user and robot.
    reg.basic(&dev).push_image("dev/app", "v1", &image);
    assert_eq!(reg.basic(&robot).get_manifest("dev/app", "v1").status, 200);
    // GET /token with an offline token; Bearer use; the token in a query.
    let r = reg.token_response(Some(&dev), &["repository:dev/app:pull"]);
    assert_eq!(r.status, 200);
    let token = reg.token(Some(&robot), &["repository:dev/app:pull,push"]);
    assert_eq!(reg.bearer(&token).get("/v2/dev/app/tags/list").status, 200);
    let with_refresh = {
        let http = reg.basic(&dev);
        http.get("/token?service=registry&scope=repository:dev/app:pull&offline_token=true")
    };
    let v: Value = serde_json::from_slice(&with_refresh.body).unwrap();
    let refresh = v["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {}", with_refresh.describe()))
        .to_string();
    reg.note_secret("refresh token", &refresh);
    let _ = reg.anonymous().get(&format!(
        "/v2/dev/app/tags/list?access_token={token}&password={}",
        dev.secret
    ));
    // OAuth2: password grant, refresh grant.
    let r = oauth(
        &reg,
        &[
            ("grant_type", "password"),
            ("username", "dev"),
            ("password", &dev.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "registry"),
            ("client_id", "e2e"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // Wrong passwords, a wrong robot secret, a forged token.
    for (i, user) in ["dev", "robot+ci", "nobody"].iter().enumerate() {
        let wrong = Account {
            user: user.to_string(),
            secret: format!("wrong-secret-{i}-{}", e2e::auth::random_hex(6)),
        };
        reg.note_secret("a wrong password", &wrong.secret);
        reg.note_secret("wrong Basic credentials", &wrong.basic());
        assert_eq!(reg.token_response(Some(&wrong), &[]).status, 401);
    }
    let forged = format!("{}x", token);
    assert_eq!(reg.bearer(&forged).get("/v2/").status, 401);
    // The web sign-in form.
    let form = reg.anonymous().get("/ui/login");
    assert_eq!(form.status, 200);
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/ui/login", reg.url()))
        .form(&[
            ("user", "dev"),
            ("password", dev.secret.as_str()),
            ("csrf", "x"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a form without its CSRF cookie");
    // docker login, push, pull with the identity token, if docker is here
    // (it is in CI: the docker tests above need it too).
    let config = docker_config_dir();
    let login = docker_login(config.path(), &reg.host(), &dev);
    assert!(login.success(), "{}", login.combined());
    stored_identity_token(&reg, config.path(), &dev);
    let pulled = format!("{}/dev/app:v1", reg.host());
    let _images = DockerImages(vec![pulled.clone()]);
    docker_in(config.path()).args(["pull", &pulled]).run_ok();

    let canary = (
        "canary: a repository every line of this test names",
        "dev/app",
    );
    let (lines, leaks) = reg.logged_secrets(&[canary]);
    let (canaries, real): (Vec<_>, Vec<_>) = leaks.iter().partition(|l| l.contains("canary"));
    assert!(
        real.is_empty(),
        "secrets in the registry log:\n{}",
        real.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        canaries.len() >= 10,
        "the scan did not find the canary in the log ({} of {lines} lines): it checks nothing",
        canaries.len()
    );
    let log = reg.log_text();
    assert!(
        log.contains("\"user\":\"dev\"") && log.contains("\"user\":\"robot+ci\""),
        "the log names no user"
    );
}
