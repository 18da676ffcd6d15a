//! A call's LLM generations and HTTP fetches: the plugin's `llm.generate` and `http.fetch`
//! requests, run off the call task, their results turned back into plugin events.
//!
//! A spoken generation plays as *parts*: each complete sentence of the streaming reply is a
//! separate host playback (ids from [`SPOKEN_PART_BASE`]) synthesized and queued as soon as it
//! arrives, so the first sentence is heard before the reply is complete. The plugin sees one
//! playback (the id `generate` returned): finished when the reply is complete and every part
//! has played, or interrupted — with how much was heard — when the caller barges in, which
//! also cancels the generation (its tool calls never reach the plugin).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vaani_sandbox::{
    FetchOutcome, FetchRequest, FetchResponse, Generation, GenerationOutcome, HttpMethod,
    Interruption, LlmRequest, LlmRole, ToolCall,
};
use vaani_speech::llm::{ChatMessage, ChatRequest, ToolDefinition};

use crate::egress::{self, Egress};
use crate::generation::{GenerationDone, GenerationUpdate, LlmService};

/// First playback id of spoken generation parts; above the host's own playbacks
/// (`1 << 62` onwards), so that parts are never reported to the plugin as playbacks.
pub const SPOKEN_PART_BASE: u64 = (1 << 62) + (1 << 61);

/// Updates of one call's generations and fetches, for the call task's event loop.
pub enum ConversationUpdate {
    /// An update of generation `id`.
    Generation(u64, GenerationUpdate),
    /// Fetch `id` finished.
    Fetch(u64, FetchOutcome),
}

/// One sentence of a spoken generation.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    id: u64,
    text: String,
    /// Length of its synthesized audio, once known.
    audio_ms: Option<u32>,
    done: bool,
}

struct Running {
    /// The plugin's playback id when the reply is spoken.
    playback: Option<u64>,
    interruptible: bool,
    forwarder: JoinHandle<()>,
    parts: Vec<Part>,
    /// Still receiving the reply.
    streaming: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropping the forwarder's generation handle aborts the request.
        self.forwarder.abort();
    }
}

/// What the call task must do after a spoken generation was interrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    /// The generation.
    pub generation: u64,
    /// For the plugin's `barge-in` event.
    pub interruption: Interruption,
    /// The reply was still streaming: the plugin also gets `generation-finished(cancelled)`.
    pub was_streaming: bool,
    /// Parts of it still queued or synthesizing, to stop.
    pub pending_parts: Vec<u64>,
}

/// What the call task must do after a generation was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// Parts still queued or playing, to stop.
    pub parts: Vec<u64>,
    /// The plugin playback, no longer pending.
    pub playback: Option<u64>,
    /// The reply was still streaming: the plugin gets `generation-finished(cancelled)`.
    pub was_streaming: bool,
}

/// A call's generations and fetches.
pub struct Conversation {
    llm: Option<Arc<LlmService>>,
    egress: Option<Arc<Egress>>,
    running: HashMap<u64, Running>,
    /// Part id → generation id.
    parts: HashMap<u64, u64>,
    next_part: u64,
    fetches: Vec<JoinHandle<()>>,
    updates_tx: mpsc::Sender<ConversationUpdate>,
    updates_rx: mpsc::Receiver<ConversationUpdate>,
}

impl Conversation {
    /// A call's conversation with the tenant's LLM and egress, if it has them.
    pub fn new(llm: Option<Arc<LlmService>>, egress: Option<Arc<Egress>>) -> Self {
        let (updates_tx, updates_rx) = mpsc::channel(64);
        Conversation {
            llm,
            egress,
            running: HashMap::new(),
            parts: HashMap::new(),
            next_part: SPOKEN_PART_BASE,
            fetches: Vec::new(),
            updates_tx,
            updates_rx,
        }
    }

    /// Whether the tenant has an LLM.
    pub fn llm_available(&self) -> bool {
        self.llm.is_some()
    }

    /// The tenant's model name, for the cost ledger.
    pub fn model(&self) -> Option<&str> {
        self.llm.as_ref().map(|llm| llm.settings().model.as_str())
    }

    /// The next update of any generation or fetch. Cancel-safe.
    pub async fn next_update(&mut self) -> Option<ConversationUpdate> {
        self.updates_rx.recv().await
    }

    /// Starts generation `id`; `playback` is its plugin playback when spoken.
    pub fn start(
        &mut self,
        id: u64,
        playback: Option<u64>,
        request: &LlmRequest,
    ) -> Result<(), String> {
        let Some(llm) = &self.llm else {
            return Err("no LLM is configured for this tenant".to_string());
        };
        let mut handle = llm.spawn_generation(chat_request(request), playback.is_some());
        let tx = self.updates_tx.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(update) = handle.next().await {
                let last = matches!(update, GenerationUpdate::Finished(_));
                if tx
                    .send(ConversationUpdate::Generation(id, update))
                    .await
                    .is_err()
                {
                    return;
                }
                if last {
                    return;
                }
            }
            // The generation task ended without a result (it panicked): say so.
            let _ = tx
                .send(ConversationUpdate::Generation(
                    id,
                    GenerationUpdate::Finished(Err("the generation ended without a result".into())),
                ))
                .await;
        });
        self.running.insert(
            id,
            Running {
                playback,
                interruptible: request.interruptible,
                forwarder,
                parts: Vec::new(),
                streaming: true,
            },
        );
        Ok(())
    }

    /// A sentence of spoken generation `id` arrived: the part id to speak it as, and whether
    /// caller speech may interrupt it. `None` when the generation is gone or not spoken.
    pub fn sentence(&mut self, id: u64, text: &str) -> Option<(u64, bool)> {
        let running = self.running.get_mut(&id)?;
        running.playback?;
        let part = self.next_part;
        self.next_part += 1;
        running.parts.push(Part {
            id: part,
            text: text.to_string(),
            audio_ms: None,
            done: false,
        });
        self.parts.insert(part, id);
        Some((part, running.interruptible))
    }

    /// Whether `playback` is a part of a spoken generation.
    pub fn is_part(&self, playback: u64) -> bool {
        playback >= SPOKEN_PART_BASE
    }

    /// The synthesized length of a part.
    pub fn part_audio(&mut self, part: u64, audio_ms: u32) {
        if let Some(p) = self.part_mut(part) {
            p.audio_ms = Some(audio_ms);
        }
    }

    /// A part played to the end, or could not be played. Returns the plugin playback that is
    /// now finished, if this was the last part of a complete reply.
    pub fn part_finished(&mut self, part: u64) -> Option<u64> {
        let id = self.parts.remove(&part)?;
        if let Some(p) = self.part_mut_of(id, part) {
            p.done = true;
        }
        self.finish_if_spoken_out(id)
    }

    /// Generation `id` finished streaming. Returns the plugin's outcome (`None` when the
    /// generation was cancelled meanwhile) and the playback finished now, if any.
    pub fn finished(
        &mut self,
        id: u64,
        result: Result<GenerationDone, String>,
    ) -> (Option<GenerationOutcome>, Option<u64>) {
        let Some(running) = self.running.get_mut(&id) else {
            return (None, None);
        };
        running.streaming = false;
        let outcome = match result {
            Ok(done) => GenerationOutcome::Completed(Generation {
                text: done.text,
                tool_calls: done
                    .tool_calls
                    .into_iter()
                    .map(|call| ToolCall {
                        id: call.id,
                        name: call.name,
                        arguments_json: call.arguments,
                    })
                    .collect(),
                prompt_tokens: done.prompt_tokens,
                completion_tokens: done.completion_tokens,
            }),
            Err(error) => GenerationOutcome::Failed(error),
        };
        if running.playback.is_none() {
            self.running.remove(&id);
            return (Some(outcome), None);
        }
        (Some(outcome), self.finish_if_spoken_out(id))
    }

    /// The caller barged in: every interruptible spoken generation is cut (the engine flushed
    /// all interruptible audio) and cancelled. `cut` is the part that was playing and how much
    /// of it played, when the playing audio was a part.
    pub fn barge_in(&mut self, cut: Option<(u64, u32)>) -> Vec<Interrupted> {
        let mut ids: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, r)| r.playback.is_some() && r.interruptible)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let mut interrupted = Vec::new();
        for id in ids {
            let Some(running) = self.running.remove(&id) else {
                continue;
            };
            let cut_part = cut.map(|(part, _)| part);
            let mut pending_parts = Vec::new();
            for p in &running.parts {
                self.parts.remove(&p.id);
                if !p.done && Some(p.id) != cut_part {
                    pending_parts.push(p.id);
                }
            }
            let (heard_ms, heard_text) = match cut {
                Some((part, played_ms)) if running.parts.iter().any(|p| p.id == part) => {
                    heard(&running.parts, part, played_ms)
                }
                _ => heard(&running.parts, u64::MAX, 0),
            };
            interrupted.push(Interrupted {
                generation: id,
                interruption: Interruption {
                    playback: running.playback.unwrap_or_default(),
                    heard_ms,
                    heard_text: Some(heard_text).filter(|t| !t.is_empty()),
                },
                was_streaming: running.streaming,
                pending_parts,
            });
        }
        interrupted
    }

    /// The plugin cancelled generation `id` (or stopped its playback). `None` when it had
    /// already finished and played.
    pub fn cancel(&mut self, id: u64) -> Option<Cancelled> {
        let running = self.running.remove(&id)?;
        let mut parts = Vec::new();
        for p in &running.parts {
            self.parts.remove(&p.id);
            if !p.done {
                parts.push(p.id);
            }
        }
        Some(Cancelled {
            parts,
            playback: running.playback,
            was_streaming: running.streaming,
        })
    }

    /// The running generation speaking as plugin playback `playback`.
    pub fn generation_with_playback(&self, playback: u64) -> Option<u64> {
        self.running
            .iter()
            .find(|(_, r)| r.playback == Some(playback))
            .map(|(id, _)| *id)
    }

    /// Every running spoken generation.
    pub fn spoken_generations(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, r)| r.playback.is_some())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Whether a generation or fetch is still running (the agent is busy, not waiting).
    pub fn is_busy(&self) -> bool {
        !self.running.is_empty() || self.fetches.iter().any(|task| !task.is_finished())
    }

    /// Starts fetch `id` through the tenant's egress; its outcome arrives as an update.
    /// Refused at once (the outcome returned) when the tenant has no egress.
    pub fn fetch(&mut self, id: u64, request: FetchRequest) -> Option<FetchOutcome> {
        let tx = self.updates_tx.clone();
        let Some(egress) = self.egress.clone() else {
            return Some(FetchOutcome::Failed(
                "http fetches are not enabled for this tenant".to_string(),
            ));
        };
        self.fetches.retain(|task| !task.is_finished());
        self.fetches.push(tokio::spawn(async move {
            let outcome = match egress.fetch(egress_request(request)).await {
                Ok(response) => FetchOutcome::Response(FetchResponse {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                }),
                Err(error) => FetchOutcome::Failed(error.to_string()),
            };
            let _ = tx.send(ConversationUpdate::Fetch(id, outcome)).await;
        }));
        None
    }

    /// Stops everything still running (the call is over).
    pub fn shutdown(&mut self) {
        self.running.clear();
        self.parts.clear();
        for task in self.fetches.drain(..) {
            task.abort();
        }
    }

    fn part_mut(&mut self, part: u64) -> Option<&mut Part> {
        let id = *self.parts.get(&part)?;
        self.part_mut_of(id, part)
    }

    fn part_mut_of(&mut self, id: u64, part: u64) -> Option<&mut Part> {
        self.running
            .get_mut(&id)?
            .parts
            .iter_mut()
            .find(|p| p.id == part)
    }

    fn finish_if_spoken_out(&mut self, id: u64) -> Option<u64> {
        let running = self.running.get(&id)?;
        if running.streaming || running.parts.iter().any(|p| !p.done) {
            return None;
        }
        let playback = running.playback;
        self.running.remove(&id);
        playback
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How much of a spoken reply the caller heard when they barged in on `part` after
/// `played_ms`: the parts played before it whole, and of it the words its played share of the
/// audio covers. A `part` that is none of them counts the played parts only.
fn heard(parts: &[Part], part: u64, played_ms: u32) -> (u32, String) {
    let mut heard_ms = 0u32;
    let mut texts: Vec<String> = Vec::new();
    for p in parts {
        if p.id == part {
            heard_ms += played_ms;
            let share = match p.audio_ms {
                Some(total) if total > 0 => (f64::from(played_ms) / f64::from(total)).min(1.0),
                _ => 0.0,
            };
            let words: Vec<&str> = p.text.split_whitespace().collect();
            let n = (words.len() as f64 * share).floor() as usize;
            if n > 0 {
                texts.push(words[..n].join(" "));
            }
            break;
        }
        if p.done {
            heard_ms += p.audio_ms.unwrap_or(0);
            texts.push(p.text.trim().to_string());
        }
    }
    (heard_ms, texts.join(" "))
}

/// The chat request for a plugin's LLM request.
fn chat_request(request: &LlmRequest) -> ChatRequest {
    ChatRequest {
        messages: request
            .messages
            .iter()
            .map(|m| match m.role {
                LlmRole::System => ChatMessage::System(m.content.clone()),
                LlmRole::User => ChatMessage::User(m.content.clone()),
                LlmRole::Assistant => ChatMessage::Assistant {
                    text: Some(m.content.clone()).filter(|t| !t.is_empty()),
                    tool_calls: m
                        .tool_calls
                        .iter()
                        .map(|c| vaani_speech::llm::ToolCall {
                            id: c.id.clone(),
                            name: c.name.clone(),
                            arguments: c.arguments_json.clone(),
                        })
                        .collect(),
                },
                LlmRole::Tool => ChatMessage::Tool {
                    call_id: m.tool_call_id.clone().unwrap_or_default(),
                    content: m.content.clone(),
                },
            })
            .collect(),
        tools: request
            .tools
            .iter()
            .map(|t| ToolDefinition {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: serde_json::from_str(&t.parameters_json)
                    .unwrap_or_else(|_| serde_json::json!({"type": "object"})),
            })
            .collect(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
    }
}

fn egress_request(request: FetchRequest) -> egress::FetchRequest {
    egress::FetchRequest {
        method: match request.method {
            HttpMethod::Get => egress::FetchMethod::Get,
            HttpMethod::Post => egress::FetchMethod::Post,
            HttpMethod::Put => egress::FetchMethod::Put,
            HttpMethod::Patch => egress::FetchMethod::Patch,
            HttpMethod::Delete => egress::FetchMethod::Delete,
        },
        url: request.url,
        headers: request.headers,
        body: request.body.unwrap_or_default(),
        timeout_ms: request.timeout_ms.map(u64::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, text: &str, audio_ms: u32, done: bool) -> Part {
        Part {
            id,
            text: text.to_string(),
            audio_ms: Some(audio_ms),
            done,
        }
    }

    fn empty_request() -> LlmRequest {
        LlmRequest {
            messages: vec![],
            tools: vec![],
            temperature: None,
            max_tokens: None,
            speak: true,
            interruptible: true,
        }
    }

    #[test]
    fn heard_counts_whole_parts_then_the_played_share_of_words() {
        let parts = [
            part(1, "Sure, I can help.", 1200, true),
            part(2, "Which day would you like to come in?", 2000, false),
            part(3, "We open at nine.", 900, false),
        ];
        let (ms, text) = heard(&parts, 2, 1000);
        assert_eq!(ms, 2200);
        assert_eq!(text, "Sure, I can help. Which day would you");
        let (ms, text) = heard(&parts, 1, 300);
        assert_eq!((ms, text.as_str()), (300, "Sure,"));
    }

    #[tokio::test]
    async fn a_spoken_reply_finishes_after_its_last_part_and_barge_in_reports_what_was_heard() {
        let mut conversation = Conversation::new(None, None);
        assert!(
            conversation.start(1, Some(7), &empty_request()).is_err(),
            "no LLM configured"
        );
        // Without a real LLM, drive the bookkeeping directly.
        conversation.running.insert(
            1,
            Running {
                playback: Some(7),
                interruptible: true,
                forwarder: tokio::spawn(async {}),
                parts: Vec::new(),
                streaming: true,
            },
        );
        let (a, interruptible) = conversation.sentence(1, "Hello there.").unwrap();
        assert!(interruptible && conversation.is_part(a));
        let (b, _) = conversation
            .sentence(1, "How can I help you today?")
            .unwrap();
        conversation.part_audio(a, 1000);
        conversation.part_audio(b, 2000);
        assert_eq!(conversation.part_finished(a), None, "still streaming");
        let (outcome, finished) = conversation.finished(
            1,
            Ok(GenerationDone {
                text: "Hello there. How can I help you today?".into(),
                ..GenerationDone::default()
            }),
        );
        assert!(matches!(outcome, Some(GenerationOutcome::Completed(_))));
        assert_eq!(finished, None, "part b still playing");
        let interrupted = conversation.barge_in(Some((b, 1000))).remove(0);
        assert_eq!(interrupted.interruption.playback, 7);
        assert_eq!(interrupted.interruption.heard_ms, 2000);
        assert_eq!(
            interrupted.interruption.heard_text.as_deref(),
            Some("Hello there. How can I")
        );
        assert!(!interrupted.was_streaming);
        assert_eq!(
            conversation.part_finished(b),
            None,
            "gone after the barge-in"
        );
    }

    #[tokio::test]
    async fn cancelling_returns_the_parts_to_stop() {
        let mut conversation = Conversation::new(None, None);
        conversation.running.insert(
            3,
            Running {
                playback: Some(9),
                interruptible: false,
                forwarder: tokio::spawn(async {}),
                parts: Vec::new(),
                streaming: true,
            },
        );
        let (a, interruptible) = conversation.sentence(3, "One.").unwrap();
        assert!(!interruptible);
        assert_eq!(
            conversation.barge_in(Some((a, 10))),
            vec![],
            "not interruptible"
        );
        assert_eq!(conversation.generation_with_playback(9), Some(3));
        assert_eq!(conversation.spoken_generations(), vec![3]);
        assert!(conversation.is_busy());
        assert_eq!(
            conversation.cancel(3),
            Some(Cancelled {
                parts: vec![a],
                playback: Some(9),
                was_streaming: true
            })
        );
        assert!(!conversation.is_busy());
        assert_eq!(conversation.cancel(3), None);
        let (outcome, _) = conversation.finished(3, Err("late".into()));
        assert_eq!(outcome, None, "nothing after a cancel");
    }

    #[tokio::test]
    async fn fetches_go_through_the_tenant_egress_and_come_back_as_updates() {
        let app =
            axum::Router::new().route("/slots", axum::routing::get(|| async { "[\"10:00\"]" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let settings = vaani_config::HttpSettings {
            allow: vec!["127.0.0.1".to_string()],
            allow_private: true,
            allow_plain_http: true,
            timeout_ms: 2_000,
            max_response_bytes: 1024,
        };
        let egress = Arc::new(Egress::new(&settings).unwrap());
        let mut conversation = Conversation::new(None, Some(egress));
        let get = |url: String| FetchRequest {
            method: HttpMethod::Get,
            url,
            headers: vec![],
            body: None,
            timeout_ms: None,
        };
        assert!(
            conversation
                .fetch(1, get(format!("http://127.0.0.1:{port}/slots")))
                .is_none()
        );
        assert!(
            conversation
                .fetch(2, get("http://localhost.example/x".to_string()))
                .is_none()
        );
        let mut outcomes = HashMap::new();
        for _ in 0..2 {
            match conversation.next_update().await {
                Some(ConversationUpdate::Fetch(id, outcome)) => {
                    outcomes.insert(id, outcome);
                }
                _ => panic!("expected a fetch result"),
            }
        }
        match &outcomes[&1] {
            FetchOutcome::Response(r) => {
                assert_eq!((r.status, r.body.as_slice()), (200, &b"[\"10:00\"]"[..]))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&outcomes[&2], FetchOutcome::Failed(m) if m.contains("localhost.example")),
            "{:?}",
            outcomes[&2]
        );
        // Without an egress every fetch is refused.
        let mut closed = Conversation::new(None, None);
        assert!(matches!(
            closed.fetch(3, get("https://api.example.com/".to_string())),
            Some(FetchOutcome::Failed(_))
        ));
    }

    #[test]
    fn plugin_requests_map_to_the_chat_api() {
        let request = LlmRequest {
            messages: vec![
                vaani_sandbox::LlmMessage {
                    role: LlmRole::System,
                    content: "Be brief.".into(),
                    tool_calls: vec![],
                    tool_call_id: None,
                },
                vaani_sandbox::LlmMessage {
                    role: LlmRole::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "book".into(),
                        arguments_json: "{}".into(),
                    }],
                    tool_call_id: None,
                },
                vaani_sandbox::LlmMessage {
                    role: LlmRole::Tool,
                    content: "{\"ok\":true}".into(),
                    tool_calls: vec![],
                    tool_call_id: Some("c1".into()),
                },
            ],
            tools: vec![vaani_sandbox::LlmTool {
                name: "book".into(),
                description: "Books.".into(),
                parameters_json: "{\"type\":\"object\",\"properties\":{}}".into(),
            }],
            temperature: Some(0.2),
            max_tokens: None,
            speak: true,
            interruptible: true,
        };
        let chat = chat_request(&request);
        assert_eq!(chat.messages[0], ChatMessage::System("Be brief.".into()));
        assert!(matches!(
            &chat.messages[1],
            ChatMessage::Assistant { text: None, tool_calls } if tool_calls[0].id == "c1"
        ));
        assert_eq!(
            chat.messages[2],
            ChatMessage::Tool {
                call_id: "c1".into(),
                content: "{\"ok\":true}".into()
            }
        );
        assert_eq!(chat.tools[0].parameters["type"], "object");
        assert_eq!(chat.temperature, Some(0.2));
    }
}
