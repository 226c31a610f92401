//! What pull-through fetches may cost a node (`[pull_through]`): how many
//! run at once, and the free space the spool's filesystem keeps. A
//! client can make the cache fetch any blob its upstream has; these bound
//! what that spends, with or without the client staying to read it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{Error, ErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `[pull_through]`: settings of this node's fetches, for all rules.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PullThroughConfig {
    /// Where blobs being fetched are written until they are stored
    /// [default: <data_dir>/pull-through]. Per node; on a filesystem of
    /// its own, a full spool cannot starve the database or the blobs.
    pub spool_dir: Option<PathBuf>,
    /// Upstream fetches (blobs and manifests) in progress at once on this
    /// node; clients of a fetch in progress share it and need no slot.
    pub max_fetches: usize,
    /// Fetches are refused (503) while the spool's filesystem has less
    /// free than this, and one in progress stops when it gets there.
    pub spool_min_free_bytes: u64,
    /// The same floor as a share of the filesystem's size; the larger of
    /// the two applies.
    pub spool_min_free_percent: u8,
}

impl Default for PullThroughConfig {
    fn default() -> Self {
        PullThroughConfig {
            spool_dir: None,
            max_fetches: 32,
            spool_min_free_bytes: 1 << 30,
            spool_min_free_percent: 5,
        }
    }
}

impl PullThroughConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_fetches == 0 {
            return Err("invalid [pull_through]: max_fetches must be at least 1".into());
        }
        if self.spool_min_free_percent > 99 {
            return Err("invalid [pull_through]: spool_min_free_percent must be 0 to 99".into());
        }
        Ok(())
    }

    /// The spool directory for a node whose data directory is `data_dir`.
    pub fn spool_in(&self, data_dir: &Path) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("pull-through"))
    }
}

/// Free and total bytes of a filesystem.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    pub available: u64,
    pub total: u64,
}

/// How free space is learnt (a stand-in in unit tests).
pub type SpaceOf = fn(&Path) -> std::io::Result<Space>;

/// `statvfs(2)` of the filesystem holding `path`: what an unprivileged
/// writer may still use.
pub fn statvfs(path: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(path)?;
    Ok(Space {
        available: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// The limits in force on this node.
pub struct Limits {
    spool: PathBuf,
    slots: Arc<Semaphore>,
    config: PullThroughConfig,
    space_of: SpaceOf,
}

/// One fetch's place among `max_fetches`, given back when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("registry_upstream_fetches_in_progress").decrement(1.0);
    }
}

impl Limits {
    pub fn new(spool: PathBuf, config: &PullThroughConfig, space_of: SpaceOf) -> Limits {
        Limits {
            spool,
            slots: Arc::new(Semaphore::new(config.max_fetches)),
            config: config.clone(),
            space_of,
        }
    }

    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// A slot for a new upstream fetch, or 503 at once: a queue would hold
    /// clients (and their connections) for as long as others' fetches take,
    /// while `Retry-After` lets them come back.
    pub fn slot(&self) -> Result<Slot, Error> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("registry_upstream_fetches_in_progress").increment(1.0);
                Ok(Slot { _permit: permit })
            }
            Err(_) => {
                super::refused("busy");
                Err(Error::new(
                    ErrorCode::Unavailable,
                    format!(
                        "this node is making {n} upstream fetches already (max_fetches = {n}); \
                         try again shortly",
                        n = self.config.max_fetches
                    ),
                ))
            }
        }
    }

    /// Whether `more` bytes may still be written to the spool and leave
    /// its filesystem above the floor.
    pub fn check_space(&self, more: u64) -> Result<(), Error> {
        let space = (self.space_of)(&self.spool).map_err(|e| {
            Error::new(
                ErrorCode::Unavailable,
                format!(
                    "cannot tell the free space of the spool directory {}: {e}",
                    self.spool.display()
                ),
            )
        })?;
        let floor = self.floor(space.total);
        if space.available.saturating_sub(more) >= floor {
            return Ok(());
        }
        super::refused("low_disk");
        Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "pull-through fetches are paused: the filesystem of the spool directory {} has \
                 {} bytes free{}, under its floor of {floor} bytes (spool_min_free_bytes = {}, \
                 spool_min_free_percent = {}); try again once space is freed",
                self.spool.display(),
                space.available,
                if more > 0 {
                    format!(" for a blob of {more} bytes")
                } else {
                    String::new()
                },
                self.config.spool_min_free_bytes,
                self.config.spool_min_free_percent
            ),
        ))
    }

    fn floor(&self, total: u64) -> u64 {
        let share = total / 100 * u64::from(self.config.spool_min_free_percent);
        self.config.spool_min_free_bytes.max(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn limits(bytes: u64, percent: u8, space_of: SpaceOf) -> Limits {
        let config = PullThroughConfig {
            max_fetches: 2,
            spool_min_free_bytes: bytes,
            spool_min_free_percent: percent,
            ..Default::default()
        };
        Limits::new("/spool".into(), &config, space_of)
    }

    #[test]
    fn the_floor_is_the_larger_of_bytes_and_share() {
        // 100 GiB disk, 10 GiB free.
        let space: SpaceOf = |_| {
            Ok(Space {
                available: 10 * GIB,
                total: 100 * GIB,
            })
        };
        assert!(limits(GIB, 5, space).check_space(0).is_ok());
        assert!(limits(GIB, 5, space).check_space(5 * GIB).is_ok());
        // 5 % of 100 GiB is 5 GiB: 6 GiB more would leave 4.
        let e = limits(GIB, 5, space).check_space(6 * GIB).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("/spool") && e.message.contains("spool_min_free_bytes"));
        let e = limits(11 * GIB, 0, space).check_space(0).unwrap_err();
        assert!(
            e.message.contains(&format!("floor of {}", 11 * GIB)),
            "{}",
            e.message
        );
        assert!(limits(GIB, 11, space).check_space(0).is_err());
    }

    #[test]
    fn an_unreadable_filesystem_refuses() {
        let broken: SpaceOf = |_| Err(std::io::Error::other("gone"));
        let e = limits(0, 0, broken).check_space(0).unwrap_err();
        assert!(e.message.contains("gone"));
    }

    #[test]
    fn slots_run_out_and_come_back() {
        let space: SpaceOf = |_| {
            Ok(Space {
                available: 0,
                total: 0,
            })
        };
        let l = limits(0, 0, space);
        let (a, _b) = (l.slot().unwrap(), l.slot().unwrap());
        let e = l.slot().err().expect("a third slot of two");
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("max_fetches = 2"));
        drop(a);
        assert!(l.slot().is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = PullThroughConfig::default();
        assert!(c.validate().is_ok());
        c.max_fetches = 0;
        assert!(c.validate().unwrap_err().contains("max_fetches"));
        c = PullThroughConfig {
            spool_min_free_percent: 100,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        assert_eq!(
            c.spool_in(Path::new("/data")),
            PathBuf::from("/data/pull-through")
        );
    }
}
