//! The gateway file's JSON Schema, for editors and `intercept schema --gateway`
//! (shipped as `schema/gateway.schema.json`).
//!
//! As with the policy's schema, these types are never deserialized into: the decoder, which
//! reports every error with its position, is the only reader, and the tests keep the two in
//! step. An inline policy is described by the policy's own schema. What needs the
//! environment or other files (an unset variable, a policy file's content) is left to
//! `intercept validate --gateway`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use crate::policy::schema::{Policy, Text, Version, root_schema, schema_text};

/// The schema as a JSON value (draft-07).
pub fn gateway_schema() -> Value {
    root_schema::<Gateway>()
}

/// The schema as the text of `schema/gateway.schema.json`.
pub fn gateway_schema_text() -> String {
    schema_text(&gateway_schema())
}

/// An Intercept gateway file: the MCP servers one listener fronts, each at
/// /servers/<name>/mcp with its own policy. Check a file with `intercept validate --gateway
/// FILE`.
#[derive(JsonSchema)]
#[schemars(title = "Intercept gateway", deny_unknown_fields)]
#[allow(dead_code)]
struct Gateway {
    /// The gateway file version: "1" (also written 1). Optional.
    version: Option<Version>,
    /// Free text, for people.
    description: Option<Text>,
    /// Defaults for the listener; --bind and --port take precedence.
    listen: Option<Listen>,
    /// The servers by name. A name is lowercase letters, digits, "_" and "-", starting with a
    /// letter or digit, at most 64 characters: it is the <name> of /servers/<name>/mcp.
    #[schemars(schema_with = "servers")]
    servers: BTreeMap<String, Server>,
}

fn servers(generator: &mut SchemaGenerator) -> Schema {
    let server = generator.subschema_for::<Server>();
    json_schema!({
        "type": "object",
        "minProperties": 1,
        "propertyNames": { "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$" },
        "additionalProperties": server,
    })
}

/// Where the listener is, unless the command line says otherwise.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Listen {
    /// The IP address to listen on, e.g. 127.0.0.1 (the default), ::1 or 0.0.0.0.
    bind: Option<IpAddress>,
    /// The TCP port.
    #[schemars(range(min = 1, max = 65535))]
    port: Option<i64>,
}

/// One server: `command` (a program intercept starts, one per client session) or `url` (a
/// remote server), and its policy.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, transform = command_or_url)]
#[allow(dead_code)]
struct Server {
    /// Free text, for people.
    description: Option<Text>,
    /// The program to start, found on PATH like a shell would. Not with `url`.
    #[schemars(default)]
    command: Program,
    /// The program's arguments, one per item. Only with `command`.
    args: Option<Vec<Text>>,
    /// Variables set for the program: NAME: value. Only with `command`.
    env: Option<BTreeMap<String, Option<Text>>>,
    /// Variables set for the program from intercept's own environment: CHILD_NAME:
    /// HOST_NAME (keeps secrets out of this file). An unset HOST_NAME is an error. Only with
    /// `command`.
    env_from: Option<BTreeMap<String, EnvName>>,
    /// The server's address: http:// or https://. Not with `command`.
    #[schemars(default)]
    url: HttpUrl,
    /// Request headers: Name: value. Only with `url`.
    headers: Option<BTreeMap<String, Text>>,
    /// Request headers from intercept's environment: Name: HOST_NAME, whose value is the
    /// header's value (e.g. Authorization: GITHUB_AUTH, with GITHUB_AUTH="Bearer …"). An
    /// unset HOST_NAME is an error. Only with `url`.
    headers_from_env: Option<BTreeMap<String, EnvName>>,
    /// The server's policy: a policy file's path (relative to this file), or the policy
    /// itself written here. Required: `policy: {tools: {}}` allows every call on purpose.
    policy: ServerPolicy,
}

/// `command` or `url`, exactly one, and no key of the other kind.
fn command_or_url(schema: &mut Schema) {
    let forbid = |keys: &[&str]| json!({ "not": { "anyOf": keys.iter().map(|k| json!({ "required": [k] })).collect::<Vec<_>>() } });
    let command = json!({ "allOf": [
        { "required": ["command"] },
        forbid(&["url", "headers", "headers_from_env"]),
    ] });
    let url = json!({ "allOf": [
        { "required": ["url"] },
        forbid(&["command", "args", "env", "env_from"]),
    ] });
    schema.insert("oneOf".into(), json!([command, url]));
}

#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum ServerPolicy {
    File(PolicyPath),
    Inline(Box<Policy>),
}

macro_rules! fixed_schema {
    ($(#[$doc:meta])* $name:ident => $schema:tt) => {
        $(#[$doc])*
        #[derive(Default)]
        struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

fixed_schema!(
    /// A policy file's path, relative to the gateway file.
    PolicyPath => { "type": "string", "minLength": 1, "examples": ["policies/github.yaml"] }
);
fixed_schema!(Program => { "type": "string", "pattern": "\\S", "examples": ["npx"] });
fixed_schema!(EnvName => { "type": "string", "pattern": "^\\s*[A-Za-z_][A-Za-z0-9_]*\\s*$" });
fixed_schema!(HttpUrl => {
    "type": "string",
    "pattern": "^\\s*[hH][tT][tT][pP][sS]?://",
    "examples": ["https://mcp.example.com/mcp"]
});
fixed_schema!(IpAddress => {
    "type": "string",
    "anyOf": [{ "format": "ipv4" }, { "format": "ipv6" }],
    "examples": ["127.0.0.1"]
});

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::ffi::OsString;
    use std::path::Path;

    use super::*;
    use crate::gateway::config::GatewayConfig;
    use crate::gateway::config::decode::{LISTEN_KEYS, SERVER_KEYS, TOP_KEYS};
    use crate::policy::yaml::{self, Kind, Node};

    fn validator() -> jsonschema::Validator {
        jsonschema::draft7::new(&gateway_schema()).expect("the schema is a valid draft-07 schema")
    }

    /// The file as an editor's YAML plug-in hands it to the schema.
    fn to_json(node: &Node) -> Value {
        match &node.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => json!(i),
            Kind::Float(f) => json!(f),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
            Kind::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.text.clone(), to_json(v)))
                    .collect(),
            ),
        }
    }

    fn env(_: &str) -> Option<OsString> {
        Some("Bearer x".into())
    }

    fn schema_accepts(v: &jsonschema::Validator, text: &str) -> bool {
        v.is_valid(&to_json(&yaml::parse(text).expect("the sample is YAML")))
    }

    fn loader_accepts(text: &str) -> bool {
        GatewayConfig::parse(text, Path::new("gateway.yaml"), &env).is_ok()
    }

    const GOOD: &[&str] = &[
        "servers:\n  files:\n    command: npx\n    args: [-y, server]\n    policy: { tools: {} }\n",
        "servers:\n  m-1_x:\n    command: node\n    args:\n    env: { A: 1, B: }\n    env_from: { C: HOST_C }\n    policy: { default: deny }\n",
        "version: 1\ndescription: x\nlisten: { bind: \"::1\", port: 8080 }\nservers:\n  r:\n    url: https://mcp.example.com/mcp\n    headers: { X-Team: a }\n    headers_from_env: { Authorization: TOKEN }\n    policy:\n      tools:\n        t:\n          rules:\n            - rate_limit: 5/hour\n",
    ];

    const BAD: &[&str] = &[
        // Unknown keys, at each level, and in an inline policy.
        "servres: {}\nservers:\n  a: { command: x, policy: { tools: {} } }\n",
        "servers:\n  a: { comand: x, policy: { tools: {} } }\n",
        "listen: { adress: 127.0.0.1 }\nservers:\n  a: { command: x, policy: { tools: {} } }\n",
        "servers:\n  a: { command: x, policy: { hidden: [x] } }\n",
        // The source: both, neither, or a key of the other kind.
        "servers:\n  a: { command: x, url: http://h/mcp, policy: { tools: {} } }\n",
        "servers:\n  a: { policy: { tools: {} } }\n",
        "servers:\n  a: { url: http://h/mcp, args: [x], policy: { tools: {} } }\n",
        "servers:\n  a: { command: x, headers: { A: b }, policy: { tools: {} } }\n",
        "servers:\n  a: { url: ftp://h/mcp, policy: { tools: {} } }\n",
        "servers:\n  a: { command: \"\", policy: { tools: {} } }\n",
        // Names, the policy, the listener, the version.
        "servers:\n  My Server: { command: x, policy: { tools: {} } }\n",
        "servers:\n  a: { command: x }\n",
        "servers:\n  a: { command: x, policy: 3 }\n",
        "servers:\n  a: { command: x, policy: { tools: { t: { rules: [{ action: alow }] } } } }\n",
        "servers: {}\n",
        "description: no servers\n",
        "listen: { port: 70000 }\nservers:\n  a: { command: x, policy: { tools: {} } }\n",
        "version: 2\nservers:\n  a: { command: x, policy: { tools: {} } }\n",
        "servers:\n  a: { command: x, env_from: { A: \"not a name\" }, policy: { tools: {} } }\n",
        "servers:\n  a: { command: x, description: [x], policy: { tools: {} } }\n",
    ];

    #[test]
    fn the_schema_and_the_loader_agree_on_samples() {
        let v = validator();
        for text in GOOD {
            assert!(schema_accepts(&v, text), "the schema refuses:\n{text}");
            assert!(loader_accepts(text), "the loader refuses:\n{text}");
        }
        for text in BAD {
            assert!(!schema_accepts(&v, text), "the schema accepts:\n{text}");
            assert!(!loader_accepts(text), "the loader accepts:\n{text}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid_under_both() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(schema_accepts(&validator(), &text));
        GatewayConfig::load_with_env(&file, &env).unwrap_or_else(|e| panic!("{e}"));
    }

    fn keys(object: &Value) -> BTreeSet<String> {
        object["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn every_mapping_has_the_decoders_keys_and_no_others() {
        let schema = gateway_schema();
        let defs = &schema["definitions"];
        assert_eq!(keys(&schema), set(TOP_KEYS));
        assert_eq!(keys(&defs["Server"]), set(SERVER_KEYS));
        assert_eq!(keys(&defs["Listen"]), set(LISTEN_KEYS));
        for object in [&schema, &defs["Server"], &defs["Listen"]] {
            assert_eq!(object["additionalProperties"], false);
        }
        // An inline policy is the policy's own schema.
        assert_eq!(defs["Policy"]["title"], "Intercept policy");
        assert_eq!(defs["Policy"]["additionalProperties"], false);
    }
}
