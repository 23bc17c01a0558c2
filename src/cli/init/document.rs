//! A client configuration file, edited in place.
//!
//! Clients' files are JSON, and VS Code's `mcp.json` may hold comments and trailing commas
//! (JSONC). The file is read into a concrete syntax tree, and only the parts of an entry
//! that change are rewritten: a property that keeps its value keeps its text, other keys
//! keep their order, comments and indentation, and new text follows the file's own
//! indentation and line endings.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstArray, CstInputValue, CstObject, CstObjectProp, CstRootNode};
use serde_json::{Map, Value};

use super::clients::Location;

/// Why a file cannot be edited.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not JSON: {0}")]
    Syntax(String),
    #[error("the file holds no JSON object")]
    NotAnObject,
}

/// One configuration file, parsed.
#[derive(Debug)]
pub struct Document {
    root: CstRootNode,
    /// Written on one line as serde_json writes it compactly: rewritten the same way,
    /// rather than growing one multi-line entry in the middle of a one-line file.
    compact: bool,
    trailing_newline: bool,
}

impl Document {
    pub fn parse(text: &str) -> Result<Document, DocumentError> {
        let root = CstRootNode::parse(text, &ParseOptions::default())
            .map_err(|e| DocumentError::Syntax(e.to_string()))?;
        if root.object_value().is_none() {
            return Err(DocumentError::NotAnObject);
        }
        let body = text.trim_end();
        // Strict JSON on one line: nothing (no comment) would be lost by re-serialising it.
        let compact =
            !body.contains('\n') && serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok();
        Ok(Document {
            root,
            compact,
            trailing_newline: text.ends_with('\n'),
        })
    }

    /// The whole file as a value (comments dropped).
    pub fn value(&self) -> Value {
        self.root.to_serde_value().unwrap_or(Value::Null)
    }

    /// Makes the entry at `loc` equal `new`, changing only what differs. Returns false when
    /// there is no such entry.
    pub fn set_entry(&self, loc: &Location, new: &Value) -> bool {
        let Some(mut object) = self.root.object_value() else {
            return false;
        };
        for key in &loc.container {
            let Some(inner) = object.object_value(key) else {
                return false;
            };
            object = inner;
        }
        let Some(prop) = object.get(&loc.name) else {
            return false;
        };
        patch_prop(&prop, new);
        true
    }

    pub fn text(&self) -> String {
        if self.compact {
            let mut text = serde_json::to_string(&self.value()).expect("JSON values serialise");
            if self.trailing_newline {
                text.push('\n');
            }
            return text;
        }
        self.root.to_string()
    }
}

/// Gives `prop` the value `new`: objects are patched key by key and arrays element by
/// element, so what is equal keeps its text (and the comments around it).
fn patch_prop(prop: &CstObjectProp, new: &Value) {
    let Some(current) = prop.value() else {
        prop.set_value(input(new));
        return;
    };
    if current.to_serde_value().as_ref() == Some(new) {
        return;
    }
    match (current.as_object(), current.as_array(), new) {
        (Some(object), _, Value::Object(map)) => patch_object(&object, map),
        (_, Some(array), Value::Array(items)) => patch_array(&array, items),
        _ => prop.set_value(input(new)),
    }
}

fn patch_object(object: &CstObject, new: &Map<String, Value>) {
    for prop in object.properties() {
        if !prop.decoded_name().is_some_and(|n| new.contains_key(&n)) {
            prop.remove();
        }
    }
    // A new key goes right after the key that precedes it in `new`, so the order of `new`
    // is kept where the file allows it.
    let mut after: Option<usize> = None;
    for (key, value) in new {
        match object.get(key) {
            Some(prop) => {
                patch_prop(&prop, value);
                after = Some(prop.property_index());
            }
            None => {
                let index = after.map_or(0, |i| i + 1);
                object.insert(index, key, input(value));
                after = Some(index);
            }
        }
    }
}

fn patch_array(array: &CstArray, new: &[Value]) {
    let multiline = array.to_string().contains('\n');
    for element in array.elements() {
        element.remove();
    }
    for value in new {
        array.append(input(value));
    }
    if multiline {
        array.ensure_multiline();
    }
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(map) => {
            CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn loc(container: &[&str], name: &str) -> Location {
        Location {
            container: container.iter().map(|s| s.to_string()).collect(),
            name: name.to_string(),
        }
    }

    fn edit(text: &str, at: &Location, new: Value) -> String {
        let doc = Document::parse(text).unwrap();
        assert!(doc.set_entry(at, &new));
        let out = doc.text();
        // Whatever the layout, the result reads back as the intended value.
        let mut expected = Document::parse(text).unwrap().value();
        let mut slot = &mut expected;
        for k in &at.container {
            slot = &mut slot[k];
        }
        slot[&at.name] = new;
        assert_eq!(Document::parse(&out).unwrap().value(), expected, "{out}");
        out
    }

    #[test]
    fn only_the_changed_parts_of_an_entry_are_rewritten() {
        let text = r#"{
  // Servers for this project.
  "mcpServers": {
    "github": {
      "command": "npx", // the launcher
      "args": [
        "-y",
        "@modelcontextprotocol/server-github"
      ],
      "env": {"GITHUB_TOKEN": "t"}
    },
    "other": {"command": "x"}
  },
  "zeta": 1,
  "alpha": [1, 2]
}
"#;
        let out = edit(
            text,
            &loc(&["mcpServers"], "github"),
            json!({"command": "/usr/bin/intercept", "args": ["-c", "/p.yaml", "--", "npx", "-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_TOKEN": "t"}}),
        );
        assert_eq!(
            out,
            r#"{
  // Servers for this project.
  "mcpServers": {
    "github": {
      "command": "/usr/bin/intercept", // the launcher
      "args": [
        "-c",
        "/p.yaml",
        "--",
        "npx",
        "-y",
        "@modelcontextprotocol/server-github"
      ],
      "env": {"GITHUB_TOKEN": "t"}
    },
    "other": {"command": "x"}
  },
  "zeta": 1,
  "alpha": [1, 2]
}
"#
        );
    }

    #[test]
    fn keys_are_removed_and_added_in_place_with_the_files_indentation() {
        let text = "{\r\n\t\"servers\": {\r\n\t\t\"remote\": {\r\n\t\t\t\"type\": \"http\",\r\n\t\t\t\"url\": \"https://h/mcp\",\r\n\t\t\t\"headers\": {\"Authorization\": \"Bearer t\"},\r\n\t\t\t\"disabled\": false,\r\n\t\t},\r\n\t},\r\n}";
        let out = edit(
            text,
            &loc(&["servers"], "remote"),
            json!({"type": "stdio", "command": "i", "args": ["-c", "p"], "env": {"H": "Authorization: Bearer t"}, "disabled": false}),
        );
        assert_eq!(
            out,
            "{\r\n\t\"servers\": {\r\n\t\t\"remote\": {\r\n\t\t\t\"type\": \"stdio\",\r\n\t\t\t\"command\": \"i\",\r\n\t\t\t\"args\": [\"-c\", \"p\"],\r\n\t\t\t\"env\": {\r\n\t\t\t\t\"H\": \"Authorization: Bearer t\",\r\n\t\t\t},\r\n\t\t\t\"disabled\": false,\r\n\t\t},\r\n\t},\r\n}"
        );
    }

    #[test]
    fn four_spaces_and_nested_project_maps() {
        let text = "{\n    \"numStartups\": 3,\n    \"projects\": {\n        \"/p\": {\n            \"mcpServers\": {\n                \"a\": {\n                    \"url\": \"http://h\"\n                }\n            }\n        }\n    }\n}\n";
        let out = edit(
            text,
            &loc(&["projects", "/p", "mcpServers"], "a"),
            json!({"command": "i", "args": ["--upstream", "http://h"]}),
        );
        assert_eq!(
            out,
            "{\n    \"numStartups\": 3,\n    \"projects\": {\n        \"/p\": {\n            \"mcpServers\": {\n                \"a\": {\n                    \"command\": \"i\",\n                    \"args\": [\"--upstream\", \"http://h\"]\n                }\n            }\n        }\n    }\n}\n"
        );
    }

    #[test]
    fn a_one_line_file_stays_on_one_line() {
        let out = edit(
            r#"{"z":0,"mcpServers":{"a":{"command":"x","args":["1"]}}}"#,
            &loc(&["mcpServers"], "a"),
            json!({"command": "i", "args": ["--", "x", "1"]}),
        );
        assert_eq!(
            out,
            r#"{"z":0,"mcpServers":{"a":{"command":"i","args":["--","x","1"]}}}"#
        );
    }

    #[test]
    fn strings_are_escaped_and_an_unchanged_entry_is_byte_for_byte() {
        let text = "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"}\n}}\n";
        let doc = Document::parse(text).unwrap();
        assert!(doc.set_entry(&loc(&["mcpServers"], "a"), &json!({"command": "x"})));
        assert_eq!(doc.text(), text);
        edit(
            text,
            &loc(&["mcpServers"], "a"),
            json!({"command": "C:\\Program Files\\i \"q\"\n", "args": []}),
        );
        assert!(!doc.set_entry(&loc(&["mcpServers"], "missing"), &json!({})));
        assert!(!doc.set_entry(&loc(&["nothing"], "a"), &json!({})));
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        assert!(matches!(
            Document::parse("{\"a\": "),
            Err(DocumentError::Syntax(_))
        ));
        assert!(matches!(
            Document::parse("[1]"),
            Err(DocumentError::NotAnObject)
        ));
        // Comments and trailing commas (VS Code) are read.
        let doc = Document::parse("{\n  // c\n  \"servers\": {},\n}\n").unwrap();
        assert_eq!(doc.value(), json!({"servers": {}}));
    }
}
