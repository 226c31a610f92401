//! Found by outside review: tokens this registry issued bound only `/v2`.
//! On `/api/v1` and in mount parameters they acted with their user's whole
//! identity, so a `repository:x:pull` token, or the scope-less token that
//! `docker login` gets, could put and run lifecycle policies, roll tags
//! back, set immutability, and for an administrator start a collection;
//! and a push token could mount from anything its user could read.
//!
//! Now what a token says it grants is the most it grants, on every
//! surface, and administrators' operations need `registry:admin:*`. Each
//! route of `/api/v1` that changes something is tried with tokens that do
//! not grant it (refused, nothing changed), then with one that does.

use e2e::attack::{assert_unchanged, world, World};
use e2e::auth::Http;
use reqwest::Method;

/// Every `/api/v1` write on `alice/app`, with the body it takes.
fn writes(w: &World) -> Vec<(Method, String, String)> {
    let r = "/api/v1/repositories/alice/app";
    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1000},"action":{"type":"expire"}}]}"#;
    vec![
        (Method::PUT, format!("{r}/lifecycle"), policy.to_owned()),
        (Method::POST, format!("{r}/lifecycle/run"), String::new()),
        (Method::DELETE, format!("{r}/lifecycle"), String::new()),
        (
            Method::PUT,
            format!("{r}/immutability"),
            r#"{"immutable": true}"#.to_owned(),
        ),
        (
            Method::POST,
            format!("{r}/tags/v1/rollback"),
            format!(r#"{{"to": "{}"}}"#, w.alice_app.manifest.digest),
        ),
        (
            Method::POST,
            "/api/v1/gc".to_owned(),
            r#"{"grace_secs": 0}"#.to_owned(),
        ),
    ]
}

fn send(http: &Http, m: &Method, path: &str, body: &str) -> e2e::http::Resp {
    http.send(
        http.request(m.clone(), path)
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    )
}

/// What `/api/v1/repositories/alice/app/immutability` and `.../lifecycle`
/// say, as alice's password sees them.
fn settings(w: &World) -> (String, String) {
    let alice = w.reg.basic_elsewhere(&w.alice);
    let i = alice.get("/api/v1/repositories/alice/app/immutability");
    let l = alice.get("/api/v1/repositories/alice/app/lifecycle");
    (i.text(), l.text())
}

#[test]
fn api_writes_are_bounded_by_what_the_token_grants() {
    let w = world();
    let before = settings(&w);
    // alice owns alice/app; her tokens that do not grant a write must not
    // make it. The scope-less token is the one `docker login` stores.
    let tokens = [
        ("pull token", vec!["repository:alice/app:pull"]),
        ("scope-less token", vec![]),
        (
            "token for another repository",
            vec!["repository:alice/other:pull,push,delete"],
        ),
    ];
    for (what, scopes) in &tokens {
        let http = w.reg.bearer(&w.reg.token(Some(&w.alice), scopes));
        for (m, path, body) in writes(&w) {
            let r = send(&http, &m, &path, &body);
            assert!(
                [403, 404].contains(&r.status),
                "{what}: {m} {path} must be refused:\n{}",
                r.describe()
            );
        }
    }
    // The administrator's tokens without `registry:admin:*` collect nothing
    // and read no collection reports.
    for scopes in [vec![], vec!["repository:public/base:pull,push,delete"]] {
        let http = w.reg.bearer(&w.reg.token(Some(&w.admin), &scopes));
        let r = send(&http, &Method::POST, "/api/v1/gc", r#"{"grace_secs": 0}"#);
        r.expect_error(&[403], &["DENIED"]);
        let r = http.get("/api/v1/gc");
        r.expect_error(&[403], &["DENIED"]);
    }
    // Nothing changed.
    assert_eq!(settings(&w), before, "settings changed");
    assert_unchanged(&w);

    // With the scope they need, the same writes go through.
    let push = w.reg.bearer(
        &w.reg
            .token(Some(&w.alice), &["repository:alice/app:pull,push"]),
    );
    let r = send(
        &push,
        &Method::POST,
        "/api/v1/repositories/alice/app/tags/v1/rollback",
        &format!(r#"{{"to": "{}"}}"#, w.alice_app.manifest.digest),
    );
    // v1 is already there: the rollback is refused on its merits, not access.
    assert!(![401, 403, 404].contains(&r.status), "{}", r.describe());
    let delete = w.reg.bearer(
        &w.reg
            .token(Some(&w.alice), &["repository:alice/app:pull,push,delete"]),
    );
    let r = send(
        &delete,
        &Method::PUT,
        "/api/v1/repositories/alice/app/immutability",
        r#"{"immutable": false, "exclude": ["latest"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // An administrator's token that says so may collect.
    let admin = w
        .reg
        .bearer(&w.reg.token(Some(&w.admin), &["registry:admin:*"]));
    let r = send(&admin, &Method::POST, "/api/v1/gc", r#"{"dry_run": true}"#);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(admin.get("/api/v1/gc").status, 200);
    // alice asking for `registry:admin:*` does not get it.
    let not_admin = w
        .reg
        .bearer(&w.reg.token(Some(&w.alice), &["registry:admin:*"]));
    let r = send(
        &not_admin,
        &Method::POST,
        "/api/v1/gc",
        r#"{"dry_run": true}"#,
    );
    r.expect_error(&[403], &["DENIED"]);
}

#[test]
fn api_reads_and_listings_show_only_what_the_token_grants() {
    let w = world();
    // A token for alice/app shows alice/app and nothing else of alice's.
    w.reg
        .basic(&w.alice)
        .push_image("alice/more", "v1", &e2e::oci::simple_image("alice more"));
    let http = w
        .reg
        .bearer(&w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]));
    let r = http.get("/api/v1/repositories");
    assert_eq!(r.status, 200, "{}", r.describe());
    let text = r.text();
    assert!(text.contains("alice/app"), "{text}");
    assert!(
        !text.contains("alice/more"),
        "a repository the token does not name: {text}"
    );
    assert_eq!(http.get("/api/v1/repositories/alice/app/tags").status, 200);
    let r = http.get("/api/v1/repositories/alice/more/tags");
    r.expect_error(&[404], &["NAME_UNKNOWN"]);
    // With `registry:catalog:*` the listing is what alice may pull.
    let catalog = w
        .reg
        .bearer(&w.reg.token(Some(&w.alice), &["registry:catalog:*"]));
    let text = catalog.get("/api/v1/repositories").text();
    assert!(
        text.contains("alice/more") && text.contains("alice/app"),
        "{text}"
    );
    assert!(!text.contains("bob/secret"), "{text}");
}

#[test]
fn a_push_token_mounts_only_from_what_it_names() {
    let w = world();
    let layer = w.alice_app.layers[0].blob.digest.clone();
    // alice may read alice/app; a token for alice/dst alone mounts nothing.
    let narrow = w.reg.bearer(
        &w.reg
            .token(Some(&w.alice), &["repository:alice/dst:pull,push"]),
    );
    for query in [
        format!("mount={layer}&from=alice/app"),
        format!("mount={layer}"),
    ] {
        let r = narrow.post(&format!("/v2/alice/dst/blobs/uploads/?{query}"));
        assert_eq!(
            r.status,
            202,
            "?{query}: falls back to an upload:\n{}",
            r.describe()
        );
        assert_eq!(narrow.delete(&r.location()).status, 204);
    }
    assert_eq!(
        narrow.head(&format!("/v2/alice/dst/blobs/{layer}")).status,
        404
    );
    // Naming the source (as Docker does when it mounts) is what it takes.
    let wide = w.reg.bearer(&w.reg.token(
        Some(&w.alice),
        &[
            "repository:alice/dst:pull,push",
            "repository:alice/app:pull",
        ],
    ));
    let r = wide.post(&format!(
        "/v2/alice/dst/blobs/uploads/?mount={layer}&from=alice/app"
    ));
    assert_eq!(r.status, 201, "{}", r.describe());
}
