//! One run per asset: an OS file lock under `data_dir/locks/`, released by the OS when
//! the process ends, however it ends.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};

use super::StateError;

/// How often a waiting run tries the lock again.
const RETRY_EVERY: Duration = Duration::from_millis(25);

/// The exclusive right to use one asset's state; dropping it releases the lock.
#[derive(Debug)]
pub struct AssetLock {
    // Held only for its OS lock, which closing the file releases.
    _file: File,
    path: PathBuf,
}

impl AssetLock {
    /// Take the lock of `asset_id` under `data_dir`, waiting up to `wait` for a run that
    /// holds it to finish.
    pub fn acquire(data_dir: &Path, asset_id: &str, wait: Duration) -> Result<Self, StateError> {
        let dir = data_dir.join("locks");
        super::schema::create_private_dir(&dir)?;
        // The asset id comes from the platform: hash it so it can never shape the path.
        let digest = Sha256::digest(asset_id.as_bytes());
        let hex = format!("{digest:x}");
        let path = dir.join(format!("{}.lock", &hex[..32]));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StateError::Io {
                action: "open lock file",
                path: path.clone(),
                source,
            })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file, path }),
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(RETRY_EVERY.min(wait.saturating_sub(started.elapsed())));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StateError::Busy {
                        asset_id: asset_id.to_owned(),
                        lock: path,
                        waited_ms: started.elapsed().as_millis(),
                    });
                }
                Err(TryLockError::Error(source)) => {
                    return Err(StateError::Io {
                        action: "lock",
                        path,
                        source,
                    });
                }
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_busy_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = AssetLock::acquire(dir.path(), "7", Duration::ZERO).unwrap();
        let err = AssetLock::acquire(dir.path(), "7", Duration::from_millis(100)).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StateError::Busy { .. }), "{message}");
        assert!(message.contains("asset \"7\""), "{message}");
        assert!(
            message.contains(&first.path().display().to_string()),
            "{message}"
        );
        drop(first);
        // Not `Duration::ZERO`: another test of this process forking a child at this
        // moment holds a copy of the descriptor (and so the lock) until the child execs.
        AssetLock::acquire(dir.path(), "7", Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn waiting_run_gets_the_lock_when_the_holder_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let first = AssetLock::acquire(dir.path(), "7", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
        });
        AssetLock::acquire(dir.path(), "7", Duration::from_secs(30)).unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn assets_do_not_contend_and_odd_ids_stay_inside_the_lock_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = AssetLock::acquire(dir.path(), "7", Duration::ZERO).unwrap();
        let b = AssetLock::acquire(dir.path(), "../../8", Duration::ZERO).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(b.path().parent(), Some(dir.path().join("locks").as_path()));
    }
}
