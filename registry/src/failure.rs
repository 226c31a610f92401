//! Errors of the command line, worded for the person who reads them: each
//! names the object (address, file, directory, URL, image) and the
//! operation, says what to do where that is obvious, and carries the exit
//! status: 2 when the invocation or configuration is wrong, 1 when the
//! environment is (a busy port, a missing registry).

use std::fmt;

#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// The user's input is at fault (exit status 2) rather than the
    /// environment (exit status 1).
    pub usage: bool,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: true,
        }
    }

    pub fn operational(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: false,
        }
    }

    pub fn exit_code(&self) -> i32 {
        if self.usage {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An I/O error as a reason: the system's words, in lower case, without
/// Rust's `(os error N)`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Why binding `addr` failed, and what to do about it.
pub fn listen_failure(addr: &std::net::SocketAddr, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    let hint = match e.kind() {
        AddrInUse => " (another registry running? choose another with --listen)",
        PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --listen)"
        }
        AddrNotAvailable => " (no interface of this machine has that address)",
        _ => "",
    };
    Failure::operational(format!("cannot listen on {addr}: {}{hint}", io_reason(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_like_sentences() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(libc::EADDRINUSE);
        let f = listen_failure(&"127.0.0.1:5000".parse().unwrap(), &e);
        assert_eq!(
            f.to_string(),
            "cannot listen on 127.0.0.1:5000: address already in use (another registry running? choose another with --listen)"
        );
        assert_eq!(f.exit_code(), 1);
        assert_eq!(Failure::usage("x").exit_code(), 2);
    }
}
