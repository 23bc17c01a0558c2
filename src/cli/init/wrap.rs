//! Rewriting one server entry so that it runs through intercept, and recognising one that
//! already does.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::launcher::PACKAGE;
use crate::redact::REDACTED;
use crate::scan::Target;

/// What an entry starts, as far as intercept is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `command` + `args` (+ `env`).
    Stdio {
        command: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// `url` (or Windsurf's `serverUrl`) + `headers`.
    Remote { url: String, headers: Vec<String> },
    /// Already runs through intercept.
    Wrapped,
    /// Something else (disabled, or a shape this version does not know).
    Unknown,
}

pub fn kind(entry: &Value) -> Kind {
    let Some(obj) = entry.as_object() else {
        return Kind::Unknown;
    };
    if is_wrapped(obj) {
        return Kind::Wrapped;
    }
    if let Some(command) = obj.get("command").and_then(Value::as_str) {
        let mut words = vec![command.to_string()];
        words.extend(strings(obj.get("args")));
        let env = obj
            .get("env")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        return Kind::Stdio {
            command: words,
            env,
        };
    }
    if let Some(url) = obj
        .get("url")
        .or_else(|| obj.get("serverUrl"))
        .and_then(Value::as_str)
    {
        let headers = obj
            .get("headers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}: {v}")))
                    .collect()
            })
            .unwrap_or_default();
        return Kind::Remote {
            url: url.to_string(),
            headers,
        };
    }
    Kind::Unknown
}

impl Kind {
    pub fn target(&self) -> Option<(Target, Vec<(String, String)>)> {
        match self {
            Kind::Stdio { command, env } => Some((Target::Command(command.clone()), env.clone())),
            Kind::Remote { url, headers } => Some((
                Target::Url {
                    url: url.clone(),
                    headers: headers.clone(),
                },
                Vec::new(),
            )),
            _ => None,
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An entry runs through intercept when its command is intercept (the native executable,
/// `node …/bin/intercept.js` or the npm package through npx) and its arguments hold a
/// policy and a server.
fn is_wrapped(obj: &Map<String, Value>) -> bool {
    let Some(command) = obj.get("command").and_then(Value::as_str) else {
        return false;
    };
    let args = strings(obj.get("args"));
    // Windows paths too, whatever this machine is: configs travel.
    let base = |s: &str| {
        s.rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let own = args
        .iter()
        .take_while(|a| a.as_str() != "--" && a.as_str() != "--upstream");
    let runs_intercept = matches!(base(command).as_str(), "intercept" | "intercept.exe")
        || own.clone().any(|a| is_package_spec(a))
        || own.take(1).any(|a| base(a) == "intercept.js");
    runs_intercept
        && args
            .iter()
            .any(|a| a == "-c" || a == "--config" || a == "--policy")
        && args.iter().any(|a| a == "--" || a == "--upstream")
}

/// A wrapped entry brought up to date, if it needs it: a stale way of starting intercept is
/// replaced by `launcher` ([`relaunch`]), and headers given with `--header` move into the
/// entry's `env` ([`headers_to_env`]). `exists` tells whether a path exists (a seam for
/// tests).
pub fn refresh(entry: &Value, launcher: &[String], exists: &dyn Fn(&str) -> bool) -> Option<Value> {
    let obj = entry.as_object()?;
    if !is_wrapped(obj) {
        return None;
    }
    let relaunched = relaunch(obj, launcher, exists);
    let moved = headers_to_env(relaunched.as_ref().unwrap_or(obj));
    moved.or(relaunched).map(Value::Object)
}

/// The words that start intercept and are not intercept's own: `npx -y
/// @policylayer/intercept@1.2.3`, `node …/bin/intercept.js`, or the executable alone.
/// Only words before the server's (`--`) are looked at: a server's own arguments may name
/// any package.
fn launcher_words(args: &[&str]) -> usize {
    let own = args
        .iter()
        .take_while(|a| **a != "--" && **a != "--upstream")
        .copied();
    if let Some(i) = own.clone().position(is_package_spec) {
        i + 1
    } else if own.take(1).any(|a| a.ends_with("intercept.js")) {
        1
    } else {
        0
    }
}

/// `@policylayer/intercept`, with or without a version (not another package of the scope).
fn is_package_spec(word: &str) -> bool {
    word == PACKAGE || word.starts_with(&format!("{PACKAGE}@"))
}

/// The entry started by `launcher` instead, when the way it starts intercept is stale: a
/// version-less `npx -y @policylayer/intercept` (or a tag), which fetches whatever is
/// latest at every start, as earlier versions of init wrote it; or an absolute path that
/// no longer exists, intercept having been reinstalled elsewhere.
fn relaunch(
    obj: &Map<String, Value>,
    launcher: &[String],
    exists: &dyn Fn(&str) -> bool,
) -> Option<Map<String, Value>> {
    let command = obj.get("command")?.as_str()?;
    let args = obj.get("args")?.as_array()?;
    let words: Vec<&str> = args.iter().map(|a| a.as_str().unwrap_or("")).collect();
    let own = launcher_words(&words);
    let gone = |p: &str| (Path::new(p).is_absolute() || p.starts_with('/')) && !exists(p);
    let stale = match words[..own].last() {
        Some(spec) if is_package_spec(spec) => !spec
            .strip_prefix(PACKAGE)
            .and_then(|v| v.strip_prefix('@'))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
        _ => std::iter::once(command)
            .chain(words[..own].iter().copied())
            .any(gone),
    };
    let current: Vec<&str> = std::iter::once(command)
        .chain(words[..own].iter().copied())
        .collect();
    if !stale || current == launcher.iter().map(String::as_str).collect::<Vec<_>>() {
        return None;
    }
    let mut out = obj.clone();
    out.insert("command".into(), json!(launcher[0]));
    let new_args = launcher[1..]
        .iter()
        .map(|s| json!(s))
        .chain(args[own..].iter().cloned())
        .collect();
    out.insert("args".into(), Value::Array(new_args));
    Some(out)
}

/// The entry with each `--header LINE` of intercept's own arguments (a URL entry wrapped by
/// an earlier version of init) replaced by `--header-env NAME`, the line going into `env`,
/// out of the process list. None when there is none.
fn headers_to_env(obj: &Map<String, Value>) -> Option<Map<String, Value>> {
    let args = obj.get("args")?.as_array()?;
    // Intercept's own arguments end where the server's begin.
    let end = args
        .iter()
        .position(|a| a.as_str() == Some("--"))
        .unwrap_or(args.len());
    let is = |v: &Value, s: &str| v.as_str() == Some(s);
    let own = &args[..end];
    if !(own.iter().any(|a| is(a, "--header")) && own.iter().any(|a| is(a, "--upstream"))) {
        return None;
    }
    let mut env = env_of(obj);
    let mut new_args = Vec::with_capacity(args.len());
    let mut rest = own.iter();
    while let Some(arg) = rest.next() {
        match rest.clone().next().and_then(Value::as_str) {
            Some(line) if is(arg, "--header") => {
                rest.next();
                new_args.extend(header_env_args([line], &mut env));
            }
            _ => new_args.push(arg.clone()),
        }
    }
    new_args.extend(args[end..].iter().cloned());
    let mut out = obj.clone();
    out.insert("args".into(), Value::Array(new_args));
    out.insert("env".into(), Value::Object(env));
    Some(out)
}

/// The entry's `env`, or an empty one.
fn env_of(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.get("env")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Puts each header line into `env` under a variable of its own and returns the arguments
/// that name them: `--header-env INTERCEPT_HEADER_<NAME>`. Headers often carry
/// credentials: the environment is readable by the process's owner only, arguments by
/// every user (`ps`).
fn header_env_args<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    env: &mut Map<String, Value>,
) -> Vec<Value> {
    let mut args = Vec::new();
    for line in lines {
        let name = header_variable(line, env);
        args.push(json!("--header-env"));
        args.push(json!(name));
        env.insert(name, json!(line));
    }
    args
}

/// The entry, rewritten to run through intercept with `policy`. Unrelated fields (`env`,
/// `cwd`, client-specific keys) are kept.
pub fn wrap(entry: &Value, launcher: &[String], policy: &str) -> Option<Value> {
    let obj = entry.as_object()?;
    let mut args: Vec<Value> = launcher[1..].iter().map(|s| json!(s)).collect();
    args.push(json!("-c"));
    args.push(json!(policy));
    let mut out = Map::new();
    match kind(entry) {
        Kind::Stdio { .. } => {
            args.push(json!("--"));
            args.push(obj.get("command")?.clone());
            args.extend(
                obj.get("args")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            for (k, v) in obj {
                match k.as_str() {
                    "command" => {
                        out.insert(k.clone(), json!(launcher[0]));
                    }
                    "args" => {}
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            if !out.contains_key("command") {
                out.insert("command".into(), json!(launcher[0]));
            }
        }
        Kind::Remote { url, headers } => {
            args.push(json!("--upstream"));
            args.push(json!(url));
            let mut env = env_of(obj);
            args.extend(header_env_args(
                headers.iter().map(String::as_str),
                &mut env,
            ));
            for (k, v) in obj {
                match k.as_str() {
                    // The client now starts intercept, which speaks HTTP to the server.
                    "url" | "serverUrl" | "headers" | "env" => {}
                    "type" => {
                        out.insert(k.clone(), json!("stdio"));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            out.insert("command".into(), json!(launcher[0]));
            out.insert("args".into(), Value::Array(args));
            if !env.is_empty() {
                out.insert("env".into(), Value::Object(env));
            }
            return Some(Value::Object(out));
        }
        _ => return None,
    }
    out.insert("args".into(), Value::Array(args));
    Some(Value::Object(out))
}

/// The environment variable that carries the header `line` to intercept: named after the
/// header (`Authorization` → `INTERCEPT_HEADER_AUTHORIZATION`), and not one the entry's
/// environment already has.
fn header_variable(line: &str, env: &Map<String, Value>) -> String {
    let header = line.split_once(':').map_or(line, |(name, _)| name).trim();
    let stem: String = header
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("INTERCEPT_HEADER_{stem}");
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                format!("{base}_{n}")
            }
        })
        .find(|name| !env.contains_key(name))
        .expect("an unused name")
}

/// The entry as it may be shown: every header value replaced by `[REDACTED]`, the header's
/// name kept, wherever the value is: in `headers`, after `--header` in intercept's own
/// arguments, or in the `env` variable a `--header-env` names.
pub fn masked(entry: &Value) -> Value {
    let Some(obj) = entry.as_object() else {
        return entry.clone();
    };
    let hide = |line: &str| match line.split_once(':') {
        Some((name, _)) => format!("{name}: {REDACTED}"),
        None => REDACTED.to_string(),
    };
    let mut out = obj.clone();
    if let Some(Value::Object(headers)) = out.get_mut("headers") {
        for value in headers.values_mut() {
            *value = json!(REDACTED);
        }
    }
    let mut named = Vec::new();
    if let Some(Value::Array(args)) = out.get_mut("args") {
        let end = args
            .iter()
            .position(|a| a.as_str() == Some("--"))
            .unwrap_or(args.len());
        for i in 1..end {
            match (args[i - 1].as_str(), args[i].as_str()) {
                (Some("--header"), Some(line)) => args[i] = json!(hide(line)),
                (Some("--header-env"), Some(name)) => named.push(name.to_string()),
                _ => {}
            }
        }
    }
    if let Some(Value::Object(env)) = out.get_mut("env") {
        for name in named {
            if let Some(Value::String(line)) = env.get(&name) {
                let hidden = hide(line);
                env.insert(name, json!(hidden));
            }
        }
    }
    Value::Object(out)
}

/// Undoes [`wrap`] from the entry alone, when the original is not on record.
pub fn unwrap(entry: &Value) -> Option<Value> {
    let obj = entry.as_object()?;
    if !is_wrapped(obj) {
        return None;
    }
    let args = obj.get("args")?.as_array()?;
    let is = |v: &Value, s: &str| v.as_str() == Some(s);
    let mut out = Map::new();
    if let Some(i) = args.iter().position(|a| is(a, "--")) {
        let command = args.get(i + 1)?.clone();
        let rest: Vec<Value> = args[i + 2..].to_vec();
        for (k, v) in obj {
            match k.as_str() {
                "command" => {
                    out.insert(k.clone(), command.clone());
                }
                "args" => {
                    out.insert(k.clone(), Value::Array(rest.clone()));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    } else {
        let i = args.iter().position(|a| is(a, "--upstream"))?;
        let url = args.get(i + 1)?.clone();
        let mut env = obj
            .get("env")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut headers = Map::new();
        let mut header = |line: &str| {
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_string(), json!(v.trim()));
            }
        };
        for pair in args[i + 2..].windows(2) {
            match (pair[0].as_str(), pair[1].as_str()) {
                (Some("--header"), Some(line)) => header(line),
                (Some("--header-env"), Some(name)) => {
                    if let Some(line) = env.remove(name) {
                        header(line.as_str().unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
        for (k, v) in obj {
            match k.as_str() {
                "command" | "args" => {}
                "env" if env.is_empty() => {}
                "env" => {
                    out.insert(k.clone(), Value::Object(env.clone()));
                }
                // The transport was replaced by stdio; the URL tells which it was.
                "type" => {
                    let sse = url
                        .as_str()
                        .is_some_and(|u| u.trim_end_matches('/').ends_with("/sse"));
                    out.insert(k.clone(), json!(if sse { "sse" } else { "http" }));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert("url".into(), url);
        if !headers.is_empty() {
            out.insert("headers".into(), Value::Object(headers));
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher() -> Vec<String> {
        vec!["npx".into(), "-y".into(), "@policylayer/intercept".into()]
    }

    #[test]
    fn stdio_entries_wrap_once_and_unwrap() {
        let entry = json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"T": "x"}});
        let wrapped = wrap(&entry, &launcher(), "/p/github.yaml").unwrap();
        assert_eq!(
            wrapped,
            json!({"command": "npx", "args": ["-y", "@policylayer/intercept", "-c", "/p/github.yaml", "--", "npx", "-y", "@modelcontextprotocol/server-github"], "env": {"T": "x"}})
        );
        assert_eq!(kind(&wrapped), Kind::Wrapped);
        assert_eq!(wrap(&wrapped, &launcher(), "/p/x.yaml").map(|_| ()), None);
        assert_eq!(unwrap(&wrapped).unwrap(), entry);
        let native = wrap(&entry, &["/usr/bin/intercept".to_string()], "/p/g.yaml").unwrap();
        assert_eq!(kind(&native), Kind::Wrapped);
    }

    #[test]
    fn remote_entries_become_upstream_commands_with_headers_in_env() {
        let entry = json!({"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t", "X-Api-Key": "k"}});
        let wrapped = wrap(&entry, &launcher(), "/p/r.yaml").unwrap();
        assert_eq!(
            wrapped,
            json!({
                "type": "stdio",
                "command": "npx",
                "args": ["-y", "@policylayer/intercept", "-c", "/p/r.yaml", "--upstream", "https://mcp.example.com/mcp",
                         "--header-env", "INTERCEPT_HEADER_AUTHORIZATION", "--header-env", "INTERCEPT_HEADER_X_API_KEY"],
                "env": {"INTERCEPT_HEADER_AUTHORIZATION": "Authorization: Bearer t", "INTERCEPT_HEADER_X_API_KEY": "X-Api-Key: k"}
            })
        );
        // No secret in the arguments.
        assert!(!wrapped["args"].to_string().contains("Bearer"));
        assert_eq!(kind(&wrapped), Kind::Wrapped);
        // Undone from the entry alone: headers back, the variables gone, the transport
        // named again.
        assert_eq!(
            unwrap(&wrapped).unwrap(),
            json!({"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t", "X-Api-Key": "k"}})
        );
        let windsurf = json!({"serverUrl": "https://w/sse"});
        assert!(matches!(kind(&windsurf), Kind::Remote { .. }));
        assert_eq!(
            unwrap(&wrap(&windsurf, &launcher(), "/p/w.yaml").unwrap()).unwrap(),
            json!({"url": "https://w/sse"})
        );
    }

    #[test]
    fn header_variables_do_not_clash_and_entries_of_older_versions_unwrap() {
        let entry = json!({"url": "https://h/mcp", "headers": {"X-A": "1", "X_A": "2"}, "env": {"INTERCEPT_HEADER_X_A_3": "mine"}});
        let wrapped = wrap(&entry, &["/bin/intercept".to_string()], "/p.yaml").unwrap();
        assert_eq!(
            wrapped["env"],
            json!({"INTERCEPT_HEADER_X_A_3": "mine", "INTERCEPT_HEADER_X_A": "X-A: 1", "INTERCEPT_HEADER_X_A_2": "X_A: 2"})
        );
        let back = unwrap(&wrapped).unwrap();
        assert_eq!(back["headers"], entry["headers"]);
        assert_eq!(back["env"], entry["env"]);
        // Written by an older init, with the header in the arguments.
        let old = json!({"command": "intercept", "args": ["-c", "/p.yaml", "--upstream", "https://h/mcp", "--header", "Authorization: Bearer t"]});
        assert_eq!(
            unwrap(&old).unwrap(),
            json!({"url": "https://h/mcp", "headers": {"Authorization": "Bearer t"}})
        );
    }

    #[test]
    fn a_stale_launcher_is_replaced_and_a_working_one_kept() {
        let native = ["/opt/intercept/intercept".to_string()];
        let exists = |p: &str| p.starts_with("/opt/");
        let tail = json!([
            "-c",
            "/p.yaml",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-github"
        ]);
        let with = |command: &str, launcher_args: &[&str]| {
            let mut args: Vec<Value> = launcher_args.iter().map(|a| json!(a)).collect();
            args.extend(tail.as_array().unwrap().iter().cloned());
            json!({"command": command, "args": args, "env": {"T": "x"}})
        };
        let expected =
            json!({"command": "/opt/intercept/intercept", "args": tail, "env": {"T": "x"}});
        // Version-less npx, as earlier versions of init wrote it, and @latest.
        for stale in [
            with("npx", &["-y", "@policylayer/intercept"]),
            with("npx", &["-y", "@policylayer/intercept@latest"]),
            // Gone: the old installation's executable, or its launcher script.
            with("/usr/lib/node_modules/x/intercept", &[]),
            with("/usr/bin/node", &["/old/checkout/bin/intercept.js"]),
        ] {
            assert_eq!(
                refresh(&stale, &native, &exists),
                Some(expected.clone()),
                "{stale}"
            );
        }
        for fine in [
            with("npx", &["-y", "@policylayer/intercept@1.2.3"]),
            with("intercept", &[]),
            with("/opt/elsewhere/intercept", &[]),
            json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}),
            expected,
        ] {
            assert_eq!(refresh(&fine, &native, &exists), None, "{fine}");
        }
        // The exact-version npx form replaces a version-less one too.
        let npx: Vec<String> = ["npx", "-y", "@policylayer/intercept@1.2.3"]
            .map(String::from)
            .to_vec();
        let updated = refresh(
            &with("npx", &["-y", "@policylayer/intercept"]),
            &npx,
            &exists,
        )
        .unwrap();
        assert_eq!(updated["args"][1], "@policylayer/intercept@1.2.3");
        assert_eq!(updated["args"][2], "-c");
    }

    #[test]
    fn headers_in_the_arguments_of_an_older_wrap_move_to_env() {
        let native = ["/opt/intercept".to_string()];
        let exists = |_: &str| true;
        let old = json!({"type": "stdio", "command": "/opt/intercept", "args": ["-c", "/p.yaml", "--upstream", "https://h/mcp", "--header", "Authorization: Bearer t", "--header", "X-Tenant: a"]});
        let new = refresh(&old, &native, &exists).unwrap();
        assert_eq!(
            new,
            json!({"type": "stdio", "command": "/opt/intercept",
                   "args": ["-c", "/p.yaml", "--upstream", "https://h/mcp", "--header-env", "INTERCEPT_HEADER_AUTHORIZATION", "--header-env", "INTERCEPT_HEADER_X_TENANT"],
                   "env": {"INTERCEPT_HEADER_AUTHORIZATION": "Authorization: Bearer t", "INTERCEPT_HEADER_X_TENANT": "X-Tenant: a"}})
        );
        assert_eq!(refresh(&new, &native, &exists), None);
        assert_eq!(
            unwrap(&new).unwrap()["headers"],
            json!({"Authorization": "Bearer t", "X-Tenant": "a"})
        );
        // Both at once: a version-less npx launcher replaced, and the header moved.
        let older = json!({"command": "npx", "args": ["-y", "@policylayer/intercept", "-c", "/p.yaml", "--upstream", "https://h/mcp", "--header", "Authorization: Bearer t"], "env": {"K": "v"}});
        assert_eq!(
            refresh(&older, &native, &exists).unwrap(),
            json!({"command": "/opt/intercept",
                   "args": ["-c", "/p.yaml", "--upstream", "https://h/mcp", "--header-env", "INTERCEPT_HEADER_AUTHORIZATION"],
                   "env": {"K": "v", "INTERCEPT_HEADER_AUTHORIZATION": "Authorization: Bearer t"}})
        );
        // A server's own --header, after --, is the server's.
        let stdio = json!({"command": "/opt/intercept", "args": ["-c", "/p.yaml", "--", "srv", "--upstream", "u", "--header", "A: b"]});
        assert_eq!(refresh(&stdio, &native, &exists), None);
    }

    #[test]
    fn a_servers_own_arguments_are_never_taken_for_the_launcher() {
        let native = ["/usr/bin/intercept".to_string()];
        let exists = |_: &str| false;
        // The server is an npm package of the same scope: its name, after `--`, is the
        // server's, not a launcher to replace.
        let entry = json!({"command": "/opt/intercept", "args": ["-c", "/outer.yaml", "--", "npx", "-y", "@policylayer/intercept-mcp-demo", "--flag"]});
        assert_eq!(
            refresh(&entry, &native, &exists),
            Some(
                json!({"command": "/usr/bin/intercept", "args": ["-c", "/outer.yaml", "--", "npx", "-y", "@policylayer/intercept-mcp-demo", "--flag"]})
            )
        );
        let exists = |_: &str| true;
        assert_eq!(refresh(&entry, &native, &exists), None);
        // Nor is another package of the scope before `--` a launcher of intercept.
        let other = json!({"command": "npx", "args": ["-y", "@policylayer/intercept-tools", "-c", "p", "--", "x"]});
        assert!(matches!(kind(&other), Kind::Stdio { .. }));
        assert_eq!(refresh(&other, &native, &exists), None);
    }

    #[test]
    fn header_values_are_masked_wherever_they_are() {
        let remote = json!({"url": "https://h/mcp", "headers": {"Authorization": "Bearer s3cret", "X-Tenant": "acme"}, "env": {"KEEP": "1"}});
        assert_eq!(
            masked(&remote),
            json!({"url": "https://h/mcp", "headers": {"Authorization": "[REDACTED]", "X-Tenant": "[REDACTED]"}, "env": {"KEEP": "1"}})
        );
        let wrapped = wrap(&remote, &["/bin/intercept".to_string()], "/p.yaml").unwrap();
        let shown = masked(&wrapped);
        assert_eq!(
            shown["env"],
            json!({"KEEP": "1", "INTERCEPT_HEADER_AUTHORIZATION": "Authorization: [REDACTED]", "INTERCEPT_HEADER_X_TENANT": "X-Tenant: [REDACTED]"})
        );
        assert_eq!(shown["args"], wrapped["args"]);
        let older = json!({"command": "intercept", "args": ["-c", "/p.yaml", "--upstream", "https://h/mcp", "--header", "Authorization: Bearer s3cret"]});
        assert_eq!(
            masked(&older)["args"][5],
            json!("Authorization: [REDACTED]")
        );
        // A server's own arguments and variables are not headers.
        let stdio = json!({"command": "intercept", "args": ["-c", "p", "--", "srv", "--header", "A: b"], "env": {"A": "b"}});
        assert_eq!(masked(&stdio), stdio);
    }

    #[test]
    fn every_launcher_form_is_recognised() {
        for command in [
            json!({"command": "/opt/node_modules/@policylayer/intercept-linux-x64-gnu/intercept", "args": ["-c", "p", "--", "x"]}),
            json!({"command": "C:\\tools\\intercept.exe", "args": ["--config", "p", "--", "x"]}),
            json!({"command": "/usr/bin/node", "args": ["/src/intercept/bin/intercept.js", "-c", "p", "--upstream", "u"]}),
            json!({"command": "npx", "args": ["-y", "@policylayer/intercept@1.2.3", "--policy", "p", "--", "x"]}),
        ] {
            assert_eq!(kind(&command), Kind::Wrapped, "{command}");
        }
        // A server that merely takes similar arguments is not intercept.
        let other =
            json!({"command": "node", "args": ["server.js", "-c", "p", "--", "intercept.js"]});
        assert!(matches!(kind(&other), Kind::Stdio { .. }));
    }
}
