//! A local HTTP server (axum on 127.0.0.1) standing in for a text-to-speech provider: it
//! records every request and answers as each test tells it to — a whole body, a body the
//! test feeds piece by piece (so the test controls exactly what the client has been sent),
//! a paced body, or nothing at all.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc;

/// What the fake received for one request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    /// `(name, value)` pairs of the query string, decoded.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` if it is not JSON).
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// How the fake answers one request.
pub enum Reply {
    /// The whole response at once.
    Whole {
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// 200 with `content_type`; the test feeds the body through a [`Feeder`] obtained
    /// from [`Fake::feeder`].
    Fed { content_type: &'static str },
    /// 200 with `content_type`; the pieces are written one by one, `pause` apart.
    Paced {
        content_type: &'static str,
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    },
    /// Never answers (not even the headers).
    Silent,
}

impl Reply {
    /// A JSON body with `status`.
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply::Whole {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A JSON body with `status` and extra headers.
    pub fn json_with(
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: Value,
    ) -> Reply {
        let mut all = vec![("content-type", "application/json".to_owned())];
        all.extend(headers);
        Reply::Whole {
            status,
            headers: all,
            body: body.to_string().into_bytes(),
        }
    }
}

/// The test's end of a fed body.
pub struct Feeder {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Feeder {
    /// Writes one piece (its own write on the connection).
    pub async fn send(&self, piece: &[u8]) {
        self.tx
            .send(Ok(Bytes::copy_from_slice(piece)))
            .await
            .expect("the client is still reading");
    }

    /// Breaks the connection mid-body (no end of the chunked body is written).
    pub async fn break_connection(self) {
        let _ = self
            .tx
            .send(Err(std::io::Error::other("connection dropped by the test")))
            .await;
    }

    /// Ends the body normally.
    pub fn finish(self) {}

    /// Waits until the client stopped reading (closed the connection).
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    respond: Responder,
    feeders: mpsc::UnboundedSender<Feeder>,
}

/// A running fake provider.
pub struct Fake {
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    feeders: tokio::sync::Mutex<mpsc::UnboundedReceiver<Feeder>>,
}

impl Fake {
    /// Starts a fake that answers every request (any method and path) with `respond`.
    pub async fn start(respond: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Fake {
        let received = Arc::new(Mutex::new(Vec::new()));
        let (feeders_tx, feeders_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            received: received.clone(),
            respond: Arc::new(respond),
            feeders: feeders_tx,
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Fake {
            base_url: format!("http://{addr}"),
            received,
            feeders: tokio::sync::Mutex::new(feeders_rx),
        }
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The only request received.
    pub fn single_request(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "expected one request");
        received.into_iter().next().expect("one")
    }

    /// The feeder of the next [`Reply::Fed`] response.
    pub async fn feeder(&self) -> Feeder {
        tokio::time::timeout(Duration::from_secs(10), self.feeders.lock().await.recv())
            .await
            .expect("a fed response within 10 s")
            .expect("fake running")
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().map(url_pairs).unwrap_or_default();
    let received = Received {
        method,
        path: uri.path().to_owned(),
        query,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    shared.received.lock().expect("lock").push(received.clone());
    match (shared.respond)(&received) {
        Reply::Whole {
            status,
            headers,
            body,
        } => {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).expect("response")
        }
        Reply::Fed { content_type } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
            let _ = shared.feeders.send(Feeder { tx });
            streamed(content_type, rx)
        }
        Reply::Paced {
            content_type,
            pieces,
            pause,
        } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            tokio::spawn(async move {
                for (index, piece) in pieces.into_iter().enumerate() {
                    if index > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                        return;
                    }
                }
            });
            streamed(content_type, rx)
        }
        Reply::Silent => {
            std::future::pending::<()>().await;
            unreachable!("pending never resolves")
        }
    }
}

fn streamed(
    content_type: &'static str,
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .expect("response")
}

/// Decodes `a=b&c=d` (percent-encoding and `+`).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(byte) => {
                            out.push(byte);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Little-endian bytes of 16-bit samples.
pub fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// A sine tone.
pub fn tone(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    (0..len)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

/// Upward zero crossings of a signal (a frequency estimate over a known duration).
pub fn upward_crossings(signal: &[i16]) -> usize {
    signal.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count()
}

/// Splits `bytes` into pieces of the given sizes, repeated.
pub fn pieces(bytes: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut turn = 0;
    while offset < bytes.len() {
        let end = (offset + sizes[turn % sizes.len()]).min(bytes.len());
        out.push(bytes[offset..end].to_vec());
        offset = end;
        turn += 1;
    }
    out
}

/// A port on 127.0.0.1 with nothing listening.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
