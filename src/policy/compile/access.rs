//! Who may see and call what: hide lists, identities and grants.

use std::collections::HashSet;

use super::super::decode::{RawPolicy, Spanned, join, suggest};
use super::super::model::*;
use super::super::names::{self, NamePattern};
use super::Compiler;

impl Compiler<'_> {
    pub(super) fn name_set(&mut self, names: &[Spanned<String>], path: &str) -> NameSet {
        let mut set = NameSet::default();
        let mut seen = HashSet::new();
        for (i, name) in names.iter().enumerate() {
            let n = name.value.trim();
            if n.is_empty() {
                self.d
                    .error(name.pos, &format!("{path}[{i}]"), "entry must not be empty");
                continue;
            }
            if !seen.insert(name.value.as_str()) {
                self.d.error(
                    name.pos,
                    path,
                    format!("duplicate entry \"{}\"", name.value),
                );
                continue;
            }
            match names::parse(n) {
                Ok(NamePattern::All) => set.all = true,
                Ok(NamePattern::Glob(glob)) => set.globs.push(glob),
                // An exact entry keeps the spaces around it, as a tool name would.
                Ok(NamePattern::Exact(trimmed)) => {
                    let exact = match names::parse(&name.value) {
                        Ok(NamePattern::Exact(whole)) => whole,
                        _ => trimmed,
                    };
                    set.exact.insert(exact);
                }
                Err(e) => self
                    .d
                    .error(name.pos, &format!("{path}[{i}]"), e.to_string()),
            }
        }
        set
    }

    pub(super) fn identities(&mut self, raw: &RawPolicy) -> Vec<Identity> {
        let mut out = Vec::new();
        for id in &raw.identities {
            let path = join("identities", &id.name.value);
            let token = match (&id.token_env, &id.token_sha256) {
                (Some(env), Some(_)) => {
                    self.d
                        .error(env.pos, &path, "set only one of token_env and token_sha256");
                    continue;
                }
                (Some(env), None) => IdentityToken::Env(env.value.clone()),
                (None, Some(hash)) => {
                    let h = hash.value.to_ascii_lowercase();
                    if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                        self.d.error(
                            hash.pos,
                            &join(&path, "token_sha256"),
                            "token_sha256 must be 64 hexadecimal characters (the SHA-256 of the token)",
                        );
                        continue;
                    }
                    IdentityToken::Sha256(h)
                }
                (None, None) => IdentityToken::None,
            };
            out.push(Identity {
                name: id.name.value.clone(),
                token,
            });
        }
        out
    }

    pub(super) fn grants(&mut self, raw: &RawPolicy, identities: &[Identity]) -> Option<Grants> {
        if raw.grants.is_empty() {
            return None;
        }
        let known: Vec<&str> = identities.iter().map(|i| i.name.as_str()).collect();
        let mut grants = Grants::default();
        for g in &raw.grants {
            let name = g.identity.value.as_str();
            let path = join("grants", name);
            if name != "*" && !raw.identities.is_empty() && !known.contains(&name) {
                let hint = suggest(name, &known)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                self.d.error(
                    g.identity.pos,
                    "grants",
                    format!("grant for unknown identity \"{name}\"{hint}"),
                );
                continue;
            }
            let tools = match &g.tools {
                Some(t) => self.name_set(t, &join(&path, "tools")),
                None => {
                    self.d.error(
                        g.identity.pos,
                        &path,
                        "a grant must list its tools (tools: [..], or \"*\" for every tool)",
                    );
                    continue;
                }
            };
            let grant = Grant {
                tools,
                hide: self.name_set(&g.hide, &join(&path, "hide")),
            };
            if name == "*" {
                grants.fallback = Some(grant);
            } else {
                grants.by_identity.insert(name.to_string(), grant);
            }
        }
        Some(grants)
    }
}
