//! A server's source: the command it is started with, or the URL it is reached at, with
//! what each takes from intercept's environment.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

use reqwest::header::{HeaderName, HeaderValue};

use super::decode::{Loader, key_pos, misspelt};
use super::{CommandSource, Secret, Source, UrlSource};
use crate::policy::decode::{Decoder, Spanned, describe, join};
use crate::policy::yaml::{Kind, Node, Pos};

/// Keys that only mean something for a server started as a command, and for a URL server.
pub(super) const COMMAND_KEYS: &[&str] = &["args", "env", "env_from"];
pub(super) const URL_KEYS: &[&str] = &["headers", "headers_from_env"];

/// A server's keys as written, before they are checked together.
#[derive(Default)]
pub(super) struct Fields<'n> {
    pub(super) command: Option<&'n Node>,
    pub(super) url: Option<&'n Node>,
    pub(super) policy: Option<&'n Node>,
    /// Every key written, with its value, for the checks that span keys.
    pub(super) written: Vec<(&'n str, &'n Node)>,
}

impl Loader<'_> {
    pub(super) fn source(
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
            Some(c) if !c.value.trim().is_empty() => Some(c.value.trim().to_string()),
            // A list or a mapping has had its error from `string`.
            _ if !node.is_scalar() => None,
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
