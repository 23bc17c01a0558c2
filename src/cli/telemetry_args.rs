//! The observability flags (`--metrics-port`, `--metrics-bind`) and starting what they and
//! the `OTEL_*` environment ask for.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;

use crate::telemetry::{OtelConfig, Telemetry, TelemetryOptions};

#[derive(Debug, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (see docs/observability.md).
    #[arg(long, env = "INTERCEPT_METRICS_PORT", value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Address the metrics listener binds [default: 127.0.0.1]. The endpoint has no
    /// authentication: bind another address only on a network you trust.
    #[arg(
        long,
        env = "INTERCEPT_METRICS_BIND",
        value_name = "ADDR",
        requires = "metrics_port"
    )]
    pub metrics_bind: Option<IpAddr>,
}

/// Telemetry while intercept runs, and the metrics listener if there is one.
#[derive(Debug)]
pub struct Running {
    pub telemetry: Telemetry,
    metrics_server: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl TelemetryArgs {
    /// Checks the `OTEL_*` variables, starts the exporters and the metrics listener.
    /// Fails (before anything else starts) on an unusable OTLP setting or a port that
    /// cannot be bound.
    pub async fn start(&self, log_args: bool) -> anyhow::Result<Running> {
        let otel = OtelConfig::from_env()?;
        if let Some(otel) = &otel {
            tracing::info!(
                traces = otel.traces_endpoint.as_deref().unwrap_or("off"),
                metrics = otel.metrics_endpoint.as_deref().unwrap_or("off"),
                "OTLP export (http/protobuf)"
            );
        }
        let telemetry = Telemetry::new(TelemetryOptions {
            prometheus: self.metrics_port.is_some(),
            otel,
            log_args,
        })
        .context("cannot start the OpenTelemetry export")?;
        let metrics_server = match (self.metrics_port, telemetry.metrics()) {
            (Some(port), Some(metrics)) => {
                let ip = self.metrics_bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                let listener = crate::telemetry::bind_metrics(SocketAddr::new(ip, port)).await?;
                let addr = listener.local_addr().unwrap_or(SocketAddr::new(ip, port));
                if !ip.is_loopback() {
                    tracing::warn!(
                        "metrics are served without authentication on {addr}: anyone who can reach it sees tool names and traffic"
                    );
                }
                tracing::info!("metrics at http://{addr}/metrics");
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(crate::telemetry::serve_metrics(
                    listener,
                    metrics.clone(),
                    async {
                        let _ = stopped.await;
                    },
                ));
                Some((task, stop))
            }
            _ => None,
        };
        Ok(Running {
            telemetry,
            metrics_server,
        })
    }
}

impl Running {
    /// Stops the metrics listener and sends what the exporters still hold.
    pub async fn stop(mut self) {
        if let Some((task, stop)) = self.metrics_server.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.telemetry.shutdown().await;
    }
}

/// A start that fails later (a policy that does not load) leaves no listener behind, even
/// where the runtime outlives the command (inside Node).
impl Drop for Running {
    fn drop(&mut self) {
        if let Some((task, _)) = &self.metrics_server {
            task.abort();
        }
    }
}
