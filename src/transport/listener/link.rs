//! What a client session talks to upstream. One variant per kind of server, so that a new
//! kind is added here and in the handlers that tell them apart.

use std::sync::Arc;

use bytes::Bytes;

use crate::gateway::child_session::ChildSession;
use crate::upstream::http::{EventStream, HttpUpstream, Reply, SendError};

#[derive(Debug)]
pub(super) enum Link {
    /// A Streamable HTTP server: one upstream session per client session.
    Http(Box<HttpUpstream>),
    /// A stdio server started for this session alone. It routes its own messages to the
    /// session's streams (see `child.rs`), so it is reached through [`Link::child`].
    Child(Arc<ChildSession>),
}

impl Link {
    /// The session's own child, if the server is one.
    pub(super) fn child(&self) -> Option<&Arc<ChildSession>> {
        match self {
            Link::Child(child) => Some(child),
            Link::Http(_) => None,
        }
    }

    /// Sends one message the proxy core let through; the reply is relayed by the caller.
    /// A child's answers come on the session's streams instead, so for a child this only
    /// writes (the proxy's own cancellations and answers to the server).
    pub(super) async fn send(&self, msg: Bytes, version: Option<&str>) -> Result<Reply, SendError> {
        match self {
            Link::Http(up) => up.send(msg, version).await,
            Link::Child(child) => {
                child.write_line(&msg).await;
                Ok(Reply::Accepted)
            }
        }
    }

    /// The server's stream of messages it sends on its own; `None` if it has none.
    pub(super) async fn listen(
        &self,
        last_event_id: Option<&str>,
        version: Option<&str>,
    ) -> Result<Option<Box<EventStream>>, SendError> {
        match self {
            Link::Http(up) => up.listen(last_event_id, version).await,
            Link::Child(_) => Ok(None),
        }
    }

    /// Ends the upstream side of the session.
    pub(super) async fn close(&self, version: Option<&str>) {
        match self {
            Link::Http(up) => up.close(version).await,
            Link::Child(child) => child.close().await,
        }
    }
}
