//! Tool name patterns, as written in `tools` keys, `hide` lists and grants.
//!
//! `*` (any run of characters) and `?` (one character) make a name a glob. Tool names may
//! themselves contain those characters, so `\*`, `\?` and `\\` stand for a literal `*`, `?`
//! and `\`; a pattern whose only wildcards are escaped is an exact name.

use wildmatch::WildMatchPattern;

/// The wildcard characters a glob is matched with. `wildmatch` has no escapes, but takes
/// its wildcards as parameters: unescaped `*` and `?` are rewritten to these two Unicode
/// noncharacters (reserved for a program's internal use, never assigned), so an escaped
/// `*` or `?` stays an ordinary character of the pattern.
const ANY_RUN: char = '\u{FDD0}';
const ANY_ONE: char = '\u{FDD1}';

/// What a written name matches.
#[derive(Debug)]
pub enum NamePattern {
    /// `"*"` alone: every tool.
    All,
    /// One tool, with escapes resolved.
    Exact(String),
    Glob(Glob),
}

/// A glob over tool names.
#[derive(Debug, Clone)]
pub struct Glob {
    /// The pattern as written, for messages.
    pub pattern: String,
    matcher: WildMatchPattern<ANY_RUN, ANY_ONE>,
}

impl Glob {
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.matches(name)
    }
}

/// Why a written name is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "\"{name}\" ends with a lone \"\\\": write \"\\\\\" for a backslash (escapes are \\*, \\? and \\\\)"
    )]
    DanglingEscape { name: String },
    #[error(
        "\"{name}\" has the unknown escape \"\\{escaped}\": only \\*, \\? and \\\\ are escapes (write \"\\\\\" for a backslash)"
    )]
    UnknownEscape { name: String, escaped: char },
    #[error("\"{name}\" holds the reserved character U+{code:04X}, which no tool name uses")]
    Reserved { name: String, code: u32 },
}

/// One piece of a pattern.
enum Piece {
    Literal(char),
    AnyRun,
    AnyOne,
}

/// Reads a written name: `*` alone, an exact name, or a glob.
pub fn parse(written: &str) -> Result<NamePattern, NameError> {
    if written == "*" {
        return Ok(NamePattern::All);
    }
    let pieces = pieces(written)?;
    if pieces.iter().all(|p| matches!(p, Piece::Literal(_))) {
        let name = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        return Ok(NamePattern::Exact(name));
    }
    let mut rewritten = String::with_capacity(written.len());
    for p in &pieces {
        rewritten.push(match p {
            Piece::Literal(c @ (ANY_RUN | ANY_ONE)) => {
                return Err(NameError::Reserved {
                    name: written.to_string(),
                    code: u32::from(*c),
                });
            }
            Piece::Literal(c) => *c,
            Piece::AnyRun => ANY_RUN,
            Piece::AnyOne => ANY_ONE,
        });
    }
    Ok(NamePattern::Glob(Glob {
        pattern: written.to_string(),
        matcher: WildMatchPattern::new(&rewritten),
    }))
}

fn pieces(written: &str) -> Result<Vec<Piece>, NameError> {
    let mut out = Vec::with_capacity(written.len());
    let mut chars = written.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Piece::AnyRun,
            '?' => Piece::AnyOne,
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => Piece::Literal(e),
                Some(other) => {
                    return Err(NameError::UnknownEscape {
                        name: written.to_string(),
                        escaped: other,
                    });
                }
                None => {
                    return Err(NameError::DanglingEscape {
                        name: written.to_string(),
                    });
                }
            },
            c => Piece::Literal(c),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(written: &str) -> Glob {
        match parse(written) {
            Ok(NamePattern::Glob(g)) => g,
            other => panic!("{written}: {other:?}"),
        }
    }

    fn exact(written: &str) -> String {
        match parse(written) {
            Ok(NamePattern::Exact(n)) => n,
            other => panic!("{written}: {other:?}"),
        }
    }

    #[test]
    fn wildcards_match_as_before() {
        let g = glob("delete_*");
        assert!(g.matches("delete_") && g.matches("delete_repo") && !g.matches("xdelete_"));
        let g = glob("get_?");
        assert!(g.matches("get_x") && g.matches("get_é") && !g.matches("get_xy"));
        assert!(glob("a*b").matches("a\nb"), "a run spans any character");
        assert!(glob("a.b*").matches("a.bc") && !glob("a.b*").matches("axbc"));
        assert!(matches!(parse("*"), Ok(NamePattern::All)));
    }

    #[test]
    fn escapes_are_literal_characters() {
        assert_eq!(exact(r"what\?"), "what?");
        assert_eq!(exact(r"a\*b"), "a*b");
        assert_eq!(exact(r"back\\slash"), r"back\slash");
        assert_eq!(exact(r"\*"), "*");
        let g = glob(r"star\*_*");
        assert!(g.matches("star*_x") && !g.matches("starx_x"));
        let g = glob(r"\\?");
        assert!(g.matches(r"\x") && !g.matches("x"));
        let g = glob(r"\??");
        assert!(g.matches("?x") && !g.matches("xx"));
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_eq!(
            parse(r"a\").unwrap_err(),
            NameError::DanglingEscape { name: r"a\".into() }
        );
        assert_eq!(
            parse(r"a\nb").unwrap_err(),
            NameError::UnknownEscape {
                name: r"a\nb".into(),
                escaped: 'n'
            }
        );
        assert!(matches!(
            parse("a*\u{FDD0}"),
            Err(NameError::Reserved { code: 0xFDD0, .. })
        ));
    }
}
