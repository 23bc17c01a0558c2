//! An OTLP/HTTP receiver: accepts `POST /v1/traces` and `POST /v1/metrics` with protobuf
//! bodies on 127.0.0.1, decodes them with the OpenTelemetry protocol's own message types,
//! and keeps what arrived for the test to read.
//!
//! It runs on a thread and runtime of its own, so a test may block (the SDK's flush at
//! shutdown waits for the receiver's answers) without starving it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Store {
    requests: Vec<Received>,
}

#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Self {
        let store = Arc::new(Mutex::new(Store::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = store.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(serve(shared, addr_tx, stopped));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver address");
        Receiver {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.store.lock().unwrap().requests.clone()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.traces()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    pub fn traces(&self) -> Vec<ExportTraceServiceRequest> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v1/traces")
            .map(|r| ExportTraceServiceRequest::decode(r.body.as_slice()).expect("a trace export"))
            .collect()
    }

    /// Every metric received so far, in order of arrival.
    pub fn metrics(&self) -> Vec<Metric> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v1/metrics")
            .map(|r| {
                ExportMetricsServiceRequest::decode(r.body.as_slice()).expect("a metrics export")
            })
            .flat_map(|r| r.resource_metrics)
            .flat_map(|rm| rm.scope_metrics)
            .flat_map(|sm| sm.metrics)
            .collect()
    }

    /// Waits until `ready` holds for what arrived, or panics after `patience`.
    pub fn wait_for(&self, patience: Duration, what: &str, ready: impl Fn(&Receiver) -> bool) {
        let deadline = Instant::now() + patience;
        while !ready(self) {
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}; got {:?}",
                self.requests()
                    .iter()
                    .map(|r| (&r.path, r.body.len()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    store: Arc<Mutex<Store>>,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver bind");
    addr_tx.send(listener.local_addr().unwrap()).unwrap();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted.expect("accept").0,
        };
        let store = store.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let store = store.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect::<Vec<_>>();
                    let content_type = headers
                        .iter()
                        .find(|(k, _)| k == "content-type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let known = req.method() == hyper::Method::POST
                        && (path == "/v1/traces" || path == "/v1/metrics");
                    let body = req.into_body().collect().await?.to_bytes().to_vec();
                    let status = if known {
                        store.lock().unwrap().requests.push(Received {
                            path,
                            content_type,
                            headers,
                            body,
                        });
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    // An empty Export*ServiceResponse encodes to no bytes.
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/x-protobuf"),
                    );
                    Ok::<_, hyper::Error>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The attribute `key` of a span (or data point), as text: strings as they are, other
/// values in their debug form.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(any_value_text)
}

pub fn any_value_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}
