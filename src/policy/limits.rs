//! How large a policy may be, so that loading any file ends in bounded time and memory.
//!
//! A policy is read from files that anyone with write access to the directory can change,
//! and a running proxy reloads it on every save: a hostile or broken file must be refused
//! with an ordinary validation error, never allowed to exhaust the machine. Three things
//! can make a file expensive, and each has a limit:
//!
//! - its size: [`MAX_POLICY_BYTES`], checked before the file is read whole;
//! - nesting: [`MAX_DEPTH`] levels of lists and mappings (every stage after parsing walks
//!   the tree recursively);
//! - aliases: YAML lets `*name` repeat a whole subtree, so nine lines of nine aliases
//!   each stand for 9⁹ (387 million) values. What aliases repeat is counted against
//!   [`MAX_ALIAS_NODES`] and [`MAX_ALIAS_TEXT_BYTES`] before it is copied;
//! - patterns among the `tools` keys: [`MAX_GLOB_TOOL_KEYS`], since each named tool is
//!   matched against every one of them when the policy is compiled.
//!
//! The limits are fixed rather than proportional to the file: a fixed ceiling is what
//! bounds memory, and each is far above what a hand-written policy reaches (a policy that
//! shares a 50-node rule block between 1,000 tools repeats 50,000 nodes).

use std::io::Read;
use std::path::Path;

use super::error::{LoadError, PolicyError};

/// The largest policy, in bytes (8 MiB): a hundred times the largest policy we have seen.
pub const MAX_POLICY_BYTES: u64 = 8 * 1024 * 1024;

/// How deeply lists and mappings may nest, counting what an alias brings in where it is
/// used. A policy needs about ten levels (tools → rules → conditions → a structured value).
pub const MAX_DEPTH: usize = 64;

/// How many nodes (scalars, keys, lists, mappings) aliases may repeat in all.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// How many bytes of scalar text aliases may repeat in all (4 MiB): node counts alone would
/// let one alias of a long string be repeated a hundred thousand times.
pub const MAX_ALIAS_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// How many `tools` keys may be patterns (`delete_*`): every named tool is matched against
/// each at load time, so their product is what a large file costs. Policies use a handful.
pub const MAX_GLOB_TOOL_KEYS: usize = 256;

/// The error for a policy over [`MAX_POLICY_BYTES`], at its first character.
pub fn too_large() -> PolicyError {
    PolicyError {
        message: format!(
            "the policy is larger than {} bytes (8 MiB), the most a policy file may hold",
            MAX_POLICY_BYTES
        ),
        path: String::new(),
        line: 1,
        column: 1,
    }
}

/// Reads a policy file's bytes, refusing one over [`MAX_POLICY_BYTES`] without reading it
/// whole. The size on disk is checked first, and the read stops one byte past the limit
/// anyway, for files whose size is not known beforehand (pipes, devices, a file that grows).
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_error = |cause| LoadError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let invalid = || LoadError::Invalid {
        origin: path.display().to_string(),
        errors: vec![too_large()],
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    if len > MAX_POLICY_BYTES {
        return Err(invalid());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(invalid());
    }
    Ok(bytes)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = read_bounded(path)?;
    String::from_utf8(bytes).map_err(|e| LoadError::Read {
        path: path.to_path_buf(),
        cause: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}
