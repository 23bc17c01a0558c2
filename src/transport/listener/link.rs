//! What a client session talks to upstream. One variant per kind of server, so that a new
//! kind (a child process per session) is added here and nowhere else.

use bytes::Bytes;

use crate::upstream::http::{EventStream, HttpUpstream, Reply, SendError};

#[derive(Debug)]
pub(super) enum Link {
    /// A Streamable HTTP server: one upstream session per client session.
    Http(HttpUpstream),
}

impl Link {
    /// Sends one client message; the reply is relayed by the caller.
    pub(super) async fn send(&self, msg: Bytes, version: Option<&str>) -> Result<Reply, SendError> {
        match self {
            Link::Http(up) => up.send(msg, version).await,
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
        }
    }

    /// Ends the upstream side of the session.
    pub(super) async fn close(&self, version: Option<&str>) {
        match self {
            Link::Http(up) => up.close(version).await,
        }
    }
}
