//! What `serve` and `config check` verify before serving: a data directory
//! that can be created and written, an address that can be listened on.

use crate::failure::{io_reason, listen_failure, Failure};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// Create `dir` if needed and prove it writable.
pub fn data_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::operational(format!(
            "cannot create data directory {}: {}",
            dir.display(),
            io_reason(&e)
        ))
    })?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            Failure::operational(format!(
                "cannot write in data directory {}: {}",
                dir.display(),
                io_reason(&e)
            ))
        })
}

/// Bind `addr` (non-blocking, ready for tokio).
pub fn listen(addr: SocketAddr) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(addr).map_err(|e| listen_failure(&addr, &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| listen_failure(&addr, &e))?;
    Ok(listener)
}
