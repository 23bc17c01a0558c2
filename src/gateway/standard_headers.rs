//! The standard request headers of the stateless revision (2026-07-28): `Mcp-Method` and
//! `Mcp-Name` mirror the body so that load balancers can route without reading it, and a
//! server must refuse a request whose headers and body disagree (HTTP 400, JSON-RPC
//! `-32020`). A mismatch is how a request would show one thing to the edge and do another,
//! so the gateway refuses it before anything else, and always decides on the body.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The first revision without sessions, whose requests carry the standard headers.
pub const STATELESS_REVISION: &str = "2026-07-28";

/// The JSON-RPC error code of a header that disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// Where a request's protocol revision is carried in the stateless revision.
pub const PROTOCOL_VERSION_META_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// Whether `version` (a revision date) is the stateless revision or later. Revision names
/// are ISO dates, so they order as text.
pub fn is_stateless(version: &str) -> bool {
    version.len() == STATELESS_REVISION.len() && version >= STATELESS_REVISION
}

/// The headers of one POST, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Why a request's headers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMismatch {
    #[error("the Mcp-Method header is required on requests of protocol revision {0}")]
    MissingMethod(String),
    #[error("the Mcp-Method header says \"{header}\" but the body's method is \"{body}\"")]
    Method { header: String, body: String },
    #[error("the Mcp-Name header is required on {0} requests of protocol revision {1}")]
    MissingName(String, String),
    #[error("the Mcp-Name header says \"{header}\" but the body names \"{body}\"")]
    Name { header: String, body: String },
    #[error("the Mcp-Name header is not a valid =?base64?…?= value")]
    BadEncoding,
    #[error(
        "the MCP-Protocol-Version header says \"{header}\" but the body's _meta says \"{body}\""
    )]
    Version { header: String, body: String },
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<std::collections::HashMap<String, &'a RawValue>>,
}

/// The protocol revision a request's body declares in its `_meta` (stateless clients put it
/// on every request), if any.
pub fn body_revision(body: &[u8]) -> Option<String> {
    let message: Message<'_> = serde_json::from_slice(body).ok()?;
    let raw = message.params?.meta?.remove(PROTOCOL_VERSION_META_KEY)?;
    serde_json::from_str(raw.get()).ok()
}

/// Checks the standard headers of a POST against its body (one message). Requests of an
/// earlier revision, without the headers, pass; a header that is present is checked
/// whatever the revision, since a balancer in front may have acted on it.
pub fn check(headers: StandardHeaders<'_>, body: &[u8]) -> Result<(), HeaderMismatch> {
    let Ok(message) = serde_json::from_slice::<Message<'_>>(body) else {
        // Not one message (a batch, a response, or unreadable): the policy core says why.
        return Ok(());
    };
    let Some(method) = message.method.as_deref() else {
        return Ok(());
    };
    let declared = message
        .params
        .as_ref()
        .and_then(|p| p.meta.as_ref())
        .and_then(|m| m.get(PROTOCOL_VERSION_META_KEY))
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    if let (Some(header), Some(body)) = (headers.protocol_version, declared.as_deref())
        && header != body
    {
        return Err(HeaderMismatch::Version {
            header: header.to_string(),
            body: body.to_string(),
        });
    }
    let revision = declared.as_deref().or(headers.protocol_version);
    let stateless = revision.is_some_and(is_stateless);
    match headers.method {
        Some(header) if header != method => {
            return Err(HeaderMismatch::Method {
                header: header.to_string(),
                body: method.to_string(),
            });
        }
        None if stateless => {
            return Err(HeaderMismatch::MissingMethod(
                revision.unwrap_or_default().to_string(),
            ));
        }
        _ => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => message.params.as_ref().and_then(|p| p.name.as_deref()),
        "resources/read" => message.params.as_ref().and_then(|p| p.uri.as_deref()),
        _ => return Ok(()),
    };
    match (headers.name, named) {
        (Some(header), body) => {
            let header = decode(header)?;
            if Some(header.as_str()) != body {
                return Err(HeaderMismatch::Name {
                    header,
                    body: body.unwrap_or_default().to_string(),
                });
            }
        }
        (None, _) if stateless => {
            return Err(HeaderMismatch::MissingName(
                method.to_string(),
                revision.unwrap_or_default().to_string(),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// A header value as sent: plain printable ASCII as it is, anything else wrapped as
/// `=?base64?<base64 of the UTF-8 text>?=`.
fn decode(value: &str) -> Result<String, HeaderMismatch> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| HeaderMismatch::BadEncoding)?;
    String::from_utf8(bytes).map_err(|_| HeaderMismatch::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

    fn headers<'a>(method: Option<&'a str>, name: Option<&'a str>) -> StandardHeaders<'a> {
        StandardHeaders {
            protocol_version: Some("2026-07-28"),
            method,
            name,
        }
    }

    #[test]
    fn matching_headers_pass_and_the_revision_is_read_from_the_body() {
        assert_eq!(
            check(headers(Some("tools/call"), Some("get_weather")), CALL),
            Ok(())
        );
        assert_eq!(body_revision(CALL).as_deref(), Some("2026-07-28"));
        assert!(is_stateless("2026-07-28") && is_stateless("2027-01-01"));
        assert!(!is_stateless("2025-11-25") && !is_stateless("banana"));
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_refused() {
        assert!(matches!(
            check(headers(Some("tools/list"), Some("get_weather")), CALL),
            Err(HeaderMismatch::Method { .. })
        ));
        let err = check(headers(Some("tools/call"), Some("harmless")), CALL).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Mcp-Name header says \"harmless\" but the body names \"get_weather\""
        );
        let older = StandardHeaders {
            protocol_version: Some("2025-11-25"),
            ..headers(Some("tools/call"), Some("get_weather"))
        };
        assert!(matches!(
            check(older, CALL),
            Err(HeaderMismatch::Version { .. })
        ));
    }

    #[test]
    fn stateless_requests_must_carry_the_headers_older_ones_need_not() {
        assert!(matches!(
            check(headers(None, None), CALL),
            Err(HeaderMismatch::MissingMethod(_))
        ));
        assert!(matches!(
            check(headers(Some("tools/call"), None), CALL),
            Err(HeaderMismatch::MissingName(..))
        ));
        let old = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        assert_eq!(check(StandardHeaders::default(), old), Ok(()));
        // …but a header an older client did send is still checked.
        let sent = StandardHeaders {
            name: Some("y"),
            ..StandardHeaders::default()
        };
        assert!(matches!(check(sent, old), Err(HeaderMismatch::Name { .. })));
    }

    #[test]
    fn names_outside_printable_ascii_come_base64_wrapped_and_resources_are_named_by_uri() {
        let body = r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///tmp/café","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let wrapped = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode("file:///tmp/café")
        );
        assert_eq!(
            check(
                headers(Some("resources/read"), Some(&wrapped)),
                body.as_bytes()
            ),
            Ok(())
        );
        assert_eq!(
            check(
                headers(Some("resources/read"), Some("=?base64?%%%?=")),
                body.as_bytes()
            ),
            Err(HeaderMismatch::BadEncoding)
        );
    }
}
