//! Which HTTP stream of a session a server message goes out on.
//!
//! A stdio server has one output for everything, while a Streamable HTTP client reads
//! several streams: the response to each POST that carried requests, and the GET stream
//! for what belongs to no request. The answer to a request goes to the POST that sent it; a
//! progress notification follows its progress token to the same POST; anything else
//! (sampling, elicitation and roots requests, logging, list changes) goes to the GET stream
//! when one is open, else to the oldest open POST stream (the specification allows either),
//! else it waits for a GET stream in a bounded queue. A legacy HTTP+SSE session has one
//! stream, which takes everything.
//!
//! This is the routing decision only; the caller does the sending, so no lock is held
//! while a slow client is written to.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// Messages kept for a GET stream that is not open yet; past this the oldest is dropped.
const QUEUE_LIMIT: usize = 256;

/// One message for the client, and whether it completes the stream it goes on (the last
/// answer a POST awaited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub message: Vec<u8>,
    pub last: bool,
}

pub type StreamSender = mpsc::Sender<Outgoing>;

/// Where one message goes.
#[derive(Debug)]
pub enum Destination {
    Stream(StreamSender),
    /// Queued for the next GET stream.
    Queued,
    /// Nobody can take it (its POST stream was closed by the client): dropped.
    Dropped,
}

#[derive(Debug, Default)]
pub struct Streams {
    /// Every message goes to the one stream (legacy HTTP+SSE).
    single_stream: bool,
    next_post: u64,
    /// Open POST streams, oldest first, with the requests each still awaits.
    posts: BTreeMap<u64, Post>,
    /// Which POST awaits each request id (the id's JSON text).
    by_request: HashMap<String, u64>,
    /// Which request each progress token belongs to.
    by_progress_token: HashMap<String, String>,
    listener: Option<StreamSender>,
    queue: VecDeque<Vec<u8>>,
}

#[derive(Debug)]
struct Post {
    sender: StreamSender,
    awaiting: Vec<String>,
}

/// The parts of a JSON-RPC message that route it.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Meta<'a>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

/// A forwarded request's id and progress token, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaited {
    pub id: String,
    pub progress_token: Option<String>,
}

impl Awaited {
    /// The requests in a message for the server (one message or a batch): those with an id
    /// and a method.
    pub fn in_message(message: &[u8]) -> Vec<Awaited> {
        let one = |e: Envelope<'_>| -> Option<Awaited> {
            e.method.as_ref()?;
            let id = e.id.map(RawValue::get).filter(|id| *id != "null")?;
            Some(Awaited {
                id: id.to_string(),
                progress_token: e
                    .params
                    .and_then(|p| p.meta)
                    .and_then(|m| m.progress_token)
                    .map(|t| t.get().to_string()),
            })
        };
        if let Ok(batch) = serde_json::from_slice::<Vec<Envelope<'_>>>(message) {
            return batch.into_iter().filter_map(one).collect();
        }
        serde_json::from_slice::<Envelope<'_>>(message)
            .ok()
            .and_then(one)
            .into_iter()
            .collect()
    }
}

impl Streams {
    /// Routing for a legacy HTTP+SSE session: everything on the one stream.
    pub fn single_stream() -> Self {
        Streams {
            single_stream: true,
            ..Streams::default()
        }
    }

    /// A POST stream that awaits the answers to `requests`; returns its handle for
    /// [`Streams::close_post`].
    pub fn open_post(&mut self, sender: StreamSender, requests: &[Awaited]) -> u64 {
        let post = self.next_post;
        self.next_post += 1;
        for request in requests {
            self.by_request.insert(request.id.clone(), post);
            if let Some(token) = &request.progress_token {
                self.by_progress_token
                    .insert(token.clone(), request.id.clone());
            }
        }
        self.posts.insert(
            post,
            Post {
                sender,
                awaiting: requests.iter().map(|r| r.id.clone()).collect(),
            },
        );
        post
    }

    /// The client went away from a POST stream: later messages for it are dropped (a
    /// disconnection is not a cancellation: the server still runs the request).
    pub fn close_post(&mut self, post: u64) {
        if let Some(closed) = self.posts.remove(&post) {
            for id in closed.awaiting {
                self.forget_request(&id);
            }
        }
    }

    /// Opens the GET stream (or the legacy stream), handing it what was queued. `None` if
    /// one is already open: a session has one.
    pub fn open_listener(&mut self, sender: StreamSender) -> Option<Vec<Vec<u8>>> {
        if self.listener.as_ref().is_some_and(|l| !l.is_closed()) {
            return None;
        }
        self.listener = Some(sender);
        Some(self.queue.drain(..).collect())
    }

    pub fn has_listener(&self) -> bool {
        self.listener.as_ref().is_some_and(|l| !l.is_closed())
    }

    /// Where `message`, for the client, goes.
    pub fn route(&mut self, message: &[u8]) -> (Destination, bool) {
        if self.single_stream {
            return (self.listener_or_queue(message), false);
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(message) else {
            // The proxy hands over only messages it has read; a batch of answers is the
            // one other shape, routed by its first answer.
            return self.route_batch(message);
        };
        match (&envelope.method, envelope.id) {
            (None, Some(id)) => self.answer(id.get()),
            (Some(method), _) if method == "notifications/progress" => {
                let token = envelope
                    .params
                    .and_then(|p| p.progress_token)
                    .map(|t| t.get().to_string());
                let post = token
                    .and_then(|t| self.by_progress_token.get(&t))
                    .and_then(|id| self.by_request.get(id))
                    .and_then(|post| self.posts.get(post));
                match post {
                    Some(post) => (Destination::Stream(post.sender.clone()), false),
                    None => (self.unrelated(message), false),
                }
            }
            _ => (self.unrelated(message), false),
        }
    }

    fn route_batch(&mut self, message: &[u8]) -> (Destination, bool) {
        let first = serde_json::from_slice::<Vec<Envelope<'_>>>(message)
            .ok()
            .and_then(|b| {
                b.into_iter()
                    .find_map(|e| e.id.map(|id| id.get().to_string()))
            });
        match first {
            Some(id) => self.answer(&id),
            None => (self.unrelated(message), false),
        }
    }

    /// The answer to request `id`: to its POST, and the POST's stream ends with its last one.
    fn answer(&mut self, id: &str) -> (Destination, bool) {
        let Some(post_id) = self.by_request.get(id).copied() else {
            return (Destination::Dropped, false);
        };
        self.forget_request(id);
        let Some(post) = self.posts.get_mut(&post_id) else {
            return (Destination::Dropped, false);
        };
        post.awaiting.retain(|a| a != id);
        let sender = post.sender.clone();
        let last = post.awaiting.is_empty();
        if last {
            self.posts.remove(&post_id);
        }
        (Destination::Stream(sender), last)
    }

    fn forget_request(&mut self, id: &str) {
        self.by_request.remove(id);
        self.by_progress_token.retain(|_, request| request != id);
    }

    /// A message that belongs to no request: the GET stream, else the oldest open POST.
    fn unrelated(&mut self, message: &[u8]) -> Destination {
        if self.has_listener() {
            return self.listener_or_queue(message);
        }
        match self.posts.values().find(|p| !p.sender.is_closed()) {
            Some(post) => Destination::Stream(post.sender.clone()),
            None => self.listener_or_queue(message),
        }
    }

    fn listener_or_queue(&mut self, message: &[u8]) -> Destination {
        if let Some(listener) = self.listener.as_ref().filter(|l| !l.is_closed()) {
            return Destination::Stream(listener.clone());
        }
        if self.queue.len() == QUEUE_LIMIT {
            tracing::warn!(
                "a message for the client was dropped: no stream has been open to take it and {QUEUE_LIMIT} are waiting"
            );
            self.queue.pop_front();
        }
        self.queue.push_back(message.to_vec());
        Destination::Queued
    }

    /// Every stream, to end them (the session is closing).
    pub fn take_all(&mut self) -> Vec<StreamSender> {
        self.by_request.clear();
        self.by_progress_token.clear();
        let mut senders: Vec<StreamSender> = std::mem::take(&mut self.posts)
            .into_values()
            .map(|p| p.sender)
            .collect();
        senders.extend(self.listener.take());
        senders
    }

    /// Requests awaited on open POST streams.
    pub fn awaited(&self) -> usize {
        self.by_request.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> (StreamSender, mpsc::Receiver<Outgoing>) {
        mpsc::channel(8)
    }

    fn awaited(id: &str, token: Option<&str>) -> Awaited {
        Awaited {
            id: id.into(),
            progress_token: token.map(str::to_string),
        }
    }

    fn sends_to(d: &Destination, rx_sender: &StreamSender) -> bool {
        matches!(d, Destination::Stream(s) if s.same_channel(rx_sender))
    }

    #[test]
    fn requests_and_their_progress_tokens_are_read_from_messages_and_batches() {
        let one = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p1"}}}"#;
        assert_eq!(Awaited::in_message(one), vec![awaited("7", Some("\"p1\""))]);
        let batch = br#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":3,"result":{}}]"#;
        assert_eq!(Awaited::in_message(batch), vec![awaited("\"a\"", None)]);
        assert!(Awaited::in_message(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).is_empty());
    }

    #[test]
    fn an_answer_goes_to_its_post_and_the_last_one_ends_it() {
        let mut streams = Streams::default();
        let (a, _ra) = channel();
        let (b, _rb) = channel();
        streams.open_post(a.clone(), &[awaited("1", None), awaited("2", None)]);
        streams.open_post(b.clone(), &[awaited("\"x\"", None)]);
        let (d, last) = streams.route(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#);
        assert!(sends_to(&d, &b) && last);
        let (d, last) = streams.route(br#"{"jsonrpc":"2.0","id":2,"result":{}}"#);
        assert!(sends_to(&d, &a) && !last);
        let (d, last) =
            streams.route(br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#);
        assert!(sends_to(&d, &a) && last);
        assert_eq!(streams.awaited(), 0);
        let (d, _) = streams.route(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert!(matches!(d, Destination::Dropped), "an id answered already");
    }

    #[test]
    fn progress_follows_its_token_and_other_messages_prefer_the_get_stream() {
        let mut streams = Streams::default();
        let (old, _r1) = channel();
        let (new, _r2) = channel();
        streams.open_post(old.clone(), &[awaited("1", None)]);
        streams.open_post(new.clone(), &[awaited("2", Some("\"tok\""))]);
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","progress":1}}"#;
        assert!(sends_to(&streams.route(progress).0, &new));
        let sampling = br#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{}}"#;
        assert!(
            sends_to(&streams.route(sampling).0, &old),
            "oldest POST without a GET stream"
        );
        let (get, _r3) = channel();
        assert_eq!(streams.open_listener(get.clone()), Some(vec![]));
        assert!(sends_to(&streams.route(sampling).0, &get));
        let (second, _r4) = channel();
        assert!(
            streams.open_listener(second).is_none(),
            "one GET stream per session"
        );
    }

    #[test]
    fn with_no_stream_open_messages_wait_for_the_get_stream_in_a_bounded_queue() {
        let mut streams = Streams::default();
        let log = |i: usize| {
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"n":{i}}}}}"#)
        };
        for i in 0..QUEUE_LIMIT + 2 {
            assert!(matches!(
                streams.route(log(i).as_bytes()).0,
                Destination::Queued
            ));
        }
        let (get, _r) = channel();
        let queued = streams.open_listener(get).unwrap();
        assert_eq!(queued.len(), QUEUE_LIMIT);
        assert_eq!(queued[0], log(2).into_bytes(), "the oldest were dropped");
    }

    #[test]
    fn a_closed_post_drops_its_answers_and_a_legacy_session_has_one_stream() {
        let mut streams = Streams::default();
        let (a, _r) = channel();
        let post = streams.open_post(a, &[awaited("1", Some("5"))]);
        streams.close_post(post);
        assert!(matches!(
            streams.route(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).0,
            Destination::Dropped
        ));

        let mut legacy = Streams::single_stream();
        let answer = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert!(matches!(legacy.route(answer).0, Destination::Queued));
        let (sse, _r) = channel();
        assert_eq!(
            legacy.open_listener(sse.clone()),
            Some(vec![answer.to_vec()])
        );
        assert!(sends_to(&legacy.route(answer).0, &sse));
    }
}
