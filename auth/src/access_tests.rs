//! Tests of the access policy: config parsing and validation, the decision
//! for each kind of caller, and the token server's grant.

use super::*;
use crate::identity::{Robot, ScopePattern};
use crate::scope::parse_scopes;

const EXAMPLE: &str = r#"
[access]
public = ["library/**", "mirror/*"]
user_namespaces = true
anonymous_catalog = false

[[access.rules]]
description = "team A builds its images"
repositories = "team-a/**"
users = ["alice"]
groups = ["team-a"]
actions = ["pull", "push", "delete"]

[[access.rules]]
description = "every signed-in user may read the base images"
repositories = ["base/**", "tools/*"]
subjects = ["authenticated"]
actions = ["pull"]

[[access.rules]]
repositories = "drop/*"
subjects = ["anonymous"]
actions = ["push"]
"#;

#[derive(Deserialize)]
struct ServerConfig {
    access: AccessConfig,
}

fn policy(toml_text: &str) -> Policy {
    let c: ServerConfig = toml::from_str(toml_text).expect("toml");
    Policy::from_config(&c.access).expect("valid policy")
}

fn config_error(toml_text: &str) -> PolicyError {
    let c: ServerConfig = toml::from_str(toml_text).expect("toml");
    Policy::from_config(&c.access).unwrap_err()
}

fn user(name: &str, groups: &[&str]) -> Identity {
    Identity::User(User {
        name: name.into(),
        admin: false,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    })
}

fn admin() -> Identity {
    Identity::User(User {
        name: "root".into(),
        admin: true,
        groups: vec![],
    })
}

fn robot(scopes: &[&str]) -> Identity {
    Identity::Robot(Robot {
        name: "ci".into(),
        scopes: scopes
            .iter()
            .map(|s| s.parse::<ScopePattern>().unwrap())
            .collect(),
        expires_at: None,
    })
}

fn acts(list: &[Action]) -> Actions {
    Actions::of(list)
}

use Action::{Delete, Pull, Push};

#[test]
fn module_doc_example_is_valid() {
    // The example in the module docs, kept in sync by hand.
    let doc = include_str!("access.rs");
    let start = doc.find("//! ```toml").unwrap();
    let end = start + doc[start..].find("//! ```\n").unwrap();
    let text: String = doc[start..end]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("//! ").or(l.strip_prefix("//!")).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let p = policy(&text);
    assert!(p.allowed(&user("alice", &[]), "team-a/x", Push));
    assert!(p.allowed(&Identity::Anonymous, "library/busybox", Pull));
}

#[test]
fn defaults_when_section_is_empty() {
    let p = policy("[access]\n");
    assert!(p.user_namespaces);
    assert!(!p.anonymous_catalog);
    assert!(p.public.is_empty() && p.rules.is_empty());
    let d = Policy::default();
    assert!(!d.allowed(&Identity::Anonymous, "a", Pull));
    assert!(d.allowed(&user("bob", &[]), "bob/app", Push));
    assert!(!d.allowed(&user("bob", &[]), "alice/app", Pull));
    assert!(d.allowed(&admin(), "alice/app", Delete));
}

#[test]
fn anonymous_gets_public_pull_and_anonymous_rules_only() {
    let p = policy(EXAMPLE);
    let a = Identity::Anonymous;
    assert_eq!(p.actions_for(&a, "library/busybox"), Actions::PULL);
    assert_eq!(p.actions_for(&a, "library/x/y"), Actions::PULL);
    assert_eq!(p.actions_for(&a, "library"), Actions::PULL); // `**` includes zero segments
    assert_eq!(p.actions_for(&a, "mirror/debian"), Actions::PULL);
    assert_eq!(p.actions_for(&a, "mirror/debian/x"), Actions::NONE);
    assert_eq!(p.actions_for(&a, "team-a/app"), Actions::NONE);
    assert_eq!(p.actions_for(&a, "base/os"), Actions::NONE);
    assert_eq!(p.actions_for(&a, "drop/box"), acts(&[Push]));
    assert!(!p.allowed(&a, "library/busybox", Push));
    assert!(!p.allowed(&a, "library/busybox", Delete));
}

#[test]
fn users_get_union_of_floor_namespace_and_rules() {
    let p = policy(EXAMPLE);
    let alice = user("alice", &[]);
    assert_eq!(p.actions_for(&alice, "team-a/app"), Actions::ALL); // by name
    assert_eq!(p.actions_for(&alice, "alice/x"), Actions::ALL); // namespace
    assert_eq!(p.actions_for(&alice, "alice"), Actions::ALL);
    assert_eq!(p.actions_for(&alice, "alicex/y"), Actions::NONE); // not a prefix match
    assert_eq!(p.actions_for(&alice, "base/os"), Actions::PULL); // authenticated
    assert_eq!(p.actions_for(&alice, "tools/jq"), Actions::PULL);
    assert_eq!(p.actions_for(&alice, "tools/jq/x"), Actions::NONE);
    assert_eq!(p.actions_for(&alice, "library/busybox"), Actions::PULL); // floor
    assert_eq!(p.actions_for(&alice, "drop/box"), acts(&[Push])); // floor (anonymous rule)
    assert_eq!(p.actions_for(&alice, "bob/app"), Actions::NONE);

    let carol = user("carol", &["team-a"]);
    assert_eq!(p.actions_for(&carol, "team-a/deep/er"), Actions::ALL); // by group
    let dave = user("dave", &["team-b"]);
    assert_eq!(p.actions_for(&dave, "team-a/app"), Actions::NONE);
    assert_eq!(p.actions_for(&dave, "base/os"), Actions::PULL);
}

#[test]
fn union_semantics_order_does_not_matter() {
    let a = r#"
[access]
[[access.rules]]
repositories = "**"
subjects = ["authenticated"]
actions = ["pull"]
[[access.rules]]
repositories = "team/**"
users = ["alice"]
actions = ["push"]
"#;
    // Same rules, reversed.
    let b = r#"
[access]
[[access.rules]]
repositories = "team/**"
users = ["alice"]
actions = ["push"]
[[access.rules]]
repositories = "**"
subjects = ["authenticated"]
actions = ["pull"]
"#;
    for text in [a, b] {
        let p = policy(text);
        // A broad first rule does not shadow the narrower one (first-match would).
        assert_eq!(
            p.actions_for(&user("alice", &[]), "team/app"),
            acts(&[Pull, Push])
        );
        assert_eq!(p.actions_for(&user("bob", &[]), "team/app"), Actions::PULL);
    }
}

#[test]
fn user_namespaces_can_be_switched_off() {
    let p = policy("[access]\nuser_namespaces = false\n");
    assert!(!p.allowed(&user("alice", &[]), "alice/app", Pull));
}

#[test]
fn admins_may_do_everything_on_valid_names() {
    let p = policy(EXAMPLE);
    for repo in ["a", "team-a/app", "x/y/z", "library/busybox"] {
        assert_eq!(p.actions_for(&admin(), repo), Actions::ALL, "{repo}");
    }
    assert_eq!(p.why(&admin(), "x", Delete), Some(Reason::Admin));
}

#[test]
fn invalid_repository_names_get_nothing_even_for_admins() {
    let p = policy(EXAMPLE);
    for bad in [
        "",
        "../etc",
        "library/../team-a/app",
        "Team-a/app",
        "library/*",
    ] {
        assert_eq!(p.actions_for(&admin(), bad), Actions::NONE, "{bad}");
        assert_eq!(
            p.actions_for(&Identity::Anonymous, bad),
            Actions::NONE,
            "{bad}"
        );
    }
}

#[test]
fn robots_get_their_scopes_and_the_public_floor_only() {
    let p = policy(EXAMPLE);
    let r = robot(&["repository:team-a/*:pull", "repository:ci/**:pull,push"]);
    assert_eq!(p.actions_for(&r, "team-a/app"), Actions::PULL);
    assert_eq!(p.actions_for(&r, "team-a/app/x"), Actions::NONE);
    assert_eq!(p.actions_for(&r, "ci/cache/x"), acts(&[Pull, Push]));
    assert_eq!(p.actions_for(&r, "library/busybox"), Actions::PULL); // floor
                                                                     // Rules for authenticated users and groups never reach a robot.
    assert_eq!(p.actions_for(&r, "base/os"), Actions::NONE);
    // A robot has no namespace, even one matching its name.
    assert_eq!(p.actions_for(&r, "ci"), acts(&[Pull, Push])); // only via its `ci/**` scope
    assert_eq!(p.actions_for(&robot(&[]), "ci/x"), Actions::NONE);
    assert!(p
        .why(&r, "ci/x", Push)
        .unwrap()
        .to_string()
        .contains("repository:ci/**:pull,push"));
}

#[test]
fn robot_asking_beyond_its_scopes_gets_only_its_scopes() {
    let p = policy(EXAMPLE);
    let r = robot(&["repository:team-a/*:pull"]);
    let asked = parse_scopes([
        "repository:team-a/app:pull,push,delete repository:team-b/app:pull repository:team-a/app/deeper:pull registry:catalog:*",
    ])
    .unwrap();
    let got = p.grant(&r, &asked);
    assert_eq!(
        crate::scope::format_scopes(&got),
        "repository:team-a/app:pull"
    );
}

#[test]
fn grant_is_the_intersection_with_partial_scopes() {
    let p = policy(EXAMPLE);
    let dave = user("dave", &[]);
    let asked = parse_scopes([
        "repository:base/os:pull,push",
        "repository:team-a/app:pull",
        "repository:dave/app:*",
        "repository:base/os:delete",
    ])
    .unwrap();
    let got = p.grant(&dave, &asked);
    assert_eq!(
        crate::scope::format_scopes(&got),
        // partly allowed -> the allowed subset; denied -> left out; same
        // resource merged.
        "repository:base/os:pull repository:dave/app:pull,push,delete"
    );
    // Nothing allowed -> empty grant, not an error.
    assert!(p.grant(&Identity::Anonymous, &asked).is_empty());
    assert!(p.grant(&dave, &[]).is_empty());
}

#[test]
fn catalog_grant() {
    let off = policy(EXAMPLE); // anonymous_catalog = false
    let cat = [Scope::catalog()];
    assert!(off.grant(&Identity::Anonymous, &cat).is_empty());
    assert_eq!(off.grant(&user("dave", &[]), &cat), cat.to_vec());
    assert_eq!(off.grant(&admin(), &cat), cat.to_vec());
    assert!(off.grant(&robot(&["repository:**:pull"]), &cat).is_empty());
    assert_eq!(
        off.grant(&robot(&["registry:catalog:*"]), &cat),
        cat.to_vec()
    );
    let on = policy("[access]\nanonymous_catalog = true\n");
    assert_eq!(on.grant(&Identity::Anonymous, &cat), cat.to_vec());
    assert_eq!(on.grant(&robot(&[]), &cat), cat.to_vec());
    // An empty catalog request grants nothing.
    let empty = "registry:catalog:pull".parse::<Scope>().unwrap();
    assert!(on.grant(&admin(), &[empty]).is_empty());
}

#[test]
fn explanations_name_the_rule() {
    let p = policy(EXAMPLE);
    assert_eq!(
        p.why(&user("carol", &["team-a"]), "team-a/x", Push),
        Some(Reason::Rule("#1 (team A builds its images)".into()))
    );
    assert_eq!(
        p.why(&Identity::Anonymous, "drop/x", Push),
        Some(Reason::Rule("#3".into()))
    );
    assert_eq!(
        p.why(&Identity::Anonymous, "library/x", Pull),
        Some(Reason::Public("library/**".into()))
    );
    assert_eq!(
        p.why(&user("alice", &[]), "alice/x", Delete),
        Some(Reason::Namespace("alice".into()))
    );
    assert_eq!(p.why(&user("dave", &[]), "team-a/x", Pull), None);
    assert_eq!(
        p.why(&user("dave", &[]), "base/x", Pull)
            .unwrap()
            .to_string(),
        "rule #2 (every signed-in user may read the base images)"
    );
}

#[test]
fn star_action_in_rules_means_all() {
    let p = policy(
        "[access]\n[[access.rules]]\nrepositories = \"x/*\"\nusers = [\"bob\"]\nactions = [\"*\"]\n",
    );
    assert_eq!(p.actions_for(&user("bob", &[]), "x/y"), Actions::ALL);
}

#[test]
fn config_errors_are_precise() {
    let rule = |body: &str| format!("[access]\n[[access.rules]]\n{body}\n");
    let e = config_error(&rule(
        "repositories = \"team/*\"\nusers = [\"a\"]\nactions = [\"pull\", \"fly\"]",
    ));
    assert_eq!(
        e,
        PolicyError::UnknownAction {
            rule: 1,
            action: "fly".into()
        }
    );
    assert!(e.to_string().contains("#1") && e.to_string().contains("fly"));

    let e = config_error(&rule(
        "repositories = \"team/[ab]\"\nusers = [\"a\"]\nactions = [\"pull\"]",
    ));
    assert!(matches!(e, PolicyError::Glob { rule: 1, .. }), "{e}");
    assert!(e.to_string().contains("team/[ab]"));

    let e = config_error(&rule(
        "repositories = \"../x\"\nusers = [\"a\"]\nactions = [\"pull\"]",
    ));
    assert!(matches!(e, PolicyError::Glob { .. }));

    let e = config_error(&rule(
        "repositories = []\nusers = [\"a\"]\nactions = [\"pull\"]",
    ));
    assert_eq!(e, PolicyError::NoRepositories { rule: 1 });

    let e = config_error(&rule("repositories = \"x\"\nusers = [\"a\"]\nactions = []"));
    assert_eq!(e, PolicyError::NoActions { rule: 1 });

    let e = config_error(&rule("repositories = \"x\"\nactions = [\"pull\"]"));
    assert_eq!(e, PolicyError::NoSubjects { rule: 1 });

    let e = config_error(&rule(
        "repositories = \"x\"\nsubjects = [\"everyone\"]\nactions = [\"pull\"]",
    ));
    assert!(matches!(e, PolicyError::UnknownSubject { .. }));

    let e = config_error(&rule(
        "repositories = \"x\"\nusers = [\"Alice\"]\nactions = [\"pull\"]",
    ));
    assert!(matches!(e, PolicyError::User { rule: 1, .. }));

    let e = config_error(&rule(
        "repositories = \"x\"\ngroups = [\" \"]\nactions = [\"pull\"]",
    ));
    assert_eq!(e, PolicyError::Group { rule: 1 });

    let e = config_error("[access]\npublic = [\"Library/*\"]\n");
    assert!(matches!(e, PolicyError::Public(_)));

    // The second rule is the bad one, and the error says so.
    let two = "[access]\n[[access.rules]]\nrepositories = \"x\"\nusers = [\"a\"]\nactions = [\"pull\"]\n[[access.rules]]\nrepositories = \"y\"\nusers = [\"a\"]\nactions = [\"pul\"]\n";
    assert!(matches!(
        config_error(two),
        PolicyError::UnknownAction { rule: 2, .. }
    ));
}

#[test]
fn unknown_keys_are_refused_by_serde() {
    for text in [
        "[access]\npublik = [\"x\"]\n",
        "[access]\n[[access.rules]]\nrepositories = \"x\"\nrobots = [\"ci\"]\nactions = [\"pull\"]\n",
    ] {
        let err = toml::from_str::<ServerConfig>(text).err().expect("refused");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}

#[test]
fn config_round_trips_through_serde() {
    let c: ServerConfig = toml::from_str(EXAMPLE).unwrap();
    let text = toml::to_string(&c.access).unwrap();
    let back: AccessConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, c.access);
}
