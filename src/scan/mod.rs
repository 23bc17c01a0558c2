//! `intercept scan`: list a server's tools, classify them, and write a policy for them.
//!
//! - [`client`]: a small MCP client (stdio child or Streamable HTTP / legacy SSE) that
//!   initialises, pages through `tools/list` and stops;
//! - [`classify`]: category and risk of each tool, with the reasons;
//! - [`scaffold`]: the policy (YAML) or the classified list (JSON).

pub mod classify;
pub mod client;
pub mod scaffold;
pub mod words;

use serde::Serialize;
use serde_json::Value;

pub use classify::{Category, Classification, classify};
pub use client::{Discovery, ScanError, ScanOptions, Target, discover};

/// The behaviour hints a server may attach to a tool (MCP 2025-03-26 and later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Annotations {
    #[serde(rename = "readOnlyHint", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(rename = "destructiveHint", skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    #[serde(rename = "idempotentHint", skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    #[serde(rename = "openWorldHint", skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

/// One tool as a server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub input_schema: Value,
    pub annotations: Annotations,
}

impl Tool {
    /// Reads a tool from a `tools/list` entry; `None` if it has no name.
    pub fn from_json(v: &Value) -> Option<Tool> {
        let name = v.get("name")?.as_str()?.to_string();
        let ann = v.get("annotations");
        let hint = |key: &str| ann.and_then(|a| a.get(key)).and_then(Value::as_bool);
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        Some(Tool {
            name,
            title: text(v.get("title")).or_else(|| text(ann.and_then(|a| a.get("title")))),
            description: text(v.get("description")),
            input_schema: v
                .get("inputSchema")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            annotations: Annotations {
                read_only: hint("readOnlyHint"),
                destructive: hint("destructiveHint"),
                idempotent: hint("idempotentHint"),
                open_world: hint("openWorldHint"),
            },
        })
    }

    /// Top-level parameters: name, type, required (required first, then by name).
    pub fn parameters(&self) -> Vec<Parameter> {
        let required: Vec<&str> = self
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut params: Vec<Parameter> = self
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(name, schema)| Parameter {
                        name: name.clone(),
                        kind: schema_type(schema),
                        required: required.contains(&name.as_str()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        params.sort_by(|a, b| b.required.cmp(&a.required).then(a.name.cmp(&b.name)));
        params
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
}

/// A schema's type in a word: `string`, `string|null`, `array`, `enum`, or `any`.
fn schema_type(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ if schema.get("enum").is_some() => "enum".into(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => {
            for key in ["anyOf", "oneOf"] {
                if let Some(list) = schema.get(key).and_then(Value::as_array) {
                    let mut kinds: Vec<String> = list.iter().map(schema_type).collect();
                    kinds.dedup();
                    return kinds.join("|");
                }
            }
            "any".into()
        }
    }
}

/// A tool with its classification.
#[derive(Debug, Clone)]
pub struct Classified {
    pub tool: Tool,
    pub class: Classification,
}

/// Classifies every tool, keeping the server's order.
pub fn classify_all(tools: &[Tool]) -> Vec<Classified> {
    tools
        .iter()
        .map(|t| Classified {
            tool: t.clone(),
            class: classify(t),
        })
        .collect()
}
