//! Gateway file text → [`GatewayConfig`], every error collected with its position.
//!
//! The shape is checked with the policy decoder's primitives (strict mappings with
//! did-you-mean, duplicate keys, types), so both files speak the same language of errors.
//! An inline policy is decoded and compiled by the policy loader itself, from the same
//! tree: its errors carry lines and columns of the gateway file.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::{
    CommandSource, ConfigError, EnvLookup, GatewayConfig, GatewayError, Listen, PolicyOrigin,
    Secret, Server, ServerPolicy, Source, UrlSource,
};
use crate::policy::decode::{Decoder, Spanned, describe, join};
use crate::policy::yaml::{self, Kind, Node, Pos};
use crate::policy::{self, LoadError, PolicyError, limits};

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
/// Keys that only mean something for a server started as a command, and for a URL server.
pub(super) const COMMAND_KEYS: &[&str] = &["args", "env", "env_from"];
pub(super) const URL_KEYS: &[&str] = &["headers", "headers_from_env"];

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

struct Loader<'a> {
    /// Relative policy paths are read from here: the gateway file's directory.
    base: PathBuf,
    env: EnvLookup<'a>,
    /// Each policy file named, read once however many servers name it.
    files: HashMap<PathBuf, Option<ServerPolicy>>,
    /// Errors inside policy files, in the order the files were first named.
    file_errors: Vec<ConfigError>,
}

/// A server's keys as written, before they are checked together.
#[derive(Default)]
struct Fields<'n> {
    command: Option<&'n Node>,
    url: Option<&'n Node>,
    policy: Option<&'n Node>,
    /// Every key written, with its value, for the checks that span keys.
    written: Vec<(&'n str, &'n Node)>,
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

    fn source(
        &mut self,
        d: &mut Decoder<'_>,
        node: &Node,
        at: Pos,
        path: &str,
        fields: &Fields<'_>,
    ) -> Option<Source> {
        let (kind, misplaced) = match (fields.command, fields.url) {
            (Some(_), Some(url)) => {
                d.error(
                    url.pos,
                    path,
                    "a server has either `command` (a program intercept starts) or `url` (a remote server), not both",
                );
                return None;
            }
            (None, None) => {
                // A misspelt `command:` or `url:` has had its did-you-mean already.
                if !misspelt(node, &["command", "url"]) {
                    d.error(
                        at,
                        path,
                        "the server needs `command` (a program intercept starts) or `url` (a remote server)",
                    );
                }
                return None;
            }
            (Some(_), None) => ("command", URL_KEYS),
            (None, Some(_)) => ("url", COMMAND_KEYS),
        };
        let mut ok = true;
        for (key, value) in &fields.written {
            if misplaced.contains(key) {
                ok = false;
                d.error(
                    key_pos(node, value),
                    path,
                    format!(
                        "\"{key}\" is for servers with {}, and this one has `{kind}`",
                        if kind == "command" {
                            "`url`"
                        } else {
                            "`command`"
                        }
                    ),
                );
            }
        }
        let source = if kind == "command" {
            self.command(d, path, fields).map(Source::Command)
        } else {
            self.url(d, path, fields).map(Source::Url)
        };
        source.filter(|_| ok)
    }

    fn command(
        &mut self,
        d: &mut Decoder<'_>,
        path: &str,
        fields: &Fields<'_>,
    ) -> Option<CommandSource> {
        let before = d.errors.len();
        let node = fields.command?;
        let command = match d.string(node, &join(path, "command")) {
            Some(c) if !c.value.trim().is_empty() => Some(c.value),
            Some(_) | None if matches!(node.kind, Kind::Seq(_) | Kind::Map(_)) => None,
            _ => {
                d.error(
                    node.pos,
                    &join(path, "command"),
                    "the command is empty: name the program to start, e.g. `command: npx`",
                );
                None
            }
        };
        let mut args = Vec::new();
        let mut env: BTreeMap<String, Secret> = BTreeMap::new();
        let mut env_keys: HashMap<String, usize> = HashMap::new();
        for (key, value) in &fields.written {
            let field = join(path, key);
            match *key {
                "args" => {
                    if let Kind::Map(_) = value.kind {
                        d.error(
                            value.pos,
                            &field,
                            "value must be a list of arguments, got a mapping",
                        );
                    } else if value.is_scalar() && !matches!(value.kind, Kind::Null) {
                        d.error(
                            value.pos,
                            &field,
                            format!(
                                "value must be a list of arguments, got {}: write one argument per item, e.g. [-y, my-server]",
                                describe(value)
                            ),
                        );
                    } else {
                        args = d
                            .string_list(value, &field)
                            .into_iter()
                            .map(|a| a.value)
                            .collect();
                    }
                }
                "env" => {
                    for (name, v) in string_map(d, value, &field) {
                        if check_child_var(d, &name, &field, &mut env_keys) {
                            env.insert(name.value, Secret::new(v.value));
                        }
                    }
                }
                "env_from" => {
                    for (name, host) in string_map(d, value, &field) {
                        let var_path = join(&field, &name.value);
                        let value = self.host_var(d, &host, &var_path);
                        if check_child_var(d, &name, &field, &mut env_keys)
                            && let Some(value) = value
                        {
                            env.insert(name.value, Secret::new(value));
                        }
                    }
                }
                _ => {}
            }
        }
        let command = command?;
        (d.errors.len() == before).then_some(CommandSource { command, args, env })
    }

    fn url(&mut self, d: &mut Decoder<'_>, path: &str, fields: &Fields<'_>) -> Option<UrlSource> {
        let before = d.errors.len();
        let node = fields.url?;
        let field = join(path, "url");
        let url = d.string(node, &field).and_then(|text| {
            match reqwest::Url::parse(text.value.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                Ok(url) => {
                    d.error(
                        text.pos,
                        &field,
                        format!(
                            "the scheme \"{}\" is not supported: a server URL starts with http:// or https://",
                            url.scheme()
                        ),
                    );
                    None
                }
                // The URL itself is not repeated: it may hold a credential.
                Err(e) => {
                    d.error(
                        text.pos,
                        &field,
                        format!(
                            "not a valid URL ({e}): write the server's full address, e.g. https://mcp.example.com/mcp"
                        ),
                    );
                    None
                }
            }
        });
        if url.is_none() && matches!(node.kind, Kind::Null) {
            d.error(
                node.pos,
                &field,
                "the URL is empty: write the server's full address, e.g. https://mcp.example.com/mcp",
            );
        }
        let mut headers: Vec<(String, Secret)> = Vec::new();
        let mut seen: HashMap<HeaderName, usize> = HashMap::new();
        for (key, value) in &fields.written {
            let field = join(path, key);
            let from_env = match *key {
                "headers" => false,
                "headers_from_env" => true,
                _ => continue,
            };
            for (name, v) in string_map(d, value, &field) {
                let header_path = join(&field, &name.value);
                let Some(header) = check_header_name(d, &name, &field, &mut seen) else {
                    continue;
                };
                let value = if from_env {
                    self.host_var(d, &v, &header_path)
                } else {
                    Some(v.value.clone())
                };
                let Some(value) = value else { continue };
                let what = if from_env {
                    format!("the value of {}", v.value)
                } else {
                    "the value".to_string()
                };
                if value.trim().is_empty() {
                    d.error(
                        v.pos,
                        &header_path,
                        format!("{what} is empty: a header needs a value"),
                    );
                } else if HeaderValue::from_str(value.trim()).is_err() {
                    d.error(
                        v.pos,
                        &header_path,
                        format!(
                            "{what} has a line break or another character not allowed in a header (the value is not shown)"
                        ),
                    );
                } else {
                    headers.push((header, Secret::new(value.trim())));
                }
            }
        }
        let url = url?;
        (d.errors.len() == before).then_some(UrlSource { url, headers })
    }

    /// The value of the host variable named at `name`: unset, or not text, is an error there.
    fn host_var(
        &mut self,
        d: &mut Decoder<'_>,
        name: &Spanned<String>,
        path: &str,
    ) -> Option<String> {
        let var = name.value.trim();
        let valid = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            // Not repeated: it may be the secret itself, written where its variable's name goes.
            d.error(
                name.pos,
                path,
                "the value is not an environment variable name (letters, digits and _, e.g. API_TOKEN): name the variable that holds the value, and set that variable where intercept runs (the value is not shown)",
            );
            return None;
        }
        match (self.env)(var).map(OsString::into_string) {
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => {
                d.error(
                    name.pos,
                    path,
                    format!("the value of the environment variable {var} is not valid UTF-8"),
                );
                None
            }
            None => {
                d.error(
                    name.pos,
                    path,
                    format!(
                        "the environment variable {var} is not set: set it where intercept runs, or remove this entry"
                    ),
                );
                None
            }
        }
    }

    fn policy(
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
        if let Some(loaded) = self.files.get(&path) {
            return loaded.clone();
        }
        let loaded = match policy::load_file_hashed(&path) {
            Ok(loaded) => Some(ServerPolicy {
                origin: PolicyOrigin::File(path.clone()),
                policy: Arc::new(loaded.policy),
                sha256: loaded.sha256,
            }),
            Err(LoadError::Read { cause, .. }) => {
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
            Err(LoadError::Invalid { errors, .. }) => {
                self.file_errors.extend(
                    errors
                        .into_iter()
                        .map(|e| ConfigError::from_policy(path.clone(), e)),
                );
                None
            }
        };
        self.files.insert(path, loaded.clone());
        loaded
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

/// A mapping of names to scalars (`env`, `headers`, `env_from`, `headers_from_env`), each
/// name with the position of its key.
fn string_map(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
) -> Vec<(Spanned<String>, Spanned<String>)> {
    if matches!(node.kind, Kind::Null) {
        return Vec::new();
    }
    let Some(entries) = d.mapping(node, path, &[]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in entries {
        let name = Spanned {
            value: name.to_string(),
            pos: key_pos(node, value),
        };
        let field = join(path, &name.value);
        match d.string(value, &field) {
            Some(v) => out.push((name, v)),
            None if matches!(value.kind, Kind::Null) => out.push((
                name,
                Spanned {
                    value: String::new(),
                    pos: value.pos,
                },
            )),
            None => {}
        }
    }
    out
}

/// A variable of the child's environment: a name the OS accepts, set once.
fn check_child_var(
    d: &mut Decoder<'_>,
    name: &Spanned<String>,
    field: &str,
    seen: &mut HashMap<String, usize>,
) -> bool {
    if name.value.is_empty() || name.value.contains(['=', '\0']) {
        d.error(
            name.pos,
            field,
            format!(
                "\"{}\" is not an environment variable name: it must not be empty or hold \"=\"",
                name.value
            ),
        );
        return false;
    }
    if let Some(line) = seen.get(&name.value) {
        d.error(
            name.pos,
            field,
            format!(
                "the variable {} is already set on line {line}: set it in `env` or in `env_from`, once",
                name.value
            ),
        );
        return false;
    }
    seen.insert(name.value.clone(), name.pos.line);
    true
}

/// A header's name: valid, and set once (header names are compared ignoring case).
fn check_header_name(
    d: &mut Decoder<'_>,
    name: &Spanned<String>,
    field: &str,
    seen: &mut HashMap<HeaderName, usize>,
) -> Option<String> {
    let Ok(header) = HeaderName::from_bytes(name.value.trim().as_bytes()) else {
        d.error(
            name.pos,
            field,
            format!(
                "\"{}\" is not a header name: letters, digits and -, e.g. Authorization",
                name.value
            ),
        );
        return None;
    };
    if let Some(line) = seen.get(&header) {
        d.error(
            name.pos,
            field,
            format!(
                "the header {} is already set on line {line}: set it in `headers` or in `headers_from_env`, once",
                name.value
            ),
        );
        return None;
    }
    seen.insert(header, name.pos.line);
    Some(name.value.trim().to_string())
}

/// Whether `map` has a key that is not one of [`SERVER_KEYS`] but a likely typo of one of
/// `wanted`.
fn misspelt(map: &Node, wanted: &[&str]) -> bool {
    let Kind::Map(pairs) = &map.kind else {
        return false;
    };
    pairs.iter().any(|(k, _)| {
        !SERVER_KEYS.contains(&k.text.as_str())
            && policy::suggest(&k.text, SERVER_KEYS).is_some_and(|s| wanted.contains(&s))
    })
}

/// Where the key of `value` is written in `map` (the decoder hands out values only).
fn key_pos(map: &Node, value: &Node) -> Pos {
    match &map.kind {
        Kind::Map(pairs) => pairs
            .iter()
            .find(|(_, v)| std::ptr::eq(v, value))
            .map_or(value.pos, |(k, _)| k.pos),
        _ => value.pos,
    }
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
