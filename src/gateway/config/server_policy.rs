//! A server's policy: a policy file, read once however many servers name it, or a policy
//! written inline, compiled from the gateway file's own tree.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::decode::{Loader, misspelt};
use super::{ConfigError, PolicyOrigin, ServerPolicy};
use crate::policy::decode::{Decoder, describe, join};
use crate::policy::yaml::{Kind, Node, Pos};
use crate::policy::{self, LoadError};

impl Loader<'_> {
    pub(super) fn policy(
        &mut self,
        d: &mut Decoder<'_>,
        server: &Node,
        at: Pos,
        path: &str,
        node: Option<&Node>,
    ) -> Option<ServerPolicy> {
        let field = join(path, "policy");
        let missing = "the server has no policy: name a policy file (`policy: policies/NAME.yaml`, relative to this file) or write one inline; `policy: {tools: {}}` allows every call on purpose";
        let Some(node) = node else {
            if !misspelt(server, &["policy"]) {
                d.error(at, path, missing);
            }
            return None;
        };
        match &node.kind {
            Kind::Null => {
                d.error(node.pos, &field, missing);
                None
            }
            Kind::Map(_) => inline_policy(d, node, &field),
            Kind::Str(file) if !file.trim().is_empty() => self.policy_file(d, node, &field),
            Kind::Str(_) => {
                d.error(node.pos, &field, missing);
                None
            }
            _ => {
                d.error(
                    node.pos,
                    &field,
                    format!(
                        "value must be a policy file's path or a policy written as a mapping, got {}",
                        describe(node)
                    ),
                );
                None
            }
        }
    }

    fn policy_file(
        &mut self,
        d: &mut Decoder<'_>,
        node: &Node,
        field: &str,
    ) -> Option<ServerPolicy> {
        let path = self.base.join(node.text.trim());
        let read = match self.files.get(&path) {
            Some(read) => read.clone(),
            None => {
                let read = read_policy_file(&path, &mut self.file_errors);
                self.files.insert(path.clone(), read.clone());
                read
            }
        };
        match read {
            PolicyFile::Loaded(policy) => Some(policy),
            PolicyFile::Invalid => None,
            // Told at each `policy:` that names it: each is a line to fix.
            PolicyFile::Unreadable(cause) => {
                d.error(
                    node.pos,
                    field,
                    format!(
                        "cannot read the policy file {}: {cause} (a relative path is read from the gateway file's directory)",
                        path.display()
                    ),
                );
                None
            }
        }
    }
}

/// A policy file as one load of the gateway file found it.
#[derive(Clone)]
pub(super) enum PolicyFile {
    Loaded(ServerPolicy),
    /// Its errors are listed under its own name, once.
    Invalid,
    /// Why it could not be read.
    Unreadable(String),
}

fn read_policy_file(path: &Path, file_errors: &mut Vec<ConfigError>) -> PolicyFile {
    match policy::load_file_hashed(path) {
        Ok(loaded) => PolicyFile::Loaded(ServerPolicy {
            origin: PolicyOrigin::File(path.to_path_buf()),
            policy: Arc::new(loaded.policy),
            sha256: loaded.sha256,
        }),
        Err(LoadError::Read { cause, .. }) => PolicyFile::Unreadable(cause.to_string()),
        Err(LoadError::Invalid { errors, .. }) => {
            file_errors.extend(
                errors
                    .into_iter()
                    .map(|e| ConfigError::from_policy(path.to_path_buf(), e)),
            );
            PolicyFile::Invalid
        }
    }
}

/// A policy written as a mapping in the gateway file, checked exactly as a policy file is.
fn inline_policy(d: &mut Decoder<'_>, node: &Node, field: &str) -> Option<ServerPolicy> {
    let mut errors = Vec::new();
    let compiled = policy::compile_tree(node, &mut errors);
    let failed = !errors.is_empty();
    for e in errors {
        // The policy's own paths (`tools.t.rules[0]`) are placed under the server's.
        let inner = e
            .message
            .strip_prefix(&format!("{}: ", e.path))
            .filter(|_| !e.path.is_empty())
            .unwrap_or(&e.message)
            .to_string();
        let path = if e.path.is_empty() {
            field.to_string()
        } else {
            join(field, &e.path)
        };
        d.error(
            Pos {
                line: e.line,
                column: e.column,
            },
            &path,
            inner,
        );
    }
    let compiled = compiled.filter(|_| !failed)?;
    let canonical =
        serde_json::to_string(&canonical(node)).expect("a JSON value always serializes");
    Some(ServerPolicy {
        origin: PolicyOrigin::Inline,
        policy: Arc::new(compiled),
        sha256: crate::audit::sha256_hex(canonical.as_bytes()),
    })
}

/// The tree as JSON, for hashing an inline policy's content (not its layout). Every value
/// but strings, booleans and null is tagged, so that `1`, `"1"` and `1.0` differ.
fn canonical(node: &Node) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => json!(["int", i]),
        Kind::Float(_) => json!(["float", node.text]),
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Seq(items) => json!(["list", items.iter().map(canonical).collect::<Vec<_>>()]),
        Kind::Map(pairs) => json!([
            "map",
            pairs
                .iter()
                .map(|(k, v)| json!([k.text, canonical(v)]))
                .collect::<Vec<_>>()
        ]),
    }
}
