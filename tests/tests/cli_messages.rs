//! The registry's own messages, as a user meets them: each startup and CLI
//! error names the object and the operation, says what to do where that is
//! obvious, exits 1 (environment) or 2 (usage), and shows no Rust debug
//! formatting or backtrace.

use e2e::{cmd, registry_bin, CmdOutput, Registry};

fn registry(args: &[&str]) -> CmdOutput {
    cmd(registry_bin())
        // Asked for nothing: these messages must read cleanly even so.
        .env("RUST_BACKTRACE", "1")
        .args(args)
        .run()
}

/// The one error line, after checking the exit status and that nothing
/// looks like Rust internals.
fn error_line(out: &CmdOutput, status: i32) -> String {
    assert_eq!(out.status.code(), Some(status), "{}", out.combined());
    let err = out.stderr.trim();
    for tell in [
        "os error",
        "Stack backtrace",
        "Error {",
        "kind:",
        "panicked",
        "Caused by",
    ] {
        assert!(!err.contains(tell), "{tell:?} in the message:\n{err}");
    }
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in:\n{err}"));
    line.to_string()
}

#[test]
fn a_busy_port_names_the_address_and_the_fix() {
    let running = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let addr = running.host();
    let out = registry(&[
        "serve",
        "--listen",
        &addr,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        error_line(&out, 1),
        format!(
            "error: cannot listen on {addr}: address already in use (another registry running? choose another with --listen)"
        )
    );
}

#[test]
fn an_impossible_or_unwritable_data_directory_is_named() {
    let out = registry(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "/proc/nope",
    ]);
    assert_eq!(
        error_line(&out, 1),
        "error: cannot create data directory /proc/nope: no such file or directory"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let target = file.join("data");
    let out = registry(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        error_line(&out, 1),
        format!(
            "error: cannot create data directory {}: not a directory",
            target.display()
        )
    );
    // A directory that exists but cannot be written (as root only a
    // read-only filesystem refuses: /proc/self is one).
    let out = registry(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "/proc/self",
    ]);
    let line = error_line(&out, 1);
    assert!(
        line.starts_with("error: cannot write in data directory /proc/self: "),
        "{line}"
    );
}

#[test]
fn configuration_faults_are_usage_errors_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = registry(&["serve", "--config", missing.to_str().unwrap()]);
    assert_eq!(
        error_line(&out, 2),
        format!(
            "error: cannot read configuration file {}: no such file or directory",
            missing.display()
        )
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n").unwrap();
    let out = registry(&["serve", "--config", bad.to_str().unwrap()]);
    let line = error_line(&out, 2);
    assert!(
        line.starts_with(&format!(
            "error: invalid configuration file {}:",
            bad.display()
        )),
        "{line}"
    );
    assert!(
        out.stderr.contains("unknown field `bogus_key`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
    std::fs::write(&bad, "max_connections = 0\n").unwrap();
    let out = registry(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(
        error_line(&out, 2),
        "error: invalid configuration: max_connections must be at least 1"
    );
    // A bad flag is clap's usage error, status 2 as well.
    let out = registry(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.combined());
}

#[test]
fn config_check_prints_the_effective_configuration_and_the_problems() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("r.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nidle_timeout_secs = 90\n",
            data.display()
        ),
    )
    .unwrap();
    let out = registry(&[
        "config",
        "check",
        "--config",
        conf.to_str().unwrap(),
        "--max-connections",
        "50",
    ]);
    assert!(out.success(), "{}", out.combined());
    for line in [
        "idle_timeout_secs = 90",
        "max_connections = 50",
        "header_timeout_secs = 10",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line} missing from:\n{}",
            out.stdout
        );
    }
    assert!(out.stderr.contains("configuration ok"), "{}", out.stderr);

    let running = Registry::start();
    let out = registry(&[
        "config",
        "check",
        "--config",
        conf.to_str().unwrap(),
        "--listen",
        &running.host(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.combined());
    assert!(
        out.stderr.contains(&format!(
            "problem: cannot listen on {}: address already in use",
            running.host()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn history_against_no_registry_or_an_unknown_image() {
    let out = registry(&["history", "nope/x:1", "--url", "http://127.0.0.1:9"]);
    assert_eq!(
        error_line(&out, 1),
        "error: no registry answering at http://127.0.0.1:9 (connection refused); start one with `registry serve`, or give its address with --url"
    );
    let reg = Registry::start();
    let out = registry(&["history", "nope/x:1", "--url", &reg.url()]);
    assert_eq!(error_line(&out, 1), "error: nope/x:1: no such image");
    let out = registry(&["history", "NOPE:1", "--url", &reg.url()]);
    let line = error_line(&out, 2);
    assert!(
        line.starts_with("error: NOPE:1: not an image reference"),
        "{line}"
    );
}

#[test]
fn version_names_the_commit() {
    let out = registry(&["--version"]);
    assert!(out.success());
    let v = out.stdout.trim();
    assert!(v.starts_with("registry 0.1.0 (commit "), "{v}");
    let commit = v
        .trim_start_matches("registry 0.1.0 (commit ")
        .trim_end_matches(')');
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
}

#[test]
fn an_open_registry_is_refused_beyond_loopback() {
    // Validation happens before any bind: nothing listens on 0.0.0.0 here.
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:5000", "[::]:5000"] {
        let out = registry(&[
            "serve",
            "--listen",
            listen,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]);
        let line = error_line(&out, 2);
        assert!(
            line.starts_with(&format!(
                "error: refusing to serve on {listen} without authentication"
            )) && line.contains("auth = \"token\"")
                && line.contains("auth = \"none\""),
            "{line}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "the refused start wrote to the data directory"
    );
}
