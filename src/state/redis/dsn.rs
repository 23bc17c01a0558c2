//! Reading a Redis DSN, and showing it without its password.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::state::StoreError;

/// The URL schemes the Redis store accepts.
const SCHEMES: [&str; 7] = [
    "redis://",
    "rediss://",
    "redis+cluster://",
    "rediss+cluster://",
    "unix://",
    "redis+unix://",
    "valkey://",
];

/// Whether `spec` names a Redis server rather than another kind of store.
pub fn is_redis_dsn(spec: &str) -> bool {
    SCHEMES.iter().any(|s| spec.starts_with(s))
}

/// A parsed DSN: what to connect to, how to show it, and what to keep out of messages.
#[derive(Debug)]
pub struct Dsn {
    pub info: ConnectionInfo,
    /// e.g. `redis://app:***@10.0.0.5:6379/2`: built from the parsed parts, never from the
    /// text the user gave, so no spelling of a password can slip through.
    pub display: String,
    /// The password, to scrub from any message a lower layer might build.
    pub secret: Option<String>,
    /// `redis+cluster://` or `rediss+cluster://`: the server is one node of a Redis Cluster,
    /// from which the others are discovered.
    pub cluster: bool,
}

pub fn parse(text: &str) -> Result<Dsn, StoreError> {
    // The client library's messages do not echo the URL, but nothing here relies on that.
    let secret = password_in(text);
    let (cluster, url) = match text.split_once("+cluster://") {
        Some((scheme @ ("redis" | "rediss"), rest)) => (true, format!("{scheme}://{rest}")),
        _ => (false, text.to_string()),
    };
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| StoreError::InvalidDsn(scrub(&e.to_string(), secret.as_deref(), text)))?;
    let redis = info.redis_settings();
    let secret = redis.password().map(str::to_string).or(secret);
    let user = match (redis.username(), redis.password()) {
        (Some(u), Some(_)) => format!("{u}:***@"),
        (Some(u), None) => format!("{u}@"),
        (None, Some(_)) => ":***@".to_string(),
        (None, None) => String::new(),
    };
    let db = redis.db();
    let cluster_tag = if cluster { "+cluster" } else { "" };
    let display = match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            format!("redis{cluster_tag}://{user}{}:{port}/{db}", host_text(host))
        }
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!(
                "rediss{cluster_tag}://{user}{}:{port}/{db}",
                host_text(host)
            )
        }
        ConnectionAddr::Unix(path) => format!("unix://{user}{}?db={db}", path.display()),
        other => format!("redis://{user}{other}/{db}"),
    };
    Ok(Dsn {
        info,
        display,
        secret,
        cluster,
    })
}

fn host_text(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The password as written in the URL (`user:pass@` or `?pass=`), percent-encoded or not,
/// for scrubbing messages about a DSN that did not parse.
fn password_in(text: &str) -> Option<String> {
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, pass)) = userinfo.split_once(':')
        && !pass.is_empty()
    {
        return Some(pass.to_string());
    }
    text.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("pass="))
        .filter(|p| !p.is_empty())
        .map(|p| p.split('#').next().unwrap_or(p).to_string())
}

/// `message` with the password (and, if the password is unknown, the whole DSN) removed.
pub fn scrub(message: &str, secret: Option<&str>, dsn: &str) -> String {
    hide_secret(&message.replace(dsn, "<dsn>"), secret)
}

/// `message` with every occurrence of the password (if there is one) replaced by `***`.
pub fn hide_secret(message: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| !s.is_empty()) {
        Some(s) => message.replace(s, "***"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_hides_the_password() {
        let d = parse("redis://app:hunter2@127.0.0.1:6380/3").unwrap();
        assert_eq!(d.display, "redis://app:***@127.0.0.1:6380/3");
        assert_eq!(d.secret.as_deref(), Some("hunter2"));
        let d = parse("redis://:p%40ss@localhost").unwrap();
        assert_eq!(d.display, "redis://:***@localhost:6379/0");
        assert_eq!(d.secret.as_deref(), Some("p@ss"));
        let d = parse("rediss://cache.example:6390/1").unwrap();
        assert_eq!(d.display, "rediss://cache.example:6390/1");
        assert!(d.secret.is_none());
        let d = parse("unix:///run/redis.sock?db=2&pass=s3cret").unwrap();
        assert_eq!(d.display, "unix://:***@/run/redis.sock?db=2");
        assert_eq!(d.secret.as_deref(), Some("s3cret"));
        let d = parse("redis+cluster://:pw@10.0.0.7:7000").unwrap();
        assert!(d.cluster);
        assert_eq!(d.display, "redis+cluster://:***@10.0.0.7:7000/0");
        assert!(!parse("redis://h").unwrap().cluster);
    }

    #[test]
    fn a_bad_dsn_is_reported_without_its_password() {
        let e = parse("redis://app:hunter2@host:6379/notanumber").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("invalid Redis DSN"), "{text}");
    }

    #[test]
    fn schemes_are_recognised() {
        assert!(is_redis_dsn("redis://localhost"));
        assert!(is_redis_dsn("rediss://localhost"));
        assert!(is_redis_dsn("unix:///tmp/redis.sock"));
        assert!(!is_redis_dsn("sqlite:/tmp/x"));
        assert!(!is_redis_dsn("memory"));
    }
}
