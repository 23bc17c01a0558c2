//! Finding a server command written without the `--` that should come before it.
//!
//! `--` keeps the server's arguments from being read as intercept's own options
//! (`intercept -c p.yaml -- srv --log-level debug`). A command written straight after the
//! options is either a mistake, answered with the line to type instead, or, with the policy
//! in `INTERCEPT_POLICY`, what a launcher that consumes `--` itself can produce.

use std::ffi::OsString;

use crate::redact::REDACTED;

/// A server command that starts at `args[at]`, with no `--` before it.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub at: usize,
    /// Whether the policy was given on the command line (`-c`, `--config`, `--policy`).
    pub policy_given: bool,
}

/// The first argument of `args` (the program name first) that is neither one of intercept's
/// proxy options, nor an option's value, nor a subcommand, if no `--` comes before it.
/// `None` also when an unknown option comes first: clap reports it as it should.
pub fn command_without_separator(cmd: &mut clap::Command, args: &[OsString]) -> Option<Found> {
    // Built, the command also knows --help and --version.
    cmd.build();
    let mut policy_given = false;
    let mut i = 1;
    while i < args.len() {
        let Some(word) = args[i].to_str() else {
            return command_at(cmd, args, i, policy_given);
        };
        if word == "--" {
            return None;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let arg = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|all| all.contains(&name))
            })?;
            policy_given |= is_policy(arg);
            if takes_value(arg) && !inline_value {
                i += 1;
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            // A cluster such as `-Vc FILE` or `-cFILE`: the first option that takes a value
            // takes the rest of the word, or the next argument.
            for (at, c) in shorts.char_indices() {
                let arg = cmd.get_arguments().find(|a| {
                    a.get_short() == Some(c)
                        || a.get_all_short_aliases()
                            .is_some_and(|all| all.contains(&c))
                })?;
                policy_given |= is_policy(arg);
                if takes_value(arg) {
                    if at + c.len_utf8() == shorts.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return command_at(cmd, args, i, policy_given);
        }
        i += 1;
    }
    None
}

fn command_at(
    cmd: &clap::Command,
    args: &[OsString],
    at: usize,
    policy_given: bool,
) -> Option<Found> {
    let is_subcommand = args[at]
        .to_str()
        .is_some_and(|w| cmd.find_subcommand(w).is_some());
    (!is_subcommand).then_some(Found { at, policy_given })
}

fn is_policy(arg: &clap::Arg) -> bool {
    arg.get_id() == super::policy_arg::ID
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
}

/// The command line with `--` where it belongs, secrets hidden, quoted for a shell. Hidden
/// first: a secret option's value is found word by word, and quotes around a word would
/// hide `--password=…` from the redaction, or leave part of the value outside it.
pub fn suggestion(args: &[OsString], at: usize) -> String {
    let words: Vec<String> = std::iter::once("intercept".to_string())
        .chain(args[1..at].iter().map(|a| a.to_string_lossy().into_owned()))
        .chain(std::iter::once("--".to_string()))
        .chain(args[at..].iter().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    crate::redact::redact_words(&words)
        .iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as a shell reads it. `[REDACTED]` is left bare where the rest of the word needs no
/// quotes: it marks a value to type in, not text to paste.
fn shell_word(word: &str) -> String {
    let filled = word.replace(REDACTED, "x");
    if crate::shell_words::quote(&filled) == filled {
        word.to_string()
    } else {
        crate::shell_words::quote(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(line: &str) -> Option<Found> {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        command_without_separator(&mut super::super::command(), &args)
    }

    #[test]
    fn the_command_starts_after_the_options_and_their_values() {
        let at = |at, policy_given| Some(Found { at, policy_given });
        assert_eq!(find("intercept -c p.yaml node srv.js"), at(3, true));
        assert_eq!(find("intercept --policy p.yaml node srv.js"), at(3, true));
        assert_eq!(find("intercept --config=p.yaml node"), at(2, true));
        assert_eq!(find("intercept -cp.yaml node"), at(2, true));
        assert_eq!(
            find("intercept --shadow --state memory --log-level debug node --state x"),
            at(6, false)
        );
        assert_eq!(find("intercept node srv.js --shadow"), at(1, false));
        // Nothing to find: a separator, a subcommand, no command, an unknown option first.
        assert_eq!(find("intercept -c p.yaml -- node srv.js"), None);
        assert_eq!(find("intercept -c p.yaml --shadow"), None);
        assert_eq!(find("intercept validate -c p.yaml x.yaml"), None);
        assert_eq!(find("intercept --policy p.yaml --frobnicate node"), None);
    }

    #[test]
    fn the_suggestion_is_a_line_to_type_without_secrets() {
        let args: Vec<OsString> = [
            "/usr/bin/intercept",
            "-c",
            "my policy.yaml",
            "npx",
            "srv",
            "--api-key",
            "k1",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            suggestion(&args, 3),
            "intercept -c 'my policy.yaml' -- npx srv --api-key [REDACTED]"
        );
    }

    #[test]
    fn secrets_are_hidden_before_the_words_are_quoted() {
        let line = |words: &[&str]| {
            let args: Vec<OsString> = ["intercept", "-c", "p.yaml", "srv"]
                .iter()
                .chain(words)
                .map(OsString::from)
                .collect();
            suggestion(&args, 3)
        };
        // A secret in a word that needs quotes: no quote or part of the value is left.
        assert_eq!(
            line(&["--password=hunter2 x"]),
            "intercept -c p.yaml -- srv --password=[REDACTED]"
        );
        assert_eq!(
            line(&["--api-key=it's", "--token", "a b'c"]),
            "intercept -c p.yaml -- srv --api-key=[REDACTED] --token [REDACTED]"
        );
        // Words without secrets are quoted as before; a secret inside one stays hidden.
        assert_eq!(
            line(&["it's", "https://u:hunter2@example.com/a b"]),
            "intercept -c p.yaml -- srv 'it'\\''s' 'https://u:[REDACTED]@example.com/a b'"
        );
    }
}
