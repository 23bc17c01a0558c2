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

/// An entry runs through intercept when its command is intercept (or the npm package of
/// it) and its arguments hold a policy and a server.
fn is_wrapped(obj: &Map<String, Value>) -> bool {
    let Some(command) = obj.get("command").and_then(Value::as_str) else {
        return false;
    };
    let args = strings(obj.get("args"));
    let base = std::path::Path::new(command)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let runs_intercept = base == "intercept"
        || args
            .iter()
            .take_while(|a| a.as_str() != "--")
            .any(|a| a.starts_with("@policylayer/intercept"));
    runs_intercept
        && args.iter().any(|a| a == "-c" || a == "--config")
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
            for h in headers {
                args.push(json!("--header"));
                args.push(json!(h));
            }
            for (k, v) in obj {
                match k.as_str() {
                    // The client now starts intercept, which speaks HTTP to the server.
                    "url" | "serverUrl" | "headers" => {}
                    "type" => {
                        out.insert(k.clone(), json!("stdio"));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            out.insert("command".into(), json!(launcher[0]));
        }
        _ => return None,
    }
    out.insert("args".into(), Value::Array(args));
    Some(Value::Object(out))
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
        let mut headers = Map::new();
        let mut j = i + 2;
        while j + 1 < args.len() && is(&args[j], "--header") {
            if let Some((k, v)) = args[j + 1].as_str().and_then(|h| h.split_once(':')) {
                headers.insert(k.trim().to_string(), json!(v.trim()));
            }
            j += 2;
        }
        for (k, v) in obj {
            if !matches!(k.as_str(), "command" | "args") {
                out.insert(k.clone(), v.clone());
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
    fn remote_entries_become_upstream_commands() {
        let entry = json!({"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t"}});
        let wrapped = wrap(&entry, &launcher(), "/p/r.yaml").unwrap();
        assert_eq!(
            wrapped,
            json!({"type": "stdio", "command": "npx", "args": ["-y", "@policylayer/intercept", "-c", "/p/r.yaml", "--upstream", "https://mcp.example.com/mcp", "--header", "Authorization: Bearer t"]})
        );
        assert_eq!(kind(&wrapped), Kind::Wrapped);
        let back = unwrap(&wrapped).unwrap();
        assert_eq!(back["url"], "https://mcp.example.com/mcp");
        assert_eq!(back["headers"]["Authorization"], "Bearer t");
        let windsurf = json!({"serverUrl": "https://w/mcp"});
        assert!(matches!(kind(&windsurf), Kind::Remote { .. }));
    }
}
