//! Gateway file text → [`GatewayConfig`], every error collected with its position.
//!
//! The shape is checked with the policy decoder's primitives (strict mappings with
//! did-you-mean, duplicate keys, types), so both files speak the same language of errors.
//! An inline policy is decoded and compiled by the policy loader itself, from the same
//! tree: its errors carry lines and columns of the gateway file.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::server_policy::PolicyFile;
use super::source::Fields;
use super::{ConfigError, EnvLookup, GatewayConfig, GatewayError, Listen, Server};
use crate::policy::decode::{Decoder, join};
use crate::policy::yaml::{self, Kind, Node, Pos};
use crate::policy::{self, PolicyError, limits};

pub(super) const TOP_KEYS: &[&str] = &["version", "description", "listen", "servers"];
pub(super) const LISTEN_KEYS: &[&str] = &["bind", "port"];
pub(super) const SERVER_KEYS: &[&str] = &[
    "description",
    "command",
    "args",
    "env",
    "env_from",
    "url",
    "headers",
    "headers_from_env",
    "policy",
];
/// The longest server name: it is a path segment, and a log field.
pub const MAX_NAME_LEN: usize = 64;

pub(super) fn too_large(file: &Path) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        path: String::new(),
        message: format!(
            "the gateway file is larger than {} bytes (8 MiB), the most it may hold",
            limits::MAX_POLICY_BYTES
        ),
        line: 1,
        column: 1,
    }
}

pub(super) fn parse(
    text: &str,
    file: &Path,
    env: EnvLookup<'_>,
) -> Result<GatewayConfig, GatewayError> {
    let mut own = Vec::new();
    let mut loader = Loader {
        base: file.parent().unwrap_or(Path::new("")).to_path_buf(),
        env,
        files: HashMap::new(),
        file_errors: Vec::new(),
    };
    let config = match yaml::parse_as(text, "gateway file") {
        Ok(root) => loader.gateway(&root, file, &mut own),
        Err(e) => {
            own.push(PolicyError {
                message: e.message,
                path: String::new(),
                line: e.pos.line,
                column: e.pos.column,
            });
            None
        }
    };
    own.sort_by_key(|e| (e.line, e.column));
    let mut errors: Vec<ConfigError> = own
        .into_iter()
        .map(|e| ConfigError::from_policy(file.to_path_buf(), e))
        .collect();
    errors.append(&mut loader.file_errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(GatewayError::Invalid { errors }),
    }
}

pub(super) struct Loader<'a> {
    /// Relative policy paths are read from here: the gateway file's directory.
    pub(super) base: PathBuf,
    pub(super) env: EnvLookup<'a>,
    /// Each policy file named, read once however many servers name it.
    pub(super) files: HashMap<PathBuf, PolicyFile>,
    /// Errors inside policy files, in the order the files were first named.
    pub(super) file_errors: Vec<ConfigError>,
}

impl Loader<'_> {
    fn gateway(
        &mut self,
        root: &Node,
        file: &Path,
        errors: &mut Vec<PolicyError>,
    ) -> Option<GatewayConfig> {
        let mut d = Decoder { errors };
        match root.kind {
            Kind::Map(_) => {}
            Kind::Null => {
                d.error(
                    root.pos,
                    "",
                    "the gateway file is empty: list the servers under `servers:` (see docs/gateway-file.md)",
                );
                return None;
            }
            _ => {
                d.error(
                    root.pos,
                    "",
                    format!(
                        "the gateway file must be a mapping (with a `servers:` key), got {}",
                        root.type_name()
                    ),
                );
                return None;
            }
        }
        let entries = d.mapping(root, "", TOP_KEYS)?;
        let mut listen = Listen::default();
        let mut servers = None;
        for (key, value) in entries {
            match key {
                "version" => {
                    if let Some(v) = d.string(value, "version")
                        && v.value != "1"
                    {
                        d.error(
                            v.pos,
                            "version",
                            format!(
                                "unknown gateway file version \"{}\": this intercept reads version \"1\"",
                                v.value
                            ),
                        );
                    }
                }
                "description" => {
                    d.string(value, "description");
                }
                "listen" => listen = listen_section(&mut d, value),
                "servers" => servers = Some(self.servers(&mut d, value)),
                _ => unreachable!("mapping() only yields known keys"),
            }
        }
        let Some(servers) = servers else {
            d.error(
                root.pos,
                "",
                "the gateway file has no `servers:` key: list at least one server under it",
            );
            return None;
        };
        Some(GatewayConfig {
            file: file.to_path_buf(),
            listen,
            servers,
        })
    }

    fn servers(&mut self, d: &mut Decoder<'_>, node: &Node) -> BTreeMap<String, Server> {
        let mut out = BTreeMap::new();
        if matches!(node.kind, Kind::Null) || matches!(&node.kind, Kind::Map(p) if p.is_empty()) {
            d.error(
                node.pos,
                "servers",
                "no server is listed: give each a name, a `command` or a `url`, and a `policy`",
            );
            return out;
        }
        let Some(entries) = d.mapping(node, "servers", &[]) else {
            return out;
        };
        for (name, value) in entries {
            let path = join("servers", name);
            let at = key_pos(node, value);
            let name_ok = check_name(d, name, at, &path);
            if let Some(server) = self.server(d, value, at, &path)
                && name_ok
            {
                out.insert(name.to_string(), server);
            }
        }
        out
    }

    /// One server; `at` is where its name is written, for errors about the server as a whole.
    fn server(&mut self, d: &mut Decoder<'_>, node: &Node, at: Pos, path: &str) -> Option<Server> {
        if matches!(node.kind, Kind::Null) {
            d.error(
                at,
                path,
                "the server is empty: give it a `command` or a `url`, and a `policy`",
            );
            return None;
        }
        let entries = d.mapping(node, path, SERVER_KEYS)?;
        let mut fields = Fields::default();
        for (key, value) in entries {
            match key {
                "command" => fields.command = Some(value),
                "url" => fields.url = Some(value),
                "policy" => fields.policy = Some(value),
                "description" => {
                    d.string(value, &join(path, "description"));
                }
                _ => {}
            }
            fields.written.push((key, value));
        }
        let source = self.source(d, node, at, path, &fields);
        let policy = self.policy(d, node, at, path, fields.policy);
        Some(Server {
            source: source?,
            policy: policy?,
        })
    }
}

fn listen_section(d: &mut Decoder<'_>, node: &Node) -> Listen {
    let mut listen = Listen::default();
    if matches!(node.kind, Kind::Null) {
        return listen;
    }
    let Some(entries) = d.mapping(node, "listen", LISTEN_KEYS) else {
        return listen;
    };
    for (key, value) in entries {
        let field = join("listen", key);
        match key {
            "bind" => {
                if let Some(text) = d.string(value, &field) {
                    match text.value.trim().parse::<IpAddr>() {
                        Ok(ip) => listen.bind = Some(ip),
                        Err(_) => d.error(
                            text.pos,
                            &field,
                            format!(
                                "\"{}\" is not an IP address: write one such as 127.0.0.1, ::1 or 0.0.0.0 (names are not resolved)",
                                text.value
                            ),
                        ),
                    }
                }
            }
            "port" => {
                if let Some(port) = d.integer(value, &field) {
                    match u16::try_from(port.value) {
                        Ok(p) if p > 0 => listen.port = Some(p),
                        _ => d.error(
                            port.pos,
                            &field,
                            format!(
                                "{} is not a port: write a number from 1 to 65535",
                                port.value
                            ),
                        ),
                    }
                }
            }
            _ => unreachable!("mapping() only yields known keys"),
        }
    }
    listen
}

/// A server name is a path segment of its own: `/servers/<name>/mcp`.
fn check_name(d: &mut Decoder<'_>, name: &str, pos: Pos, path: &str) -> bool {
    let valid = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        return true;
    }
    let why = if name.len() > MAX_NAME_LEN {
        format!("it is longer than {MAX_NAME_LEN} characters")
    } else {
        "a name is lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit"
            .to_string()
    };
    let hint = match slug(name) {
        Some(s) if s != name => format!(", e.g. \"{s}\""),
        _ => String::new(),
    };
    d.error(
        pos,
        path,
        format!(
            "\"{name}\" cannot be a server name: {why} (it is the <name> of the path /servers/<name>/mcp){hint}"
        ),
    );
    false
}

/// A valid name close to an invalid one: lowercased, other characters turned into "-".
fn slug(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out
        .trim_end_matches('-')
        .chars()
        .take(MAX_NAME_LEN)
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Whether `map` has a key that is not one of [`SERVER_KEYS`] but a likely typo of one of
/// `wanted`.
pub(super) fn misspelt(map: &Node, wanted: &[&str]) -> bool {
    let Kind::Map(pairs) = &map.kind else {
        return false;
    };
    pairs.iter().any(|(k, _)| {
        !SERVER_KEYS.contains(&k.text.as_str())
            && policy::suggest(&k.text, SERVER_KEYS).is_some_and(|s| wanted.contains(&s))
    })
}

/// Where the key of `value` is written in `map` (the decoder hands out values only).
pub(super) fn key_pos(map: &Node, value: &Node) -> Pos {
    match &map.kind {
        Kind::Map(pairs) => pairs
            .iter()
            .find(|(_, v)| std::ptr::eq(v, value))
            .map_or(value.pos, |(k, _)| k.pos),
        _ => value.pos,
    }
}
