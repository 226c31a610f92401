//! Helpers for the token-auth tests (`tests/auth_clients_*.rs`,
//! `tests/auth_attacks_*.rs`, `tests/auth_federation.rs`): the names and
//! accounts they share, and running a program with input on stdin. The
//! parts:
//!
//! * [`AuthRegistry`] (`server.rs`): the registry with `auth = "token"` and
//!   an `[access]` section from the test (a [`Registry`](crate::Registry)
//!   started with `--config`); accounts made with the `registry user|robot`
//!   CLI; on drop it stops the registry and checks that its log holds none
//!   of the passwords, secrets and tokens the test handled
//!   ([`AuthRegistry::assert_no_secret_logged`]).
//! * [`Http`] (`http.rs`): requests with Basic or Bearer credentials, and
//!   pushes.
//! * [`Forge`] (`forge.rs`): JWTs made outside the registry (with its own
//!   signing key read from the data directory, or a stranger's), to sign
//!   tokens with bad claims.
//! * `docker.rs`: the Docker CLI with a client config directory of its own,
//!   and `docker login`.

mod docker;
mod forge;
mod http;
mod server;

pub use docker::{docker_auth_entry, docker_config_dir, docker_in, docker_login};
pub use forge::{assemble, b64url_json, claims, hs256, jwt_part, now, Forge};
pub use http::Http;
pub use server::{secret_shape, AuthRegistry, Metadata};

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use data_encoding::BASE64;

use crate::cmd::CmdOutput;

/// The token service and issuer names of the registry's defaults.
pub const SERVICE: &str = "registry";
pub const ISSUER: &str = "registry";

/// A user or robot account: `user` is what it signs in as (`robot+NAME`
/// for robots).
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub secret: String,
}

impl Account {
    /// The `Authorization` value for Basic credentials.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.user, self.secret).as_bytes())
        )
    }
}

pub use crate::random_hex;

/// Run `command` with `input` on stdin, with a deadline.
pub fn run_with_stdin(command: &mut Command, input: &str, timeout: Duration) -> CmdOutput {
    let mut description = command.get_program().to_string_lossy().into_owned();
    for a in command.get_args() {
        description.push(' ');
        description.push_str(&a.to_string_lossy());
    }
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("clone"))
        .stderr(err.try_clone().expect("clone"))
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start `{description}`: {e}"));
    {
        let mut stdin = child.stdin.take().expect("stdin");
        // A program that exits before reading its input is judged by its output.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{description}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek, SeekFrom};
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.read_to_string(&mut s).expect("read output");
        s
    };
    CmdOutput {
        description,
        status,
        stdout: read(out),
        stderr: read(err),
    }
}
