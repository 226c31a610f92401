//! The grep of the registry's log (issue 9): every way a secret travels
//! (Basic, tokens, OAuth2 grants, the web sign-in form, docker login), then
//! no password, secret or token in the log, and the scan shown to work.

use e2e::auth::{docker_config_dir, docker_in, docker_login, Account, AuthRegistry};
use e2e::client_auth::{oauth, stored_identity_token, CONFIG};
use e2e::oci;
use e2e::DockerImages;
use serde_json::Value;

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
    // (it is in CI: the docker tests in auth_clients_docker.rs need it too).
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
