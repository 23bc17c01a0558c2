//! Splitting tool names and descriptions into lower-case words.

/// Splits a tool name into words: on `_ - . / :` and spaces, and at camelCase boundaries,
/// keeping acronyms whole (`exchangeRefreshTokenForJWTWithId` → exchange, refresh, token,
/// for, jwt, with, id).
pub fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in name.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
            let boundary = (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && cur.is_ascii_digit())
                || (prev.is_ascii_digit() && cur.is_alphabetic());
            if boundary {
                words.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        if start < chars.len() {
            words.push(chars[start..].iter().collect::<String>().to_lowercase());
        }
    }
    words.retain(|w| !w.is_empty());
    words
}

/// The first sentence of a description, on one line, at most `max` characters.
pub fn first_sentence(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = one_line.len();
    for (i, _) in one_line.match_indices(". ") {
        // "e.g. x" and "i.e. x" do not end a sentence.
        let before = &one_line[..i];
        if before.ends_with("e.g") || before.ends_with("i.e") || before.ends_with("etc") {
            continue;
        }
        end = i + 1;
        break;
    }
    let sentence = one_line[..end].trim();
    if sentence.chars().count() <= max {
        return sentence.to_string();
    }
    let cut: String = sentence.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

/// The lower-case words of a text (letters and digits only).
pub fn text_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_snake_kebab_and_acronyms() {
        assert_eq!(
            name_words("exchangeRefreshTokenForJWTWithId"),
            ["exchange", "refresh", "token", "for", "jwt", "with", "id"]
        );
        assert_eq!(
            name_words("importRefreshTokensWithId"),
            ["import", "refresh", "tokens", "with", "id"]
        );
        assert_eq!(name_words("delete_repo"), ["delete", "repo"]);
        assert_eq!(name_words("API-post-search"), ["api", "post", "search"]);
        assert_eq!(
            name_words("browser_take_screenshot"),
            ["browser", "take", "screenshot"]
        );
        assert_eq!(name_words("getS3Object"), ["get", "s", "3", "object"]);
        assert_eq!(name_words("list.v2"), ["list", "v", "2"]);
    }

    #[test]
    fn first_sentences() {
        assert_eq!(
            first_sentence("Reads a file.  Use it\nfor text. More.", 80),
            "Reads a file."
        );
        assert_eq!(
            first_sentence("Search, e.g. for issues. Then more", 80),
            "Search, e.g. for issues."
        );
        assert_eq!(first_sentence("no period here", 80), "no period here");
        let long = first_sentence(&"word ".repeat(50), 30);
        assert!(long.ends_with('…') && long.chars().count() <= 30, "{long}");
    }
}
