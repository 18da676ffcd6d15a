//! Every served world version side by side: a 0.1.0 and a 0.2.0 component (the
//! legacy fixtures, built without the SDK) and 0.3.0 components (the probe
//! fixture), the mapping of the internal event model down to 0.1.0 and 0.2.0,
//! and the host checks on the 0.2.0 imports (llm, http, expect-input,
//! set-summary) and the 0.3.0 ones (transfer, send-dtmf).

mod common;

use common::*;
use vaani_sandbox::*;

/// Info-level log lines of the actions.
fn logs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log {
                level: LogLevel::Info,
                message,
            } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A probe instance started with or without an LLM.
async fn probe(host: &PluginHost, limits: PluginLimits, llm: bool) -> PluginInstance {
    let plugin = load(host, "probe");
    let mut call = instance_with(host, &plugin, limits).await;
    let ctx = CallerContext {
        llm_available: llm,
        ..context(None)
    };
    let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
    assert_eq!(said(&actions), vec!["probe ready"]);
    call
}

/// Sends one key and returns the info log lines.
async fn key_logs(call: &mut PluginInstance, k: char) -> Vec<String> {
    logs(&key(call, k).await)
}

#[test]
fn a_0_1_a_0_2_and_a_0_3_component_all_load_and_describe() {
    let host = host();
    let legacy = load(&host, "legacy");
    assert_eq!(legacy.world_version, "0.1.0");
    assert_eq!(legacy.info.name, "legacy");
    assert!(legacy.info.schemas.is_empty());
    let legacy_v0_2 = load(&host, "legacy_v0_2");
    assert_eq!(legacy_v0_2.world_version, "0.2.0");
    assert_eq!(legacy_v0_2.info.name, "legacy-0.2");
    let probe = load(&host, "probe");
    assert_eq!(probe.world_version, "0.3.0");
    assert_eq!(probe.info.name, "probe");
    assert_eq!(probe.info.schemas[0].id, "person");
    assert_eq!(SUPPORTED_WORLD_VERSIONS, &["0.1.0", "0.2.0", "0.3.0"]);
}

#[tokio::test]
async fn legacy_gets_barge_in_as_a_playback_id_and_never_sees_generation_events() {
    let host = host();
    let legacy = load(&host, "legacy");
    let mut call = instance(&host, &legacy).await;
    let ctx = CallerContext {
        llm_available: true,
        recent_calls: vec![PastCall {
            call_id: "old".into(),
            summary: Some("booked".into()),
            ..PastCall::default()
        }],
        ..context(None)
    };
    let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
    assert_eq!(said(&actions), vec!["legacy ready for +919800000001"]);

    let actions = call
        .handle(Event::BargeIn(Interruption {
            playback: 7,
            heard_ms: 640,
            heard_text: Some("Hello th".into()),
        }))
        .await
        .unwrap();
    assert_eq!(said(&actions), vec!["barge-in on 7"]);
    let delivered = call.stats().events;

    let actions = call
        .handle(Event::GenerationFinished {
            id: 1,
            outcome: GenerationOutcome::Cancelled,
        })
        .await
        .unwrap();
    assert!(actions.is_empty());
    let actions = call
        .handle(Event::FetchFinished {
            id: 1,
            outcome: FetchOutcome::Failed("no".into()),
        })
        .await
        .unwrap();
    assert!(actions.is_empty());
    assert_eq!(call.stats().events, delivered, "not delivered to the guest");

    let actions = call
        .handle(Event::CallEnded(EndReason::MaxDuration))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: EndReason::HostShutdown"]);
    assert!(!call.is_poisoned());
}

#[tokio::test]
async fn a_0_2_and_a_0_3_plugin_see_the_external_id_and_the_trunks_headers() {
    let host = host();
    for name in ["legacy_v0_2", "probe"] {
        let plugin = load(&host, name);
        let mut call = instance(&host, &plugin).await;
        let ctx = CallerContext {
            external_id: Some("CA708d85d118aacfcc794b730fa02bc40c".into()),
            sip_headers: vec![
                ("X-Twilio-AccountSid".into(), "AC58f2".into()),
                ("X-Twilio-CallSid".into(), "CA708d".into()),
            ],
            ..context(None)
        };
        let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
        assert_eq!(
            logs(&actions),
            vec![
                "context external_id=CA708d85d118aacfcc794b730fa02bc40c \
                 headers=X-Twilio-AccountSid=AC58f2,X-Twilio-CallSid=CA708d"
            ],
            "{name}"
        );
    }
}

/// A transfer failure as the server reports it.
fn busy(target: &str) -> Event {
    Event::TransferFailed(TransferFailure {
        target: target.into(),
        status: Some(486),
        reason: "busy here".into(),
    })
}

#[tokio::test]
async fn a_0_2_plugin_sees_0_2_events_but_never_transfer_failed_and_transferred_as_caller_hangup() {
    let host = host();
    let plugin = load(&host, "legacy_v0_2");
    let mut call = instance(&host, &plugin).await;
    let actions = call
        .handle(Event::CallStarted(context(None)))
        .await
        .unwrap();
    assert_eq!(said(&actions), vec!["legacy 0.2 ready"]);

    let actions = call
        .handle(Event::BargeIn(Interruption {
            playback: 1,
            heard_ms: 640,
            heard_text: Some("leg".into()),
        }))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["barge-in playback=1 heard_ms=640"]);
    let actions = call
        .handle(Event::GenerationFinished {
            id: 3,
            outcome: GenerationOutcome::Cancelled,
        })
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["generation 3 cancelled"]);
    let actions = call
        .handle(Event::FetchFinished {
            id: 4,
            outcome: FetchOutcome::Failed("no".into()),
        })
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["fetch 4 failed"]);
    let delivered = call.stats().events;

    let actions = call.handle(busy("frontdesk")).await.unwrap();
    assert!(actions.is_empty());
    assert_eq!(call.stats().events, delivered, "not delivered to the guest");

    let actions = call
        .handle(Event::CallEnded(EndReason::Transferred))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: EndReason::CallerHangup"]);
    assert!(!call.is_poisoned());

    // MaxDuration exists in 0.2.0 and is not mapped.
    let mut call = instance(&host, &plugin).await;
    let actions = call
        .handle(Event::CallEnded(EndReason::MaxDuration))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: EndReason::MaxDuration"]);
}

#[tokio::test]
async fn a_0_1_plugin_never_sees_transfer_failed_and_sees_transferred_as_caller_hangup() {
    let host = host();
    let legacy = load(&host, "legacy");
    let mut call = instance(&host, &legacy).await;
    start(&mut call).await;
    let delivered = call.stats().events;
    assert!(call.handle(busy("frontdesk")).await.unwrap().is_empty());
    assert_eq!(call.stats().events, delivered, "not delivered to the guest");
    let actions = call
        .handle(Event::CallEnded(EndReason::Transferred))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: EndReason::CallerHangup"]);
}

#[tokio::test]
async fn a_transfer_is_recorded_and_only_one_is_pending_until_it_fails() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;

    let actions = key(&mut call, 't').await;
    assert_eq!(
        actions,
        vec![
            Action::Transfer {
                target: "frontdesk".into(),
                mode: TransferMode::Blind,
                summary: None,
            },
            Action::Log {
                level: LogLevel::Info,
                message: "transfer ok".into(),
            },
        ]
    );
    // Pending: a second transfer (of any kind) is refused, with no action.
    let actions = key(&mut call, 'r').await;
    assert_eq!(
        logs(&actions),
        vec![
            "transfer error: a transfer of this call is already pending; wait for transfer-failed"
        ]
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::Transfer { .. })));

    // The failure reaches the plugin and clears the pending transfer.
    let actions = call.handle(busy("frontdesk")).await.unwrap();
    assert_eq!(
        logs(&actions),
        vec!["transfer to frontdesk failed status=Some(486): busy here"]
    );
    let actions = key(&mut call, 'r').await;
    assert_eq!(
        actions[0],
        Action::Transfer {
            target: "sip:desk@pbx.example.com".into(),
            mode: TransferMode::Bridged,
            summary: Some("A caller from the probe.".into()),
        }
    );
    assert_eq!(logs(&actions), vec!["transfer ok"]);

    let actions = call
        .handle(Event::CallEnded(EndReason::Transferred))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: Transferred"]);
    assert!(!call.is_poisoned());
}

#[tokio::test]
async fn transfer_shape_is_checked_and_a_refusal_leaves_nothing_pending() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    assert_eq!(
        key_logs(&mut call, 'w').await,
        vec![
            "transfer error: transfer target must be 1-256 bytes without whitespace or control \
             characters"
        ]
    );
    let too_long = key_logs(&mut call, 'l').await;
    assert_eq!(
        too_long,
        vec!["transfer error: transfer summary is 3000 bytes; the limit is 2048"]
    );
    assert_eq!(
        key_logs(&mut call, 'o').await,
        vec!["transfer error: a summary is spoken only in a bridged transfer"]
    );
    // None of the refusals made a transfer pending.
    assert_eq!(key_logs(&mut call, 't').await, vec!["transfer ok"]);
}

#[tokio::test]
async fn send_dtmf_is_upper_cased_and_checked() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    let actions = key(&mut call, 'd').await;
    assert_eq!(
        actions[0],
        Action::SendDtmf {
            digits: "12AB#*".into()
        }
    );
    assert_eq!(logs(&actions), vec!["dtmf ok"]);
    let actions = key(&mut call, 'h').await;
    assert_eq!(
        logs(&actions),
        vec!["dtmf error: 'e' is not a DTMF key (0-9 * # A-D)"]
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::SendDtmf { .. })));
    assert_eq!(
        key_logs(&mut call, 'k').await,
        vec!["dtmf error: send-dtmf needs 1-32 keys; got 33"]
    );
}

#[tokio::test]
async fn generate_takes_its_playback_id_from_the_say_counter() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;

    let actions = key(&mut call, 'g').await;
    assert_eq!(logs(&actions), vec!["generate id=1 playback=2"]);
    let Action::Generate {
        id,
        playback,
        request,
    } = &actions[0]
    else {
        panic!("expected a Generate first: {actions:?}");
    };
    assert_eq!((*id, *playback), (1, Some(2)));
    assert!(request.speak && request.interruptible);
    assert_eq!(request.messages.len(), 2);
    assert_eq!(request.messages[0].role, LlmRole::System);
    assert_eq!(request.messages[1].content, "hi");

    assert_eq!(
        key_logs(&mut call, 'n').await,
        vec!["generate id=2 playback=none"]
    );
    // The next say continues the shared playback counter.
    let actions = key(&mut call, '9').await;
    assert!(
        matches!(actions[0], Action::Say { id: 3, .. }),
        "{actions:?}"
    );
}

#[tokio::test]
async fn generate_is_not_configured_without_an_llm() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    let actions = key(&mut call, 'g').await;
    assert_eq!(logs(&actions), vec!["generate error: NotConfigured"]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Generate { .. })));
}

#[tokio::test]
async fn generate_quota_and_size_are_enforced() {
    let host = host();
    let limits = PluginLimits {
        max_llm_requests_per_call: 3,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, true).await;
    assert_eq!(
        key_logs(&mut call, 'q').await,
        vec!["generated 3 then: LLM quota exceeded"]
    );

    let mut call = probe(&host, PluginLimits::default(), true).await;
    assert_eq!(
        key_logs(&mut call, 'b').await,
        vec!["generate error: TooLarge"]
    );

    // A spoken generation needs a playback: "probe ready" used the only one.
    let limits = PluginLimits {
        max_says_per_call: 1,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, true).await;
    assert_eq!(
        key_logs(&mut call, 'g').await,
        vec!["generate error: QuotaExceeded"]
    );
    assert_eq!(
        key_logs(&mut call, 'n').await,
        vec!["generate id=1 playback=none"]
    );
}

#[tokio::test]
async fn fetch_checks_url_and_size_at_call_time() {
    let host = host();
    let limits = PluginLimits {
        max_http_requests_per_call: 1,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, false).await;

    let actions = key(&mut call, 'f').await;
    assert_eq!(logs(&actions), vec!["fetch id=1"]);
    assert_eq!(
        actions[0],
        Action::Fetch {
            id: 1,
            request: FetchRequest {
                method: HttpMethod::Get,
                url: "https://api.example.com/slots?day=mon".into(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
                timeout_ms: None,
            },
        }
    );
    let refused = key_logs(&mut call, 'u').await;
    assert!(
        refused[0].starts_with("fetch error: InvalidUrl("),
        "{refused:?}"
    );
    assert!(refused[0].contains("ftp"), "{refused:?}");
    let refused = key_logs(&mut call, 'v').await;
    assert!(
        refused[0].starts_with("fetch error: InvalidUrl("),
        "{refused:?}"
    );
    assert_eq!(
        key_logs(&mut call, 'p').await,
        vec!["fetch error: TooLarge"]
    );
    assert_eq!(
        key_logs(&mut call, 'f').await,
        vec!["fetch error: QuotaExceeded"]
    );
}

#[tokio::test]
async fn finished_generations_fetches_and_barge_ins_reach_a_0_2_plugin() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;
    key(&mut call, 'g').await;
    key(&mut call, 'f').await;

    let actions = call
        .handle(Event::GenerationFinished {
            id: 1,
            outcome: GenerationOutcome::Completed(Generation {
                text: "Hello".into(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "slots".into(),
                    arguments_json: r#"{"day":"mon"}"#.into(),
                }],
                prompt_tokens: 12,
                completion_tokens: 3,
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec![r#"generation 1 completed: Hello tools=slots({"day":"mon"})"#]
    );
    // Finished: cancelling it now is a no-op.
    assert!(key(&mut call, 'c').await.is_empty());

    let actions = call
        .handle(Event::FetchFinished {
            id: 1,
            outcome: FetchOutcome::Response(FetchResponse {
                status: 200,
                headers: vec![],
                body: b"[\"10:00\"]".to_vec(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec![r#"fetch 1 status=200 body=["10:00"]"#]);
    let actions = call
        .handle(Event::FetchFinished {
            id: 2,
            outcome: FetchOutcome::Failed("not on the allow-list".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec!["fetch 2 failed: not on the allow-list"]
    );

    let actions = call
        .handle(Event::BargeIn(Interruption {
            playback: 2,
            heard_ms: 640,
            heard_text: Some("Hel".into()),
        }))
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec![r#"barge-in playback=2 heard_ms=640 heard_text=Some("Hel")"#]
    );
    let actions = call
        .handle(Event::CallEnded(EndReason::MaxDuration))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: MaxDuration"]);
}

#[tokio::test]
async fn cancel_applies_to_running_generations_only() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;
    assert!(key(&mut call, 'c').await.is_empty(), "nothing started yet");
    key(&mut call, 'n').await;
    assert_eq!(key(&mut call, 'c').await, vec![Action::CancelGeneration(1)]);
    assert!(key(&mut call, 'c').await.is_empty(), "already cancelled");
}

#[tokio::test]
async fn expect_input_and_set_summary_are_checked() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    assert_eq!(
        key(&mut call, 'e').await,
        vec![Action::ExpectInput(ExpectedInput::Digits)]
    );
    let actions = key(&mut call, 's').await;
    assert_eq!(
        actions[0],
        Action::SetSummary {
            summary: "Booked a slot".into(),
            sentiment: Some("positive".into()),
        }
    );
    assert_eq!(logs(&actions), vec!["summary ok"]);
    let too_long = key_logs(&mut call, 'x').await;
    assert!(too_long[0].contains("the limit is 2048"), "{too_long:?}");
    let bad_sentiment = key_logs(&mut call, 'y').await;
    assert!(
        bad_sentiment[0].contains("sentiment must be one of positive, neutral, negative"),
        "{bad_sentiment:?}"
    );
}

#[test]
fn a_component_of_an_unknown_world_version_is_refused_at_load() {
    let host = host();
    let err = host.load(common::FUTURE_WORLD.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, LoadError::UnsupportedWorldVersion(v) if v == "0.9.0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "component was built for vaani:agent 0.9.0, which this host does not serve"
    );

    let not_an_agent =
        common::FUTURE_WORLD.replace("vaani:agent/handler@0.9.0", "acme:other/handler");
    let err = host.load(not_an_agent.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, LoadError::MissingExport(m) if m.contains("does not export vaani:agent/handler")),
        "{err:?}"
    );
}
