//! Misbehaving plugins are contained: their call gets the tenant's fallback and is hung up,
//! while another call running at the same time keeps its 20 ms audio pacing.

use std::time::{Duration, Instant};

use vaani_testbench::{RtpSink, ServerSpec, Sipp, TenantSpec, VaaniServer, can_send_dtmf};

const FIXTURES: [(&str, &str); 4] = [
    ("looper", "+918000000071"),
    ("allocator", "+918000000072"),
    ("recursor", "+918000000073"),
    ("trapper", "+918000000074"),
];

#[test]
fn misbehaving_plugins_get_the_fallback_and_spare_other_calls() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
    let mut spec = ServerSpec::demo();
    for (plugin, number) in FIXTURES {
        let mut tenant = TenantSpec::new(plugin, number, plugin);
        tenant.extra = "fallback_text = \"Sorry, something went wrong. Goodbye.\"".to_string();
        spec.tenants.push(tenant);
    }
    let server = VaaniServer::start(&spec);

    // A bystander call to the echo line that streams for the whole test.
    let sink = RtpSink::start();
    let target = server.sip_addr();
    let bystander = std::thread::spawn(move || {
        Sipp::new("uac_call_bye.xml")
            .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
            .substitute("milliseconds=\"5000\"", "milliseconds=\"14000\"")
            .run(target, "+918000000099", Duration::from_secs(60))
            .assert_success();
        sink
    });
    std::thread::sleep(Duration::from_secs(2));

    // Each fixture misbehaves on the first digit; vaani must answer with the fallback and hang up.
    let window_start = Instant::now();
    let misbehaving: Vec<_> = FIXTURES
        .iter()
        .map(|(plugin, number)| {
            let plugin = plugin.to_string();
            let number = number.to_string();
            std::thread::spawn(move || {
                let run = Sipp::new("uac_dtmf_wait_bye.xml")
                    .substitute("play_dtmf=\"12#\"", "play_dtmf=\"5\"")
                    .substitute("milliseconds=\"3000\"", "milliseconds=\"1000\"")
                    .run(target, &number, Duration::from_secs(45));
                (plugin, run)
            })
        })
        .collect();
    for handle in misbehaving {
        let (plugin, run) = handle.join().expect("sipp thread");
        assert_eq!(
            run.exit_code, 0,
            "{plugin}: vaani did not hang up after the fallback: {run:?}"
        );
    }
    let window_end = Instant::now();
    let sink = bystander.join().expect("bystander thread");

    for (plugin, number) in FIXTURES {
        let calls = server.calls();
        let call = calls
            .iter()
            .find(|c| c["dialled"] == number)
            .unwrap_or_else(|| panic!("{plugin}: no call stored"));
        assert_eq!(call["end_reason"], "plugin_hangup", "{plugin}: {call:#}");
        let error = call["error"].as_str().unwrap_or("");
        assert!(
            !error.is_empty(),
            "{plugin}: the plugin failure was not recorded: {call:#}"
        );
        let detail = server.api_json(&format!(
            "/api/v1/calls/{}",
            call["id"].as_str().unwrap_or("")
        ));
        let said: Vec<&str> = detail["transcript"]
            .as_array()
            .map(|l| l.iter().filter_map(|x| x["text"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            said.iter()
                .any(|t| t.contains("Sorry, something went wrong")),
            "{plugin}: fallback not spoken: {said:?}"
        );
    }

    // The bystander's audio kept its pacing while the plugins misbehaved.
    let packets: Vec<_> = sink
        .packets()
        .into_iter()
        .filter(|p| p.arrival >= window_start && p.arrival <= window_end)
        .collect();
    assert!(
        packets.len() > 50,
        "bystander got only {} packets in the window",
        packets.len()
    );
    let gaps: Vec<f64> = packets
        .windows(2)
        .map(|w| w[1].arrival.duration_since(w[0].arrival).as_secs_f64() * 1000.0)
        .collect();
    let span_ms = packets
        .last()
        .map(|p| p.arrival.duration_since(packets[0].arrival).as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    let mean = span_ms / gaps.len() as f64;
    let worst = gaps.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "bystander pacing while plugins misbehaved: {} packets, mean {mean:.2} ms, worst gap {worst:.1} ms",
        packets.len()
    );
    assert!(
        (18.0..22.0).contains(&mean),
        "bystander mean packet interval {mean:.2} ms"
    );
    assert!(worst < 100.0, "bystander audio stalled for {worst:.1} ms");
}
