//! The vault: attachment bytes stored by content under `data_dir/vault/`.
//!
//! The vault id is the SHA-1 of the bytes (as in SOAR), and the file lives at
//! `vault/<first two hex digits>/<sha1>`. The sender's file name never becomes part of
//! a path: it is metadata on the Vault Artifact only, so `../../etc/passwd` as an
//! attachment name is harmless.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

/// Where attachment bytes go. The container builder only talks to this seam.
pub trait Vault {
    /// Store `bytes` under `vault_id` (their SHA-1 hex). Storing the same id twice is a
    /// no-op: the content is the same by construction.
    fn store(&mut self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError>;
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
#[derive(Debug, Clone)]
pub struct DirVault {
    root: PathBuf,
}

impl DirVault {
    /// The vault inside `data_dir` (created on first store).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("vault"),
        }
    }

    /// Where the file with this vault id lives (or would live).
    pub fn path_of(&self, vault_id: &str) -> PathBuf {
        let fan = vault_id.get(..2).unwrap_or("xx");
        self.root.join(fan).join(vault_id)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        // Write to a temporary file in the same directory and rename it into place, so
        // a reader (or a crash) never sees a half-written file under the final name.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(()),
            // Another run stored the same content first: same bytes, nothing to do.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.error),
        }
    }
}

impl Vault for DirVault {
    fn store(&mut self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError> {
        let valid_id = vault_id.len() == 40 && vault_id.bytes().all(|b| b.is_ascii_hexdigit());
        let path = self.path_of(vault_id);
        if !valid_id {
            return Err(VaultError {
                vault_id: vault_id.to_owned(),
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "vault id is not a SHA-1",
                ),
            });
        }
        if path.is_file() {
            return Ok(());
        }
        self.write(&path, bytes).map_err(|source| VaultError {
            vault_id: vault_id.to_owned(),
            path,
            source,
        })
    }
}

/// A vault in memory, for tests and for callers that only want the container.
#[derive(Debug, Default, Clone)]
pub struct MemoryVault {
    /// Stored files by vault id.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Vault for MemoryVault {
    fn store(&mut self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError> {
        self.files
            .entry(vault_id.to_owned())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a9993e364706816aba3e25717850c26c9cd0d89d"; // sha1("abc")

    #[test]
    fn stores_by_content_under_fanout_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = DirVault::new(dir.path());
        vault.store(ID, b"abc").unwrap();
        vault.store(ID, b"abc").unwrap();
        let path = dir.path().join("vault").join("a9").join(ID);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        // No temporary files are left next to it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn rejects_ids_that_could_escape_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = DirVault::new(dir.path());
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
