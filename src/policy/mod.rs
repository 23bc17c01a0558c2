//! The policy language: loading, validation with positions, compilation.
//!
//! `text → yaml::parse (spanned tree) → decode (strict shape) → compile (semantics)`.
//! Every stage collects all of its errors; a policy with any error is never returned.

pub mod compile;
mod decode;
pub mod error;
pub mod limits;
pub mod model;
pub mod names;
pub mod schema;
mod yaml;

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
    let raw = decode::Decoder { errors }.policy(&root);
    compile::compile(raw, errors)
}
