//! Pruning: event files older than the retention period are deleted from the audit
//! directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What to prune: `*.jsonl` files in `dir` last written more than `max_age` ago.
#[derive(Debug, Clone)]
pub struct Retention {
    pub dir: PathBuf,
    pub max_age: Duration,
}

/// A retention period: `7d`, `12h`, `30m`, `90s`, or a bare number of days.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "d"),
    };
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Deletes old event files, never `current` (which is being written); returns how many.
pub fn prune(retention: &Retention, current: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(&retention.dir) else {
        return 0;
    };
    let cutoff = SystemTime::now().checked_sub(retention.max_age);
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jsonl") || path == current {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = match (meta.modified(), cutoff) {
            (Ok(modified), Some(cutoff)) => meta.is_file() && modified < cutoff,
            _ => false,
        };
        if old {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    // Its seal goes with it: a seal file without its log proves nothing.
                    let _ = std::fs::remove_file(super::seal::path_for(&path));
                }
                Err(e) => eprintln!(
                    "intercept: cannot prune the old audit file {}: {e}",
                    path.display()
                ),
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_periods() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("7 weeks"), None);
        assert_eq!(parse_duration("-1d"), None);
    }
}
