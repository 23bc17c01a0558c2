//! The audit key: with one, every line's chain hash is an HMAC, so someone who can edit the
//! event file but does not hold the key cannot recompute the chain after a change.
//!
//! The key comes from `INTERCEPT_AUDIT_KEY` or from a file only its owner can read. It is
//! never written anywhere: logs and seal files carry only its id, an HMAC of a fixed text,
//! which tells which key a log was written with without revealing it.

use std::path::{Path, PathBuf};

use ring::hmac;

/// The environment variable that holds the key's text.
pub const KEY_ENV: &str = "INTERCEPT_AUDIT_KEY";

/// Shorter keys are refused: an HMAC is only as strong as its key.
pub const MIN_KEY_BYTES: usize = 16;

/// A key for HMAC-SHA256 chain hashes. Its `Debug` shows the id only.
#[derive(Clone)]
pub struct AuditKey {
    key: hmac::Key,
    id: String,
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the audit key file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the audit key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "the audit key file {path} can be read by others (mode {mode:04o}); make it private: chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "the audit key from {source_name} is too short ({len} bytes): use at least {MIN_KEY_BYTES}, e.g. the output of `openssl rand -hex 32`"
    )]
    TooShort { source_name: String, len: usize },
    #[error("both {KEY_ENV} and {flag} give an audit key: use one")]
    Both { flag: &'static str },
}

impl AuditKey {
    /// A key from its bytes; `source_name` says where they came from, for errors.
    pub fn from_bytes(bytes: &[u8], source_name: &str) -> Result<Self, KeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                source_name: source_name.to_string(),
                len: bytes.len(),
            });
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let tag = hmac::sign(&key, b"intercept audit key id");
        let id = super::hex(&tag.as_ref()[..8]);
        Ok(AuditKey { key, id })
    }

    /// The key in `path`, a regular file that only its owner may read (mode 0600 or
    /// stricter); one trailing newline (or any trailing whitespace) is not part of it.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let read_error = |cause| KeyError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(read_error)?;
        let key = Self::from_bytes(bytes.trim_ascii_end(), &path.display().to_string());
        // The file's bytes are the secret: do not leave a copy in freed memory.
        bytes.fill(0);
        key
    }

    /// The key from `--<flag> FILE` or from `INTERCEPT_AUDIT_KEY`; `None` when neither is set.
    /// Both at once is refused: which one wins would be a guess.
    pub fn configured(file: Option<&Path>, flag: &'static str) -> Result<Option<Self>, KeyError> {
        let env = std::env::var_os(KEY_ENV);
        match (file, env) {
            (Some(_), Some(_)) => Err(KeyError::Both { flag }),
            (Some(path), None) => Self::from_file(path).map(Some),
            (None, Some(text)) => {
                Self::from_bytes(text.as_encoded_bytes().trim_ascii_end(), KEY_ENV).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// 16 hex characters naming the key (an HMAC of a fixed text): equal ids, equal keys.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn hmac(&self) -> &hmac::Key {
        &self.key
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_by_an_id_that_does_not_show_them() {
        let a = AuditKey::from_bytes(b"0123456789abcdef0123", "test").unwrap();
        let b = AuditKey::from_bytes(b"0123456789abcdef0124", "test").unwrap();
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), b.id());
        assert_eq!(
            a.id(),
            AuditKey::from_bytes(b"0123456789abcdef0123", "x")
                .unwrap()
                .id()
        );
        let shown = format!("{a:?}");
        assert!(!shown.contains("0123456789"), "{shown}");
        let short = AuditKey::from_bytes(b"short", "INTERCEPT_AUDIT_KEY").unwrap_err();
        assert_eq!(
            short.to_string(),
            "the audit key from INTERCEPT_AUDIT_KEY is too short (5 bytes): use at least 16, e.g. the output of `openssl rand -hex 32`"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_must_be_private_and_its_trailing_newline_is_not_part_of_the_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = AuditKey::from_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::Permissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("(mode 0640)"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        let key = AuditKey::from_file(&path).unwrap();
        let same = AuditKey::from_bytes(b"0123456789abcdef0123", "test").unwrap();
        assert_eq!(key.id(), same.id());
        assert!(matches!(
            AuditKey::from_file(dir.path()),
            Err(KeyError::NotAFile { .. })
        ));
    }
}
