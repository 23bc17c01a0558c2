//! Request ids and progress tokens relabelled for a connection that several clients share.
//!
//! Stateless clients (protocol revision 2026-07-28) share the gateway's connections to a
//! server, and two of them may both send id `1` or progress token `"p"`. On the shared
//! connection each request gets an id of the gateway's; the answer is given back its
//! original id, byte for byte, before anything else sees it. Only the members that change
//! are rewritten: every other member keeps its text and place.

use indexmap::IndexMap;
use serde_json::value::RawValue;

type Members = IndexMap<String, Box<RawValue>>;

/// A request relabelled for the shared connection, and what to give back to its answers.
#[derive(Debug)]
pub struct Relabelled {
    pub message: Vec<u8>,
    pub original_id: Box<RawValue>,
    /// The request's own progress token, which now reads as the gateway's id.
    pub original_token: Option<Box<RawValue>>,
}

/// Gives request `message` the id `id` (a JSON string), and its progress token, if it has
/// one, the same value. `None` if it is not a request object.
pub fn request(message: &[u8], id: &str) -> Option<Relabelled> {
    let mut members: Members = serde_json::from_slice(message).ok()?;
    members.get("method")?;
    let label = raw_string(id);
    let original_id = members.insert("id".into(), label.clone())?;
    let mut original_token = None;
    if let Some(params) = members.get("params") {
        let mut params: Members = serde_json::from_str(params.get()).ok()?;
        if let Some(meta) = params.get("_meta") {
            let mut meta: Members = serde_json::from_str(meta.get()).ok()?;
            if meta.contains_key("progressToken") {
                original_token = meta.insert("progressToken".into(), label);
                params.insert("_meta".into(), to_raw(&meta)?);
                members.insert("params".into(), to_raw(&params)?);
            }
        }
    }
    Some(Relabelled {
        message: serde_json::to_vec(&members).ok()?,
        original_id,
        original_token,
    })
}

/// Gives an answer its request's original id.
pub fn answer(message: &[u8], original_id: &RawValue) -> Option<Vec<u8>> {
    let mut members: Members = serde_json::from_slice(message).ok()?;
    members.insert("id".into(), original_id.to_owned());
    serde_json::to_vec(&members).ok()
}

/// Gives a progress notification its request's original token.
pub fn progress(message: &[u8], original_token: &RawValue) -> Option<Vec<u8>> {
    let mut members: Members = serde_json::from_slice(message).ok()?;
    let mut params: Members = serde_json::from_str(members.get("params")?.get()).ok()?;
    params.insert("progressToken".into(), original_token.to_owned());
    members.insert("params".into(), to_raw(&params)?);
    serde_json::to_vec(&members).ok()
}

fn raw_string(text: &str) -> Box<RawValue> {
    RawValue::from_string(serde_json::Value::from(text).to_string())
        .expect("a JSON string is valid JSON")
}

fn to_raw(members: &Members) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(members).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_and_progress_token_change_and_nothing_else() {
        let sent = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":[1.50,"\u00e9"]},"_meta":{"progressToken":"p","other":true}}}"#;
        let r = request(sent, "intercept-7").unwrap();
        assert_eq!(
            String::from_utf8(r.message).unwrap(),
            r#"{"jsonrpc":"2.0","id":"intercept-7","method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":[1.50,"\u00e9"]},"_meta":{"progressToken":"intercept-7","other":true}}}"#
        );
        assert_eq!(r.original_id.get(), "1");
        assert_eq!(r.original_token.unwrap().get(), r#""p""#);
    }

    #[test]
    fn answers_and_progress_get_their_originals_back() {
        let original: Box<RawValue> = serde_json::from_str(r#""abc""#).unwrap();
        let back = answer(
            br#"{"jsonrpc":"2.0","id":"intercept-7","result":{"z":1,"a":2}}"#,
            &original,
        )
        .unwrap();
        assert_eq!(
            back,
            br#"{"jsonrpc":"2.0","id":"abc","result":{"z":1,"a":2}}"#
        );
        let token: Box<RawValue> = serde_json::from_str("42").unwrap();
        let back = progress(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"intercept-7","progress":1}}"#,
            &token,
        )
        .unwrap();
        assert_eq!(
            back,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":42,"progress":1}}"#
        );
    }

    #[test]
    fn only_request_objects_are_relabelled() {
        assert!(
            request(
                br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                "g"
            )
            .is_none()
        );
        assert!(request(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, "g").is_none());
        assert!(request(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "g").is_none());
    }
}
