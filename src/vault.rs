//! The vault: attachment bytes stored by content under `data_dir/vault/` (or the
//! request's `vault_dir`).
//!
//! The vault id is the SHA-1 of the bytes (as in SOAR), and the file lives at
//! `vault/<first two hex digits>/<sha1>`. The sender's file name never becomes part of
//! a path: it is metadata on the Vault Artifact only, so `../../etc/passwd` as an
//! attachment name is harmless.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock, PoisonError},
};

use tempfile::TempPath;

/// Where attachment bytes go. The container builder only talks to this seam; several
/// builders may store into one vault at once, from different threads.
pub trait Vault: Sync {
    /// Store `bytes` under `vault_id` (their SHA-1 hex). Storing the same id twice is a
    /// no-op: the content is the same by construction. The file may only become
    /// durable at the next [`Vault::flush`].
    fn store(&self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError>;

    /// Make every file stored so far durable under its final name. Whoever records a
    /// vault id (the ledger, a response) calls this first, so no record ever names a
    /// file a power cut could take away.
    fn flush(&self) -> Result<(), VaultError> {
        Ok(())
    }
}

/// A vault write failed; the action fails rather than silently dropping the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot store attachment {vault_id} in the vault at {}: {source}", path.display())]
pub struct VaultError {
    vault_id: String,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The on-disk vault under a data directory.
///
/// Each file is written to a temporary name beside its final one and left there,
/// unsynced, until [`Vault::flush`], which makes a whole batch durable at once (one
/// durability point for many files, as git's `core.fsyncMethod=batch`, without relying
/// on a journal the filesystem may not have): one `syncfs(2)` of the vault's filesystem
/// writes every staged file's data and waits for the disk, then every file is renamed
/// into place, then a second `syncfs` makes the new names (and any new fan-out
/// directory) durable. Two waits on the disk per batch, whatever its number of files,
/// where an fsync per file and per directory cost a wait each. The renames come
/// after the first sync so that a final name never points at data a power cut could
/// take: a later run trusts an existing file under its final name. Dropped unflushed,
/// staged files are deleted.
#[derive(Debug)]
pub struct DirVault {
    root: PathBuf,
    staged: Mutex<Staged>,
    /// The vault directory, opened before the first file is written: `syncfs` reports a
    /// write-back error only to descriptors opened before it happened.
    anchor: OnceLock<File>,
}

/// Files written but not yet flushed.
#[derive(Debug, Default)]
struct Staged {
    files: Vec<StagedFile>,
    ids: BTreeSet<String>,
    /// Directories that gained a new subdirectory (the vault's, for a new fan-out
    /// directory; the data directory, for a new vault): they need an fsync too.
    parents: BTreeSet<PathBuf>,
}

#[derive(Debug)]
struct StagedFile {
    vault_id: String,
    path: PathBuf,
    temp: TempPath,
}

impl DirVault {
    /// The vault inside `data_dir` (created on first store).
    pub fn new(data_dir: &Path) -> Self {
        Self::at(data_dir.join("vault"))
    }

    /// A vault whose files go straight under `root` (`root/<sha1[0..2]>/<sha1>`), for a
    /// request's `vault_dir`; `root` is created on first store.
    pub fn at(root: PathBuf) -> Self {
        Self {
            root,
            staged: Mutex::default(),
            anchor: OnceLock::new(),
        }
    }

    /// Where the file with this vault id lives (or would live).
    pub fn path_of(&self, vault_id: &str) -> PathBuf {
        let fan = vault_id.get(..2).unwrap_or("xx");
        self.root.join(fan).join(vault_id)
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Staged> {
        // A panic while the lock was held (caught per message) leaves the list whole:
        // each push is one step.
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write `bytes` to a temporary file in the same directory as `path`, so the rename
    /// at flush time is atomic: a reader (or a crash) never sees a half-written file
    /// under the final name.
    fn write_temp(&self, path: &Path, bytes: &[u8]) -> std::io::Result<(TempPath, Vec<PathBuf>)> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut parents = Vec::new();
        if !dir.is_dir() {
            parents.push(self.root.clone());
            if !self.root.is_dir()
                && let Some(data_dir) = self.root.parent()
            {
                parents.push(data_dir.to_path_buf());
            }
            std::fs::create_dir_all(dir)?;
        }
        if self.anchor.get().is_none() {
            // Two threads may both open it; the second descriptor is simply dropped.
            let _ = self.anchor.set(File::open(&self.root)?);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        // Closed now: a message with thousands of attachments must not hold thousands
        // of descriptors until the flush.
        Ok((tmp.into_temp_path(), parents))
    }

    fn error(vault_id: &str, path: &Path, source: std::io::Error) -> VaultError {
        VaultError {
            vault_id: vault_id.to_owned(),
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Vault for DirVault {
    fn store(&self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError> {
        let valid_id = vault_id.len() == 40 && vault_id.bytes().all(|b| b.is_ascii_hexdigit());
        let path = self.path_of(vault_id);
        if !valid_id {
            return Err(Self::error(
                vault_id,
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "vault id is not a SHA-1"),
            ));
        }
        if path.is_file() || self.staged().ids.contains(vault_id) {
            return Ok(());
        }
        let (temp, parents) = self
            .write_temp(&path, bytes)
            .map_err(|source| Self::error(vault_id, &path, source))?;
        let mut staged = self.staged();
        staged.parents.extend(parents);
        // Two threads may have written the same content at once: the second copy is
        // simply dropped (and deleted) here.
        if staged.ids.insert(vault_id.to_owned()) {
            staged.files.push(StagedFile {
                vault_id: vault_id.to_owned(),
                path,
                temp,
            });
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), VaultError> {
        let Staged {
            files,
            ids: _,
            parents,
        } = std::mem::take(&mut *self.staged());
        if files.is_empty() {
            return Ok(());
        }
        self.sync_contents(&files)?;
        let mut dirs = BTreeSet::new();
        for StagedFile {
            vault_id,
            path,
            temp,
        } in files
        {
            match temp.persist_noclobber(&path) {
                Ok(()) => {}
                // Another run stored the same content first: same bytes, nothing to do.
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Self::error(&vault_id, &path, e.error)),
            }
            if let Some(dir) = path.parent() {
                dirs.insert(dir.to_path_buf());
            }
        }
        // The new names are durable once their directories are, and a new directory
        // once its parent is.
        dirs.extend(parents);
        self.sync_names(&dirs)
    }
}

impl DirVault {
    /// Make the staged files' bytes durable: one `syncfs` of the vault's filesystem.
    #[cfg(target_os = "linux")]
    fn sync_contents(&self, files: &[StagedFile]) -> Result<(), VaultError> {
        self.sync_filesystem(&format!("({} files)", files.len()))
    }

    /// Make the new names durable: the same `syncfs` again, which covers every
    /// directory the renames and new fan-out directories changed.
    #[cfg(target_os = "linux")]
    fn sync_names(&self, _dirs: &BTreeSet<PathBuf>) -> Result<(), VaultError> {
        self.sync_filesystem("(their directories)")
    }

    #[cfg(target_os = "linux")]
    fn sync_filesystem(&self, what: &str) -> Result<(), VaultError> {
        // Nothing written through this vault: nothing is waiting for the disk.
        let Some(anchor) = self.anchor.get() else {
            return Ok(());
        };
        rustix::fs::syncfs(anchor).map_err(|e| Self::error(what, &self.root, e.into()))
    }

    /// Elsewhere, where `syncfs` is not available: an fsync per file.
    #[cfg(not(target_os = "linux"))]
    fn sync_contents(&self, files: &[StagedFile]) -> Result<(), VaultError> {
        files.iter().try_for_each(|f| {
            File::open(&f.temp)
                .and_then(|file| file.sync_all())
                .map_err(|source| Self::error(&f.vault_id, &f.path, source))
        })
    }

    /// Elsewhere: an fsync per directory that gained a name.
    #[cfg(not(target_os = "linux"))]
    fn sync_names(&self, dirs: &BTreeSet<PathBuf>) -> Result<(), VaultError> {
        dirs.iter().try_for_each(|dir| {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| Self::error("(directory)", dir, source))
        })
    }
}

/// A vault in memory, for tests and for callers that only want the container.
#[derive(Debug, Default)]
pub struct MemoryVault {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryVault {
    /// The bytes stored under `vault_id`.
    pub fn file(&self, vault_id: &str) -> Option<Vec<u8>> {
        self.files().get(vault_id).cloned()
    }

    /// How many files are stored.
    pub fn len(&self) -> usize {
        self.files().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Vault for MemoryVault {
    fn store(&self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError> {
        self.files()
            .entry(vault_id.to_owned())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }
}

/// The vault of a stateless run: attachments are hashed into their artifacts and not
/// kept anywhere (keeping them in memory would grow with the mailbox).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoVault;

impl Vault for NoVault {
    fn store(&self, _: &str, _: &[u8]) -> Result<(), VaultError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a9993e364706816aba3e25717850c26c9cd0d89d"; // sha1("abc")
    const ID2: &str = "b8b7ea8b1e03a1b4c5d1c6b0e3f1b6f6e2b5a6a0";

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn stores_by_content_under_fanout_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let vault = DirVault::new(dir.path());
        vault.store(ID, b"abc").unwrap();
        vault.store(ID, b"abc").unwrap();
        vault.flush().unwrap();
        vault.store(ID, b"abc").unwrap();
        vault.flush().unwrap();
        let path = dir.path().join("vault").join("a9").join(ID);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        // No temporary files are left next to it.
        assert_eq!(names_in(path.parent().unwrap()), [ID]);
    }

    #[test]
    fn a_file_has_its_final_name_only_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let vault = DirVault::new(dir.path());
        vault.store(ID, b"abc").unwrap();
        vault.store(ID2, b"other").unwrap();
        let path = vault.path_of(ID);
        assert!(!path.exists(), "named before it was durable");
        vault.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(std::fs::read(vault.path_of(ID2)).unwrap(), b"other");
        // A second flush has nothing to do.
        vault.flush().unwrap();
    }

    #[test]
    fn an_unflushed_vault_leaves_no_files_behind() {
        let dir = tempfile::tempdir().unwrap();
        let vault = DirVault::new(dir.path());
        vault.store(ID, b"abc").unwrap();
        let fan = dir.path().join("vault").join("a9");
        assert_eq!(names_in(&fan).len(), 1, "the staged temporary file");
        drop(vault);
        assert!(names_in(&fan).is_empty());
    }

    #[test]
    fn many_files_flush_from_several_threads_into_place() {
        use sha1::{Digest as _, Sha1};
        let dir = tempfile::tempdir().unwrap();
        let vault = DirVault::new(dir.path());
        let contents: Vec<Vec<u8>> = (0..100).map(|i| format!("file {i}").into_bytes()).collect();
        let ids: Vec<String> = contents
            .iter()
            .map(|c| crate::sdi::hex(&Sha1::digest(c)))
            .collect();
        std::thread::scope(|s| {
            for half in [0..50, 50..100] {
                let (vault, ids, contents) = (&vault, &ids, &contents);
                s.spawn(move || {
                    for i in half {
                        vault.store(&ids[i], &contents[i]).unwrap();
                    }
                });
            }
        });
        vault.flush().unwrap();
        for (id, content) in ids.iter().zip(&contents) {
            assert_eq!(&std::fs::read(vault.path_of(id)).unwrap(), content);
        }
    }

    #[test]
    fn rejects_ids_that_could_escape_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let vault = DirVault::new(dir.path());
        assert!(vault.store("../../etc/passwd", b"x").is_err());
        assert!(!dir.path().join("vault").exists());
    }

    #[test]
    fn reports_unwritable_vault_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("vault");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let err = DirVault::new(dir.path()).store(ID, b"abc").unwrap_err();
        assert!(err.to_string().contains("cannot store attachment"), "{err}");
        assert!(err.to_string().contains("vault"), "{err}");
    }
}
