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

/// Just past the JSON value that starts at `i`, checked against the JSON grammar: every
/// token where the grammar allows it, numbers and literals whole, escapes valid (a `\u`
/// surrogate only in a pair), and whitespace between tokens. What is left to the caller:
/// that the text is UTF-8 and that its strings hold no control character (the envelope
/// scan checks both for the whole line at once). Deeper than 128 levels: None, for a real
/// parser to decide.
pub fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    // One bit per open container, set for an object.
    let (mut open, mut depth) = (0u128, 0u32);
    loop {
        // A value.
        match *b.get(i)? {
            b'"' => i = checked_string_end(b, i)?,
            c @ (b'{' | b'[') => {
                if depth == u128::BITS {
                    return None;
                }
                let object = c == b'{';
                i = skip_space(b, i + 1);
                if b.get(i) == Some(if object { &b'}' } else { &b']' }) {
                    i += 1;
                } else {
                    open = (open << 1) | u128::from(object);
                    depth += 1;
                    if object {
                        i = member_value(b, i)?;
                    }
                    continue;
                }
            }
            b't' => i = literal_end(b, i, b"true")?,
            b'f' => i = literal_end(b, i, b"false")?,
            b'n' => i = literal_end(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            _ => return None,
        }
        // What follows a value: the next member or element, or the end of containers.
        loop {
            if depth == 0 {
                return Some(i);
            }
            i = skip_space(b, i);
            let object = open & 1 == 1;
            match (*b.get(i)?, object) {
                (b',', true) => {
                    i = member_value(b, skip_space(b, i + 1))?;
                    break;
                }
                (b',', false) => {
                    i = skip_space(b, i + 1);
                    break;
                }
                (b'}', true) | (b']', false) => {
                    i += 1;
                    open >>= 1;
                    depth -= 1;
                }
                _ => return None,
            }
        }
    }
}

/// From a member's key to the start of its value.
fn member_value(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let colon = skip_space(b, checked_string_end(b, i)?);
    (b.get(colon) == Some(&b':')).then(|| skip_space(b, colon + 1))
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += usize::from(b.get(i) == Some(&b'-'));
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'+' | b'-')));
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// Just past the closing quote of the string that starts at `start`, its escapes checked.
fn checked_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    // A `\u` high surrogate must be followed at once by a low one.
    let mut awaiting_low = false;
    loop {
        i = quote_or_escape(b, i);
        match b.get(i)? {
            b'"' => return (!awaiting_low).then_some(i + 1),
            _ => match b.get(i + 1)? {
                b'u' => {
                    let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
                    let unit = u16::from_str_radix(hex, 16).ok()?;
                    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                        return None;
                    }
                    let low = (0xdc00..0xe000).contains(&unit);
                    if low != awaiting_low {
                        return None;
                    }
                    awaiting_low = (0xd800..0xdc00).contains(&unit);
                    i += 6;
                    if awaiting_low && b.get(i) != Some(&b'\\') {
                        return None;
                    }
                }
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' if !awaiting_low => i += 2,
                _ => return None,
            },
        }
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
        // The grammar, not only the structure (found by fuzzing: `[)]` passed).
        for bad in [
            br#"[)]"#.as_slice(),
            br#"[1 2]"#,
            br#"{"a" 1}"#,
            br#"{"a":}"#,
            br#"{1:2}"#,
            br#"[1,]"#,
            br#"[tru]"#,
            br#"[01]"#,
            br#"[1.]"#,
            br#"[1e]"#,
            br#"[-]"#,
            br#"["\x"]"#,
            br#"["\u12G4"]"#,
            br#"["\u+123"]"#,
            br#"["\ud800"]"#,
            br#"["\udc00"]"#,
            br#"["\ud800x\udc00"]"#,
            br#"["\ud800\n"]"#,
            br#"["\ud800\ud800"]"#,
        ] {
            assert_eq!(value_end(bad, 0), None, "{}", String::from_utf8_lossy(bad));
            assert!(serde_json::from_slice::<serde_json::Value>(bad).is_err());
        }
        for good in [
            br#"[ 1 , { "a" : [ ] } , "\ud83d\ude00\u00e9\/" , -0.5e+3 , true , null ]"#.as_slice(),
            br#"{}"#,
            br#"[]"#,
            br#""""#,
        ] {
            assert_eq!(
                value_end(good, 0),
                Some(good.len()),
                "{}",
                String::from_utf8_lossy(good)
            );
            assert!(serde_json::from_slice::<serde_json::Value>(good).is_ok());
        }
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
