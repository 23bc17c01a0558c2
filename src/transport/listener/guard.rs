//! Checks made on every request before its body is read: the `Host` it was sent to and the
//! `Origin` of the page that sent it. Together they stop DNS rebinding, where a web page
//! the user opened reaches a server on their loopback interface under a name it controls.

use std::net::SocketAddr;

use hyper::HeaderMap;
use hyper::header::{HOST, ORIGIN};
use hyper::http::request::Parts;

/// What the listener accepts in `Host` and `Origin`.
#[derive(Debug, Clone)]
pub(super) struct Guard {
    /// `host[:port]` values accepted, lowercase.
    hosts: Vec<String>,
    /// Names accepted with any port (`--allowed-host` without a port), lowercase.
    any_port_hosts: Vec<String>,
    /// Origins accepted besides loopback ones, normalised.
    origins: Vec<String>,
    /// Origins answered with CORS headers (`--cors-origin`), normalised.
    cors: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    #[error(
        "Host header missing: send the request to the address intercept listens on (HTTP/1.1 requires a Host header)"
    )]
    NoHost,
    #[error(
        "Host \"{0}\" is not an address of this listener: if it is a name of yours, start intercept with --allowed-host {0}"
    )]
    Host(String),
    #[error("more than one Origin header")]
    ManyOrigins,
    #[error(
        "Origin \"{0}\" may not call this listener: start intercept with --allowed-origin {0} to allow it"
    )]
    Origin(String),
}

impl Guard {
    pub(super) fn new(
        bound: SocketAddr,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        cors_origins: &[String],
    ) -> Self {
        let port = bound.port();
        let mut hosts = vec![host_port(&bound)];
        if bound.ip().is_loopback() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                hosts.push(format!("{name}:{port}"));
            }
        }
        let mut any_port_hosts = Vec::new();
        for h in allowed_hosts {
            let h = h.trim().to_ascii_lowercase();
            if split_port(&h).1.is_some() {
                hosts.push(h);
            } else {
                any_port_hosts.push(h);
            }
        }
        let normalise =
            |list: &[String]| list.iter().filter_map(|o| parse_origin(o).ok()).collect();
        Guard {
            hosts,
            any_port_hosts,
            origins: normalise(allowed_origins),
            cors: normalise(cors_origins),
        }
    }

    /// The `Host` header names this listener.
    pub(super) fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or(Refusal::NoHost)?
            .trim()
            .to_ascii_lowercase();
        if self.hosts.contains(&host)
            || self
                .any_port_hosts
                .iter()
                .any(|h| *h == split_port(&host).0)
        {
            return Ok(());
        }
        Err(Refusal::Host(host))
    }

    /// The `Origin` header, if any, is a loopback page or one allowed by a flag.
    pub(super) fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        if values.next().is_some() {
            return Err(Refusal::ManyOrigins);
        }
        let text = value.to_str().unwrap_or("").trim();
        let refuse = || Refusal::Origin(text.to_string());
        let origin = parse_origin(text).map_err(|_| refuse())?;
        if is_loopback_origin(&origin)
            || self.origins.contains(&origin)
            || self.cors.contains(&origin)
        {
            return Ok(());
        }
        Err(refuse())
    }

    /// The request's origin, when it is one CORS headers are sent for.
    pub(super) fn cors_origin(&self, headers: &HeaderMap) -> Option<String> {
        if self.cors.is_empty() {
            return None;
        }
        let origin = parse_origin(headers.get(ORIGIN)?.to_str().ok()?).ok()?;
        self.cors.contains(&origin).then_some(origin)
    }
}

/// Who is calling. Authentication is not configurable yet: every caller is anonymous and
/// the session keeps the identity given with `--identity`.
pub(super) fn authenticate(_parts: &Parts) -> Result<Option<String>, std::convert::Infallible> {
    Ok(None)
}

/// `scheme://host[:port]`, lowercase, without a default port or a trailing slash; `null`
/// and anything but http(s) are refused.
pub(crate) fn parse_origin(text: &str) -> Result<String, &'static str> {
    let url = reqwest::Url::parse(text.trim()).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("not http or https");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("an origin has no path");
    }
    let host = url.host_str().ok_or("no host")?;
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

fn is_loopback_origin(origin: &str) -> bool {
    let host = origin.split_once("://").map_or("", |(_, rest)| rest);
    let name = split_port(host).0;
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` as a client writes it in `Host` (IPv6 in brackets).
fn host_port(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// `("name", Some("port"))` from `name:port`, IPv6 literals in brackets kept whole.
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && (host.starts_with('[') || !host[..i].contains(':')) =>
        {
            (&host[..i], Some(&host[i + 1..]))
        }
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn loopback() -> Guard {
        Guard::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["mcp.internal".into(), "gw.example.com:443".into()],
            &["https://app.example.com".into()],
            &[],
        )
    }

    #[test]
    fn hosts_of_the_listener_and_named_ones_pass() {
        let g = loopback();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "mcp.internal",
            "mcp.internal:9999",
            "gw.example.com:443",
        ] {
            assert_eq!(g.check_host(&headers(&[("host", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "localhost:8081",
            "127.0.0.1",
            "gw.example.com",
        ] {
            assert_eq!(
                g.check_host(&headers(&[("host", bad)])),
                Err(Refusal::Host(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(g.check_host(&HeaderMap::new()), Err(Refusal::NoHost));
    }

    #[test]
    fn a_wildcard_bind_accepts_only_its_own_address_and_named_hosts() {
        let g = Guard::new("0.0.0.0:8080".parse().unwrap(), &[], &[], &[]);
        assert!(
            g.check_host(&headers(&[("host", "localhost:8080")]))
                .is_err()
        );
        assert!(g.check_host(&headers(&[("host", "0.0.0.0:8080")])).is_ok());
    }

    #[test]
    fn loopback_and_allowed_origins_pass_others_are_refused() {
        let g = loopback();
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]",
            "http://app.localhost:5173",
            "https://app.example.com",
            "https://APP.example.com/",
        ] {
            assert_eq!(g.check_origin(&headers(&[("origin", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "null",
            "https://evil.example.com",
            "http://app.example.com",
            "file://",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com",
        ] {
            assert!(
                g.check_origin(&headers(&[("origin", bad)])).is_err(),
                "{bad}"
            );
        }
        assert_eq!(g.check_origin(&HeaderMap::new()), Ok(()));
        assert_eq!(
            g.check_origin(&headers(&[
                ("origin", "http://localhost"),
                ("origin", "http://localhost")
            ])),
            Err(Refusal::ManyOrigins)
        );
    }

    #[test]
    fn cors_headers_only_for_configured_origins() {
        let g = Guard::new(
            "127.0.0.1:8080".parse().unwrap(),
            &[],
            &[],
            &["https://ide.example.com".into()],
        );
        assert_eq!(
            g.cors_origin(&headers(&[("origin", "https://ide.example.com")])),
            Some("https://ide.example.com".into())
        );
        assert_eq!(
            g.cors_origin(&headers(&[("origin", "http://localhost")])),
            None
        );
        assert!(
            g.check_origin(&headers(&[("origin", "https://ide.example.com")]))
                .is_ok()
        );
        assert_eq!(
            loopback().cors_origin(&headers(&[("origin", "https://app.example.com")])),
            None
        );
    }
}
