//! A YAML document as a tree of nodes that remember where they came from.
//!
//! `serde_yaml` only reports the position of the first error it meets; policy validation
//! must report *every* error with its line and column, so the policy is first read into
//! this spanned tree and decoded by hand (see `decode.rs`).
//!
//! Aliases are copied into the tree where they are used, so every later stage sees plain
//! values; what they repeat, and how deeply anything nests, is bounded by `limits.rs`.

use std::collections::HashMap;

use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::limits::{MAX_ALIAS_NODES, MAX_ALIAS_TEXT_BYTES, MAX_DEPTH};

/// A 1-based line and column in the policy text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: Marker) -> Self {
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// The scalar as written (for keys and messages); empty for collections.
    pub text: String,
}

impl Node {
    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self.kind, Kind::Seq(_) | Kind::Map(_))
    }
}

/// Why a text could not be read as a policy tree: a syntax error, or a limit of
/// [`super::limits`] crossed. The message is complete; the position is where the parser
/// stopped, or the node that crossed the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub pos: Pos,
}

/// Parses one YAML document. An empty document is `Null`.
/// Several documents (`---`) in one policy file are an error: only one could be enforced.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    parse_as(text, "policy")
}

/// [`parse`], for a file of another kind: `noun` names it in the messages ("gateway file").
/// The same limits hold, since the same tree is built and walked.
pub fn parse_as(text: &str, noun: &'static str) -> Result<Node, ParseError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        noun,
        ..Builder::default()
    };
    let mut documents = 0usize;
    loop {
        let (event, marker) = parser.next_token().map_err(|e| ParseError {
            message: format!("invalid YAML: {}", e.info()),
            pos: Pos::from_marker(*e.marker()),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseError {
                        message: format!(
                            "invalid YAML: a {noun} must hold exactly one YAML document"
                        ),
                        pos: Pos::from_marker(marker),
                    });
                }
            }
            other => builder.push(other, Pos::from_marker(marker))?,
        }
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Null,
        pos: Pos { line: 1, column: 1 },
        text: String::new(),
    }))
}

/// What a subtree costs: its nodes, its scalar text and its height in lists and mappings.
/// Kept for every anchor, so an alias is priced before it is copied.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    text_bytes: usize,
    height: usize,
}

impl Size {
    fn add_child(&mut self, child: Size) {
        self.nodes += child.nodes;
        self.text_bytes += child.text_bytes;
        self.height = self.height.max(child.height + 1);
    }
}

#[derive(Clone, Copy)]
enum Collection {
    Seq,
    Map,
}

/// A list or mapping whose end event has not come yet.
struct Open {
    collection: Collection,
    pos: Pos,
    anchor: usize,
    items: Vec<Node>,
    size: Size,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, (Node, Size)>,
    root: Option<Node>,
    /// What aliases have repeated so far.
    repeated: Size,
    /// What the text is, for messages: "policy", "gateway file".
    noun: &'static str,
}

impl Builder {
    fn push(&mut self, event: Event, pos: Pos) -> Result<(), ParseError> {
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let kind = if style == TScalarStyle::Plain {
                    resolve_plain(&value)
                } else {
                    Kind::Str(value.clone())
                };
                let size = Size {
                    nodes: 1,
                    text_bytes: value.len(),
                    height: 0,
                };
                self.finish(
                    Node {
                        kind,
                        pos,
                        text: value,
                    },
                    size,
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.open(Collection::Seq, pos, anchor)?,
            Event::MappingStart(anchor, _) => self.open(Collection::Map, pos, anchor)?,
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = self.stack.pop() else {
                    return Ok(());
                };
                let Open {
                    collection,
                    pos,
                    anchor,
                    items,
                    size,
                } = open;
                let node = match collection {
                    Collection::Seq => Node {
                        kind: Kind::Seq(items),
                        pos,
                        text: String::new(),
                    },
                    Collection::Map => {
                        // A block mapping's start event is marked after its first key; the
                        // key itself is where a reader looks.
                        let pos = match items.first() {
                            Some(k) if (k.pos.line, k.pos.column) < (pos.line, pos.column) => k.pos,
                            _ => pos,
                        };
                        let mut pairs = Vec::with_capacity(items.len() / 2);
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            pairs.push((k, v));
                        }
                        Node {
                            kind: Kind::Map(pairs),
                            pos,
                            text: String::new(),
                        }
                    }
                };
                self.finish(node, size, anchor);
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).ok_or_else(|| ParseError {
                    message: "invalid YAML: alias refers to an unknown anchor".into(),
                    pos,
                })?;
                let size = *size;
                self.check_depth(self.stack.len() + size.height, pos)?;
                self.repeated.nodes += size.nodes;
                self.repeated.text_bytes += size.text_bytes;
                if self.repeated.nodes > MAX_ALIAS_NODES {
                    return Err(ParseError {
                        message: format!(
                            "aliases repeat more than {MAX_ALIAS_NODES} nodes in all, the most a {} may (this guards against alias bombs): write the repeated parts out or use fewer aliases",
                            self.noun
                        ),
                        pos,
                    });
                }
                if self.repeated.text_bytes > MAX_ALIAS_TEXT_BYTES {
                    return Err(ParseError {
                        message: format!(
                            "aliases repeat more than {MAX_ALIAS_TEXT_BYTES} bytes of text in all, the most a {} may (this guards against alias bombs): write the repeated parts out or use fewer aliases",
                            self.noun
                        ),
                        pos,
                    });
                }
                let node = Node {
                    pos,
                    ..node.clone()
                };
                self.finish(node, size, 0);
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd | Event::DocumentStart => {}
        }
        Ok(())
    }

    fn open(&mut self, collection: Collection, pos: Pos, anchor: usize) -> Result<(), ParseError> {
        self.check_depth(self.stack.len() + 1, pos)?;
        self.stack.push(Open {
            collection,
            pos,
            anchor,
            items: Vec::new(),
            size: Size {
                nodes: 1,
                text_bytes: 0,
                height: 1,
            },
        });
        Ok(())
    }

    /// Refuses a node that would end `depth` lists and mappings deep.
    fn check_depth(&self, depth: usize, pos: Pos) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError {
                message: format!(
                    "lists and mappings are nested more than {MAX_DEPTH} levels deep, the most a {} may",
                    self.noun
                ),
                pos,
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, size: Size, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            Some(open) => {
                open.items.push(node);
                open.size.add_child(size);
            }
            None => self.root = Some(node),
        }
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema (`yes` stays a string).
fn resolve_plain(text: &str) -> Kind {
    match Yaml::from_str(text) {
        Yaml::Integer(i) => Kind::Int(i),
        Yaml::Real(_) => match text.parse::<f64>() {
            Ok(f) => Kind::Float(f),
            Err(_) => match text.trim_start_matches(['+', '-']) {
                ".inf" | ".Inf" | ".INF" if text.starts_with('-') => Kind::Float(f64::NEG_INFINITY),
                ".inf" | ".Inf" | ".INF" => Kind::Float(f64::INFINITY),
                _ => Kind::Float(f64::NAN),
            },
        },
        Yaml::Boolean(b) => Kind::Bool(b),
        Yaml::Null => Kind::Null,
        _ => Kind::Str(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let doc = parse("a: 1\nb:\n  - x\n  - 2.5\n").unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].0.text, "a");
        assert_eq!(pairs[0].1.kind, Kind::Int(1));
        assert_eq!(pairs[0].1.pos, Pos { line: 1, column: 4 });
        let Kind::Seq(items) = &pairs[1].1.kind else {
            panic!()
        };
        assert_eq!(items[0].kind, Kind::Str("x".into()));
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
        assert_eq!(items[1].kind, Kind::Float(2.5));
    }

    #[test]
    fn quoted_scalars_stay_strings_and_yes_is_a_string() {
        let doc = parse("a: \"1\"\nb: yes\nc: true\nd: ~\n").unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].1.kind, Kind::Str("1".into()));
        assert_eq!(pairs[1].1.kind, Kind::Str("yes".into()));
        assert_eq!(pairs[2].1.kind, Kind::Bool(true));
        assert_eq!(pairs[3].1.kind, Kind::Null);
    }

    #[test]
    fn aliases_are_resolved() {
        let doc = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].1.kind, pairs[1].1.kind);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.message.contains("exactly one"), "{err:?}");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().kind, Kind::Null);
        assert_eq!(parse("# only a comment\n").unwrap().kind, Kind::Null);
    }
}
