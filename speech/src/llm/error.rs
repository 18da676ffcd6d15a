//! Errors of the chat client.

use std::fmt;
use std::time::Duration;

/// Which limit of [`LlmConfig`](super::LlmConfig) ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    /// No token (text or tool-call delta) arrived within `first_token_timeout`.
    FirstToken,
    /// The whole request took longer than `timeout`.
    Total,
}

impl fmt::Display for TimeoutStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutStage::FirstToken => "first token",
            TimeoutStage::Total => "whole request",
        })
    }
}

/// Why a chat request failed. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The configuration cannot work (bad URL, header or TLS set-up).
    #[error("invalid LLM configuration: {0}")]
    InvalidConfig(String),
    /// The request could not be sent: DNS, TCP connect, TLS handshake, or the connection
    /// closed before the response headers.
    #[error("cannot reach the LLM endpoint {url}: {message}")]
    Connect {
        /// The endpoint (no credentials are ever part of it).
        url: String,
        /// What failed.
        message: String,
    },
    /// The provider answered with an error status (other than 429).
    #[error("LLM endpoint returned HTTP {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The provider's error message (with its type and code when given), or the start
        /// of the body.
        message: String,
    },
    /// The provider refused for rate or quota reasons (HTTP 429).
    #[error("LLM endpoint rate-limited the request (retry after {retry_after:?}): {message}")]
    RateLimited {
        /// How long the provider asked to wait (`Retry-After` or `retry-after-ms`).
        retry_after: Option<Duration>,
        /// The provider's error message.
        message: String,
    },
    /// A limit ran out.
    #[error("LLM request timed out waiting for the {stage}")]
    Timeout {
        /// Which limit.
        stage: TimeoutStage,
    },
    /// The connection broke while the reply was streaming.
    #[error("LLM reply stream interrupted: {0}")]
    StreamInterrupted(String),
    /// The reply stream is not a valid chat-completions event stream.
    #[error("malformed LLM reply stream: {0}")]
    MalformedStream(String),
    /// The provider reported an error inside the event stream (`data: {"error":…}`).
    #[error("LLM provider reported an error mid-stream: {0}")]
    Provider(String),
}

impl LlmError {
    /// Whether sending the same request again (to the same or another provider) may succeed:
    /// rate limits, timeouts, connection failures and 5xx statuses.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Timeout { .. }
            | LlmError::Connect { .. }
            | LlmError::StreamInterrupted(_) => true,
            LlmError::Http { status, .. } => *status >= 500,
            LlmError::InvalidConfig(_) | LlmError::MalformedStream(_) | LlmError::Provider(_) => {
                false
            }
        }
    }
}

/// The message of a reqwest error with its causes, e.g. "error sending request: connection
/// refused", without the URL (the caller names the endpoint) and never with headers.
pub(crate) fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
