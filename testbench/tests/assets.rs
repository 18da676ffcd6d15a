//! Tenant assets and knowledge items against the real server: a WAV uploaded over the API is
//! played by the tenant's plugin (`play-asset`) on a real call, its audio reaching the caller;
//! a missing asset is recorded and the call goes on; bad uploads are refused saying why; the
//! knowledge API stores, changes, filters and deletes items.

use std::time::Duration;

use serde_json::{Value, json};
use vaani_media::g711::Law;
use vaani_testbench::audio::{SPEECH_RMS, payload_rms};
use vaani_testbench::{
    OPERATOR_KEY, RtpSink, ServerSpec, Sipp, TenantSpec, VaaniServer, can_send_dtmf,
};

const PLAYER_NUMBER: &str = "+918000000055";

/// A WAV of `ms` milliseconds of a 440 Hz tone at half scale, 16 kHz stereo (so the upload
/// is converted: mixed down and resampled).
fn tone_wav(ms: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..(16 * ms) {
            let t = i as f32 / 16_000.0;
            let sample = ((t * 440.0 * std::f32::consts::TAU).sin() * 16_000.0) as i16;
            writer.write_sample(sample).unwrap();
            writer.write_sample(sample).unwrap();
        }
        writer.finalize().unwrap();
    }
    out.into_inner()
}

/// PUTs `body` as `content_type` to `path` with the operator key.
fn put(server: &VaaniServer, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .put(format!("{}{path}", server.http_base()))
        .header("Authorization", format!("Bearer {OPERATOR_KEY}"))
        .header("Content-Type", content_type)
        .send(body)
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn an_uploaded_asset_is_played_on_a_call() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
    let mut spec = ServerSpec::demo();
    spec.tenants
        .push(TenantSpec::new("player", PLAYER_NUMBER, "asset_player"));
    let server = VaaniServer::start(&spec);

    // Upload: converted to 8 kHz mono; a second PUT replaces it.
    let (status, asset) = put(
        &server,
        "/api/v1/assets/greeting?tenant=player",
        "audio/wav",
        &tone_wav(1_000),
    );
    assert_eq!(status, 201, "{asset}");
    assert_eq!(asset["duration_ms"], 1_000);
    let (status, asset) = put(
        &server,
        "/api/v1/assets/greeting?tenant=player",
        "audio/wav",
        &tone_wav(2_000),
    );
    assert_eq!(status, 200, "{asset}");
    assert_eq!(asset["duration_ms"], 2_000);
    let listed = server.api_json("/api/v1/assets?tenant=player");
    assert_eq!(listed["assets"].as_array().unwrap().len(), 1, "{listed}");
    let (status, content_type, wav) = server
        .http_get_bytes("/api/v1/assets/greeting/audio?tenant=player")
        .unwrap();
    assert_eq!((status, content_type.as_str()), (200, "audio/wav"));
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(
        (reader.spec().sample_rate, reader.spec().channels),
        (8_000, 1)
    );
    assert!(
        (15_900..=16_100).contains(&reader.duration()),
        "{}",
        reader.duration()
    );

    // Refusals say why.
    let (status, answer) = put(
        &server,
        "/api/v1/assets/greeting?tenant=player",
        "audio/wav",
        b"RIFF....nope",
    );
    assert_eq!((status, code(&answer)), (422, "invalid_audio"), "{answer}");
    let (status, answer) = put(
        &server,
        "/api/v1/assets/greeting?tenant=player",
        "audio/mpeg",
        &tone_wav(10),
    );
    assert_eq!((status, code(&answer)), (415, "unsupported_media_type"));
    let (status, answer) = put(
        &server,
        "/api/v1/assets/bad%20name?tenant=player",
        "audio/wav",
        &tone_wav(10),
    );
    assert_eq!((status, code(&answer)), (400, "invalid_asset_id"));
    let (status, answer) = put(
        &server,
        "/api/v1/assets/greeting",
        "audio/wav",
        &tone_wav(10),
    );
    assert_eq!((status, code(&answer)), (400, "tenant_required"));
    let oversized = vec![0u8; 8 * 1024 * 1024 + 1];
    let (status, answer) = put(
        &server,
        "/api/v1/assets/greeting?tenant=player",
        "audio/wav",
        &oversized,
    );
    assert_eq!((status, code(&answer)), (413, "payload_too_large"));
    // The refused uploads left the asset as it was.
    let asset = server.api_json("/api/v1/assets/greeting?tenant=player");
    assert_eq!(asset["duration_ms"], 2_000);

    // The call: the plugin plays "greeting", then "no-such-asset", then hangs up.
    let sink = RtpSink::start();
    Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .substitute("milliseconds=\"3000\"", "milliseconds=\"200\"")
        .run(server.sip_addr(), PLAYER_NUMBER, Duration::from_secs(60))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == PLAYER_NUMBER && c["status"] == "completed")
    });
    let call = calls
        .iter()
        .find(|c| c["dialled"] == PLAYER_NUMBER)
        .unwrap();
    let detail = server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()));
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    let events: Vec<(String, String)> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        events.contains(&("asset.play".to_owned(), "greeting".to_owned())),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(kind, detail)| kind == "asset.missing" && detail.contains("no-such-asset")),
        "{events:?}"
    );
    // The tone reached the caller: about two seconds of loud PCMU.
    let loud_ms = sink
        .packets()
        .iter()
        .filter(|p| p.payload_type == Law::Mu.static_payload_type())
        .filter(|p| payload_rms(Law::Mu, &p.payload) > SPEECH_RMS)
        .count()
        * 20;
    assert!(
        (1_700..=2_600).contains(&loud_ms),
        "{loud_ms} ms of the 2000 ms asset reached the caller"
    );

    // Deleting it: gone for the API (and for the plugin).
    let (status, _) = server.api_request(
        "DELETE",
        "/api/v1/assets/greeting?tenant=player",
        OPERATOR_KEY,
        None,
    );
    assert_eq!(status, 204);
    let (status, answer) = server.api_request(
        "GET",
        "/api/v1/assets/greeting?tenant=player",
        OPERATOR_KEY,
        None,
    );
    assert_eq!((status, code(&answer)), (404, "asset_not_found"));
}

#[test]
fn knowledge_items_are_stored_changed_filtered_and_deleted() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let create =
        |body: Value| server.api_request("POST", "/api/v1/knowledge", OPERATOR_KEY, Some(&body));
    let (status, hours) = create(json!({
        "tenant": "clinic", "title": "Hours", "content": "9 to 5, Monday to Saturday",
        "tags": ["timings"]
    }));
    assert_eq!(status, 201, "{hours}");
    let (status, fees) = create(json!({
        "tenant": "clinic", "title": "Fees", "content": "Consultation ₹500", "tags": ["fees", "faq"]
    }));
    assert_eq!(status, 201, "{fees}");
    for (body, expected) in [
        (
            json!({ "tenant": "clinic", "title": "", "content": "x" }),
            "invalid_title",
        ),
        (
            json!({ "tenant": "clinic", "title": "T", "content": " " }),
            "invalid_content",
        ),
        (
            json!({ "tenant": "clinic", "title": "T", "content": "x", "tags": [""] }),
            "invalid_tags",
        ),
        (json!({ "title": "T", "content": "x" }), "tenant_required"),
    ] {
        let (status, answer) = create(body.clone());
        assert_eq!((status, code(&answer)), (400, expected), "{body}: {answer}");
    }

    let faq = server.api_json("/api/v1/knowledge?tenant=clinic&tag=faq");
    let ids: Vec<&str> = faq["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [fees["id"].as_str().unwrap()]);

    let path = format!("/api/v1/knowledge/{}", hours["id"].as_str().unwrap());
    let (status, changed) = server.api_request(
        "PATCH",
        &path,
        OPERATOR_KEY,
        Some(&json!({ "content": "9 to 6, closed Sunday" })),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["title"], "Hours");
    assert_eq!(changed["content"], "9 to 6, closed Sunday");
    assert_eq!(server.api_json(&path), changed);

    let (status, _) = server.api_request("DELETE", &path, OPERATOR_KEY, None);
    assert_eq!(status, 204);
    let (status, answer) = server.api_request("GET", &path, OPERATOR_KEY, None);
    assert_eq!((status, code(&answer)), (404, "knowledge_not_found"));
    let all = server.api_json("/api/v1/knowledge?tenant=clinic");
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}
