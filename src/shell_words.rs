//! Command lines shown to people (tables, policy headers, suggestions), quoted so that a
//! POSIX shell would read back the same words when they are pasted.

/// The words as one line, each quoted only when a shell would otherwise split or expand it.
pub(crate) fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word, quoted only when a shell would otherwise split or expand it.
pub(crate) fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%~".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_a_shell_would_change_are_quoted() {
        assert_eq!(
            join(&["npx", "-y", "a b", "it's", "", "$HOME", "k=v"]),
            r"npx -y 'a b' 'it'\''s' '' '$HOME' k=v"
        );
    }
}
