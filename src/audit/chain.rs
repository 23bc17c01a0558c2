//! The hash chain that links every line of an event file to the one before it.
//!
//! Each line ends with its own hash, as its last member:
//!
//! ```text
//! {"seq":7,"prev":"<hash of line 6>", … ,"hash":"<64 hex>"}     without a key
//! {"seq":7,"prev":"<hmac of line 6>", … ,"hmac":"<64 hex>"}     with a key
//! ```
//!
//! The hash is SHA-256, or HMAC-SHA256 with the audit key, of the line's exact bytes without
//! that last member (`{"seq":7,"prev":"…",…}`), which include `prev`: so it covers the line
//! before too, without hashing `prev` a second time. A line changed in any byte no longer
//! matches its own hash, so the changed line is the one named; a line whose hash was
//! recomputed no longer matches the next line's `prev`.

use ring::{digest, hmac};

use super::key::AuditKey;

/// Length of a hash in hex.
pub const HEX_LEN: usize = 64;

/// How lines are hashed: plainly, or keyed.
#[derive(Debug, Clone, Default)]
pub enum Chain {
    #[default]
    Plain,
    Keyed(AuditKey),
}

/// Which kind of hash a line carries, by the name of its last member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `"hash"`: SHA-256, which anyone can recompute.
    Plain,
    /// `"hmac"`: HMAC-SHA256, which only the key's holder can.
    Keyed,
}

impl Kind {
    pub fn member(self) -> &'static str {
        match self {
            Kind::Plain => "hash",
            Kind::Keyed => "hmac",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Plain => "not keyed: SHA-256",
            Kind::Keyed => "keyed: HMAC-SHA256",
        }
    }
}

/// A line split into the part its hash covers and the hash it carries.
#[derive(Debug)]
pub struct Sealed<'a> {
    /// The line without its last member and closing brace: `{"seq":7,…`.
    pub body: &'a [u8],
    pub kind: Kind,
    /// 64 lowercase hex characters.
    pub hash: &'a str,
}

/// Splits `line` into what is hashed and its hash; `None` when it does not end with a hash
/// member of the exact form the writer writes.
pub fn split(line: &[u8]) -> Option<Sealed<'_>> {
    // `,"hash":"` + 64 hex + `"}`
    const TAIL: usize = 9 + HEX_LEN + 2;
    let cut = line.len().checked_sub(TAIL)?;
    let (body, tail) = line.split_at(cut);
    let kind = match &tail[..9] {
        b",\"hash\":\"" => Kind::Plain,
        b",\"hmac\":\"" => Kind::Keyed,
        _ => return None,
    };
    let hash = &tail[9..9 + HEX_LEN];
    if &tail[9 + HEX_LEN..] != b"\"}"
        || !hash.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    Some(Sealed {
        body,
        kind,
        hash: std::str::from_utf8(hash).ok()?,
    })
}

impl Chain {
    pub fn kind(&self) -> Kind {
        match self {
            Chain::Plain => Kind::Plain,
            Chain::Keyed(_) => Kind::Keyed,
        }
    }

    pub fn key(&self) -> Option<&AuditKey> {
        match self {
            Chain::Plain => None,
            Chain::Keyed(key) => Some(key),
        }
    }

    /// The hash of a line whose text, without its hash member and closing brace, is `body`.
    pub fn hash(&self, body: &[u8]) -> String {
        let parts: [&[u8]; 2] = [body, b"}"];
        match self {
            Chain::Plain => {
                let mut ctx = digest::Context::new(&digest::SHA256);
                parts.iter().for_each(|p| ctx.update(p));
                super::hex(ctx.finish().as_ref())
            }
            Chain::Keyed(key) => {
                let mut ctx = hmac::Context::with_key(key.hmac());
                parts.iter().for_each(|p| ctx.update(p));
                super::hex(ctx.sign().as_ref())
            }
        }
    }

    /// Appends the hash member that closes a line: `,"hash":"…"}`, and returns the hash.
    pub fn close_line(&self, body_start: usize, out: &mut Vec<u8>) -> String {
        let hash = self.hash(&out[body_start..]);
        out.extend_from_slice(b",\"");
        out.extend_from_slice(self.kind().member().as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}");
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_line_splits_back_into_what_was_hashed() {
        let key = AuditKey::from_bytes(b"0123456789abcdef", "test").unwrap();
        for chain in [Chain::Plain, Chain::Keyed(key)] {
            let mut out = b"{\"seq\":1,\"prev\":\"\",\"type\":\"x\"".to_vec();
            let hash = chain.close_line(0, &mut out);
            let sealed = split(&out).unwrap();
            assert_eq!(sealed.kind, chain.kind());
            assert_eq!(sealed.hash, hash);
            assert_eq!(chain.hash(sealed.body), hash);
            let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(value[chain.kind().member()], hash.as_str());
        }
        assert_eq!(
            Chain::Plain.hash(b"{\"a\":1"),
            crate::audit::sha256_hex(b"{\"a\":1}"),
            "the line as it would be without its hash"
        );
    }

    #[test]
    fn lines_without_a_well_formed_hash_member_do_not_split() {
        let hex = "ab".repeat(32);
        assert!(split(format!("{{\"a\":1,\"hash\":\"{hex}\"}}").as_bytes()).is_some());
        for bad in [
            String::new(),
            "{}".into(),
            format!("{{\"a\":1,\"hash\":\"{}\"}}", "AB".repeat(32)),
            format!("{{\"a\":1,\"hush\":\"{hex}\"}}"),
            format!("{{\"a\":1,\"hash\":\"{hex}\" }}"),
            format!("{{\"a\":1,\"hash\":\"{}é\"}}", &hex[..62]),
        ] {
            assert!(split(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
