//! Found by outside review:
//! - with authentication on, `/api/v1/namespaces` and `/ui/namespaces`
//!   were always empty, administrators' included (the check asked about a
//!   repository named `NS/_`, which no name can be);
//! - `PUT .../immutability` (and a lifecycle policy) created repositories
//!   past the namespace's repository quota, and in pull-through caches,
//!   which take no writes.
//!
//! A namespace's usage is shown to whoever may read every repository in it
//! (administrators, `NS/**` rules), to no one else.

use e2e::auth::{Account, AuthRegistry};
use e2e::{Client, Registry};
use reqwest::Method;
use serde_json::Value;

const AUTH_CONFIG: &str = r#"
[[quotas]]
namespace = "team"
repositories = 10

[[quotas]]
namespace = "other"
bytes = 1000000

[access]
[[access.rules]]
description = "carol reads all of team"
repositories = "team/**"
users = ["carol"]
actions = ["pull"]

[[access.rules]]
description = "dave reads one repository of team"
repositories = "team/app"
users = ["dave"]
actions = ["pull"]
"#;

fn namespaces(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["namespaces"]
        .as_array()
        .expect("a namespaces array")
        .iter()
        .map(|n| n["namespace"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// A browser session of `who`: the login form's CSRF cookie and field,
/// then the session cookie.
fn web_session(reg: &AuthRegistry, who: &Account) -> String {
    let c = Client::new(&reg.url());
    let form = c.get("/ui/login");
    assert_eq!(form.status, 200, "{}", form.describe());
    let set = form.require_header("set-cookie");
    let csrf_cookie = set.split(';').next().unwrap().to_owned();
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let body = format!(
        "user={}&password={}&csrf={csrf}",
        who.user,
        form_urlencoded::byte_serialize(who.secret.as_bytes()).collect::<String>()
    );
    // The sign-in answers with a redirect whose cookie must be seen.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(format!("{}/ui/login", reg.url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", &csrf_cookie)
        .body(body)
        .send()
        .unwrap();
    let status = r.status();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("registry_session=") && !v.starts_with("registry_session=;"))
        .unwrap_or_else(|| panic!("no session cookie ({status})"));
    session.split(';').next().unwrap().to_owned()
}

#[test]
fn namespace_usage_is_shown_to_whoever_may_read_all_of_the_namespace() {
    let reg = AuthRegistry::start(AUTH_CONFIG);
    let admin = reg.add_user("admin", &["--admin"]);
    let carol = reg.add_user("carol", &[]);
    let dave = reg.add_user("dave", &[]);
    reg.basic(&admin)
        .push_image("team/app", "v1", &e2e::oci::simple_image("team app"));
    reg.basic(&admin)
        .push_image("other/app", "v1", &e2e::oci::simple_image("other app"));
    for (who, http, want) in [
        ("admin", reg.basic(&admin), vec!["other", "team"]),
        ("carol", reg.basic(&carol), vec!["team"]),
        ("dave", reg.basic(&dave), vec![]),
        ("anonymous", reg.anonymous(), vec![]),
    ] {
        let r = http.get("/api/v1/namespaces");
        assert_eq!(r.status, 200, "{who}: {}", r.describe());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(namespaces(&v), want, "{who}: {v}");
    }
    // The web view's page, signed in.
    let c = Client::new(&reg.url());
    for (who, account, shown, hidden) in [
        ("admin", &admin, vec!["team", "other"], vec![]),
        ("carol", &carol, vec!["team"], vec!["other"]),
    ] {
        let cookie = web_session(&reg, account);
        let page = c.send(
            c.request(Method::GET, "/ui/namespaces")
                .header("Cookie", &cookie),
        );
        assert_eq!(page.status, 200, "{who}: {}", page.describe());
        let html = page.text();
        for ns in shown {
            assert!(
                html.contains(&format!(">{ns}<")),
                "{who} sees {ns}:\n{html}"
            );
        }
        for ns in hidden {
            assert!(
                !html.contains(&format!(">{ns}<")),
                "{who} must not see {ns}:\n{html}"
            );
        }
    }
}

#[test]
fn settings_create_no_repository_past_a_quota_or_in_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        r#"
[[quotas]]
namespace = "two"
repositories = 1

[[cache]]
prefix = "hub"
upstream = "http://127.0.0.1:9"
"#,
    )
    .unwrap();
    let reg = Registry::start_with(&["--config", config.to_str().unwrap()]);
    let c = Client::new(&reg.url());
    c.push_image("two/a", "v1", &e2e::oci::simple_image("two a"));
    let put = |path: &str, body: &str| {
        c.send(
            c.request(Method::PUT, path)
                .header("Content-Type", "application/json")
                .body(body.to_owned()),
        )
    };
    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
    // The namespace holds its one repository: settings make no second.
    let r = put(
        "/api/v1/repositories/two/b/immutability",
        r#"{"immutable": true}"#,
    );
    r.expect_error(&[403], &["DENIED"]);
    assert!(r.text().contains("quota exceeded"), "{}", r.text());
    let r = put("/api/v1/repositories/two/b/lifecycle", policy);
    r.expect_error(&[403], &["DENIED"]);
    // On the repository it has, they apply.
    let r = put(
        "/api/v1/repositories/two/a/immutability",
        r#"{"immutable": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = put("/api/v1/repositories/two/a/lifecycle", policy);
    assert_eq!(r.status, 200, "{}", r.describe());
    let usage: Value = serde_json::from_slice(&c.get("/api/v1/namespaces").body).unwrap();
    let two = usage["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == "two")
        .cloned()
        .unwrap();
    assert_eq!(two["repositories"], 1, "{usage}");
    // A pull-through cache's tags follow its upstream: not immutable.
    let r = put(
        "/api/v1/repositories/hub/library/x/immutability",
        r#"{"immutable": true}"#,
    );
    r.expect_error(&[403], &["DENIED"]);
    assert_eq!(
        c.get("/api/v1/repositories/hub/library/x/immutability")
            .status,
        404,
        "no repository was made in the cache"
    );
}
