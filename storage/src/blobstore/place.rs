//! Making bytes a committed blob: durable first, then visible under the
//! digest's name in one atomic step, so no reader or crash ever sees a
//! partial blob.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Make the first `size` bytes of a staged upload, which the caller has
/// verified against the digest, the blob `target`: anything past them is
/// cut off (bytes that were never hashed are not the blob), fewer is an
/// `InvalidData` error, the file is fsynced, then moved in only if no blob
/// is there yet. A blob already stored stays as it is: it is shared by
/// every repository, and a commit must never be able to replace it.
pub(super) fn promote(staged: &Path, target: &Path, size: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(staged)?;
    let len = file.metadata()?.len();
    if len < size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the upload's staged file has {len} bytes, {size} were received"),
        ));
    }
    if len > size {
        tracing::warn!(
            staged = %staged.display(),
            len,
            size,
            "cutting unacknowledged bytes off a staged upload before its commit"
        );
        file.set_len(size)?;
    }
    file.sync_all()?;
    drop(file);
    match with_parent(target, || rename_noreplace(staged, target)) {
        Ok(()) => sync_parent(target),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Stored before (another upload of the same digest): that copy
            // serves, this one goes.
            match std::fs::remove_file(staged) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

/// Rename `from` to `to` unless `to` exists (`AlreadyExists` then), in one
/// step: `renameat2(RENAME_NOREPLACE)`, or where the filesystem lacks it, a
/// hard link (which never replaces either) and an unlink.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    let src = CString::new(from.as_os_str().as_bytes())?;
    let dst = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(e);
    }
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// Make the name of a new blob durable before the database links it: an
/// OS crash must not keep the link and lose the directory entry.
fn sync_parent(target: &Path) -> std::io::Result<()> {
    File::open(target.parent().expect("blob paths have a directory"))?.sync_all()
}

/// Write a whole blob whose bytes are all in memory: into an unnamed file
/// (`O_TMPFILE`) in the blob's own directory, fsynced, then linked in. A
/// crash at any point leaves nothing behind, and no staging directory or
/// rename between directories is involved.
pub(super) fn write_unnamed(target: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().expect("blob paths have a directory");
    let mut file = with_parent(target, || {
        std::fs::OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
    })?;
    file.write_all(data)?;
    file.sync_all()?;
    match link_unnamed(&file, target) {
        // Same digest, same bytes: the blob is there either way.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
        Ok(()) => sync_parent(target),
    }
}

/// Whether `dir`'s filesystem can make unnamed files and link them in
/// (ext4, xfs, btrfs and tmpfs can; some network filesystems cannot).
pub(super) fn unnamed_files_work(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", uuid::Uuid::new_v4()));
    let ok = write_unnamed(&probe, b"").is_ok() && probe.exists();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// `linkat` of an open unnamed file through `/proc/self/fd` (the
/// `AT_EMPTY_PATH` form needs a capability).
fn link_unnamed(file: &File, target: &Path) -> std::io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Run `op`; if `target`'s directory is missing (the first blob of its
/// shard), create it and run `op` again.
fn with_parent<T>(target: &Path, op: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match op() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = target.parent().expect("blob paths have a directory");
            std::fs::create_dir_all(dir)?;
            // The new directory's own entry, durable like the blob's.
            sync_parent(dir)?;
            op()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_write_links_whole_file_and_tolerates_existing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blobs/sha256/ab/abcd");
        write_unnamed(&target, b"hello").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        // The same blob again: still there, still whole.
        write_unnamed(&target, b"hello").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        // Nothing else was left in the directory.
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("abcd")]);
        assert!(unnamed_files_work(dir.path()));
    }

    #[test]
    fn promote_creates_the_shard_directory() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"bytes").unwrap();
        let target = dir.path().join("blobs/sha256/cd/cdef");
        promote(&staged, &target, 5).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"bytes");
        assert!(!staged.exists());
    }

    #[test]
    fn promote_places_only_the_verified_bytes_and_never_replaces_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blobs/sha256/ab/abcd");
        // Bytes past the verified size (an abandoned chunk's) are cut off.
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"good+junk").unwrap();
        promote(&staged, &target, 4).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"good");
        // A second commit of the digest leaves the stored file alone, even
        // when its staged file holds other bytes.
        std::fs::write(&staged, b"evil").unwrap();
        promote(&staged, &target, 4).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"good");
        assert!(!staged.exists(), "the redundant copy is removed");
        // Fewer bytes than were received: refused, nothing placed.
        let other = dir.path().join("blobs/sha256/cd/cdef");
        std::fs::write(&staged, b"abc").unwrap();
        let e = promote(&staged, &other, 4).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(!other.exists());
    }
}
