//! Tokens at rest: AES-256-GCM under a key from a key file and the client secret.
//!
//! The key is HMAC-SHA256 of a domain label and the asset's `client_secret`, keyed with
//! 32 random bytes from `<data_dir>/keys/oauth.key` (created once, owner-only). So a
//! copied state database alone reveals nothing, and with the key file it still needs the
//! asset's client secret. A sealed value is `sealed:v1:` followed by base64 of a random
//! 12-byte nonce, the ciphertext and the 16-byte tag; the store key (`oauth_token`) is
//! authenticated as associated data, so a sealed value cannot be moved to another key.

use std::{
    fmt,
    fs::{self, File},
    io::{ErrorKind, Read, Write},
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use openssl::{
    hash::MessageDigest,
    pkey::PKey,
    sign::Signer,
    symm::{Cipher, decrypt_aead, encrypt_aead},
};

use super::OAuthError;
use crate::secret::Secret;

/// The key file, relative to `data_dir`.
pub const KEY_FILE: &str = "keys/oauth.key";

/// The prefix of sealed values of this format.
const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Separates this use of the key file from any later one.
const KDF_LABEL: &[u8] = b"soar-imap oauth token seal v1";

/// The key that seals tokens of one asset. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SealKey([u8; KEY_LEN]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

/// Why a sealed value cannot be opened. Shown in the warning; carries no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The text is not a sealed value (it was written by a stateless run, or by hand).
    #[error("it is not sealed")]
    NotSealed,
    /// The text has the prefix but is damaged.
    #[error("it is damaged (not valid sealed data)")]
    Malformed,
    /// Authentication failed.
    #[error(
        "it cannot be decrypted: the key file or config.client_secret changed since it was stored, or it was altered"
    )]
    WrongKey,
}

impl SealKey {
    /// Reads `<data_dir>/keys/oauth.key`, creating it (and `keys/`, mode 0700) on first
    /// use, and derives the key with `client_secret`.
    pub fn load_or_create(
        data_dir: &Path,
        client_secret: Option<&Secret>,
    ) -> Result<Self, OAuthError> {
        let file_key = load_or_create_key_file(&data_dir.join(KEY_FILE))?;
        Self::derive(&file_key, client_secret)
    }

    /// The key for a key file's bytes and the client secret (if any).
    pub fn derive(
        file_key: &[u8; KEY_LEN],
        client_secret: Option<&Secret>,
    ) -> Result<Self, OAuthError> {
        let crypto = |e: openssl::error::ErrorStack| OAuthError::Crypto {
            action: "derive the OAuth token key",
            reason: e.to_string(),
        };
        let hmac = PKey::hmac(file_key).map_err(crypto)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &hmac).map_err(crypto)?;
        signer.update(KDF_LABEL).map_err(crypto)?;
        // A flag byte keeps "no secret" apart from "empty secret".
        match client_secret {
            Some(secret) => {
                signer.update(&[1]).map_err(crypto)?;
                signer.update(secret.expose().as_bytes()).map_err(crypto)?;
            }
            None => signer.update(&[0]).map_err(crypto)?,
        }
        let digest = signer.sign_to_vec().map_err(crypto)?;
        let key: [u8; KEY_LEN] = digest.try_into().map_err(|_| OAuthError::Crypto {
            action: "derive the OAuth token key",
            reason: "HMAC-SHA256 gave an unexpected length".into(),
        })?;
        Ok(Self(key))
    }

    /// Seals `plaintext` stored under `label` (the state key).
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<String, OAuthError> {
        let crypto = |e: openssl::error::ErrorStack| OAuthError::Crypto {
            action: "seal the OAuth token",
            reason: e.to_string(),
        };
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce).map_err(crypto)?;
        let mut tag = [0u8; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(&nonce),
            &aad(label),
            plaintext,
            &mut tag,
        )
        .map_err(crypto)?;
        let mut packed = Vec::with_capacity(NONCE_LEN + ciphertext.len() + TAG_LEN);
        packed.extend_from_slice(&nonce);
        packed.extend_from_slice(&ciphertext);
        packed.extend_from_slice(&tag);
        Ok(format!("{PREFIX}{}", STANDARD.encode(packed)))
    }

    /// Opens a value sealed under `label`.
    pub fn open(&self, label: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(OpenError::NotSealed)?;
        let packed = STANDARD
            .decode(encoded.trim())
            .map_err(|_| OpenError::Malformed)?;
        if packed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, rest) = packed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(nonce),
            &aad(label),
            ciphertext,
            tag,
        )
        .map_err(|_| OpenError::WrongKey)
    }
}

/// Whether `text` looks like a sealed value (of any version).
pub(crate) fn is_sealed(text: &str) -> bool {
    text.starts_with("sealed:")
}

fn aad(label: &str) -> Vec<u8> {
    format!("soar-imap/{PREFIX}{label}").into_bytes()
}

/// The key file's 32 bytes, creating the file atomically if it does not exist yet.
fn load_or_create_key_file(path: &Path) -> Result<[u8; KEY_LEN], OAuthError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    if let Some(key) = read_key_file(path)? {
        return Ok(key);
    }
    let mut key = [0u8; KEY_LEN];
    openssl::rand::rand_bytes(&mut key).map_err(|e| OAuthError::Crypto {
        action: "generate the OAuth key file",
        reason: e.to_string(),
    })?;
    let io = |action| {
        move |source| OAuthError::KeyFile {
            action,
            path: path.to_owned(),
            source,
        }
    };
    // tempfile creates the file with mode 0600; it is complete and synced before it gets
    // its name, so no run ever reads a half-written key.
    let mut temp = tempfile::Builder::new()
        .prefix(".oauth.key.")
        .tempfile_in(dir)
        .map_err(io("create"))?;
    temp.write_all(&key).map_err(io("write"))?;
    temp.as_file().sync_all().map_err(io("write"))?;
    match temp.persist_noclobber(path) {
        Ok(_) => {
            // Make the new name durable too; failing that is not worth failing the run.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            tracing::info!("Created OAuth key file {}", path.display());
            Ok(key)
        }
        // Another run created it first: use theirs, so both seal with the same key.
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
            read_key_file(path)?.ok_or_else(|| OAuthError::KeyFile {
                action: "read",
                path: path.to_owned(),
                source: std::io::Error::new(ErrorKind::NotFound, "vanished after creation"),
            })
        }
        Err(e) => Err(io("create")(e.error)),
    }
}

/// The key file's bytes, `None` if it does not exist.
fn read_key_file(path: &Path) -> Result<Option<[u8; KEY_LEN]>, OAuthError> {
    let io = |source| OAuthError::KeyFile {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    tighten(path, 0o600);
    let len = file.metadata().map_err(io)?.len();
    if len != KEY_LEN as u64 {
        return Err(OAuthError::KeyFileCorrupt {
            path: path.to_owned(),
            len,
        });
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key).map_err(io)?;
    Ok(Some(key))
}

fn create_private_dir(dir: &Path) -> Result<(), OAuthError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| OAuthError::KeyFile {
        action: "create the directory of",
        path: dir.to_owned(),
        source,
    })?;
    tighten(dir, 0o700);
    Ok(())
}

/// Removes group and other permissions from a key file or its directory that has them
/// (copied by hand, or an older umask), with a warning; failure to do so is only warned.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::metadata(path) else { return };
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        tracing::warn!(
            "{} was accessible to other users (mode {current:o}); setting mode {mode:o}",
            path.display()
        );
        if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
            tracing::warn!("cannot set mode {mode:o} on {}: {e}", path.display());
        }
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) {}

/// The key file path for `data_dir`.
pub fn key_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: Option<&str>) -> SealKey {
        SealKey::derive(&[7; 32], secret.map(|s| Secret::new(s.into())).as_ref()).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = key(Some("cs"));
        let sealed = k
            .seal("oauth_token", b"{\"access_token\":\"AT-1\"}")
            .unwrap();
        assert!(sealed.starts_with("sealed:v1:"), "{sealed}");
        assert!(!sealed.contains("AT-1"));
        assert_eq!(
            k.open("oauth_token", &sealed).unwrap(),
            b"{\"access_token\":\"AT-1\"}"
        );
        // A random nonce: the same plaintext never seals to the same text.
        assert_ne!(
            sealed,
            k.seal("oauth_token", b"{\"access_token\":\"AT-1\"}")
                .unwrap()
        );
    }

    #[test]
    fn wrong_secret_wrong_label_and_tampering_are_refused() {
        let sealed = key(Some("cs")).seal("oauth_token", b"payload").unwrap();
        assert_eq!(
            key(Some("other")).open("oauth_token", &sealed),
            Err(OpenError::WrongKey)
        );
        assert_eq!(
            key(None).open("oauth_token", &sealed),
            Err(OpenError::WrongKey)
        );
        assert_eq!(
            key(Some("")).open("oauth_token", &key(None).seal("oauth_token", b"x").unwrap()),
            Err(OpenError::WrongKey)
        );
        assert_eq!(
            key(Some("cs")).open("other_key", &sealed),
            Err(OpenError::WrongKey)
        );
        // Flip one bit of the ciphertext.
        let mut packed = STANDARD.decode(&sealed[PREFIX.len()..]).unwrap();
        packed[NONCE_LEN] ^= 1;
        let tampered = format!("{PREFIX}{}", STANDARD.encode(&packed));
        assert_eq!(
            key(Some("cs")).open("oauth_token", &tampered),
            Err(OpenError::WrongKey)
        );
        assert_eq!(
            key(Some("cs")).open("oauth_token", "sealed:v1:%%%"),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            key(Some("cs")).open("oauth_token", "sealed:v1:AAAA"),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            key(Some("cs")).open("oauth_token", "{\"a\":1}"),
            Err(OpenError::NotSealed)
        );
    }

    #[test]
    fn key_file_is_created_once_private() {
        let dir = tempfile::tempdir().unwrap();
        let secret = Secret::new("cs".into());
        let first = SealKey::load_or_create(dir.path(), Some(&secret)).unwrap();
        let path = key_file_path(dir.path());
        assert_eq!(fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let sealed = first.seal("oauth_token", b"x").unwrap();
        let again = SealKey::load_or_create(dir.path(), Some(&secret)).unwrap();
        assert_eq!(again.open("oauth_token", &sealed).unwrap(), b"x");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        SealKey::load_or_create(dir.path(), None).unwrap();
        let path = key_file_path(dir.path());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        SealKey::load_or_create(dir.path(), None).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file_path(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"short").unwrap();
        let e = SealKey::load_or_create(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds 5 bytes, not a 32-byte key"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn debug_shows_nothing() {
        assert_eq!(format!("{:?}", key(Some("cs"))), "SealKey(<redacted>)");
    }
}
