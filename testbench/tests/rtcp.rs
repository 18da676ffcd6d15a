//! RTCP on the wire against the real binary: vaani's reports describe the loss the caller
//! caused, and the caller's replies give vaani a round-trip time and a MOS for the call.
//!
//! sipp places the call (SIP only); this test is the caller's media endpoint on an even/odd
//! port pair: it streams A-law silence from the even port with every 10th packet left out,
//! reads vaani's SR/RR on the odd port, and answers each one with an RR (LSR/DLSR filled in)
//! to vaani's RTP port + 1.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vaani_media::rtcp::{
    CompoundReport, MAX_REPORT_LEN, PT_RR, PT_SR, ReceptionSnapshot, RtcpSession, SenderSnapshot,
};
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const CALLER_SSRC: u32 = 0x5EED_0010;
const ALAW_SILENCE: u8 = 0xD5;
/// One caller packet in this many is not sent.
const DROP_EVERY: u32 = 10;

/// An even RTP port and the odd RTCP port after it, on loopback.
fn port_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if let (Ok(rtp), Ok(rtcp)) = (
            UdpSocket::bind((Ipv4Addr::LOCALHOST, port)),
            UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)),
        ) {
            return (rtp, rtcp);
        }
    }
    panic!("no free even/odd port pair");
}

fn rtp_packet(sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + payload.len());
    packet.extend_from_slice(&[0x80, 8]);
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&CALLER_SSRC.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// One report from vaani as the test read it.
struct VaaniReport {
    arrived: Instant,
    from: SocketAddr,
    packet_type: u8,
    report: CompoundReport,
}

#[test]
fn vaani_reports_the_callers_loss_and_measures_rtt_and_mos() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let (media, rtcp) = port_pair();
    let media_port = media.local_addr().expect("addr").port();
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {media_port}"))
        .substitute("<exec rtp_stream=\"caller_8k.alaw,-1,8\"/>", "")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"14000\"");
    let target = server.sip_addr();
    let caller =
        std::thread::spawn(move || sipp.run(target, "+918000000099", Duration::from_secs(60)));

    // vaani's media address: where its RTP comes from.
    media
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let (_, vaani_rtp) = media.recv_from(&mut buf).unwrap_or_else(|e| {
        panic!("no RTP from vaani ({e}):\n{}", server.log());
    });
    let vaani_rtcp = SocketAddr::new(vaani_rtp.ip(), vaani_rtp.port() + 1);

    // The caller's RTCP side: read vaani's reports, answer each with an RR.
    let stop = Arc::new(AtomicBool::new(false));
    let reports = Arc::new(Mutex::new(Vec::<VaaniReport>::new()));
    let answered = Arc::new(Mutex::new(0u32));
    let rtcp_thread = {
        let stop = Arc::clone(&stop);
        let reports = Arc::clone(&reports);
        let answered = Arc::clone(&answered);
        rtcp.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        std::thread::spawn(move || {
            let mut peer = RtcpSession::new(CALLER_SSRC, Instant::now(), Duration::from_secs(5));
            let mut buf = [0u8; 2048];
            let mut out = [0u8; MAX_REPORT_LEN];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = rtcp.recv_from(&mut buf) else {
                    continue;
                };
                let arrived = Instant::now();
                let Ok(report) = peer.handle_compound(arrived, &buf[..n]) else {
                    continue;
                };
                let vaani_ssrc = report.reporter_ssrc;
                reports.lock().expect("lock").push(VaaniReport {
                    arrived,
                    from,
                    packet_type: buf[1],
                    report,
                });
                let Some(vaani_ssrc) = vaani_ssrc else {
                    continue;
                };
                // Hold it a little, as a real endpoint would: DLSR must account for it.
                std::thread::sleep(Duration::from_millis(15));
                let reception = ReceptionSnapshot {
                    ssrc: vaani_ssrc,
                    extended_highest_sequence: 0,
                    received: 1,
                    lost: 0,
                    jitter: 0.0,
                };
                let sender = SenderSnapshot {
                    rtp_time: 0,
                    packet_count: 0,
                };
                if let Ok(len) =
                    peer.write_report(Instant::now(), Some(reception), sender, &mut out)
                {
                    rtcp.send_to(&out[..len], vaani_rtcp).expect("send RR");
                    *answered.lock().expect("lock") += 1;
                }
            }
        })
    };

    // The caller's audio, paced at 20 ms, every 10th packet lost on the way, until sipp
    // hangs up.
    let silence = [ALAW_SILENCE; 160];
    let mut sent = 0u32;
    let mut next = Instant::now();
    while !caller.is_finished() {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let i = sent;
        sent += 1;
        next += Duration::from_millis(20);
        if i % DROP_EVERY == DROP_EVERY - 1 {
            continue;
        }
        media
            .send_to(
                &rtp_packet(1000u16.wrapping_add(i as u16), 8000 + 160 * i, &silence),
                vaani_rtp,
            )
            .expect("send RTP");
    }
    let stream_ended = Instant::now();
    let run = caller.join().expect("sipp thread");
    stop.store(true, Ordering::Relaxed);
    rtcp_thread.join().expect("rtcp thread");
    run.assert_success();

    let reports = reports.lock().expect("lock");
    let answered = *answered.lock().expect("lock");
    eprintln!(
        "{} reports from vaani, {answered} answered; {sent} caller packets, {} left out",
        reports.len(),
        sent / DROP_EVERY
    );
    assert!(
        reports.len() >= 2,
        "vaani sent {} RTCP reports in 14 s:\n{}",
        reports.len(),
        server.log()
    );
    for r in reports.iter() {
        assert_eq!(r.from, vaani_rtcp, "reports come from vaani's RTP port + 1");
        assert!(r.packet_type == PT_SR || r.packet_type == PT_RR);
        assert!(r.report.cname.is_some(), "SDES CNAME in every report");
    }
    // vaani sends audio (the greeting, then silence) all along: SRs.
    assert!(reports.iter().any(|r| r.packet_type == PT_SR));
    // The last report while we streamed describes our stream and the loss we caused.
    let last = reports
        .iter()
        .rev()
        .find(|r| r.arrived < stream_ended && !r.report.blocks.is_empty())
        .expect("a report with a block while the caller streamed");
    let block = last
        .report
        .blocks
        .iter()
        .find(|b| b.ssrc == CALLER_SSRC)
        .unwrap_or_else(|| panic!("no block about the caller: {:?}", last.report));
    eprintln!("vaani's last report block: {block:?}");
    let fraction = f64::from(block.fraction_lost) / 256.0;
    assert!(
        (0.07..=0.13).contains(&fraction),
        "fraction lost {fraction} (10 % left out): {block:?}"
    );
    let left_out_before_report = block.extended_highest_sequence.wrapping_sub(1000) / DROP_EVERY;
    assert!(
        (block.cumulative_lost as i64 - left_out_before_report as i64).abs() <= 2,
        "cumulative lost {} for about {left_out_before_report} left out: {block:?}",
        block.cumulative_lost
    );
    assert_eq!(
        block.extended_highest_sequence >> 16,
        0,
        "no sequence wrap in this test"
    );

    // The call's stored quality figures.
    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().any(|c| {
            c["dialled"] == "+918000000099"
                && c["status"]
                    .as_str()
                    .is_some_and(|s| s != "ringing" && s != "in_progress")
        })
    });
    let id = calls[0]["id"].as_str().expect("call id");
    let detail = server.api_json(&format!("/api/v1/calls/{id}"));
    let stats = &detail["media_stats"];
    eprintln!("media_stats: {stats:#}");
    assert!(
        stats["rtcp_sent"].as_u64().unwrap_or(0) >= reports.len() as u64,
        "{stats:#}"
    );
    assert!(
        stats["rtcp_received"].as_u64().unwrap_or(0) >= 1,
        "{stats:#}"
    );
    assert!(stats["rtcp_received"].as_u64() <= Some(u64::from(answered)));
    let rtt = stats["rtt_ms"]["last"]
        .as_f64()
        .expect("an RTT was measured");
    // Loopback: what remains is at most one 20 ms media tick plus scheduling.
    assert!((0.0..60.0).contains(&rtt), "rtt {rtt} ms: {stats:#}");
    assert!(stats["rtt_ms"]["mean"].as_f64().is_some(), "{stats:#}");
    assert_eq!(stats["peer_reported_loss"]["fraction"], 0.0, "{stats:#}");
    let loss = stats["inbound_loss"].as_f64().expect("inbound loss");
    assert!((0.08..=0.12).contains(&loss), "{stats:#}");
    let mos = stats["mos"].as_f64().expect("a MOS");
    // 10 % random loss on G.711 with concealment: R ≈ 66, MOS ≈ 3.4.
    assert!((3.1..3.7).contains(&mos), "mos {mos}: {stats:#}");
    assert!(stats["jitter_ms"].as_f64().is_some(), "{stats:#}");

    let (status, metrics) = server.http_get("/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("vaani_call_mos_count 1"), "{metrics}");
    assert!(
        metrics.contains("vaani_rtcp_packets_total{direction=\"sent\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vaani_call_rtt_seconds_count 1"),
        "{metrics}"
    );
}
