//! Chat client for the OpenAI-compatible chat-completions API, streamed, with tool calls.
//!
//! One client covers OpenAI, Azure OpenAI, Groq and local servers (llama.cpp, Ollama): see
//! [`LlmConfig`]. [`ChatClient::stream`] sends a [`ChatRequest`] with `"stream": true` and
//! returns a [`ChatStream`] of [`ChatEvent`]s: text deltas as they arrive, each tool call once
//! complete, then `Done` with the finish reason and token usage. Everything is async; dropping
//! the stream closes the connection.
//!
//! Layers: [`sse`] parses the event-stream bytes (sans-IO), `assembler` turns chunk JSON into
//! events (sans-IO), `client` does the HTTP with `reqwest` (rustls with `ring`).

mod assembler;
mod client;
mod error;
pub mod sse;
mod types;

pub use client::{ChatClient, ChatReply, ChatStream};
pub use error::{LlmError, TimeoutStage};
pub use types::{ChatEvent, ChatMessage, ChatRequest, LlmConfig, ToolCall, ToolDefinition, Usage};
