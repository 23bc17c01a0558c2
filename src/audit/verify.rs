//! `intercept audit verify`: walks the chain of an event file.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::sha256_hex;

/// Where and why a chain is broken.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the event file: {0}")]
    Read(std::io::Error),
    #[error("line {line}: {reason}")]
    Broken { line: usize, reason: String },
}

impl From<std::io::Error> for VerifyError {
    fn from(e: std::io::Error) -> Self {
        VerifyError::Read(e)
    }
}

/// Checks every line's `seq` and `prev`; returns the number of events.
pub fn verify(path: &Path) -> Result<usize, VerifyError> {
    let reader = BufReader::new(std::fs::File::open(path)?);
    let mut prev_hash = String::new();
    let mut prev_seq: Option<u64> = None;
    let mut count = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        let n = i + 1;
        let broken = |reason: String| VerifyError::Broken { line: n, reason };
        let event: Value = serde_json::from_str(&line)
            .map_err(|e| broken(format!("not a JSON event ({e}): the line was changed")))?;
        let seq = event
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| broken("no seq: the line was changed or inserted".into()))?;
        let prev = event.get("prev").and_then(Value::as_str).unwrap_or("");
        if let Some(p) = prev_seq
            && seq != p + 1
        {
            let what = if seq > p + 1 {
                "removed"
            } else {
                "inserted or reordered"
            };
            return Err(broken(format!(
                "seq {seq} follows seq {p}: a line before it was {what}"
            )));
        }
        if prev != prev_hash {
            return Err(broken(
                "its prev hash does not match the line before it: that line was changed, or this one was inserted or changed".into(),
            ));
        }
        prev_hash = sha256_hex(line.as_bytes());
        prev_seq = Some(seq);
        count += 1;
    }
    Ok(count)
}
