//! The policy file's JSON Schema, for editors (`# yaml-language-server: $schema=…`) and
//! `intercept schema`.
//!
//! The types below describe the file as `decode.rs` reads it and `compile` checks it. They
//! are never deserialized into: the decoder, which reports every error with its position,
//! stays the only reader, and the tests at the end keep the two in step (the same keys in
//! every mapping, no other key accepted anywhere, the same enumerated values, and every
//! shipped policy valid under both).
//!
//! Where the loader reads any scalar as text (`version: 1` is `"1"`, `name: 7` is `"7"`), the
//! schema accepts a string, number or boolean; an empty value (null), which the loader treats
//! as not written, is accepted wherever the loader accepts it. Enumerated and patterned fields
//! are typed as strings. Checks that need the whole policy (a counter without a limit, a grant
//! for an unknown identity, …) are left to `intercept validate`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// The schema as a JSON value: draft-07, which every editor's YAML plug-in reads.
pub fn policy_schema() -> Value {
    root_schema::<Policy>()
}

/// The draft-07 schema of `T` as a root document, as the shipped schema files are written.
pub(crate) fn root_schema<T: JsonSchema>() -> Value {
    let generator = SchemaGenerator::new(SchemaSettings::draft07());
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    unwrap_descriptions(&mut schema);
    // What a reader looks for first, first.
    let Value::Object(mut rest) = schema else {
        unreachable!("a root schema is an object")
    };
    let mut ordered = serde_json::Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(v) = rest.remove(key) {
            ordered.insert(key.to_string(), v);
        }
    }
    ordered.append(&mut rest);
    Value::Object(ordered)
}

/// Doc comments are wrapped at 100 columns; an editor wraps descriptions itself.
fn unwrap_descriptions(node: &mut Value) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text.replace('\n', " ");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The schema as the text of `schema/policy.schema.json`: pretty-printed, one final newline.
pub fn policy_schema_text() -> String {
    schema_text(&policy_schema())
}

/// A schema as the text of its file: pretty-printed, one final newline.
pub(crate) fn schema_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// An Intercept policy: which MCP tool calls are allowed, denied, rate-limited or held for a
/// human. Check a file with `intercept validate -c FILE`.
#[derive(JsonSchema)]
#[schemars(title = "Intercept policy", deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Policy {
    /// The policy language version: "1" (also written 1). Optional.
    version: Option<Version>,
    /// Free text, for people.
    description: Option<Text>,
    /// What happens to a tool that is not a key of `tools`: allowed (`allow`, the default), or
    /// denied and left out of tools/list (`deny`).
    default: Option<DefaultAction>,
    /// Tools removed from tools/list and denied when called: exact names, globs (`admin_*`,
    /// `?` for one character) or "*" for every tool.
    hide: Option<Vec<Text>>,
    /// Rules per tool: the key is a tool name, a glob (`delete_*`) or "*" (every tool).
    tools: Option<BTreeMap<String, Option<Tool>>>,
    /// Named callers, and how they are recognised: by name (`--identity`), or by a bearer
    /// token.
    #[schemars(default)]
    identities: BTreeMap<String, Option<Identity>>,
    /// Per identity ("*" for any other): the tools it may see and call.
    #[schemars(default)]
    grants: BTreeMap<String, Grant>,
}

/// The rules of one tool key.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Tool {
    /// Evaluated in order: every rule must pass for the call to be allowed.
    #[schemars(default)]
    rules: Vec<Rule>,
}

/// One rule. Unnamed rules are called `<tool key>#<index>`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Rule {
    /// Shown in denials and logs.
    name: Option<Text>,
    /// `evaluate` (the default): every condition must hold. `allow`: passes while its
    /// conditions hold and its rate limit has room. `deny`: always denies.
    /// `require_approval`: holds the call for a human when its conditions hold.
    action: Option<Action>,
    /// All must hold.
    conditions: Option<Vec<Condition>>,
    /// "N/minute", "N/hour", "N/day" (calendar-aligned UTC windows), or {max, window} (at
    /// most `max` calls in any `window` seconds). Not with `conditions` or `state`.
    rate_limit: Option<RateLimit>,
    /// Where the rule's counter lives: one for everyone (`global`, the default), one per
    /// caller identity, or one per client connection. Only with `rate_limit` or `state`.
    scope: Option<Scope>,
    /// A custom counter; its limit is the rule's first `lte`/`lt` condition on
    /// `state.<tool>.<counter>`.
    #[schemars(default)]
    state: State,
    /// The message the agent gets when this rule denies (same as `reason`: set one).
    on_deny: Option<Text>,
    /// The message the agent gets when this rule denies (same as `on_deny`: set one).
    reason: Option<Text>,
    /// With `require_approval`: how long a human has to answer, e.g. "90s", "30m", "2h",
    /// "1d" (a bare number is seconds).
    approval_timeout: Option<ApprovalTimeout>,
    /// `enforce` (the default), or `shadow`: evaluated and logged as `shadow_deny`, but never
    /// stops a call.
    mode: Option<Mode>,
}

/// `{path, op, value}`: a test on the call.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, transform = value_by_operator)]
#[allow(dead_code)]
struct Condition {
    /// `args.<key>[.<key>…]` (a whole-number key also indexes a list),
    /// `state.<tool>.<counter>`, `identity` or `client.name`.
    path: ConditionPath,
    /// The comparison.
    op: Operator,
    /// What the path is compared with: a number for lt/lte/gt/gte, a list for in/not_in,
    /// true or false for exists, a pattern for regex, anything for eq/neq/contains.
    value: Option<Value>,
}

/// Says which type of `value` each operator needs (and that it needs one), so an editor can
/// flag `op: in` with a single value.
fn value_by_operator(schema: &mut Schema) {
    let needs = [
        (&["lt", "lte", "gt", "gte"][..], json!({ "type": "number" })),
        (&["in", "not_in"][..], json!({ "type": "array" })),
        (&["exists"][..], json!({ "type": "boolean" })),
        (&["regex"][..], json!({ "type": "string" })),
        (&["eq", "neq", "contains"][..], json!({})),
    ];
    let all_of: Vec<Value> = needs
        .into_iter()
        .map(|(ops, value)| {
            json!({
                "if": { "properties": { "op": { "enum": ops } }, "required": ["op"] },
                "then": { "properties": { "value": value }, "required": ["value"] },
            })
        })
        .collect();
    schema.insert("allOf".into(), all_of.into());
}

#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum RateLimit {
    Shorthand(RateShorthand),
    Rolling(RollingLimit),
}

/// At most `max` calls in any `window` seconds.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct RollingLimit {
    /// Calls allowed in the window.
    #[schemars(range(min = 1))]
    max: i64,
    /// The window, in seconds.
    #[schemars(range(min = 1))]
    window: i64,
}

/// A custom counter.
#[derive(Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct State {
    /// The counter's name: letters, digits, "_" and "-".
    counter: Option<CounterName>,
    /// `minute`, `hour` or `day`, calendar-aligned UTC.
    window: Option<Window>,
    /// How much each allowed call adds (default 1).
    #[schemars(range(min = 1))]
    increment: Option<i64>,
    /// An argument holding the amount to add, e.g. `args.amount` (not with `increment`).
    increment_from: Option<ArgsPath>,
}

/// How a caller is recognised. Without a token, by name only (`--identity NAME`).
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Identity {
    /// The environment variable holding the caller's bearer token.
    token_env: Option<Text>,
    /// The SHA-256 (hex) of the caller's bearer token (not with `token_env`).
    token_sha256: Option<Sha256Hex>,
    /// Free text, for people.
    description: Option<Text>,
}

/// What one identity may see and call.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Grant {
    /// The tools it may call: a list of names and globs, or "*" for every tool.
    tools: GrantTools,
    /// Tools it does not see in tools/list, among those it may call.
    hide: Option<Vec<Text>>,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum GrantTools {
    One(Text),
    List(Vec<Text>),
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum DefaultAction {
    Allow,
    Deny,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "snake_case")]
#[allow(dead_code)]
enum Action {
    Evaluate,
    Allow,
    Deny,
    RequireApproval,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Scope {
    Global,
    Identity,
    Session,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Mode {
    Enforce,
    Shadow,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum Window {
    Minute,
    Hour,
    Day,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "snake_case")]
#[allow(dead_code)]
enum Operator {
    Eq,
    Neq,
    In,
    NotIn,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    Contains,
    Exists,
}

/// Schemas written out: the ones no Rust type describes by itself.
macro_rules! fixed_schema {
    ($(#[$doc:meta])* $name:ident => $schema:tt) => {
        $(#[$doc])*
        pub(crate) struct $name;

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
    /// A scalar, read as text.
    Text => { "type": ["string", "number", "boolean"] }
);
fixed_schema!(Version => { "enum": ["1", 1] });
fixed_schema!(RateShorthand => {
    "type": "string",
    "pattern": "^\\+?[0-9]+/(minute|hour|day)$",
    "examples": ["5/hour"]
});
fixed_schema!(ApprovalTimeout => {
    "anyOf": [
        { "type": "integer", "minimum": 1 },
        { "type": "string", "pattern": "^\\s*[0-9]+\\s*[smhd]?\\s*$" }
    ],
    "examples": ["30m"]
});
fixed_schema!(ConditionPath => {
    "type": "string",
    "pattern": "^(args(\\.[^.]+)+|state(\\.[^.]+){2,}|identity|client\\.name)$",
    "examples": ["args.repo"]
});
fixed_schema!(ArgsPath => {
    "type": "string",
    "pattern": "^args(\\.[^.]+)+$",
    "examples": ["args.amount"]
});
fixed_schema!(CounterName => {
    "anyOf": [
        { "type": "string", "pattern": "^\\s*[A-Za-z0-9_-]+\\s*$" },
        { "type": ["number", "boolean"] }
    ]
});
fixed_schema!(Sha256Hex => { "type": "string", "pattern": "^[0-9A-Fa-f]{64}$" });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::yaml::{self, Kind, Node};
    use crate::policy::{compile, decode};
    use std::path::{Path, PathBuf};

    fn validator() -> jsonschema::Validator {
        jsonschema::draft7::new(&policy_schema()).expect("the schema is a valid draft-07 schema")
    }

    /// The policy as an editor's YAML plug-in hands it to the schema.
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

    fn parse(text: &str) -> Value {
        to_json(&yaml::parse(text).expect("the test policy is YAML"))
    }

    /// The schema's verdict, with its messages.
    fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
        v.iter_errors(doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    fn shipped_policies() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                ) {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            &mut out,
        );
        out.sort();
        out
    }

    #[test]
    fn every_shipped_policy_is_valid_under_the_schema_and_the_loader() {
        let v = validator();
        let files = shipped_policies();
        assert!(files.len() > 50, "policies/ holds the catalog: {files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert_eq!(crate::policy::validate(&text), vec![], "{}", file.display());
            let errors = schema_errors(&v, &parse(&text));
            assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        }
    }

    /// Every mapping in the document, by its path of keys and indexes.
    fn object_paths(value: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match value {
            Value::Object(map) => {
                out.push(at.clone());
                for (k, v) in map {
                    at.push(json!(k));
                    object_paths(v, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    at.push(json!(i));
                    object_paths(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn object_at<'a>(doc: &'a mut Value, path: &[Value]) -> &'a mut serde_json::Map<String, Value> {
        let mut here = doc;
        for step in path {
            here = match step {
                Value::String(k) => here.get_mut(k.as_str()).unwrap(),
                Value::Number(i) => here.get_mut(i.as_u64().unwrap() as usize).unwrap(),
                _ => unreachable!(),
            };
        }
        here.as_object_mut().unwrap()
    }

    /// Whether an error (or one of the alternatives of an `anyOf` it reports) is about `key`
    /// being there at all.
    fn refuses_key(e: &jsonschema::ValidationError<'_>, key: &str) -> bool {
        use jsonschema::error::ValidationErrorKind as K;
        match e.kind() {
            K::AdditionalProperties { unexpected } => unexpected.iter().any(|k| k == key),
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                context.iter().flatten().any(|e| refuses_key(e, key))
            }
            _ => false,
        }
    }

    /// Adds a key to each mapping of each shipped and sample policy in turn (also to the empty mappings a
    /// key can hold: `tools.x: {}`), and asks both the loader and the schema: the schema must
    /// refuse exactly where `validate` reports an unknown field. JSON is YAML, so the loader
    /// reads the very document the schema checks.
    #[test]
    fn the_schema_refuses_unknown_keys_exactly_where_validate_does() {
        let v = validator();
        let mut refused = 0;
        let mut accepted = 0;
        let samples = shipped_policies()
            .into_iter()
            .map(|file| {
                (
                    file.display().to_string(),
                    std::fs::read_to_string(&file).unwrap(),
                )
            })
            .chain(
                written_samples()
                    .into_iter()
                    .map(|text| (text.clone(), text)),
            );
        for (name, text) in samples {
            let doc = parse(&text);
            let mut paths = Vec::new();
            object_paths(&doc, &mut Vec::new(), &mut paths);
            for path in paths {
                let mut changed = doc.clone();
                object_at(&mut changed, &path).insert("zz_unknown".into(), json!({}));
                let text = serde_json::to_string(&changed).unwrap();
                let loader_refuses = crate::policy::validate(&text)
                    .iter()
                    .any(|e| e.message.contains("unknown field \"zz_unknown\""));
                let schema_refuses = v
                    .iter_errors(&changed)
                    .any(|e| refuses_key(&e, "zz_unknown"));
                assert_eq!(
                    schema_refuses,
                    loader_refuses,
                    "{name} at {path:?}: validate {:?}, schema {:?}",
                    crate::policy::validate(&text),
                    schema_errors(&v, &changed)
                );
                if loader_refuses {
                    refused += 1;
                } else {
                    accepted += 1;
                }
            }
        }
        // Both kinds were met: fixed-key mappings (rules, conditions, …) and free ones (tools,
        // a condition's value).
        assert!(refused > 1000 && accepted > 60, "{refused} {accepted}");
    }

    /// The typos the decoder's own tests and docs mention, at every level.
    #[test]
    fn misspelt_keys_are_refused_by_both() {
        let v = validator();
        let cases = [
            "hidden: [x]\n",
            "tools:\n  t:\n    rule: []\n",
            "tools:\n  t:\n    rules:\n      - action: deny\n        on-deny: no\n",
            "tools:\n  t:\n    rules:\n      - rate-limit: 5/hour\n",
            "tools:\n  t:\n    rules:\n      - Conditions: [{path: args.a, op: eq, value: 1}]\n",
            "tools:\n  t:\n    rules:\n      - conditions: [{path: args.a, op: eq, val: 1}]\n",
            "tools:\n  t:\n    rules:\n      - action: allow\n        rate_limit: {max: 1, window: 60, burst: 2}\n",
            "tools:\n  t:\n    rules:\n      - state: {counter: c, window: day, limit: 3}\n        conditions: [{path: state.t.c, op: lte, value: 3}]\n",
            "identities:\n  bot: {token: abc}\n",
            "identities:\n  bot: {}\ngrants:\n  bot: {tool: [x]}\n",
        ];
        for text in cases {
            let errors = crate::policy::validate(text);
            assert!(
                errors.iter().any(|e| e.message.contains("unknown field")),
                "{text}: {errors:?}"
            );
            assert!(!v.is_valid(&parse(text)), "{text}");
        }
    }

    /// Each definition with properties lists exactly the keys the decoder knows there, and
    /// refuses any other.
    #[test]
    fn every_mapping_has_the_decoders_keys_and_no_others() {
        let schema = policy_schema();
        let defs = schema["definitions"].as_object().unwrap();
        let expected: [(&Value, &[&str]); 8] = [
            (&schema, decode::TOP_KEYS),
            (&defs["Tool"], decode::TOOL_KEYS),
            (&defs["Rule"], decode::RULE_KEYS),
            (&defs["Condition"], decode::CONDITION_KEYS),
            (&defs["State"], decode::STATE_KEYS),
            (&defs["RollingLimit"], decode::ROLLING_KEYS),
            (&defs["Identity"], decode::IDENTITY_KEYS),
            (&defs["Grant"], decode::GRANT_KEYS),
        ];
        for (def, keys) in expected {
            let mut have: Vec<&str> = def["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = keys.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            assert_eq!(have, want, "{}", def["description"]);
        }
        // And no object anywhere in the schema takes keys it does not list.
        fn walk(node: &Value, at: &str, objects: &mut usize) {
            match node {
                Value::Object(map) => {
                    if map.contains_key("properties") {
                        *objects += 1;
                        // The operator's if/then clauses only narrow properties their
                        // object already lists.
                        if !at.contains("/allOf/") {
                            assert_eq!(map["additionalProperties"], json!(false), "{at}");
                        }
                    }
                    for (k, v) in map {
                        walk(v, &format!("{at}/{k}"), objects);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, &format!("{at}/{i}"), objects);
                    }
                }
                _ => {}
            }
        }
        let mut objects = 0;
        walk(&schema, "#", &mut objects);
        assert!(objects >= 8, "{objects}");
    }

    /// Every value the schema offers for an enumerated field loads, and values next to them
    /// are refused by both.
    #[test]
    fn enumerated_values_are_the_ones_the_loader_accepts() {
        let v = validator();
        let schema = policy_schema();
        let defs = &schema["definitions"];
        let values = |name: &str| -> Vec<String> {
            defs[name]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {}", defs[name]))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let ops = values("Operator");
        assert_eq!(ops, compile::OPERATORS.to_vec());
        assert_eq!(values("Mode"), compile::MODES.to_vec());
        // A definition, and a policy that uses one of its values.
        type Field = (&'static str, fn(&str) -> String);
        let fields: [Field; 5] = [
            ("DefaultAction", |v| format!("default: {v}\n")),
            ("Action", |v| {
                format!(
                    "tools:\n  t:\n    rules:\n      - action: {v}\n        conditions: [{{path: args.a, op: exists, value: true}}]\n"
                )
            }),
            ("Scope", |v| {
                format!(
                    "tools:\n  t:\n    rules:\n      - rate_limit: 5/hour\n        scope: {v}\n"
                )
            }),
            ("Mode", |v| {
                format!("tools:\n  t:\n    rules:\n      - rate_limit: 5/hour\n        mode: {v}\n")
            }),
            ("Window", |v| {
                format!(
                    "tools:\n  t:\n    rules:\n      - state: {{counter: c, window: {v}}}\n        conditions: [{{path: state.t.c, op: lte, value: 3}}]\n"
                )
            }),
        ];
        for (name, policy) in fields {
            let names = values(name);
            for value in &names {
                let text = policy(value);
                // `deny` rules take no conditions: only the key is tried there.
                let errors: Vec<_> = crate::policy::validate(&text)
                    .into_iter()
                    .filter(|e| !e.message.contains("must not have conditions"))
                    .collect();
                assert_eq!(errors, vec![], "{text}");
                assert!(v.is_valid(&parse(&text)), "{text}");
            }
            for wrong in names
                .iter()
                .map(|n| format!("{n}s"))
                .chain(["Allow".into()])
            {
                let text = policy(&wrong);
                assert!(!crate::policy::validate(&text).is_empty(), "{text}");
                assert!(!v.is_valid(&parse(&text)), "{text}");
            }
        }
        for op in &ops {
            let value = match op.as_str() {
                "lt" | "lte" | "gt" | "gte" => "1",
                "in" | "not_in" => "[a]",
                "exists" => "true",
                _ => "a",
            };
            let text = format!(
                "tools:\n  t:\n    rules:\n      - conditions: [{{path: args.a, op: {op}, value: {value}}}]\n"
            );
            assert_eq!(crate::policy::validate(&text), vec![], "{text}");
            assert!(v.is_valid(&parse(&text)), "{text}");
        }
    }

    /// Shapes and values the loader refuses, that the schema can see on its own.
    #[test]
    fn the_schema_refuses_what_the_loader_refuses() {
        let v = validator();
        let rule = |body: &str| format!("tools:\n  t:\n    rules:\n      - {body}\n");
        let cases = [
            "version: \"2\"\n".to_string(),
            "tools: [x]\n".into(),
            "hide: x\n".into(),
            "identities: [bot]\n".into(),
            "grants:\n  '*': {}\n".into(),
            "grants:\n  '*': {tools: {a: b}}\n".into(),
            "identities:\n  bot: {token_sha256: abc}\n".into(),
            "tools:\n  t:\n    rules: {}\n".into(),
            "tools:\n  t:\n    rules: [deny]\n".into(),
            rule("rate_limit: 5/week"),
            rule("rate_limit: 5 per hour"),
            rule("rate_limit: {max: 5}"),
            rule("action: allow\n        rate_limit: {max: 0, window: 60}"),
            rule("action: allow\n        rate_limit: {max: \"5\", window: 60}"),
            rule("action: require_approval\n        approval_timeout: 5 minutes"),
            rule("state: {counter: a.b, window: day}"),
            rule("state: {counter: c, window: day, increment: 0}"),
            rule("state: {counter: c, window: day, increment_from: amount}"),
            rule("state: x"),
            rule("conditions: [{path: amount, op: eq, value: 1}]"),
            rule("conditions: [{path: args..a, op: eq, value: 1}]"),
            rule("conditions: [{path: state.c, op: lte, value: 1}]"),
            rule("conditions: [{op: eq, value: 1}]"),
            rule("conditions: [{path: args.a, value: 1}]"),
            rule("conditions: [{path: args.a, op: eq}]"),
            rule("conditions: [{path: args.a, op: lt, value: ten}]"),
            rule("conditions: [{path: args.a, op: in, value: a}]"),
            rule("conditions: [{path: args.a, op: exists, value: yes please}]"),
            rule("conditions: [{path: args.a, op: regex, value: 5}]"),
            rule("conditions: [{path: args.a, op: like, value: a}]"),
        ];
        for text in &cases {
            assert!(!crate::policy::validate(text).is_empty(), "{text}");
            assert!(!v.is_valid(&parse(text)), "{text}");
        }
    }

    /// Policies the loader accepts as written, with what the shipped ones lack: empty values,
    /// scalars read as text, both rate-limit forms, identities and grants.
    fn written_samples() -> Vec<String> {
        let rule = |body: &str| format!("tools:\n  t:\n    rules:\n      - {body}\n");
        vec![
            String::new() + "version: 1\ndescription:\ndefault:\nhide:\ntools:\n",
            "tools:\n  a:\n  b: {}\n  c: {rules: []}\n  'delete_*': {rules: [{action: deny}]}\n".into(),
            "hide: [a, 7, true]\ndescription: 3\n".into(),
            rule("name: 7\n        action: allow\n        rate_limit: +5/day"),
            rule("action: allow\n        rate_limit: {max: 30, window: 60}\n        reason: slow down"),
            rule("name:\n        action:\n        conditions: [{path: client.name, op: eq, value: null}]\n        on_deny:"),
            rule("action: require_approval\n        approval_timeout: 90"),
            rule("action: require_approval\n        approval_timeout: \" 2 h \""),
            rule("state: {counter: \" c-1 \", window: hour, increment_from: args.items.0.n}\n        conditions: [{path: state.t.c-1, op: lt, value: 3}]\n        scope: session"),
            rule("conditions:\n          - {path: identity, op: in, value: [a, 1]}\n          - {path: args.a, op: eq, value: {x: [1]}}\n          - {path: args.a, op: contains, value: null}\n          - {path: args.a, op: gte, value: 1.5}"),
            "identities:\n  a:\n  b: {token_env: TOKEN_B, description: bot}\n  c: {token_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08}\ngrants:\n  a: {tools: '*'}\n  b: {tools: [x, 'get_*'], hide: [x]}\n  '*': {tools: []}\n".into(),
        ]
    }

    #[test]
    fn the_schema_accepts_what_the_loader_accepts() {
        let v = validator();
        for text in written_samples() {
            assert_eq!(crate::policy::validate(&text), vec![], "{text}");
            let errors = schema_errors(&v, &parse(&text));
            assert!(errors.is_empty(), "{text}: {errors:#?}");
        }
    }
}
