//! A client configuration file, edited in place.
//!
//! Clients' files are JSON, and VS Code's `mcp.json` may hold comments and trailing commas
//! (JSONC). The file is read into a concrete syntax tree, and only the parts of an entry
//! that change are rewritten: a property that keeps its value keeps its text, other keys
//! keep their order, comments and indentation, and new text follows the file's own
//! indentation and line endings. A file written on one line stays on one line (the
//! parser lays out every object it adds a key to over several lines; that layout is
//! folded back).

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
    layout: Layout,
}

/// How the file was laid out, as far as new text must follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Several lines (or comments): the parser's own layout of new text fits.
    Lines,
    /// One line of strict JSON, with blanks between its tokens.
    OneLine,
    /// One line of strict JSON without a blank outside its strings (`{"a":{"b":1}}`).
    Packed,
}

impl Document {
    pub fn parse(text: &str) -> Result<Document, DocumentError> {
        let root = CstRootNode::parse(text, &ParseOptions::default())
            .map_err(|e| DocumentError::Syntax(e.to_string()))?;
        if root.object_value().is_none() {
            return Err(DocumentError::NotAnObject);
        }
        Ok(Document {
            root,
            layout: layout(text),
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
        let text = self.root.to_string();
        match self.layout {
            Layout::Lines => text,
            layout => fold(&text, layout),
        }
    }
}

fn layout(text: &str) -> Layout {
    let body = text.trim();
    // Strict JSON only: it holds no comment, so its blanks are all outside strings or in
    // them, never in a `//` comment that a folded line would run into.
    if body.contains('\n') || serde_json::from_str::<serde::de::IgnoredAny>(body).is_err() {
        return Layout::Lines;
    }
    if marked(body).any(|(c, outside)| outside && c.is_ascii_whitespace()) {
        Layout::OneLine
    } else {
        Layout::Packed
    }
}

/// The characters of the JSON `text`, each with whether it is outside a string.
fn marked(text: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.chars().map(move |c| {
        if !in_string {
            in_string = c == '"';
            return (c, true);
        }
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => in_string = false,
            _ => {}
        }
        (c, false)
    })
}

/// `text` (a one-line file the parser spread over lines where it added keys) back on one
/// line. A packed file loses every blank outside strings, as it had none; otherwise a line
/// break and its indentation become nothing inside brackets and one space after a comma.
/// The file's trailing newline is kept.
fn fold(text: &str, layout: Layout) -> String {
    let (body, end) = match text.strip_suffix("\r\n") {
        Some(body) => (body, "\r\n"),
        None => match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (text, ""),
        },
    };
    let mut out = String::with_capacity(text.len());
    let mut pending = String::new();
    for (c, outside) in marked(body) {
        if outside && c.is_ascii_whitespace() {
            pending.push(c);
            continue;
        }
        let blank = std::mem::take(&mut pending);
        let before = out.chars().last();
        if layout == Layout::Packed {
            // No blank at all.
        } else if !blank.contains('\n') {
            out.push_str(&blank);
        } else if !(matches!(before, Some('{' | '[')) || matches!(c, '}' | ']')) {
            out.push(' ');
        }
        out.push(c);
    }
    out.push_str(end);
    out
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
    fn a_one_line_file_stays_on_one_line_and_keeps_its_spacing() {
        // Spaces after the colons: kept where nothing changes.
        let out = edit(
            r#"{"mcpServers": {"a": {"command": "x", "args": ["1"]}}, "z": 0}"#,
            &loc(&["mcpServers"], "a"),
            json!({"command": "i", "args": ["--", "x", "1"]}),
        );
        assert_eq!(
            out,
            r#"{"mcpServers": {"a": {"command": "i", "args": ["--", "x", "1"]}}, "z": 0}"#
        );
        // No blank at all: none added, not even in a string's neighbourhood.
        let out = edit(
            "{\"z\":0,\"mcpServers\":{\"a\":{\"command\":\"x\",\"args\":[\"1\"]}}}\n",
            &loc(&["mcpServers"], "a"),
            json!({"command": "i", "args": ["--", "x y", "1"], "env": {"K": "a, b"}}),
        );
        assert_eq!(
            out,
            "{\"z\":0,\"mcpServers\":{\"a\":{\"command\":\"i\",\"args\":[\"--\",\"x y\",\"1\"],\"env\":{\"K\":\"a, b\"}}}}\n"
        );
        // Keys added and removed (a URL entry becomes a command): still one line.
        let out = edit(
            r#"{"mcpServers": {"r": {"type": "http", "url": "https://h/mcp", "headers": {"A": "b"}}}, "z": 0}"#,
            &loc(&["mcpServers"], "r"),
            json!({"type": "stdio", "command": "i", "args": ["--upstream", "https://h/mcp"], "env": {"E": "A: b"}}),
        );
        assert_eq!(
            out,
            r#"{"mcpServers": {"r": {"type": "stdio", "command": "i", "args": ["--upstream", "https://h/mcp"], "env": {"E": "A: b"}}}, "z": 0}"#
        );
        // A one-line file with a comment is JSONC: laid out over lines rather than risk a
        // comment swallowing what follows it.
        let doc = Document::parse("{\"mcpServers\": {\"a\": {\"url\": \"u\"}}} // mine\n").unwrap();
        assert_eq!(doc.layout, Layout::Lines);
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
