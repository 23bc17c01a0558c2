//! `intercept audit verify`: walks the chain of an event file and checks it against its seal.
//!
//! Line by line: the line's own hash must match its bytes (a changed line is named itself),
//! `seq` must follow the line before, and `prev` must be that line's hash. Then the seal file
//! must not count more lines than there are, and the line it names last must be the one it
//! sealed (lines cut from the end, or a rewritten log, are found).

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::chain::{self, Chain, Kind};
use super::key::AuditKey;
use super::seal::{Seal, SealError};

/// Evidence that the log is not as it was written.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the event file: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("line {line}: {reason}")]
    Broken { line: u64, reason: String },
    #[error(
        "truncated: {expected} lines expected, {found} found (the seal file counts {expected}): lines were cut from the end"
    )]
    Truncated { expected: u64, found: u64 },
    #[error("the seal file does not match the log: {0}")]
    SealMismatch(String),
    #[error(
        "wrong key: the log was written with key id {log_key}, and the key given has id {given}"
    )]
    WrongKey { log_key: String, given: String },
}

impl From<std::io::Error> for VerifyError {
    fn from(e: std::io::Error) -> Self {
        VerifyError::Read(e)
    }
}

/// What a log that shows no tampering was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub lines: u64,
    /// How its lines are hashed (`None`: it has none).
    pub kind: Option<Kind>,
    /// The id of the key it says it was written with (from its seal file or seal lines).
    pub key_id: Option<String>,
    /// Every line's own hash was recomputed: false for a keyed log checked without its key,
    /// where only the sequence and the links between lines could be.
    pub hashes_checked: bool,
    pub seal: SealCheck,
    /// The last line is a `seal` event: its writer closed the log.
    pub ends_with_seal_line: bool,
}

/// What the seal file said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealCheck {
    /// It counts this many lines (the log may have more, written after its last update),
    /// the last of them is the one it sealed, and its MAC is right when the log is keyed.
    Matches { lines: u64 },
    /// As `Matches`, but the log is keyed and no key was given: the seal file's MAC, the one
    /// thing that stops it being rewritten to match a cut log, could not be checked.
    MacUnchecked { lines: u64 },
    /// There is none: lines cut from the end cannot be detected.
    Missing,
}

impl Verified {
    /// Everything was checked: truncation at the end and every line's hash.
    pub fn is_complete(&self) -> bool {
        self.hashes_checked && matches!(self.seal, SealCheck::Matches { .. })
    }
}

/// Checks the event file at `path` and its seal file, with `key` for a keyed log.
pub fn verify(path: &Path, key: Option<&AuditKey>) -> Result<Verified, VerifyError> {
    // The seal first: a writer appending meanwhile only adds lines past what it counts.
    let seal = Seal::read(path)?;
    if let (Some(key), Some(log_key)) = (key, seal.as_ref().and_then(|s| s.key_id.as_deref()))
        && log_key != key.id()
    {
        return Err(VerifyError::WrongKey {
            log_key: log_key.to_string(),
            given: key.id().to_string(),
        });
    }
    let chain = key.map_or(Chain::Plain, |k| Chain::Keyed(k.clone()));
    let sealed_lines = seal.as_ref().map(|s| s.lines);
    let mut walk = Walk {
        chain,
        keyed_check: key.is_some(),
        kind: None,
        key_id: seal.as_ref().and_then(|s| s.key_id.clone()),
        prev_hash: String::new(),
        prev_seq: None,
        lines: 0,
        sealed_head: (sealed_lines == Some(0)).then(String::new),
        sealed_lines,
        last_is_seal: false,
    };
    let reader = BufReader::new(std::fs::File::open(path)?);
    for line in reader.split(b'\n') {
        walk.line(&line?)?;
    }
    let hashes_checked = walk.kind != Some(Kind::Keyed) || key.is_some();
    let seal = match seal {
        None => SealCheck::Missing,
        Some(seal) => walk.check_seal(&seal, key)?,
    };
    Ok(Verified {
        lines: walk.lines,
        kind: walk.kind,
        key_id: walk.key_id,
        hashes_checked,
        seal,
        ends_with_seal_line: walk.last_is_seal,
    })
}

/// The walk down the chain, one line at a time.
struct Walk {
    /// How hashes are recomputed: keyed when a key was given.
    chain: Chain,
    keyed_check: bool,
    /// The kind of hash line 1 carries; every line must carry the same.
    kind: Option<Kind>,
    key_id: Option<String>,
    prev_hash: String,
    prev_seq: Option<u64>,
    lines: u64,
    sealed_lines: Option<u64>,
    /// The hash of line `sealed_lines`.
    sealed_head: Option<String>,
    last_is_seal: bool,
}

impl Walk {
    fn line(&mut self, line: &[u8]) -> Result<(), VerifyError> {
        self.lines += 1;
        let n = self.lines;
        let broken = |reason: String| VerifyError::Broken { line: n, reason };
        let event: Value = serde_json::from_slice(line)
            .map_err(|e| broken(format!("not a JSON event ({e}): this line was changed")))?;
        let Some(hashed) = chain::split(line) else {
            return Err(broken(
                "it does not end with its hash: this line was changed or inserted".into(),
            ));
        };
        match self.kind {
            None => self.kind = Some(hashed.kind),
            Some(kind) if kind != hashed.kind => {
                return Err(broken(format!(
                    "it carries a \"{}\" but line 1 a \"{}\": this line was changed or inserted",
                    hashed.kind.member(),
                    kind.member()
                )));
            }
            Some(_) => {}
        }
        if self.keyed_check && hashed.kind == Kind::Plain {
            return Err(broken(
                "it is not keyed (a plain SHA-256 \"hash\") but a key was given: the log was written without the key, or rewritten by someone who does not hold it".into(),
            ));
        }
        let prev = event.get("prev").and_then(Value::as_str).unwrap_or("");
        let seq = event
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| broken("no seq: this line was changed or inserted".into()))?;

        // The line's own hash first, so a changed line is the one named.
        if hashed.kind == self.chain.kind() && self.chain.hash(hashed.body) != hashed.hash {
            let what = match hashed.kind {
                Kind::Plain => "hash",
                Kind::Keyed => "HMAC",
            };
            let or_key = if self.keyed_check && n == 1 {
                ", or the key is not the one the log was written with"
            } else {
                ""
            };
            return Err(broken(format!(
                "its {what} does not match its content: this line was changed{or_key}"
            )));
        }
        match self.prev_seq {
            None if seq != 1 => {
                return Err(broken(format!(
                    "the first line has seq {seq}, not 1: lines before it were removed"
                )));
            }
            Some(p) if seq != p + 1 => {
                let what = if seq > p + 1 {
                    "removed"
                } else {
                    "inserted or reordered"
                };
                return Err(broken(format!(
                    "seq {seq} follows seq {p}: a line before it was {what}"
                )));
            }
            _ => {}
        }
        if prev != self.prev_hash {
            return Err(if n == 1 {
                broken("the first line's prev is not empty: lines before it were removed".into())
            } else if hashed.kind == self.chain.kind() {
                // Both lines match their own hashes, yet do not link: the one before was
                // changed and given a new hash (or this one was replaced whole).
                VerifyError::Broken {
                    line: n - 1,
                    reason: format!(
                        "its hash was recomputed: line {n}'s prev does not match it, so this line was changed (or line {n} replaced)"
                    ),
                }
            } else {
                broken(format!(
                    "its prev does not match line {}'s HMAC: that line was changed, or this one inserted",
                    n - 1
                ))
            });
        }

        let kind = event.get("type").and_then(Value::as_str);
        self.last_is_seal = kind == Some("seal");
        if self.last_is_seal {
            if event.get("lines").and_then(Value::as_u64) != Some(n) {
                return Err(broken(format!(
                    "a seal line that does not count {n} lines: lines before it were removed or inserted"
                )));
            }
            if let Some(id) = event.get("key_id").and_then(Value::as_str) {
                self.key_id.get_or_insert_with(|| id.to_string());
            }
        }
        self.prev_hash = hashed.hash.to_string();
        self.prev_seq = Some(seq);
        if self.sealed_lines == Some(n) {
            self.sealed_head = Some(self.prev_hash.clone());
        }
        Ok(())
    }

    fn check_seal(&self, seal: &Seal, key: Option<&AuditKey>) -> Result<SealCheck, VerifyError> {
        let mismatch = |reason: String| Err(VerifyError::SealMismatch(reason));
        let keyed = self.kind == Some(Kind::Keyed) || seal.mac.is_some();
        let mut mac_checked = !keyed;
        if let Some(key) = key {
            if seal.mac.is_none() {
                return mismatch("it has no MAC, so it was not written with this key".into());
            }
            if !seal.mac_matches(key) {
                return mismatch("its MAC does not match its contents: it was rewritten".into());
            }
            mac_checked = true;
        } else if self.kind == Some(Kind::Keyed) && seal.mac.is_none() {
            return mismatch(
                "the log is keyed but the seal file has no MAC: it was rewritten".into(),
            );
        }
        if seal.lines > self.lines {
            return Err(VerifyError::Truncated {
                expected: seal.lines,
                found: self.lines,
            });
        }
        if self.sealed_head.as_deref() != Some(seal.head.as_str()) {
            return mismatch(format!(
                "line {} is not the line it sealed: the log was rewritten up to there",
                seal.lines
            ));
        }
        Ok(if mac_checked {
            SealCheck::Matches { lines: seal.lines }
        } else {
            SealCheck::MacUnchecked { lines: seal.lines }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, AuditOptions};

    fn written(dir: &Path, key: Option<AuditKey>, events: usize) -> std::path::PathBuf {
        let path = dir.join("e.jsonl");
        let options = AuditOptions {
            key,
            ..Default::default()
        };
        let log = AuditLog::open_with(&path, "abc", options).unwrap();
        for i in 0..events {
            log.record("x", serde_json::json!({ "i": i }));
        }
        log.close();
        path
    }

    fn lines(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn broken_at(result: Result<Verified, VerifyError>) -> (u64, String) {
        match result {
            Err(VerifyError::Broken { line, reason }) => (line, reason),
            other => panic!("not broken: {other:?}"),
        }
    }

    #[test]
    fn a_line_rehashed_after_a_change_is_named_by_the_next_lines_prev() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), None, 4);
        let mut all = lines(&path);
        // Line 2 changed, and its own hash recomputed as the writer would.
        let changed = all[1].replace("\"i\":1", "\"i\":7");
        let hashed = chain::split(changed.as_bytes()).unwrap();
        let hash = Chain::Plain.hash(hashed.body);
        all[1] = format!(
            "{},\"hash\":\"{hash}\"}}",
            String::from_utf8_lossy(hashed.body)
        );
        rewrite(&path, &all);
        let (line, reason) = broken_at(verify(&path, None));
        assert_eq!(line, 2, "{reason}");
        assert!(reason.contains("its hash was recomputed"), "{reason}");
    }

    #[test]
    fn lines_removed_from_the_start_or_with_their_seal_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), None, 3);
        let all = lines(&path);
        rewrite(&path, &all[1..]);
        let (line, reason) = broken_at(verify(&path, None));
        assert_eq!(line, 1);
        assert!(reason.contains("the first line has seq 2"), "{reason}");

        // Cut with its seal line, and no seal file: nothing shows the cut but the warning.
        rewrite(&path, &all[..3]);
        std::fs::remove_file(crate::audit::seal_path(&path)).unwrap();
        let v = verify(&path, None).unwrap();
        assert_eq!((v.lines, v.seal), (3, SealCheck::Missing));
        assert!(!v.ends_with_seal_line && !v.is_complete());
    }

    #[test]
    fn a_seal_file_that_does_not_match_the_lines_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::from_bytes(b"0123456789abcdef", "test").unwrap();
        let path = written(dir.path(), Some(key.clone()), 2);
        assert!(verify(&path, Some(&key)).unwrap().is_complete());
        let seal = Seal::read(&path).unwrap().unwrap();
        // Rewritten to count one line less: its MAC no longer matches.
        let forged = Seal {
            lines: seal.lines - 1,
            ..seal
        };
        forged.write(&path).unwrap();
        assert!(matches!(
            verify(&path, Some(&key)),
            Err(VerifyError::SealMismatch(reason)) if reason.contains("MAC")
        ));
        // A genuine seal of another log: its count fits, its head does not.
        let other = tempfile::tempdir().unwrap();
        let other_log = written(other.path(), Some(key.clone()), 2);
        std::fs::copy(
            crate::audit::seal_path(&other_log),
            crate::audit::seal_path(&path),
        )
        .unwrap();
        assert!(matches!(
            verify(&path, Some(&key)),
            Err(VerifyError::SealMismatch(reason)) if reason.contains("line 3 is not the line it sealed")
        ));
    }
}
