//! What a caller may not read must not leak through what it may (issue 9's
//! attack list): mounts from an unreadable repository, blobs and manifests
//! of one served through a readable one, and the names of unreadable
//! repositories in the catalog, `/api/v1` and the web pages.

use e2e::attack::{assert_unchanged, world, World};
use e2e::auth::{Account, Http};
use e2e::http::{with_query, Resp};
use e2e::oci;
use serde_json::Value;

#[test]
fn mount_from_a_repository_the_caller_cannot_read_falls_back_to_an_upload() {
    let w = world();
    let secret_layer = w.bob_secret.layers[0].blob.digest.clone();
    let public_layer = w.public.layers[0].blob.digest.clone();
    let alice_basic = w.reg.basic(&w.alice);
    let alice_token = w.reg.bearer(&w.reg.token(
        Some(&w.alice),
        &[
            "repository:alice/dst:pull,push",
            "repository:bob/secret:pull",
        ],
    ));
    for (who, http) in [("Basic", &alice_basic), ("token", &alice_token)] {
        for query in [
            format!("mount={secret_layer}&from=bob/secret"),
            // The spec's automatic mount: no `from`.
            format!("mount={secret_layer}"),
            // A readable source that lacks the blob.
            format!("mount={secret_layer}&from=public/base"),
        ] {
            let r = http.post(&format!("/v2/alice/dst/blobs/uploads/?{query}"));
            assert_eq!(
                r.status,
                202,
                "{who}: ?{query} must fall back to an upload session:\n{}",
                r.describe()
            );
            let loc = r.location();
            assert!(
                loc.contains("/v2/alice/dst/blobs/uploads/"),
                "Location {loc}"
            );
            assert_eq!(http.delete(&loc).status, 204, "cancel the session");
        }
        let r = http.head(&format!("/v2/alice/dst/blobs/{secret_layer}"));
        assert_eq!(
            r.status,
            404,
            "{who}: bob's layer is in alice/dst:\n{}",
            r.describe()
        );
    }
    // Not linked, as the admin sees it either.
    let admin = w.reg.basic(&w.admin);
    let r = admin.head(&format!("/v2/alice/dst/blobs/{secret_layer}"));
    assert_eq!(r.status, 404, "bob's layer was linked into alice/dst");
    // The refused mounts changed nothing (the accepted ones below create
    // alice/dst, as they should).
    assert_unchanged(&w);

    // Mounts from what alice may read do happen (explicit and automatic).
    let r = alice_basic.post(&format!(
        "/v2/alice/dst/blobs/uploads/?mount={public_layer}&from=public/base"
    ));
    assert_eq!(r.status, 201, "mount from public/base:\n{}", r.describe());
    let config = w.public.config.digest.clone();
    // A token mounts only from what it names (issue 20: a push token used
    // to mount from anything its subject could read).
    let r = alice_token.post(&format!("/v2/alice/dst/blobs/uploads/?mount={config}"));
    assert_eq!(
        r.status,
        202,
        "a token that does not name public/base mounts nothing from it:\n{}",
        r.describe()
    );
    assert_eq!(alice_token.delete(&r.location()).status, 204);
    let alice_token = w.reg.bearer(&w.reg.token(
        Some(&w.alice),
        &[
            "repository:alice/dst:pull,push",
            "repository:public/base:pull",
        ],
    ));
    let r = alice_token.post(&format!("/v2/alice/dst/blobs/uploads/?mount={config}"));
    assert_eq!(
        r.status,
        201,
        "automatic mount from public/base, which the token names:\n{}",
        r.describe()
    );
    assert_eq!(
        alice_basic
            .head(&format!("/v2/alice/dst/blobs/{config}"))
            .status,
        200
    );
}

#[test]
fn blob_of_an_unreadable_repository_is_not_served_through_a_readable_one() {
    let w = world();
    let alice = w.reg.basic(&w.alice);
    let anonymous = w.reg.anonymous();
    let bob = &w.bob_secret;
    let blobs_before = e2e::blob_files(w.reg.data_dir());
    for b in bob.blobs() {
        for (http, repo) in [
            (&alice, "alice/app"),
            (&alice, "public/base"),
            (&anonymous, "public/base"),
        ] {
            let r = http.get(&format!("/v2/{repo}/blobs/{}", b.digest));
            r.expect_error(&[404], &["BLOB_UNKNOWN"]);
            assert_eq!(
                http.head(&format!("/v2/{repo}/blobs/{}", b.digest)).status,
                404
            );
        }
    }
    // His manifest by digest, through hers.
    alice
        .get_manifest("alice/app", &bob.manifest.digest)
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);

    // A manifest of hers that names his layer: it must not make the layer
    // readable through alice/app, and its answer must be the one for a layer
    // that exists nowhere (else it tells her what bob's repositories hold).
    let layer = &bob.layers[1].blob.digest;
    let stolen = oci::image(
        "linux",
        "amd64",
        None,
        vec![w.alice_app.layers[0].clone(), bob.layers[1].clone()],
    );
    let ghost = oci::image(
        "linux",
        "amd64",
        None,
        vec![
            w.alice_app.layers[0].clone(),
            oci::text_layer("ghost", "never pushed\n"),
        ],
    );
    for img in [&stolen, &ghost] {
        let r = alice.upload_blob("alice/app", &img.config.data);
        assert_eq!(r.status, 201, "{}", r.describe());
    }
    let put_stolen = alice.put_manifest("alice/app", "stolen", &stolen.manifest);
    let put_ghost = alice.put_manifest("alice/app", "ghost", &ghost.manifest);
    let r = alice.get(&format!("/v2/alice/app/blobs/{layer}"));
    assert_eq!(
        r.status,
        404,
        "bob's layer is served through alice/app after a manifest naming it (PUT answered {}):\n{}",
        put_stolen.status,
        r.describe()
    );
    assert_eq!(
        put_stolen.status,
        put_ghost.status,
        "a manifest naming bob's layer is answered unlike one naming a layer that exists \
         nowhere: an oracle for the content of unreadable repositories\nbob's: {}\nghost: {}",
        put_stolen.describe(),
        put_ghost.describe()
    );
    // An upload claiming his digest with other bytes.
    let start = alice.post("/v2/alice/app/blobs/uploads/");
    assert_eq!(start.status, 202);
    let r = alice.send(
        alice
            .request(
                reqwest::Method::PUT,
                &with_query(&start.location(), "digest", layer),
            )
            .header("Content-Type", "application/octet-stream")
            .body(b"not bob's layer".to_vec()),
    );
    r.expect_error(&[400], &["DIGEST_INVALID"]);
    assert_eq!(
        alice.head(&format!("/v2/alice/app/blobs/{layer}")).status,
        404
    );
    let _ = alice.delete(&start.location());

    // The blob store holds what it held, plus what alice pushed: her
    // configs, and her manifests if they were taken.
    let mut pushed = vec![&stolen.config.digest, &ghost.config.digest];
    if put_stolen.status == 201 {
        pushed.push(&stolen.manifest.digest);
    }
    if put_ghost.status == 201 {
        pushed.push(&ghost.manifest.digest);
    }
    let mut blobs_after = e2e::blob_files(w.reg.data_dir());
    blobs_after.retain(|(_, name)| !pushed.iter().any(|d| d.ends_with(name.as_str())));
    assert_eq!(blobs_before, blobs_after, "the blob store changed");
    // What alice pushed to her own repository (if taken) is the only change.
    let admin = w.reg.basic(&w.admin);
    for img in [&stolen, &ghost] {
        let _ = admin.delete(&format!("/v2/alice/app/manifests/{}", img.manifest.digest));
    }
    assert_unchanged(&w);
}

/// Sign alice in through the web form: the session cookie header.
fn web_sign_in(w: &World, who: &Account) -> String {
    let http = w.reg.anonymous();
    let form = http.get("/ui/login");
    assert_eq!(form.status, 200, "{}", form.describe());
    let csrf_cookie = form
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("registry_login_csrf="))
        .unwrap_or_else(|| panic!("no CSRF cookie:\n{}", form.describe()))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text();
    let csrf = html
        .split("name=\"csrf\"")
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field in the login form:\n{html}"))
        .to_string();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/ui/login", w.reg.url()))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("user", who.user.as_str()),
            ("password", who.secret.as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .expect("POST /ui/login");
    assert_eq!(
        r.status().as_u16(),
        303,
        "sign-in refused: {:?}",
        r.headers()
    );
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("registry_session=") && !c.starts_with("registry_session=;"))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    w.reg.note_secret(
        "web session cookie",
        session.trim_start_matches("registry_session="),
    );
    session
}

/// GET `path` with a cookie (web pages take sessions, not Basic).
fn get_with_cookie(w: &World, path: &str, cookie: &str) -> Resp {
    let http = w.reg.anonymous();
    http.send(
        http.request(reqwest::Method::GET, path)
            .header("Cookie", cookie),
    )
}

#[test]
fn catalog_api_and_web_pages_do_not_leak_unreadable_names() {
    let w = world();
    // A second of bob's repositories, and a layer he shares with alice.
    let shared = oci::text_layer("shared.txt", "in both\n");
    let bob_more = oci::image("linux", "amd64", None, vec![shared.clone()]);
    let alice_more = oci::image(
        "linux",
        "amd64",
        None,
        vec![shared.clone(), oci::text_layer("mine.txt", "alice\n")],
    );
    w.reg
        .basic(&w.bob)
        .push_image("bob/hidden-project", "v1", &bob_more);
    w.reg
        .basic(&w.alice)
        .push_image("alice/more", "v1", &alice_more);
    let alice_token = w.reg.token(Some(&w.alice), &["registry:catalog:*"]);
    let alice_views = [
        ("alice Basic", w.reg.basic(&w.alice)),
        ("alice token", w.reg.bearer(&alice_token)),
    ];
    let leaks = |what: &str, text: &str| {
        for name in ["bob/", "hidden-project", "bob%2F"] {
            assert!(!text.contains(name), "{what} shows {name:?}:\n{text}");
        }
    };

    // The catalog, whole and page by page (Link headers included).
    let catalog = |who: &str, http: &Http| {
        let mut c = http.catalog();
        c.sort();
        assert_eq!(c, ["alice/app", "alice/more", "public/base"], "{who}");
        let mut paged = Vec::new();
        let mut url = "/v2/_catalog?n=1".to_string();
        for _ in 0..10 {
            let r = http.get(&url);
            assert_eq!(r.status, 200, "{}", r.describe());
            leaks(
                &format!("{who} catalog page"),
                &format!("{:?}{}", r.headers, r.text()),
            );
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            for n in v["repositories"].as_array().cloned().unwrap_or_default() {
                paged.push(n.as_str().unwrap().to_string());
            }
            match r.header("link") {
                Some(link) => {
                    let next = link.trim_start_matches('<');
                    url = next[..next.find('>').expect("Link <...>")].to_string();
                }
                None => break,
            }
        }
        assert_eq!(paged, c, "{who}: the pages differ from the whole");
    };
    catalog(alice_views[0].0, &alice_views[0].1);
    let anon = w.reg.anonymous();
    assert_eq!(anon.catalog(), ["public/base"], "anonymous catalog");

    // /api/v1 for alice, and anonymous.
    // A hidden repository answers like one that does not exist (the name
    // in the message is the one the caller sent).
    let like_missing = |http: &Http, hidden: &str, missing: &str| {
        let a = http.get(hidden);
        let b = http.get(missing);
        a.expect_error(&[404], &["NAME_UNKNOWN"]);
        assert_eq!(a.status, b.status, "{hidden} vs {missing}");
        assert_eq!(
            a.text().replace("hidden-project", "X"),
            b.text().replace("no-such-thing", "X"),
            "{hidden} answers unlike {missing}"
        );
    };
    let viewers = alice_views
        .iter()
        .map(|(who, h)| (*who, h.clone()))
        .chain([("anonymous", anon.clone())]);
    for (who, http) in viewers {
        for path in [
            "/api/v1/repositories",
            "/api/v1/repositories?q=hidden",
            "/api/v1/repositories?q=bob",
        ] {
            let r = http.get(path);
            assert_eq!(r.status, 200, "{who} {path}: {}", r.describe());
            leaks(&format!("{who} {path}"), &r.text());
        }
        like_missing(
            &http,
            "/api/v1/repositories/bob/hidden-project/tags",
            "/api/v1/repositories/bob/no-such-thing/tags",
        );
        like_missing(
            &http,
            "/api/v1/images/bob/hidden-project:v1",
            "/api/v1/images/bob/no-such-thing:v1",
        );
        let r = http.get(&format!("/api/v1/blobs/{}", bob_more.config.digest));
        r.expect_error(&[404], &["BLOB_UNKNOWN"]);
    }
    // A shared layer is "used by" alice's image only.
    let alice_http = &alice_views[0].1;
    let r = alice_http.get(&format!("/api/v1/blobs/{}", shared.blob.digest));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("alice/more"), "{}", r.text());
    leaks("/api/v1/blobs used_by", &r.text());
    let r = alice_http.get("/api/v1/images/alice/more:v1");
    assert_eq!(r.status, 200, "{}", r.describe());
    leaks("/api/v1/images layer used_by", &r.text());

    // /v2 tags of bob's repositories answer alice like a missing one.
    for suffix in ["tags/list", "manifests/v1"] {
        let hidden = alice_http.get(&format!("/v2/bob/hidden-project/{suffix}"));
        let missing = alice_http.get(&format!("/v2/bob/no-such-thing/{suffix}"));
        assert!(hidden.status >= 400, "{}", hidden.describe());
        assert_eq!(
            (hidden.status, hidden.error_codes()),
            (missing.status, missing.error_codes()),
            "{suffix}"
        );
    }

    // Web pages: anonymous sees public only; alice signed in sees hers.
    let r = anon.get("/ui/repos");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("public/base"), "anonymous /ui/repos");
    assert!(
        !r.text().contains("alice/"),
        "anonymous /ui/repos shows alice's"
    );
    leaks("anonymous /ui/repos", &r.text());
    let cookie = web_sign_in(&w, &w.alice);
    let r = get_with_cookie(&w, "/ui/repos", &cookie);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.text().contains("alice/more"),
        "alice's /ui/repos lacks her repository:\n{}",
        r.text()
    );
    leaks("alice /ui/repos", &r.text());
    for q in ["/ui/repos?q=hidden", "/ui/repos?q=bob"] {
        let r = get_with_cookie(&w, q, &cookie);
        assert_eq!(r.status, 200, "{}", r.describe());
        leaks(q, &r.text());
    }
    for page in [
        format!("/ui/blobs/{}", shared.blob.digest),
        "/ui/images/alice/more:v1".to_string(),
    ] {
        let r = get_with_cookie(&w, &page, &cookie);
        assert_eq!(r.status, 200, "{page}: {}", r.describe());
        leaks(&page, &r.text());
    }
    for (page, missing) in [
        (
            "/ui/repos/bob/hidden-project",
            "/ui/repos/bob/no-such-thing",
        ),
        (
            "/ui/images/bob/hidden-project:v1",
            "/ui/images/bob/no-such-thing:v1",
        ),
    ] {
        let a = get_with_cookie(&w, page, &cookie);
        let b = get_with_cookie(&w, missing, &cookie);
        assert_eq!(a.status, 404, "{page}: {}", a.describe());
        assert_eq!(
            a.text().replace("hidden-project", "X"),
            b.text().replace("no-such-thing", "X"),
            "{page} differs from a page of a repository that does not exist"
        );
    }
    let r = get_with_cookie(
        &w,
        &format!("/ui/blobs/{}", bob_more.config.digest),
        &cookie,
    );
    assert_eq!(r.status, 404, "{}", r.describe());
    leaks("bob's blob page", &r.text());

    // Last: the catalog through a token with `registry:catalog:*`, what
    // docker-style clients use. It lists what alice may pull.
    catalog(alice_views[1].0, &alice_views[1].1);
}
