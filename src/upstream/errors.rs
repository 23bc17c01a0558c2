//! How an MCP server over HTTP failed, told so that the client knows what to do: shared by
//! the stdio bridge, the listener's upstream client and `intercept scan`.

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use crate::proxy::RequestFailure;
use crate::transport::TransportError;

/// How a request that could not be sent failed: only a failure to connect (refused,
/// unresolvable, TLS handshake, connect timeout) proves the server never got it.
pub(crate) fn send_failure(e: &reqwest::Error) -> RequestFailure {
    if e.is_connect() {
        RequestFailure::NotSent
    } else if e.is_timeout() {
        RequestFailure::TimedOut
    } else {
        RequestFailure::AnswerLost
    }
}

/// Parses a server URL: only http and https are accepted.
pub(crate) fn parse_url(url: &str) -> Result<Url, TransportError> {
    let parsed =
        Url::parse(url).map_err(|e| TransportError::Url(url.to_string(), e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TransportError::Url(
            url.to_string(),
            "only http and https are supported".into(),
        ));
    }
    Ok(parsed)
}

/// A response's content type, lowercased; empty when absent or not text.
pub(crate) fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The `WWW-Authenticate` challenge of a response, if any.
pub(crate) fn auth_challenge(headers: &HeaderMap) -> Option<String> {
    headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn describe_send_error(url: &Url, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("The MCP server at {url} did not answer in time")
    } else if e.is_connect() {
        format!(
            "Cannot reach the MCP server at {url}: {}; the request was not sent",
            root_cause(e)
        )
    } else {
        format!(
            "Request to the MCP server at {url} failed: {}",
            root_cause(e)
        )
    }
}

pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

/// A short, single-line description of an error body: its text, or that it is a web page.
pub(crate) fn summarize(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "(empty body)".to_string();
    }
    let lower = trimmed
        .get(..trimmed.len().min(200))
        .unwrap_or("")
        .to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        return "an HTML error page".to_string();
    }
    let one_line: String = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}
