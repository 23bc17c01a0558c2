//! Rewriting one server entry so that it runs through intercept, and recognising one that
//! already does.

use serde_json::{Map, Value, json};

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
        || own.clone().any(|a| a.starts_with("@policylayer/intercept"))
        || own.take(1).any(|a| base(a) == "intercept.js");
    runs_intercept
        && args
            .iter()
            .any(|a| a == "-c" || a == "--config" || a == "--policy")
        && args.iter().any(|a| a == "--" || a == "--upstream")
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
            // Headers often carry credentials: they go into the entry's environment, not
            // into arguments any user can read in the process list.
            let mut env = obj
                .get("env")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for line in &headers {
                let name = header_variable(line, &env);
                args.push(json!("--header-env"));
                args.push(json!(name));
                env.insert(name, json!(line));
            }
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
