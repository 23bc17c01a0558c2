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
    command: Option<String>,
    /// The program's arguments, one per item. Only with `command`.
    args: Option<Vec<Text>>,
    /// Variables set for the program: NAME: value. Only with `command`.
    env: Option<BTreeMap<String, Text>>,
    /// Variables set for the program from intercept's own environment: CHILD_NAME:
    /// HOST_NAME (keeps secrets out of this file). An unset HOST_NAME is an error. Only with
    /// `command`.
    env_from: Option<BTreeMap<String, EnvName>>,
    /// The server's address: http:// or https://. Not with `command`.
    url: Option<HttpUrl>,
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
