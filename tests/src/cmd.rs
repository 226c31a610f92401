//! Running external commands with a deadline and captured output.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default deadline for one external command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A command to run; build it with [`cmd`].
pub struct Cmd {
    command: Command,
    timeout: Duration,
}

/// Result of a finished command.
#[derive(Debug)]
pub struct CmdOutput {
    pub description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command: {}", self.description);
        let _ = writeln!(s, "status: {}", self.status);
        let _ = writeln!(s, "--- stdout ---\n{}", self.stdout.trim_end());
        let _ = writeln!(s, "--- stderr ---\n{}", self.stderr.trim_end());
        s
    }
}

/// Start building a command for `program`.
pub fn cmd(program: impl AsRef<OsStr>) -> Cmd {
    let mut command = Command::new(program);
    command.stdin(Stdio::null());
    Cmd {
        command,
        timeout: DEFAULT_TIMEOUT,
    }
}

impl Cmd {
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.command.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.command.env(k, v);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.command.current_dir(dir);
        self
    }

    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    fn description(&self) -> String {
        let mut d = self.command.get_program().to_string_lossy().into_owned();
        for a in self.command.get_args() {
            d.push(' ');
            d.push_str(&a.to_string_lossy());
        }
        d
    }

    /// Run to completion (or kill it at the deadline, which panics).
    pub fn run(&mut self) -> CmdOutput {
        let description = self.description();
        let out_file = tempfile::tempfile().expect("temp file for stdout");
        let err_file = tempfile::tempfile().expect("temp file for stderr");
        self.command
            .stdout(out_file.try_clone().expect("clone"))
            .stderr(err_file.try_clone().expect("clone"));
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start `{description}`: {e}"));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let out = read_all(out_file);
                let err = read_all(err_file);
                panic!(
                    "command timed out after {:?}: {description}\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        CmdOutput {
            description,
            status,
            stdout: read_all(out_file),
            stderr: read_all(err_file),
        }
    }

    /// Run and panic (with the full output) unless it exits successfully.
    pub fn run_ok(&mut self) -> CmdOutput {
        let out = self.run();
        assert!(out.success(), "command failed:\n{}", out.report());
        out
    }

    /// Run and panic unless it fails.
    pub fn run_fail(&mut self) -> CmdOutput {
        let out = self.run();
        assert!(
            !out.success(),
            "command unexpectedly succeeded:\n{}",
            out.report()
        );
        out
    }
}

fn read_all(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.read_to_end(&mut buf).expect("read output");
    String::from_utf8_lossy(&buf).into_owned()
}
