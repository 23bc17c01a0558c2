//! How a forwarded request failed without an answer from the server, as the transport
//! reports it; this decides whether a call counts toward its quota.

/// Why a request got no answer from the server.
///
/// A call's reservation is given back only when the server provably never acted on the
/// request; whenever the tool may have run, it counts (a limit may then be reached early,
/// never exceeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFailure {
    /// The request never reached the server: the connection was refused, the name did not
    /// resolve, the TLS handshake failed, or a child server had closed its input before
    /// the request was written. Given back.
    NotSent,
    /// The server refused the HTTP request (4xx: credentials, an expired session, a bad
    /// request) without running it, as it would with a JSON-RPC error. Given back.
    Refused,
    /// No answer within `--request-timeout`. Counted.
    TimedOut,
    /// The request reached the server but its answer was lost: an HTTP 5xx, an event
    /// stream that broke, a body that could not be read. Counted.
    AnswerLost,
    /// The proxy is shutting down and gave up waiting for the answer. Counted.
    ShuttingDown,
    /// Refused before it was sent, because too many requests were in flight. Given back.
    Overloaded,
}

impl RequestFailure {
    /// The `reason` in the error's data, for a client that tells failures apart.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestFailure::NotSent => "not_sent",
            RequestFailure::Refused => "refused",
            RequestFailure::TimedOut => "timeout",
            RequestFailure::AnswerLost => "answer_lost",
            RequestFailure::ShuttingDown => "shutting_down",
            RequestFailure::Overloaded => "overloaded",
        }
    }
}
