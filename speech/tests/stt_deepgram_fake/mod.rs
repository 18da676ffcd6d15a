//! A fake Deepgram live-streaming server (a tokio-tungstenite WebSocket server on
//! 127.0.0.1) that speaks the real protocol: the `/v1/listen` query, `Authorization: Token`,
//! binary linear16 audio, `KeepAlive`/`Finalize`/`CloseStream`, `Results`/`Metadata`/
//! `SpeechStarted` messages, handshake refusals with `dg-error`, and close frames. Shared by
//! the streaming client's tests and the utterance transcriber's tests.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use vaani_speech::stt::DeepgramSttConfig;

pub const API_KEY: &str = "dg-test-key-0123";
pub const REQUEST_ID: &str = "7b2bb4a5-6c27-4fa5-9a2e-5e9b2d4c5f10";

/// What the fake received on one connection.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// WebSocket upgrade requests seen (refused ones included).
    pub connections: usize,
    pub authorization: Option<String>,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Audio bytes in arrival order.
    pub audio: Vec<u8>,
    /// Binary frames received (an empty one would end a real Deepgram stream).
    pub audio_frames: usize,
    /// Text (control) messages in arrival order.
    pub controls: Vec<String>,
}

impl Received {
    pub fn query(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn control_types(&self) -> Vec<String> {
        self.controls
            .iter()
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .filter_map(|value| value["type"].as_str().map(str::to_owned))
            .collect()
    }
}

pub type Shared = Arc<Mutex<Received>>;
pub type Socket = WebSocketStream<TcpStream>;
pub type Script =
    Arc<dyn Fn(Socket, Shared) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Refusal of the WebSocket upgrade: status, extra headers, body.
#[derive(Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static str,
}

/// Starts a fake Deepgram; each connection is upgraded (or refused) and then driven by
/// `script`. Returns the listen URL and what the last connection received.
pub async fn start(refusal: Option<Refusal>, script: Script) -> (String, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shared: Shared = Arc::new(Mutex::new(Received::default()));
    let received = shared.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let received = received.clone();
            let refusal = refusal.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let record = received.clone();
                // The callback's signature (and its large error type) is tungstenite's.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &Request, mut response: Response| {
                    let mut seen = record.lock().expect("lock");
                    seen.connections += 1;
                    seen.authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.path = request.uri().path().to_owned();
                    seen.query = url_pairs(request.uri().query().unwrap_or_default());
                    if let Some(refusal) = refusal {
                        let mut error = ErrorResponse::new(Some(refusal.body.to_owned()));
                        *error.status_mut() = refusal.status;
                        for (name, value) in refusal.headers {
                            error
                                .headers_mut()
                                .insert(name, value.parse().expect("header"));
                        }
                        error
                            .headers_mut()
                            .insert("dg-request-id", REQUEST_ID.parse().expect("header"));
                        return Err(error);
                    }
                    response
                        .headers_mut()
                        .insert("dg-request-id", REQUEST_ID.parse().expect("header"));
                    Ok(response)
                };
                if let Ok(socket) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                    script(socket, received).await;
                }
            });
        }
    });
    (format!("ws://{addr}/v1/listen"), shared)
}

pub fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://fake/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

pub fn script<F, Fut>(f: F) -> Script
where
    F: Fn(Socket, Shared) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |socket, shared| Box::pin(f(socket, shared)))
}

pub fn config(url: &str) -> DeepgramSttConfig {
    let mut config = DeepgramSttConfig::new(API_KEY);
    config.base_url = url.to_owned();
    config.connect_timeout = Duration::from_secs(2);
    config.stall_timeout = Duration::from_secs(3);
    config
}

/// A `Results` message shaped like Deepgram's (nova-3, one channel).
pub fn results(
    transcript: &str,
    start: f64,
    duration: f64,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
) -> Message {
    let words: Vec<serde_json::Value> = transcript
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            json!({"word": word.to_lowercase(), "start": start + i as f64 * 0.3,
                   "end": start + i as f64 * 0.3 + 0.25, "confidence": 0.98,
                   "punctuated_word": word})
        })
        .collect();
    Message::text(
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.97, "words": words}]},
            "metadata": {
                "request_id": REQUEST_ID,
                "model_info": {"name": "general-nova-3", "version": "2024-12-20.0", "arch": "nova-3"},
                "model_uuid": "40bd3654-e622-47c4-a111-63a61b23bd4f"
            }
        })
        .to_string(),
    )
}

/// The summary Deepgram sends after `CloseStream`.
pub fn metadata(duration: f64) -> Message {
    Message::text(
        json!({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": REQUEST_ID,
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "created": "2025-03-11T10:15:00.000Z",
            "duration": duration,
            "channels": 1
        })
        .to_string(),
    )
}

/// A conversation like Deepgram's: speech start, an interim and a final result as audio
/// arrives, the `from_finalize` result for `Finalize`, and `Metadata` then a normal close
/// for `CloseStream`.
pub async fn realistic(mut socket: Socket, shared: Shared) {
    let mut announced = 0;
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Binary(bytes) => {
                let total = {
                    let mut seen = shared.lock().expect("lock");
                    seen.audio.extend_from_slice(&bytes);
                    seen.audio_frames += 1;
                    seen.audio.len()
                };
                // 16 kHz × 2 bytes: 3200 bytes = 100 ms.
                if announced == 0 && total >= 3_200 {
                    announced = 1;
                    let started =
                        json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.1});
                    let _ = socket.send(Message::text(started.to_string())).await;
                }
                if announced == 1 && total >= 16_000 {
                    announced = 2;
                    let _ = socket
                        .send(results("book an", 0.0, 0.5, false, false, false))
                        .await;
                }
                if announced == 2 && total >= 32_000 {
                    announced = 3;
                    let _ = socket
                        .send(results("Book an appointment", 0.0, 1.0, true, false, false))
                        .await;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_owned));
                shared
                    .lock()
                    .expect("lock")
                    .controls
                    .push(text.as_str().to_owned());
                match kind.as_deref() {
                    Some("Finalize") => {
                        let _ = socket
                            .send(results("for tomorrow.", 1.0, 0.6, true, false, true))
                            .await;
                    }
                    Some("CloseStream") => {
                        let seconds = shared.lock().expect("lock").audio.len() as f64 / 32_000.0;
                        let _ = socket.send(metadata(seconds)).await;
                        let _ = socket
                            .close(Some(CloseFrame {
                                code: CloseCode::Normal,
                                reason: "".into(),
                            }))
                            .await;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// Reads everything, answers nothing.
pub async fn silent_reader(mut socket: Socket, shared: Shared) {
    while let Some(Ok(message)) = socket.next().await {
        let mut seen = shared.lock().expect("lock");
        match message {
            Message::Binary(bytes) => {
                seen.audio.extend_from_slice(&bytes);
                seen.audio_frames += 1;
            }
            Message::Text(text) => seen.controls.push(text.as_str().to_owned()),
            _ => {}
        }
    }
}
