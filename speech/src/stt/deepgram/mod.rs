//! Deepgram live streaming speech-to-text over a WebSocket (`wss://api.deepgram.com/v1/listen`).
//!
//! [`DeepgramTranscriber::open`](StreamingTranscriber::open) connects (header
//! `Authorization: Token <key>`) and starts a task that owns the socket: it sends the
//! pushed audio as binary frames of 16-bit little-endian PCM, `KeepAlive` when no audio
//! went out for `keepalive_interval`, `Finalize` for `finish_utterance` and `CloseStream`
//! for `close`, and turns Deepgram's messages into [`SttEvent`]s (see [`protocol`]).
//!
//! Liveness: whenever something was sent that the server must react to, a WebSocket ping
//! follows after half of `stall_timeout` without any frame from the server; a server that
//! stays silent for the whole `stall_timeout` fails the stream with
//! [`TranscriptionTimeout::Stalled`] instead of hanging.
//!
//! Back-pressure: `push_audio` never blocks. At most `max_buffered_ms` of audio waits for
//! the socket; a frame that does not fit is dropped, counted in
//! [`SttUsage::audio_ms_dropped`], and reported as [`TranscriptionError::BufferFull`].

mod protocol;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use self::protocol::{CLOSE_STREAM, DeepgramDecoder, FINALIZE, KEEP_ALIVE, listen_url};
use super::http::{error_from_status, invalid};
use super::stream::{
    AudioCounters, NextEventFuture, OpenStreamFuture, StreamOptions, StreamingTranscriber,
    SttEvent, SttUsage, TranscriptionStream, ms_to_samples, samples_to_ms,
};
use crate::transcriber::{TranscriptionError, TranscriptionTimeout};

/// Engine name in logs, metrics and errors.
pub const DEEPGRAM_ENGINE: &str = "deepgram";

/// Settings of [`DeepgramTranscriber`].
#[derive(Clone)]
pub struct DeepgramSttConfig {
    /// API key, sent as `Authorization: Token <key>`.
    pub api_key: String,
    /// Listen endpoint: `wss://api.deepgram.com/v1/listen` (default); tests use `ws://`.
    pub base_url: String,
    /// Model: `nova-3` (default).
    pub model: String,
    /// Language when a stream names none: a BCP 47 tag (`en`, `en-IN`, `hi`) or `multi`
    /// for code-switching (Hinglish). Default `en`.
    pub language: String,
    /// Silence in ms after which Deepgram marks a result `speech_final` (its end-pointing);
    /// `None` turns end-pointing off. Default 300.
    pub endpointing_ms: Option<u32>,
    /// Send `UtteranceEnd` after this many ms without words (at least 1000); `None` (default)
    /// does not ask for it.
    pub utterance_end_ms: Option<u32>,
    /// Interim (partial) results. Default true.
    pub interim_results: bool,
    /// Punctuation. Default true.
    pub punctuate: bool,
    /// Smart formatting (numbers, dates, phone numbers). Default true.
    pub smart_format: bool,
    /// `SpeechStarted` events. Default true.
    pub vad_events: bool,
    /// Key terms to boost (nova-3 keyterm prompting): names, products, jargon.
    pub keyterms: Vec<String>,
    /// Limit on opening the connection (TCP, TLS, WebSocket handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// `KeepAlive` after this long without audio (Deepgram closes after 10 s). Default 4 s.
    pub keepalive_interval: Duration,
    /// Longest silence from the server while it owes an answer. Default 5 s.
    pub stall_timeout: Duration,
    /// How long `finish_utterance` waits for the `from_finalize` result before it reports
    /// the utterance ended anyway. Default 2 s.
    pub finalize_timeout: Duration,
    /// How long `close` waits for the last results and the server's close. Default 3 s.
    pub close_timeout: Duration,
    /// Most audio waiting to be sent before frames are dropped. Default 5000 ms.
    pub max_buffered_ms: u64,
}

impl std::fmt::Debug for DeepgramSttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramSttConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("language", &self.language)
            .field("endpointing_ms", &self.endpointing_ms)
            .field("utterance_end_ms", &self.utterance_end_ms)
            .field("interim_results", &self.interim_results)
            .field("keyterms", &self.keyterms)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("max_buffered_ms", &self.max_buffered_ms)
            .finish_non_exhaustive()
    }
}

impl DeepgramSttConfig {
    /// Defaults for `api.deepgram.com` with nova-3 in English.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: "wss://api.deepgram.com/v1/listen".to_owned(),
            model: "nova-3".to_owned(),
            language: "en".to_owned(),
            endpointing_ms: Some(300),
            utterance_end_ms: None,
            interim_results: true,
            punctuate: true,
            smart_format: true,
            vad_events: true,
            keyterms: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(4),
            stall_timeout: Duration::from_secs(5),
            finalize_timeout: Duration::from_secs(2),
            close_timeout: Duration::from_secs(3),
            max_buffered_ms: 5_000,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), TranscriptionError> {
        let fail = |detail: &str| Err(invalid(DEEPGRAM_ENGINE, detail));
        if self.api_key.trim().is_empty() {
            return fail("api_key is empty");
        }
        if self.model.trim().is_empty() {
            return fail("model is empty");
        }
        if [
            self.connect_timeout,
            self.keepalive_interval,
            self.stall_timeout,
            self.finalize_timeout,
            self.close_timeout,
        ]
        .iter()
        .any(Duration::is_zero)
        {
            return fail("timeouts and the keep-alive interval must be positive");
        }
        if self.keepalive_interval >= Duration::from_secs(10) {
            return fail("keepalive_interval must be under 10 s (Deepgram's idle limit)");
        }
        if self.utterance_end_ms.is_some_and(|ms| ms < 1000) {
            return fail("utterance_end_ms must be at least 1000");
        }
        if self.max_buffered_ms < 100 {
            return fail("max_buffered_ms must be at least 100");
        }
        listen_url(self, 16_000, None).map(|_| ())
    }
}

/// Deepgram live transcription: one WebSocket per stream.
#[derive(Clone)]
pub struct DeepgramTranscriber {
    config: Arc<DeepgramSttConfig>,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for DeepgramTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramTranscriber")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DeepgramTranscriber {
    /// Checks the configuration and prepares TLS; opens no connection.
    pub fn new(config: DeepgramSttConfig) -> Result<Self, TranscriptionError> {
        config.validate()?;
        let tls = crate::tls::client_config()
            .map_err(|error| invalid(DEEPGRAM_ENGINE, format!("TLS set-up failed: {error}")))?;
        Ok(Self {
            config: Arc::new(config),
            tls: Arc::new(tls),
        })
    }

    async fn connect(&self, options: StreamOptions) -> Result<DeepgramStream, TranscriptionError> {
        options.check()?;
        let config = &self.config;
        let url = listen_url(config, options.sample_rate, options.language.as_deref())?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| invalid(DEEPGRAM_ENGINE, error.to_string()))?;
        let mut token =
            tungstenite::http::HeaderValue::from_str(&format!("Token {}", config.api_key.trim()))
                .map_err(|_| {
                invalid(
                    DEEPGRAM_ENGINE,
                    "api_key contains characters not allowed in a header",
                )
            })?;
        token.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, token);
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            true,
            Some(Connector::Rustls(self.tls.clone())),
        );
        let (socket, response) = match timeout(config.connect_timeout, connect).await {
            Err(_) => {
                return Err(TranscriptionError::Timeout {
                    engine: DEEPGRAM_ENGINE.to_owned(),
                    stage: TranscriptionTimeout::Connect,
                });
            }
            Ok(Err(error)) => return Err(handshake_error(error)),
            Ok(Ok(connected)) => connected,
        };
        let request_id = response
            .headers()
            .get("dg-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let language = options
            .language
            .clone()
            .unwrap_or_else(|| config.language.clone());
        tracing::debug!(
            %request_id,
            model = %config.model,
            %language,
            sample_rate = options.sample_rate,
            "Deepgram stream opened"
        );
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (event_sender, events) = mpsc::unbounded_channel();
        let counters = Arc::new(AudioCounters::default());
        let now = Instant::now();
        let session = Session {
            socket,
            commands: command_receiver,
            events: event_sender,
            counters: counters.clone(),
            decoder: DeepgramDecoder::new(&language),
            config: self.config.clone(),
            sample_rate: options.sample_rate,
            last_sent: now,
            owed_since: None,
            pinged: false,
            closing_since: None,
        };
        tokio::spawn(session.run());
        Ok(DeepgramStream {
            commands,
            events,
            counters,
            sample_rate: options.sample_rate,
            max_buffered_samples: ms_to_samples(config.max_buffered_ms, options.sample_rate),
            closed: false,
        })
    }
}

impl StreamingTranscriber for DeepgramTranscriber {
    fn name(&self) -> &str {
        DEEPGRAM_ENGINE
    }

    fn open(&self, options: StreamOptions) -> OpenStreamFuture<'_> {
        Box::pin(async move {
            self.connect(options)
                .await
                .map(|stream| Box::new(stream) as Box<dyn TranscriptionStream>)
        })
    }
}

/// The typed error for a failed connection or WebSocket handshake.
fn handshake_error(error: tungstenite::Error) -> TranscriptionError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let mut body = response.body().clone().unwrap_or_default();
            if body.is_empty()
                && let Some(reason) = response
                    .headers()
                    .get("dg-error")
                    .and_then(|value| value.to_str().ok())
            {
                body = reason.as_bytes().to_vec();
            }
            error_from_status(DEEPGRAM_ENGINE, status, response.headers(), &body)
        }
        other => TranscriptionError::Connect {
            engine: DEEPGRAM_ENGINE.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// What the stream handle asks of its task, in order.
enum Command {
    Audio { bytes: Vec<u8>, samples: u64 },
    Finalize,
    Close,
}

/// The handle of one Deepgram stream.
struct DeepgramStream {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Result<SttEvent, TranscriptionError>>,
    counters: Arc<AudioCounters>,
    sample_rate: u32,
    max_buffered_samples: u64,
    closed: bool,
}

impl DeepgramStream {
    fn ended() -> TranscriptionError {
        TranscriptionError::StreamEnded {
            engine: DEEPGRAM_ENGINE.to_owned(),
        }
    }

    fn send(&self, command: Command) -> Result<(), TranscriptionError> {
        if self.closed {
            return Err(Self::ended());
        }
        self.commands.send(command).map_err(|_| Self::ended())
    }
}

impl TranscriptionStream for DeepgramStream {
    fn push_audio(&mut self, samples: &[i16]) -> Result<(), TranscriptionError> {
        if self.closed || self.commands.is_closed() {
            return Err(Self::ended());
        }
        // An empty binary frame would end the stream at Deepgram: never send one.
        if samples.is_empty() {
            return Ok(());
        }
        let count = samples.len() as u64;
        if !self.counters.try_queue(count, self.max_buffered_samples) {
            self.counters.add_dropped(count);
            return Err(TranscriptionError::BufferFull {
                engine: DEEPGRAM_ENGINE.to_owned(),
                buffered_ms: samples_to_ms(self.counters.queued(), self.sample_rate),
            });
        }
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        for sample in samples {
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
        self.send(Command::Audio {
            bytes,
            samples: count,
        })
        .inspect_err(|_| self.counters.dequeue(count))
    }

    fn finish_utterance(&mut self) -> Result<(), TranscriptionError> {
        self.send(Command::Finalize)
    }

    fn next_event(&mut self) -> NextEventFuture<'_> {
        Box::pin(self.events.recv())
    }

    fn close(&mut self) {
        if !self.closed {
            let _ = self.commands.send(Command::Close);
            self.closed = true;
        }
    }

    fn usage(&self) -> SttUsage {
        self.counters.usage(self.sample_rate)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How one turn of the session loop ended.
enum Step {
    Continue,
    /// The stream is over without error.
    End,
    Fail(TranscriptionError),
}

/// The task that owns one Deepgram WebSocket.
struct Session {
    socket: Socket,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Result<SttEvent, TranscriptionError>>,
    counters: Arc<AudioCounters>,
    decoder: DeepgramDecoder,
    config: Arc<DeepgramSttConfig>,
    sample_rate: u32,
    /// When audio or a keep-alive last went out.
    last_sent: Instant,
    /// Since when the server owes an answer (something was sent and nothing came since).
    owed_since: Option<Instant>,
    /// Whether a ping went out for the current `owed_since`.
    pinged: bool,
    /// When `CloseStream` was sent.
    closing_since: Option<Instant>,
}

impl Session {
    async fn run(mut self) {
        let failure = loop {
            let wake = self.next_wake();
            let step = tokio::select! {
                command = self.commands.recv(), if self.closing_since.is_none() => match command {
                    Some(command) => self.command(command).await,
                    None => {
                        // The handle was dropped: nobody listens any more.
                        let _ = timeout(
                            Duration::from_millis(200),
                            self.socket.send(Message::text(CLOSE_STREAM)),
                        )
                        .await;
                        break None;
                    }
                },
                message = self.socket.next() => self.incoming(message),
                () = sleep_until(wake) => self.timers().await,
            };
            match step {
                Step::Continue => {}
                Step::End => {
                    for event in self.decoder.end_of_stream() {
                        self.emit(event);
                    }
                    break None;
                }
                Step::Fail(error) => break Some(error),
            }
        };
        if let Some(error) = failure {
            tracing::debug!(%error, "Deepgram stream failed");
            let _ = self.events.send(Err(error));
        }
        let _ = timeout(Duration::from_millis(500), self.socket.close(None)).await;
        tracing::debug!(usage = ?self.counters.usage(self.sample_rate), "Deepgram stream ended");
    }

    fn emit(&self, event: SttEvent) {
        let _ = self.events.send(Ok(event));
    }

    /// The earliest time a timer needs attention.
    fn next_wake(&self) -> Instant {
        let config = &self.config;
        // While closing no keep-alive goes out: the close deadline bounds the wait.
        let mut wake = match self.closing_since {
            Some(since) => since + config.close_timeout,
            None => self.last_sent + config.keepalive_interval,
        };
        if let Some(since) = self.owed_since {
            wake = wake.min(since + config.stall_timeout);
            if !self.pinged {
                wake = wake.min(since + config.stall_timeout / 2);
            }
        }
        if let Some(deadline) = self.decoder.next_finalize_deadline() {
            wake = wake.min(deadline);
        }
        wake
    }

    /// Sends one message; a socket that takes no data for `stall_timeout` has stalled.
    async fn send(&mut self, message: Message) -> Result<(), TranscriptionError> {
        match timeout(self.config.stall_timeout, self.socket.send(message)).await {
            Err(_) => Err(TranscriptionError::Timeout {
                engine: DEEPGRAM_ENGINE.to_owned(),
                stage: TranscriptionTimeout::Stalled,
            }),
            Ok(Err(error)) => Err(TranscriptionError::Disconnected {
                engine: DEEPGRAM_ENGINE.to_owned(),
                detail: error.to_string(),
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Something went out that the server must react to.
    fn owe_answer(&mut self, now: Instant) {
        if self.owed_since.is_none() {
            self.owed_since = Some(now);
            self.pinged = false;
        }
    }

    async fn command(&mut self, command: Command) -> Step {
        let now = Instant::now();
        let result = match command {
            Command::Audio { bytes, samples } => {
                self.counters.dequeue(samples);
                let result = self.send(Message::binary(bytes)).await;
                if result.is_ok() {
                    self.counters.add_sent(samples);
                    self.last_sent = now;
                    self.owe_answer(now);
                }
                result
            }
            Command::Finalize => {
                let result = self.send(Message::text(FINALIZE)).await;
                self.decoder
                    .finalize_sent(now + self.config.finalize_timeout);
                self.owe_answer(now);
                result
            }
            Command::Close => {
                let result = self.send(Message::text(CLOSE_STREAM)).await;
                self.closing_since = Some(now);
                self.owe_answer(now);
                result
            }
        };
        match result {
            Ok(()) => Step::Continue,
            Err(error) => Step::Fail(error),
        }
    }

    fn incoming(&mut self, message: Option<Result<Message, tungstenite::Error>>) -> Step {
        let closing = self.closing_since.is_some();
        let message =
            match message {
                None if closing => return Step::End,
                None => {
                    return Step::Fail(TranscriptionError::Disconnected {
                        engine: DEEPGRAM_ENGINE.to_owned(),
                        detail: "the connection closed without a close frame".to_owned(),
                    });
                }
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) if closing => return Step::End,
                Some(Err(error)) => {
                    return Step::Fail(TranscriptionError::Disconnected {
                        engine: DEEPGRAM_ENGINE.to_owned(),
                        detail: error.to_string(),
                    });
                }
                Some(Ok(message)) => message,
            };
        // Any frame shows the server is alive.
        self.owed_since = None;
        self.pinged = false;
        match message {
            Message::Text(text) => match self.decoder.message(text.as_str()) {
                Ok(events) => {
                    for event in events {
                        self.emit(event);
                    }
                    Step::Continue
                }
                Err(error) => Step::Fail(error),
            },
            Message::Close(frame) => close_step(frame, closing),
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                Step::Continue
            }
        }
    }

    async fn timers(&mut self) -> Step {
        let now = Instant::now();
        let config = self.config.clone();
        if let Some(since) = self.owed_since {
            if now >= since + config.stall_timeout {
                return Step::Fail(TranscriptionError::Timeout {
                    engine: DEEPGRAM_ENGINE.to_owned(),
                    stage: TranscriptionTimeout::Stalled,
                });
            }
            if !self.pinged && now >= since + config.stall_timeout / 2 {
                self.pinged = true;
                if let Err(error) = self.send(Message::Ping(Vec::new().into())).await {
                    return Step::Fail(error);
                }
            }
        }
        if let Some(since) = self.closing_since
            && now >= since + config.close_timeout
        {
            tracing::debug!("Deepgram did not close the stream in time; closing it");
            return Step::End;
        }
        for event in self.decoder.expire_finalizes(now) {
            self.emit(event);
        }
        if self.closing_since.is_none() && now >= self.last_sent + config.keepalive_interval {
            self.last_sent = now;
            if let Err(error) = self.send(Message::text(KEEP_ALIVE)).await {
                return Step::Fail(error);
            }
        }
        Step::Continue
    }
}

/// The end a close frame from the server means: normal after our `CloseStream`, an error
/// otherwise (Deepgram's reasons are codes like `DATA-0000` or `NET-0001`).
fn close_step(frame: Option<CloseFrame>, closing: bool) -> Step {
    let (code, reason) = match frame {
        Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
        None => (u16::from(CloseCode::Status), String::new()),
    };
    let normal = code == u16::from(CloseCode::Normal) || code == u16::from(CloseCode::Status);
    if closing && normal {
        return Step::End;
    }
    Step::Fail(TranscriptionError::StreamClosed {
        engine: DEEPGRAM_ENGINE.to_owned(),
        code,
        reason: if reason.trim().is_empty() {
            "no reason given".to_owned()
        } else {
            reason
        },
    })
}
