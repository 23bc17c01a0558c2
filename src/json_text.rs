//! Byte-level reading of JSON text that is already known to be valid.

/// The index of the first quote or backslash from `i` on (or the length, if none). The
/// first sixteen bytes eight at a time, the rest with a vectorised search: most strings are
/// short, too short for the search to pay for its set-up, and most long ones are plain text.
pub fn quote_or_escape(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero (only the lowest mark is exact, and only the
    // lowest is read).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    for _ in 0..2 {
        let Some(chunk) = b.get(i..i + 8) else {
            return match b[i.min(b.len())..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\')
            {
                Some(k) => i + k,
                None => b.len(),
            };
        };
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let found = zero(w ^ (b'"' as u64 * ONES)) | zero(w ^ (b'\\' as u64 * ONES));
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    memchr::memchr2(b'"', b'\\', &b[i..]).map_or(b.len(), |k| i + k)
}

/// The value of `token` if it is an integer as serde_json writes one: in its shortest
/// form, without a sign for zero (`-0` is written `-0.0`), and within 64 bits, signed or
/// unsigned (beyond, serde_json reads a float).
pub fn written_integer(token: &[u8]) -> Option<i128> {
    let (negative, digits) = match token.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, token),
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let magnitude = digits.iter().try_fold(0u64, |m, &d| {
        let d = d.checked_sub(b'0').filter(|d| *d <= 9)?;
        m.checked_mul(10)?.checked_add(u64::from(d))
    })?;
    match negative {
        false => Some(i128::from(magnitude)),
        true if magnitude == 0 || magnitude > i64::MIN.unsigned_abs() => None,
        true => Some(-i128::from(magnitude)),
    }
}

/// The index of the closing quote of the string whose opening quote is at `start`.
pub fn string_end(b: &[u8], start: usize) -> Option<usize> {
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let mut i = start + 1;
    loop {
        i = quote_or_escape(b, i);
        match b.get(i)? {
            b'"' => return Some(i),
            _ => i += 2,
        }
    }
}

/// Just past the value that starts at `i`, found by its structure alone (strings, and
/// brackets outside them); a number or a literal ends at the next delimiter.
pub fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i).map(|e| e + 1),
        b'{' | b'[' => {
            // One bit per open bracket, set for a brace: each closer must match its opener.
            // Deeper than 128 levels is left to a real parser.
            let (mut open, mut depth) = (0u128, 0u32);
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => j = string_end(b, j)?,
                    &c @ (b'{' | b'[') => {
                        if depth == u128::BITS {
                            return None;
                        }
                        open = (open << 1) | u128::from(c == b'{');
                        depth += 1;
                    }
                    &c @ (b'}' | b']') => {
                        if (open & 1 == 1) != (c == b'}') {
                            return None;
                        }
                        open >>= 1;
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        // A number or a literal: up to the next delimiter.
        _ => Some(
            b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |k| i + k),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_are_found_at_any_offset() {
        for len in 0..70 {
            for at in 0..=len {
                let mut text = vec![b'a'; len];
                if at < len {
                    text[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                }
                assert_eq!(quote_or_escape(&text, 0), at, "len {len}, mark at {at}");
                assert_eq!(quote_or_escape(&text, at), at);
            }
        }
        // Bytes that differ from a quote or a backslash by one bit are not marks.
        let near = [b'"' ^ 1, b'"' ^ 0x80, b'\\' ^ 1, b'\\' ^ 0x80, 0, 0xff];
        let text: Vec<u8> = near.iter().cycle().take(40).copied().collect();
        assert_eq!(quote_or_escape(&text, 0), text.len());
    }

    #[test]
    fn integers_as_serde_json_writes_them() {
        for (text, value) in [
            ("0", 0i128),
            ("-7", -7),
            ("18446744073709551615", u64::MAX.into()),
            ("-9223372036854775808", i64::MIN.into()),
        ] {
            assert_eq!(written_integer(text.as_bytes()), Some(value), "{text}");
        }
        for text in [
            "",
            "-",
            "-0",
            "07",
            "+7",
            "7.0",
            "1e3",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            assert_eq!(written_integer(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn values_end_where_their_structure_does() {
        let text = br#"{"a":[1,"]}",{"b":"\"{"}],"c":true} tail"#;
        assert_eq!(value_end(text, 0), Some(text.len() - 5));
        assert_eq!(value_end(br#"12.5e3,"#, 0), Some(6));
        assert_eq!(value_end(br#"true}"#, 0), Some(4));
        assert_eq!(value_end(br#"[1,[2]"#, 0), None);
        assert_eq!(value_end(br#"{"a":"}"#, 0), None);
        assert_eq!(
            value_end(br#"[1,[2]}"#, 0),
            None,
            "a brace cannot close a bracket"
        );
        assert_eq!(value_end(br#"{"a":1]"#, 0), None);
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(value_end(deep.as_bytes(), 0), Some(256));
        let deeper = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(value_end(deeper.as_bytes(), 0), None);
    }

    #[test]
    fn strings_end_at_their_first_unescaped_quote() {
        assert_eq!(string_end(br#""abc" x"#, 0), Some(4));
        assert_eq!(string_end(br#""a\\"b"#, 0), Some(4));
        assert_eq!(string_end(br#""a\"b""#, 0), Some(5));
        assert_eq!(string_end(br#""unterminated"#, 0), None);
        assert_eq!(string_end(br#"x"a""#, 0), None);
    }
}
