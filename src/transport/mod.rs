//! Byte movers: they frame messages, hand them to the proxy core and deliver what it
//! returns. They know nothing of policy.

pub mod child;
pub mod lines;
pub mod stdio;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no upstream command given after --")]
    NoCommand,
    #[error("cannot find the upstream command \"{0}\" on PATH")]
    NotFound(String),
    #[error("cannot start the upstream command \"{command}\": {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a proxy thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("lost track of the upstream server process")]
    Lost,
}
