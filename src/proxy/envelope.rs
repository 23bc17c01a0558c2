//! Reading and writing the JSON-RPC envelope: what the fast path reads of a response, the
//! id to answer a message with, and what the proxy decided for a message.

use super::*;

/// What the fast path reads of a server message that is a response.
pub(super) struct ResponseEnvelope<'a> {
    /// The pending-table key.
    pub(super) key: IdKey,
    /// A JSON-RPC error (not null).
    pub(super) failed: bool,
    pub(super) result_type: Option<std::borrow::Cow<'a, str>>,
    pub(super) is_error: Option<bool>,
}

/// What the fast path made of a server line.
pub(super) enum Read<'a> {
    /// A request or a notification, in one JSON value whose envelope is unambiguous.
    NotAResponse,
    Response(ResponseEnvelope<'a>),
    /// For the exact path to read: not one JSON object, or not read unambiguously here.
    Unsure,
}

impl<'a> ResponseEnvelope<'a> {
    pub(super) fn read(line: &'a [u8]) -> Read<'a> {
        if line.starts_with(b"{")
            && let Some(outline) = json::envelope_outline(line)
        {
            return Self::read_outline(&outline);
        }
        // serde_json checks the UTF-8 of the strings it reads, not of those it skips, so
        // the whole line is checked first: text that is not UTF-8 is not JSON.
        let Ok(text) = std::str::from_utf8(line) else {
            return Read::Unsure;
        };
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
            return Read::Unsure;
        };
        if envelope.method.is_some() {
            return Read::NotAResponse;
        }
        let Some(id) = envelope
            .id
            .and_then(|id| serde_json::from_str::<Value>(id.get()).ok())
        else {
            return Read::Unsure;
        };
        let result = envelope.result.as_ref();
        Read::Response(ResponseEnvelope {
            key: IdKey::from_value(&id),
            failed: envelope.error.is_some_and(|e| e.get() != "null"),
            result_type: result.and_then(|r| r.result_type).map(Into::into),
            is_error: result.and_then(|r| r.is_error),
        })
    }

    /// A message whose envelope is written canonically (most servers write so): its
    /// members are unambiguous and can be read in place, the id from its text.
    pub(super) fn read_outline(outline: &[json::Member<'a>]) -> Read<'a> {
        let (mut id, mut method, mut error, mut result) = (None, None, None, None);
        for (at, m) in outline.iter().enumerate().filter(|(_, m)| m.depth == 1) {
            match m.key {
                b"id" => id = Some(m.value),
                b"method" => method = Some(m.value),
                b"error" => error = Some(m.value),
                b"result" => result = Some(at),
                b"jsonrpc" => {}
                other if near_miss(other, keys::ENVELOPE) => return Read::Unsure,
                _ => {}
            }
        }
        if method.is_some() {
            return Read::NotAResponse;
        }
        let Some(id) = id.and_then(|id| std::str::from_utf8(id).ok()) else {
            return Read::Unsure;
        };
        let mut response = ResponseEnvelope {
            key: IdKey::from_text(id),
            failed: error.is_some_and(|e| e != b"null"),
            result_type: None,
            is_error: None,
        };
        // As the exact path reads them: a string, a boolean, anything else as absent.
        let members = result
            .into_iter()
            .flat_map(|at| json::children(outline, at));
        for &json::Member { key, value, .. } in members {
            match key {
                b"resultType" => {
                    response.result_type = match serde_json::from_slice::<&str>(value) {
                        Ok(t) => Some(t.into()),
                        Err(_) => serde_json::from_slice::<String>(value).ok().map(Into::into),
                    }
                }
                b"isError" => response.is_error = serde_json::from_slice::<bool>(value).ok(),
                _ => {}
            }
        }
        Read::Response(response)
    }
}

/// The parts of a server message the proxy reads on the fast path. Duplicate members are
/// an error here too, so a response is never read two ways; so is a result that is not an
/// object, or whose `resultType` is not a plain string, and any member a JSON-RPC message
/// does not have (`ID`, say: the exact path reads those).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) jsonrpc: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub(super) params: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub(super) id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub(super) method: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub(super) error: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub(super) result: Option<ResultType<'a>>,
}

#[derive(serde::Deserialize)]
pub(super) struct ResultType<'a> {
    #[serde(rename = "resultType", borrow)]
    pub(super) result_type: Option<&'a str>,
    #[serde(rename = "isError")]
    pub(super) is_error: Option<bool>,
}

pub(super) enum Handled {
    /// Forward: the original line (`None`), or these bytes; with the id of the request
    /// that awaits an answer, if it is one.
    Forward(Option<Vec<u8>>, Option<RequestId>),
    /// Answer the client without forwarding.
    Reply(Value),
}

impl Handled {
    /// Writes what was decided for `line` to `out`. A message forwarded as received is
    /// copied once, straight into the output.
    pub(super) fn emit(self, line: &[u8], out: &mut impl Outbox) {
        match self {
            Handled::Forward(None, id) => out.to_server(line, id.as_slice()),
            Handled::Forward(Some(bytes), id) => out.to_server(&bytes, id.as_slice()),
            Handled::Reply(r) => reply_to_client(out, &r),
        }
    }
}

/// An answer of the proxy's own, to the request whose id it carries.
pub(super) fn reply_to_client(out: &mut impl Outbox, reply: &Value) {
    let id = RequestId::of_reply(reply);
    out.to_client(&to_line(reply), id.as_slice());
}

pub(super) enum Answer {
    Unchanged,
    Replaced(Value),
    /// Not passed on at all.
    Dropped,
}

pub(super) fn to_line(v: &Value) -> Vec<u8> {
    // serde_json escapes control characters in strings, so the line has no raw newline.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The id of a message that was rejected as ambiguous, if one can be read.
pub(super) fn lenient_id(line: &[u8]) -> Value {
    serde_json::from_slice::<Value>(line)
        .map(|v| request_id(&v))
        .unwrap_or(Value::Null)
}

/// The id of a message, to answer it with; null when it has none that is valid.
pub(super) fn request_id(msg: &Value) -> Value {
    msg.get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null)
}

/// [`keys::near_miss`] for a key of canonical text (ASCII, so it is also a `str`).
pub(super) fn near_miss(key: &[u8], known: &[&'static str]) -> bool {
    std::str::from_utf8(key).is_ok_and(|k| keys::near_miss(k, known).is_some())
}
