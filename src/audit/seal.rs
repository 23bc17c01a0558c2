//! The seal file `<log>.seal`: how many lines the event file had when it was last written,
//! and the hash of the last of them. Lines cut from the end of the log no longer match it.
//!
//! The writer rewrites it (a new file renamed over the old, `0600`) after every batch it
//! writes, so it never claims lines that are not in the file. With an audit key it carries an
//! HMAC of its contents, so it cannot be rewritten to match a cut log without the key.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::key::AuditKey;

/// What a seal file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Lines in the event file.
    pub lines: u64,
    /// The hash of the last of them (`""` for an empty file).
    pub head: String,
    /// The id of the key the log is written with; only with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// HMAC-SHA256 of `lines` and `head`; only with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// `events.jsonl` → `events.jsonl.seal`.
pub fn path_for(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".seal");
    PathBuf::from(name)
}

impl Seal {
    pub fn new(lines: u64, head: &str, key: Option<&AuditKey>) -> Self {
        Seal {
            lines,
            head: head.to_string(),
            key_id: key.map(|k| k.id().to_string()),
            mac: key.map(|k| mac(k, lines, head)),
        }
    }

    /// Whether the MAC is the one `key` gives for these contents.
    pub fn mac_matches(&self, key: &AuditKey) -> bool {
        self.mac.as_deref().is_some_and(|m| {
            // Compared in constant time: a MAC check should not leak how much matched.
            hmac::verify(key.hmac(), &mac_input(self.lines, &self.head), &unhex(m)).is_ok()
        })
    }

    /// Writes the seal for `log` in one step: a reader sees the old seal or the new one.
    pub fn write(&self, log: &Path) -> std::io::Result<()> {
        let path = path_for(log);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let mut file = super::open_private(&tmp, false)?;
        file.write_all(&text)?;
        drop(file);
        std::fs::rename(&tmp, &path)
    }

    /// The seal of `log`; `Ok(None)` when it has none.
    pub fn read(log: &Path) -> Result<Option<Self>, SealError> {
        let path = path_for(log);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(SealError::Read { path, cause }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| SealError::Invalid {
                path,
                reason: e.to_string(),
            })
    }
}

/// A seal file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read the seal file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the seal file {path} is not one intercept wrote ({reason}): it was changed")]
    Invalid { path: PathBuf, reason: String },
}

fn mac_input(lines: u64, head: &str) -> Vec<u8> {
    format!("intercept audit seal\n{lines}\n{head}").into_bytes()
}

fn mac(key: &AuditKey, lines: u64, head: &str) -> String {
    super::hex(hmac::sign(key.hmac(), &mac_input(lines, head)).as_ref())
}

/// Bytes of lowercase hex; anything else becomes bytes no MAC equals.
fn unhex(text: &str) -> Vec<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map_while(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_and_its_mac_needs_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("e.jsonl");
        assert_eq!(Seal::read(&log).unwrap(), None);
        let key = AuditKey::from_bytes(b"0123456789abcdef", "test").unwrap();
        let other = AuditKey::from_bytes(b"0123456789abcdeg", "test").unwrap();
        let seal = Seal::new(12, "ab", Some(&key));
        seal.write(&log).unwrap();
        let back = Seal::read(&log).unwrap().unwrap();
        assert_eq!(back, seal);
        assert!(back.mac_matches(&key));
        assert!(!back.mac_matches(&other));
        let forged = Seal { lines: 11, ..back };
        assert!(!forged.mac_matches(&key));
        assert!(!Seal::new(12, "ab", None).mac_matches(&key));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_for(&log))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(path_for(&log), "{\"lines\":\"x\"}").unwrap();
        assert!(matches!(Seal::read(&log), Err(SealError::Invalid { .. })));
    }
}
