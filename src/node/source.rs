//! Where a policy comes from: YAML text (`options.policy`), a file (`options.policyFile`), or
//! either (`validate`, `reload`, one-shot `evaluate`), told apart by its shape.

use std::borrow::Cow;
use std::path::Path;

use crate::policy::{LoadError, limits};

/// Origin of a policy given as text, as validation messages show it.
const TEXT_ORIGIN: &str = "<policy>";

#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    input: &'a str,
    /// The argument or option it came from, as messages name it (`options.policyFile`).
    argument: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Path,
    TextOrPath,
}

impl<'a> Source<'a> {
    pub fn text(input: &'a str, argument: &'static str) -> Self {
        Source {
            input,
            argument,
            kind: Kind::Text,
        }
    }

    pub fn path(input: &'a str, argument: &'static str) -> Self {
        Source {
            input,
            argument,
            kind: Kind::Path,
        }
    }

    pub fn text_or_path(input: &'a str, argument: &'static str) -> Self {
        Source {
            input,
            argument,
            kind: Kind::TextOrPath,
        }
    }

    pub fn argument(&self) -> &'static str {
        self.argument
    }

    /// The policy text and its origin for messages (the path, or `<policy>`).
    pub fn read(&self) -> Result<(Cow<'a, str>, String), LoadError> {
        let is_path = match self.kind {
            Kind::Text => false,
            Kind::Path => true,
            Kind::TextOrPath => is_path(self.input),
        };
        if is_path {
            let text = limits::read_text(Path::new(self.input))?;
            Ok((Cow::Owned(text), self.input.to_string()))
        } else {
            Ok((Cow::Borrowed(self.input), TEXT_ORIGIN.to_string()))
        }
    }

    /// The message for a policy file that does not exist: `Policy file "p.yaml"
    /// (options.policyFile) not found; looked for /cwd/p.yaml.` A text-or-path argument is
    /// named in the sentence that follows, which says why its input was read as a path.
    pub fn not_found(&self, path: &Path) -> String {
        let mut message = format!("Policy file \"{}\"", path.display());
        if self.kind != Kind::TextOrPath {
            message.push_str(&format!(" ({})", self.argument));
        }
        message.push_str(" not found");
        if path.is_relative()
            && let Ok(cwd) = std::env::current_dir()
        {
            message.push_str(&format!("; looked for {}", cwd.join(path).display()));
        }
        message.push('.');
        if self.kind == Kind::TextOrPath {
            message.push_str(&format!(
                " {} reads a single line without YAML mapping syntax as a file path: pass the path of an existing file, or the policy as YAML text such as \"tools: {{}}\".",
                self.argument
            ));
        }
        message
    }

    /// For YAML text that did not compile and reads like a file name (`options.policy:
    /// "policy.yaml"`): how to pass a file instead.
    pub fn path_hint(&self) -> Option<String> {
        (self.kind == Kind::Text && !self.input.contains('\n') && !could_be_policy_text(self.input))
            .then(|| {
                format!(
                    "{} holds the policy as YAML text, and \"{}\" reads like a file name: to load a file, pass options.policyFile instead.",
                    self.argument, self.input
                )
            })
    }
}

/// Whether a text-or-path argument is a path: a single line that names an existing file, or
/// that no policy could be written as. A policy is a YAML mapping, so a single line without
/// mapping syntax (`policy`, `./p.yaml`, `policies/x.yml`, `C:\p.yaml`) is a path, and a
/// missing one is reported as a missing file rather than parsed; `tools: {}`, `{}`, an empty
/// string, a comment or `null` are policy text (the empty ones then refused as empty policies,
/// not looked for as files).
fn is_path(input: &str) -> bool {
    !input.contains('\n') && (Path::new(input).is_file() || !could_be_policy_text(input))
}

/// Whether one line reads as YAML rather than as a name: mapping syntax (`key: value`,
/// `key:`, `{…}`), YAML punctuation (a list, a comment, a quoted scalar, an anchor, a tag, a
/// directive, a document marker), or an empty document (`""`, `~`, `null`).
fn could_be_policy_text(line: &str) -> bool {
    let t = line.trim();
    t.is_empty()
        || t.starts_with(['{', '[', '#', '"', '\'', '&', '*', '!', '%', '|', '>'])
        || t.starts_with("- ")
        || t == "-"
        || t.starts_with("---")
        || t == "..."
        || matches!(t, "~" | "null" | "Null" | "NULL")
        || t.contains(": ")
        || t.contains(":\t")
        || t.ends_with(':')
}
