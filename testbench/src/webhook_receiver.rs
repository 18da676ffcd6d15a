//! A webhook receiver for tests: records what vaani posts, and computes the signature a
//! receiver checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `X-Vaani-Signature` a receiver expects for `body` sent with `timestamp` (the
/// `X-Vaani-Timestamp` header), computed as a receiver would: `v1=` and the hex
/// HMAC-SHA256 of `"<timestamp>.<body>"` keyed by `secret`.
pub fn signature_of(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

/// One POST the receiver got: lower-case header names, and the raw body.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names (lower case) and values.
    pub headers: HashMap<String, String>,
    /// The body as sent.
    pub body: String,
}

/// A webhook receiver on 127.0.0.1:`port` (path `/hook`), answering 204 to every POST and
/// keeping them; stopped when dropped.
pub struct WebhookReceiver {
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts listening; returns once it accepts connections.
    pub fn start(port: u16) -> WebhookReceiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let store = received.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
                        .await
                        .expect("bind the webhook receiver");
                ready.send(()).unwrap();
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                        let store = store.clone();
                        async move {
                            let headers = headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                })
                                .collect();
                            store.lock().unwrap().push(Received { headers, body });
                            axum::http::StatusCode::NO_CONTENT
                        }
                    }),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        is_ready.recv().expect("the receiver started");
        WebhookReceiver {
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `accept` holds for what was received; panics with it after `limit`.
    pub fn wait_for(&self, limit: Duration, accept: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if accept(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "webhooks not received in {limit:?}; got {received:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
