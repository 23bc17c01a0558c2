//! The flags of the HTTP listener (`--transport http|sse`), and their checks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::transport::listener::{ListenerConfig, Serve};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Speak MCP over stdin/stdout to one client (the default).
    #[default]
    Stdio,
    /// Serve Streamable HTTP on --path, and the legacy HTTP+SSE endpoints beside it.
    Http,
    /// Serve only the legacy HTTP+SSE transport (`GET /sse`, `POST /message`).
    Sse,
}

#[derive(Debug, Default, clap::Args)]
pub struct ListenerArgs {
    /// How clients reach intercept: `stdio`, or an HTTP listener (`http`, `sse`) that many
    /// remote clients can share, each in its own session.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// Port of the HTTP listener (0 picks a free one and prints it).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address the HTTP listener binds [default: 127.0.0.1]. Any other than loopback
    /// needs --allow-unauthenticated.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Path of the Streamable HTTP endpoint.
    #[arg(long, value_name = "PATH", default_value = "/mcp")]
    pub path: String,
    /// With --transport http: do not serve the legacy HTTP+SSE endpoints (/sse, /message).
    #[arg(long)]
    pub no_sse: bool,
    /// Another name clients may reach the listener by, checked against the Host header
    /// (repeatable; `name` or `name:port`).
    #[arg(long, value_name = "HOST")]
    pub allowed_host: Vec<String>,
    /// A web origin allowed to call the listener besides loopback pages, e.g.
    /// https://app.example.com (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,
    /// A web origin browsers may call the listener from: answers CORS preflights and
    /// allows that origin (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// A session with no request and no open stream for this long is closed (e.g. 30m, 90s).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub session_idle_timeout: String,
    /// Client sessions open at once; a new one beyond that gets HTTP 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_sessions: usize,
    /// Connections open at once; more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, or to start the next one
    /// on a kept-alive connection (e.g. 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub header_read_timeout: String,
    /// Longest a client may take to send a request's body (e.g. 30s).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub body_read_timeout: String,
    /// Listen on an address other than loopback without authentication: anyone who can
    /// reach it can call the server's tools.
    #[arg(long)]
    pub allow_unauthenticated: bool,
}

impl ListenerArgs {
    /// Whether any listener flag was given (for the stdio transport, none may be).
    fn any_listener_flag(&self) -> Option<&'static str> {
        [
            (self.port.is_some(), "--port"),
            (self.bind.is_some(), "--bind"),
            (self.no_sse, "--no-sse"),
            (!self.allowed_host.is_empty(), "--allowed-host"),
            (!self.allowed_origin.is_empty(), "--allowed-origin"),
            (!self.cors_origin.is_empty(), "--cors-origin"),
            (self.tls_cert.is_some(), "--tls-cert"),
            (self.tls_key.is_some(), "--tls-key"),
            (self.allow_unauthenticated, "--allow-unauthenticated"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }

    /// The listener's settings, or `None` for the stdio transport.
    pub fn config(&self) -> anyhow::Result<Option<ListenerConfig>> {
        let serve = match self.transport {
            Transport::Stdio => {
                if let Some(flag) = self.any_listener_flag() {
                    bail!("{flag} applies to the HTTP listener: add --transport http (or sse)");
                }
                return Ok(None);
            }
            Transport::Http => Serve {
                streamable: true,
                legacy: !self.no_sse,
            },
            Transport::Sse if self.no_sse => {
                bail!(
                    "--no-sse turns off the legacy HTTP+SSE endpoints, which are all --transport sse serves: use --transport http --no-sse for Streamable HTTP only"
                )
            }
            Transport::Sse => Serve {
                streamable: false,
                legacy: true,
            },
        };
        let Some(port) = self.port else {
            bail!("--transport http|sse needs --port N (0 picks a free port)");
        };
        let ip = self.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let addr = SocketAddr::new(ip, port);
        if !ip.is_loopback() && !self.allow_unauthenticated {
            bail!(
                "refusing to listen on {addr} without authentication: anyone who can reach it could call the server's tools; see docs/gateway.md, or pass --allow-unauthenticated"
            );
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => bail!("--tls-cert needs --tls-key (the certificate's private key)"),
            (None, Some(_)) => bail!("--tls-key needs --tls-cert (the certificate chain)"),
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
        };
        if !self.path.starts_with('/') || self.path.len() < 2 {
            bail!(
                "--path \"{}\" must start with / and name an endpoint, e.g. /mcp",
                self.path
            );
        }
        if serve.legacy && matches!(self.path.as_str(), "/sse" | "/message") {
            bail!(
                "--path {} is taken by the legacy HTTP+SSE endpoints: choose another path, or pass --no-sse",
                self.path
            );
        }
        if self.max_sessions == 0 {
            bail!("--max-sessions must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        for origin in self.allowed_origin.iter().chain(&self.cors_origin) {
            crate::transport::listener::guard::parse_origin(origin).map_err(|why| {
                anyhow::anyhow!(
                    "invalid origin \"{origin}\" ({why}): write it as scheme://host[:port], e.g. https://app.example.com"
                )
            })?;
        }
        Ok(Some(ListenerConfig {
            addr,
            serve,
            path: self.path.clone(),
            allowed_hosts: self.allowed_host.clone(),
            allowed_origins: self.allowed_origin.clone(),
            cors_origins: self.cors_origin.clone(),
            session_idle_timeout: duration("--session-idle-timeout", &self.session_idle_timeout)?,
            max_sessions: self.max_sessions,
            max_connections: self.max_connections,
            header_read_timeout: duration("--header-read-timeout", &self.header_read_timeout)?,
            body_read_timeout: duration("--body-read-timeout", &self.body_read_timeout)?,
            tls,
        }))
    }
}

/// A positive duration: a number with a unit `ms`, `s`, `m` or `h` (seconds if none).
fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let parsed = parse_duration(text)
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!(
                "{flag}: \"{text}\" is not a duration; use a positive one such as 500ms, 10s, 30m or 1h"
            )
        })?;
    Ok(parsed)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_default_to_seconds() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("3d"), None);
        assert_eq!(parse_duration("soon"), None);
        assert!(duration("--x", "0s").is_err());
    }
}
