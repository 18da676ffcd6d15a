//! Turns the `data` of streamed `chat.completion.chunk` events into [`ChatEvent`]s, sans-IO:
//! text deltas pass through as they come, tool calls are assembled from their fragments
//! (keyed by `index`) and emitted complete when the model finishes its turn.

use std::collections::{BTreeMap, VecDeque};

use super::error::LlmError;
use super::types::{ChatEvent, ToolCall, Usage, WireChunk, error_message};

/// Longest event data quoted in an error message.
const QUOTE_LIMIT: usize = 200;

/// A tool call whose fragments are still arriving.
#[derive(Debug, Default)]
struct PartialToolCall {
    id: String,
    name: String,
    arguments: String,
}

/// The state of one streamed reply.
#[derive(Debug, Default)]
pub(crate) struct ReplyAssembler {
    tool_calls: BTreeMap<u32, PartialToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    saw_token: bool,
    done: bool,
}

impl ReplyAssembler {
    /// Whether a token (text or tool-call fragment) or the end of the reply has arrived.
    pub fn saw_token(&self) -> bool {
        self.saw_token || self.done
    }

    /// Whether the reply is complete ([`ChatEvent::Done`] was produced).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Handles the data of one event, appending what it yields to `out`.
    pub fn event(&mut self, data: &str, out: &mut VecDeque<ChatEvent>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if data.trim() == "[DONE]" {
            return self.finish(out);
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|error| {
            LlmError::MalformedStream(format!("bad chunk ({error}): {}", quote(data)))
        })?;
        if let Some(error) = &chunk.error {
            let message = error_message(&serde_json::json!({ "error": error }))
                .unwrap_or_else(|| quote(&error.to_string()));
            return Err(LlmError::Provider(message));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            });
        }
        // Only one completion is requested (`n` = 1): other choices, if any, are ignored.
        for choice in chunk
            .choices
            .into_iter()
            .filter(|c| c.index.unwrap_or(0) == 0)
        {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    self.saw_token = true;
                    out.push_back(ChatEvent::TextDelta(text));
                }
                for (position, fragment) in
                    delta.tool_calls.unwrap_or_default().into_iter().enumerate()
                {
                    self.saw_token = true;
                    let key = match fragment.index {
                        Some(index) => index,
                        None => self.key_without_index(position, fragment.id.as_deref()),
                    };
                    let call = self.tool_calls.entry(key).or_default();
                    if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                        call.id = id;
                    }
                    if let Some(function) = fragment.function {
                        if let Some(name) = function.name.filter(|name| !name.is_empty())
                            && call.name.is_empty()
                        {
                            call.name = name;
                        }
                        if let Some(arguments) = function.arguments {
                            call.arguments.push_str(&arguments);
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
                self.emit_tool_calls(out)?;
            }
        }
        Ok(())
    }

    /// Handles the end of the byte stream. A stream that ends after the model finished (but
    /// before `[DONE]`) is accepted; one that ends earlier is malformed.
    pub fn end_of_stream(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.finish_reason.is_some() {
            return self.finish(out);
        }
        Err(LlmError::MalformedStream(
            "the stream ended before the model finished its reply".to_owned(),
        ))
    }

    fn finish(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), LlmError> {
        self.emit_tool_calls(out)?;
        self.done = true;
        out.push_back(ChatEvent::Done {
            finish_reason: self.finish_reason.take(),
            usage: self.usage.take(),
        });
        Ok(())
    }

    /// For servers that omit `index` on tool-call fragments: a fragment with a new id starts
    /// a new call, others continue the last one.
    fn key_without_index(&self, position: usize, id: Option<&str>) -> u32 {
        match (self.tool_calls.last_key_value(), id) {
            (None, _) => u32::try_from(position).unwrap_or(u32::MAX),
            (Some((&key, call)), Some(id))
                if !id.is_empty() && !call.id.is_empty() && call.id != id =>
            {
                key.saturating_add(1)
            }
            (Some((&key, _)), _) => key,
        }
    }

    fn emit_tool_calls(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), LlmError> {
        for (key, call) in std::mem::take(&mut self.tool_calls) {
            if call.name.is_empty() {
                return Err(LlmError::MalformedStream(format!(
                    "tool call {key} has no function name"
                )));
            }
            out.push_back(ChatEvent::ToolCall(ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{key}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: if call.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    call.arguments
                },
            }));
        }
        Ok(())
    }
}

/// The start of `text` for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> Result<Vec<ChatEvent>, LlmError> {
        let mut assembler = ReplyAssembler::default();
        let mut out = VecDeque::new();
        for data in events {
            assembler.event(data, &mut out)?;
        }
        assembler.end_of_stream(&mut out)?;
        Ok(out.into_iter().collect())
    }

    #[test]
    fn text_usage_and_done() {
        let events = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
            "[DONE]",
        ])
        .expect("valid");
        assert_eq!(
            events,
            vec![
                ChatEvent::TextDelta("Hel".into()),
                ChatEvent::TextDelta("lo".into()),
                ChatEvent::Done {
                    finish_reason: Some("stop".into()),
                    usage: Some(Usage {
                        prompt_tokens: 9,
                        completion_tokens: 2
                    }),
                },
            ]
        );
    }

    #[test]
    fn tool_calls_without_index_are_split_by_id() {
        let events = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ])
        .expect("valid");
        assert_eq!(
            events,
            vec![
                ChatEvent::ToolCall(ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: "{\"x\":1}".into()
                }),
                ChatEvent::ToolCall(ToolCall {
                    id: "b".into(),
                    name: "g".into(),
                    arguments: "{}".into()
                }),
                ChatEvent::Done {
                    finish_reason: Some("tool_calls".into()),
                    usage: None
                },
            ]
        );
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(
            run(&["{not json"]),
            Err(LlmError::MalformedStream(_))
        ));
        assert!(matches!(
            run(&[r#"{"choices":[{"delta":{"content":"hi"}}]}"#]),
            Err(LlmError::MalformedStream(_))
        ));
        assert_eq!(
            run(&[r#"{"error":{"message":"overloaded","type":"server_error"}}"#]),
            Err(LlmError::Provider("overloaded (type server_error)".into()))
        );
        assert!(matches!(
            run(&[
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
                "[DONE]"
            ]),
            Err(LlmError::MalformedStream(_))
        ));
    }
}
