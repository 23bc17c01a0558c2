//! The policy language: loading, validation with positions, compilation.
//!
//! `text → yaml::parse (spanned tree) → decode (strict shape) → compile (semantics)`.
//! Every stage collects all of its errors; a policy with any error is never returned.

pub mod compile;
pub(crate) mod decode;
pub mod error;
pub mod limits;
pub mod model;
pub mod names;
pub mod schema;
pub(crate) mod yaml;

use std::path::Path;

pub use error::{LoadError, PolicyError};
pub use model::CompiledPolicy;

/// Parses and compiles a policy. `origin` names it in error messages (usually its path).
pub fn parse(text: &str, origin: &str) -> Result<CompiledPolicy, LoadError> {
    let mut errors = Vec::new();
    let compiled = compile_text(text, &mut errors);
    match compiled {
        Some(policy) if errors.is_empty() => Ok(policy),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(LoadError::Invalid {
                origin: origin.to_string(),
                errors,
            })
        }
    }
}

/// Reads, parses and compiles a policy file (one over [`limits::MAX_POLICY_BYTES`] is
/// refused before it is read whole).
pub fn load_file(path: &Path) -> Result<CompiledPolicy, LoadError> {
    load_file_hashed(path).map(|loaded| loaded.policy)
}

/// A policy file as it was loaded: the compiled policy and the SHA-256 (hex) of the very
/// text that was compiled.
#[derive(Debug)]
pub struct LoadedFile {
    pub policy: CompiledPolicy,
    pub sha256: String,
}

/// Reads a policy file once, and compiles and hashes those same bytes: a file rewritten
/// while intercept starts cannot give the audit log the hash of another text than the
/// one in force.
pub fn load_file_hashed(path: &Path) -> Result<LoadedFile, LoadError> {
    let text = limits::read_text(path)?;
    Ok(LoadedFile {
        policy: parse(&text, &path.display().to_string())?,
        sha256: crate::audit::sha256_hex(text.as_bytes()),
    })
}

/// The known name closest to a misspelt one, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    decode::suggest(name, known)
}

/// Every error in a policy text, sorted by position; empty when it is valid.
pub fn validate(text: &str) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    compile_text(text, &mut errors);
    errors.sort_by_key(|e| (e.line, e.column));
    errors
}

/// The message for a policy with nothing in it: see [`is_empty_policy`].
pub const EMPTY_POLICY: &str = "the policy is empty, and an empty policy would allow every call: write its rules, or write `tools: {}` to allow every call on purpose";

/// A policy with nothing in it (no text, only blanks or comments, or a document that is only
/// `~`, `null` or `---`) would allow every call. That is what a truncated file, a file
/// cleared by mistake or an unset template reads as, never what anyone meant: it is refused,
/// at 1:1, by every loader (`validate`, start-up, hot reload, the Node API). Allowing
/// everything on purpose is written out: `tools: {}`.
fn empty_policy() -> PolicyError {
    PolicyError {
        message: EMPTY_POLICY.to_string(),
        path: String::new(),
        line: 1,
        column: 1,
    }
}

/// Whether these are the errors of an empty policy, and of nothing else.
pub fn is_empty_policy(errors: &[PolicyError]) -> bool {
    matches!(errors, [e] if *e == empty_policy())
}

fn compile_text(text: &str, errors: &mut Vec<PolicyError>) -> Option<CompiledPolicy> {
    if text.len() as u64 > limits::MAX_POLICY_BYTES {
        errors.push(limits::too_large());
        return None;
    }
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(PolicyError {
                message: e.message,
                path: String::new(),
                line: e.pos.line,
                column: e.pos.column,
            });
            return None;
        }
    };
    compile_tree(&root, errors)
}

/// Decodes and compiles a policy already read into a tree: a policy file's whole document,
/// or a mapping written inside another file (a gateway file's inline policy), whose errors
/// then carry positions in that file.
pub(crate) fn compile_tree(
    root: &yaml::Node,
    errors: &mut Vec<PolicyError>,
) -> Option<CompiledPolicy> {
    if matches!(root.kind, yaml::Kind::Null) {
        errors.push(empty_policy());
        return None;
    }
    let raw = decode::Decoder { errors }.policy(root);
    compile::compile(raw, errors)
}
