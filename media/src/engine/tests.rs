use super::*;
use crate::bridge::test_signal::{Heard, hear, tagged_frame};
use crate::g711::Law;
use crate::packet::{RTP_HEADER_LEN, parse_rtp, write_rtp_header};
use crate::vad::EnergyVad;
use std::time::Duration;

fn engine(range: (u16, u16), shards: usize) -> MediaEngine {
    MediaEngine::start(EngineConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_range: range,
        shards,
    })
    .unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; RTP_HEADER_LEN + payload.len()];
    write_rtp_header(&mut buf, false, pt, seq, ts, ssrc);
    buf[RTP_HEADER_LEN..].copy_from_slice(payload);
    buf
}

async fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

#[tokio::test]
async fn loopback_call_receives_paced_rtp_from_the_advertised_port() {
    let engine = engine((47000, 47019), 2);
    let lease = engine.allocate_port().unwrap();
    let port = lease.port();
    assert_eq!(port % 2, 0);
    assert!((47000..=47018).contains(&port));
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();

    let config = SessionConfig {
        remote: None, // latch to our client socket
        dtmf_payload_type: Some(101),
        ..SessionConfig::new(Law::Mu)
    };
    let mut handle = engine
        .open_session(lease, config, Box::new(EnergyVad::default()))
        .unwrap();
    assert_eq!(handle.port, port);
    assert_eq!(engine.active_sessions(), 1);

    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for i in 0..5u16 {
        client
            .send_to(&rtp(0, i, 160 * i as u32, 0xC0FFEE, &[0xFF; 160]), server)
            .unwrap();
    }

    // Paced packets come back from the advertised port with consecutive seq/timestamps.
    let mut received = Vec::new();
    let mut arrival = Vec::new();
    let mut buf = [0u8; 1500];
    let client_rx = client.try_clone().unwrap();
    let collected = tokio::task::spawn_blocking(move || {
        while received.len() < 12 {
            let (n, from) = client_rx
                .recv_from(&mut buf)
                .expect("paced RTP from the engine");
            assert_eq!(from, server, "symmetric RTP: sent from the advertised port");
            received.push(buf[..n].to_vec());
            arrival.push(Instant::now());
        }
        (received, arrival)
    })
    .await
    .unwrap();
    let (received, arrival) = collected;
    for pair in received.windows(2) {
        let a = parse_rtp(&pair[0]).unwrap().header;
        let b = parse_rtp(&pair[1]).unwrap().header;
        assert_eq!(b.sequence_number, a.sequence_number.wrapping_add(1));
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(160));
        assert_eq!(b.ssrc, a.ssrc);
        assert_eq!(pair[1].len(), RTP_HEADER_LEN + 160);
    }
    // Pacing: packets 2..=11 are 9 intervals of 20 ms (the first ones may have queued before
    // the reader started); allow one catch-up burst of 3 on a busy machine.
    let span = arrival[11].duration_since(arrival[2]);
    assert!(
        span >= Duration::from_millis(120),
        "packets 2..=11 in {span:?}"
    );

    // DTMF (end packets ×3) becomes one event; playback reports start and finish.
    for k in 0..3u16 {
        client
            .send_to(
                &rtp(101, 100 + k, 4000, 0xC0FFEE, &[5, 0x8A, 0x05, 0x00]),
                server,
            )
            .unwrap();
    }
    handle.enqueue(77, vec![4000i16; 320].into(), true).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(2), handle.next_event())
            .await
            .expect("event within 2 s")
            .expect("session open");
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::Dtmf { digit: '5', .. })),
        "{seen:?}"
    );
    assert!(
        seen.contains(&MediaEvent::PlaybackStarted { id: 77 }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&MediaEvent::PlaybackFinished { id: 77 }),
        "{seen:?}"
    );
    assert!(
        wait_for(|| handle.stats().packets_received >= 8).await,
        "{:?}",
        handle.stats()
    );
    assert!(handle.stats().dtmf_digits == 1);
    let counters = engine.counters();
    assert!(
        counters.packets_in >= 8 && counters.packets_out >= 12,
        "{counters:?}"
    );

    // Closing removes the session and releases the port.
    handle.close();
    assert!(wait_for(|| engine.active_sessions() == 0).await);
    assert_eq!(engine.counters().sessions_closed, 1);
    let rebound = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
    assert!(rebound.is_ok(), "port {port} should be free after close");
    drop(rebound);
    // And it can be leased again.
    let again: Vec<_> = (0..10).map(|_| engine.allocate_port().unwrap()).collect();
    assert!(again.iter().any(|l| l.port() == port));
}

#[test]
fn port_leases_are_even_unique_and_released_on_drop() {
    let engine = engine((47101, 47106), 1); // pairs 47102/3 and 47104/5 (47106 has no odd)
    let a = engine.allocate_port().unwrap();
    let b = engine.allocate_port().unwrap();
    let mut ports = vec![a.port(), b.port()];
    ports.sort();
    assert_eq!(ports, vec![47102, 47104]);
    assert!(matches!(
        engine.allocate_port(),
        Err(MediaError::NoFreePort { .. })
    ));
    let freed = a.port();
    drop(a);
    let c = engine.allocate_port().unwrap();
    assert_eq!(c.port(), freed);
    assert_eq!(
        c.local_addr(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, freed))
    );
}

#[test]
fn ports_taken_by_other_sockets_are_skipped() {
    let squatter = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 47200)).unwrap();
    let engine = engine((47200, 47203), 1);
    let lease = engine.allocate_port().unwrap();
    assert_eq!(lease.port(), 47202);
    assert!(matches!(
        engine.allocate_port(),
        Err(MediaError::NoFreePort { .. })
    ));
    drop(squatter);
}

#[test]
fn invalid_configs_are_rejected() {
    for range in [(5001, 5001), (6000, 5000), (0, 1)] {
        let result = MediaEngine::start(EngineConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_range: range,
            shards: 1,
        });
        assert!(
            matches!(result, Err(MediaError::InvalidConfig(_))),
            "{range:?}"
        );
    }
}

#[tokio::test]
async fn dropping_the_handle_closes_and_commands_then_fail() {
    let engine = engine((47300, 47309), 1);
    let lease = engine.allocate_port().unwrap();
    let handle = engine
        .open_session(
            lease,
            SessionConfig::new(Law::A),
            Box::new(EnergyVad::default()),
        )
        .unwrap();
    let commands = handle.commands.clone();
    let shared = Arc::clone(&handle.shared);
    drop(handle);
    assert!(shared.closed.load(Ordering::Acquire));
    assert!(wait_for(|| engine.active_sessions() == 0).await);
    // A command for a removed session is ignored by the shard.
    commands
        .try_send(Command::Flush {
            id: 999,
            item: None,
        })
        .unwrap();
}

#[test]
fn engine_and_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<MediaEngine>();
    assert_send::<SessionHandle>();
    assert_send::<PortLease>();
}

fn utterance(start_ms: u32) -> MediaEvent {
    MediaEvent::Utterance {
        start_ms,
        end_ms: start_ms + 100,
        audio: vec![1i16; 1600].into(),
    }
}

/// A handle on `events` and `shared` without a shard behind it.
fn bare_handle(events: mpsc::Receiver<MediaEvent>, shared: Arc<SessionShared>) -> SessionHandle {
    SessionHandle {
        port: 0,
        id: 1,
        dtmf_negotiated: false,
        commands: sync_channel(1).0,
        events,
        shared,
    }
}

#[test]
fn a_stuck_call_holds_few_utterances_and_loses_the_oldest() {
    let (tx, rx) = mpsc::channel(8);
    let shared = Arc::new(SessionShared::default());
    let mut handle = bare_handle(rx, Arc::clone(&shared));
    let counters = Counters::default();
    let mut outbox = EventOutbox::new(tx);
    let dtmf = MediaEvent::Dtmf {
        digit: '7',
        media_ms: 0,
    };
    let mut source: VecDeque<MediaEvent> = [
        utterance(1000),
        utterance(2000),
        utterance(3000),
        dtmf.clone(),
        utterance(4000),
        utterance(5000),
        utterance(6000),
    ]
    .into();
    outbox.deliver(&shared, &counters, || source.pop_front());
    // Two in the channel; 3000 and 4000 were dropped from the backlog for 5000 and 6000.
    assert_eq!(shared.utterances_in_channel.load(Ordering::Acquire), 2);
    assert_eq!(outbox.dropped, 2);
    assert_eq!(counters.events_dropped.load(Ordering::Relaxed), 2);
    assert_eq!(outbox.backlog.len(), 3);
    assert_eq!(handle.try_next_event(), Some(utterance(1000)));
    assert_eq!(handle.try_next_event(), Some(utterance(2000)));
    assert_eq!(handle.try_next_event(), None);
    assert_eq!(shared.utterances_in_channel.load(Ordering::Acquire), 0);
    // The call caught up: the rest follows in order on the next tick.
    outbox.deliver(&shared, &counters, || None);
    assert_eq!(handle.try_next_event(), Some(dtmf));
    assert_eq!(handle.try_next_event(), Some(utterance(5000)));
    assert_eq!(handle.try_next_event(), Some(utterance(6000)));
    assert_eq!(handle.try_next_event(), None);
    assert!(outbox.backlog.is_empty());
    assert_eq!(outbox.backlog_utterances, 0);
    assert_eq!(shared.utterances_in_channel.load(Ordering::Acquire), 0);
}

#[test]
fn a_full_channel_drops_speech_events_but_keeps_must_deliver_ones() {
    let (tx, rx) = mpsc::channel(1);
    let shared = Arc::new(SessionShared::default());
    let mut handle = bare_handle(rx, Arc::clone(&shared));
    let counters = Counters::default();
    let mut outbox = EventOutbox::new(tx);
    let mut source: VecDeque<MediaEvent> = [
        MediaEvent::SpeechStarted { media_ms: 10 },
        MediaEvent::SpeechStarted { media_ms: 20 },
        MediaEvent::PlaybackFinished { id: 4 },
        MediaEvent::SpeechStopped { duration_ms: 30 },
        utterance(0),
    ]
    .into();
    outbox.deliver(&shared, &counters, || source.pop_front());
    assert_eq!(outbox.dropped, 2);
    let mut seen = Vec::new();
    for _ in 0..4 {
        while let Some(e) = handle.try_next_event() {
            seen.push(e);
        }
        outbox.deliver(&shared, &counters, || None);
    }
    assert_eq!(
        seen,
        vec![
            MediaEvent::SpeechStarted { media_ms: 10 },
            MediaEvent::PlaybackFinished { id: 4 },
            utterance(0),
        ]
    );
}

#[tokio::test]
async fn loopback_call_receives_the_utterance_after_speech() {
    let engine = engine((47400, 47409), 1);
    let lease = engine.allocate_port().unwrap();
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, lease.port()).into();
    let config = SessionConfig {
        utterances: true,
        ..SessionConfig::new(Law::Mu)
    };
    let mut handle = engine
        .open_session(lease, config, Box::new(EnergyVad::default()))
        .unwrap();
    // 500 ms silence, 600 ms of a loud 1 kHz square wave, 800 ms silence, paced at 20 ms.
    let loud: Vec<u8> = (0..160)
        .map(|i| crate::g711::linear_to_ulaw(if (i / 4) % 2 == 0 { 12000 } else { -12000 }))
        .collect();
    let sender = std::thread::spawn(move || {
        let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let start = Instant::now();
        for i in 0..95u16 {
            let payload = if (25..55).contains(&i) {
                &loud[..]
            } else {
                &[0xFF; 160][..]
            };
            client
                .send_to(&rtp(0, i, 160 * i as u32, 0xC0FFEE, payload), server)
                .unwrap();
            let next = start + PTIME * (i as u32 + 1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen
        .iter()
        .any(|e| matches!(e, MediaEvent::Utterance { .. }))
    {
        let event = tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .expect("an utterance within 5 s")
            .expect("session open");
        seen.push(event);
    }
    sender.join().unwrap();
    assert!(
        matches!(
            seen.as_slice(),
            [
                MediaEvent::SpeechStarted { .. },
                MediaEvent::SpeechStopped { .. },
                MediaEvent::Utterance { .. }
            ]
        ),
        "{seen:?}"
    );
    let MediaEvent::SpeechStarted { media_ms: onset } = seen[0] else {
        unreachable!()
    };
    let MediaEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    } = &seen[2]
    else {
        unreachable!()
    };
    assert!((480..=540).contains(&onset), "onset {onset}");
    assert_eq!(*start_ms, onset - 300);
    assert!((1380..=1460).contains(end_ms), "end {end_ms}");
    assert_eq!(audio.len(), (end_ms - start_ms) as usize * 16);
    assert!(
        audio.iter().any(|s| s.abs() > 8000),
        "the loud part is in it"
    );
    assert!(
        audio[..200 * 16].iter().all(|s| s.abs() < 100),
        "pre-roll is silence"
    );
    assert_eq!(handle.stats().events_dropped, 0);
}

#[tokio::test]
async fn loopback_srtp_call_decrypts_dtmf_and_sends_protected_rtp() {
    use crate::srtp::{SrtpKeys, SrtpSession, SrtpSuite};
    let engine = engine((47500, 47509), 1);
    let lease = engine.allocate_port().unwrap();
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, lease.port()).into();
    let keys = SrtpKeys {
        suite: SrtpSuite::AesCm128HmacSha1_80,
        local: [0x11; 30],
        remote: [0x22; 30],
    };
    let config = SessionConfig {
        remote: None,
        dtmf_payload_type: Some(101),
        srtp: Some(keys.clone()),
        ..SessionConfig::new(Law::Mu)
    };
    let mut handle = engine
        .open_session(lease, config, Box::new(EnergyVad::default()))
        .unwrap();
    let mut peer = SrtpSession::new(&keys.swapped());
    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // A plain (unprotected) DTMF packet first: dropped, not latched to, no digit.
    client
        .send_to(&rtp(101, 1, 4000, 0xC0FFEE, &[3, 0x8A, 0x05, 0x00]), server)
        .unwrap();
    // Then protected audio and DTMF '5' (end packets ×3).
    for i in 0..3u16 {
        let packet = rtp(0, 10 + i, 160 * i as u32, 0xC0FFEE, &[0xFF; 160]);
        client
            .send_to(&peer.protect(&packet).unwrap(), server)
            .unwrap();
    }
    for k in 0..3u16 {
        let packet = rtp(101, 13 + k, 8000, 0xC0FFEE, &[5, 0x8A, 0x05, 0x00]);
        client
            .send_to(&peer.protect(&packet).unwrap(), server)
            .unwrap();
    }
    let event = tokio::time::timeout(Duration::from_secs(2), handle.next_event())
        .await
        .expect("event within 2 s")
        .expect("session open");
    assert!(
        matches!(event, MediaEvent::Dtmf { digit: '5', .. }),
        "{event:?}"
    );
    // The engine latched to us and sends SRTP that decrypts to µ-law silence.
    let client_rx = client.try_clone().unwrap();
    let received = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        let mut out = Vec::new();
        while out.len() < 5 {
            let (n, from) = client_rx.recv_from(&mut buf).expect("SRTP from the engine");
            assert_eq!(from, server);
            out.push(buf[..n].to_vec());
        }
        out
    })
    .await
    .unwrap();
    for packet in &received {
        assert_eq!(packet.len(), RTP_HEADER_LEN + 160 + 10);
        let clear = peer.unprotect(packet).expect("authentic SRTP");
        let parsed = parse_rtp(&clear).unwrap();
        assert_eq!(parsed.payload, &[crate::g711::ULAW_SILENCE; 160][..]);
    }
    assert!(
        wait_for(|| {
            let s = handle.stats();
            s.srtp_failures == 1 && s.packets_received == 6 && s.dtmf_digits == 1
        })
        .await,
        "{:?}",
        handle.stats()
    );
    // Rekeying (a re-INVITE with new a=crypto lines): the old peer context fails, the new
    // one works.
    let rekeyed = SrtpKeys {
        local: [0x33; 30],
        ..keys
    };
    handle.set_srtp(Some(rekeyed.clone())).unwrap();
    let mut new_peer = SrtpSession::new(&rekeyed.swapped());
    let client_rx = client.try_clone().unwrap();
    let ok = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..20 {
            let (n, _) = client_rx.recv_from(&mut buf).expect("SRTP from the engine");
            if new_peer.unprotect(&buf[..n]).is_ok() {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(ok, "packets protected with the new key");
}

#[tokio::test]
async fn loopback_call_sends_dtmf_through_the_handle() {
    use crate::dtmf::{DtmfError, DtmfReceiver};
    let engine = engine((47600, 47609), 1);
    let lease = engine.allocate_port().unwrap();
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, lease.port()).into();
    let config = SessionConfig {
        remote: None,
        dtmf_payload_type: Some(101),
        ..SessionConfig::new(Law::Mu)
    };
    let mut handle = engine
        .open_session(lease, config, Box::new(EnergyVad::default()))
        .unwrap();
    // A session without telephone-event cannot send DTMF; bad digits fail at the handle.
    let no_dtmf = engine
        .open_session(
            engine.allocate_port().unwrap(),
            SessionConfig::new(Law::Mu),
            Box::new(EnergyVad::default()),
        )
        .unwrap();
    assert!(matches!(
        no_dtmf.send_dtmf("1"),
        Err(MediaError::Dtmf(DtmfError::NotNegotiated))
    ));
    assert!(matches!(
        handle.send_dtmf("4x"),
        Err(MediaError::Dtmf(DtmfError::InvalidDigit { digit: 'x', .. }))
    ));

    // Latch the session to our client, then ask for three digits.
    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client
        .send_to(&rtp(0, 1, 0, 0xC0FFEE, &[0xFF; 160]), server)
        .unwrap();
    let client_rx = client.try_clone().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        let mut packets = Vec::new();
        let mut rx = DtmfReceiver::new(101);
        let mut digits = String::new();
        let start = Instant::now();
        while digits.len() < 3 && start.elapsed() < Duration::from_secs(5) {
            let (n, from) = client_rx.recv_from(&mut buf).expect("RTP from the engine");
            assert_eq!(from, server);
            let packet = parse_rtp(&buf[..n]).unwrap();
            let h = &packet.header;
            for d in rx.handle_packet(
                Instant::now(),
                h.payload_type,
                h.ssrc,
                h.timestamp,
                packet.payload,
            ) {
                digits.extend(d.map(|d| d.digit));
            }
            packets.push(buf[..n].to_vec());
        }
        (digits, packets)
    });
    assert!(
        wait_for(|| handle.stats().packets_sent > 0).await,
        "the session latched"
    );
    handle.send_dtmf("42#").unwrap();
    // The handle bounds the queue: 3 pending + 62 > 64.
    assert!(matches!(
        handle.send_dtmf(&"1".repeat(62)),
        Err(MediaError::Dtmf(DtmfError::QueueFull {
            pending: 3,
            requested: 62,
            max: 64
        }))
    ));
    let (digits, packets) = reader.await.unwrap();
    assert_eq!(digits, "42#");
    // Telephone-events are part of the audio stream: one SSRC, consecutive sequence numbers.
    let headers: Vec<_> = packets
        .iter()
        .map(|p| parse_rtp(p).unwrap().header)
        .collect();
    for pair in headers.windows(2) {
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
        assert_eq!(
            pair[1].sequence_number,
            pair[0].sequence_number.wrapping_add(1)
        );
    }
    let events = headers.iter().filter(|h| h.payload_type == 101).count();
    assert_eq!(
        events,
        3 * 11 - 2,
        "the last digit's last two end packets not yet read"
    );
    assert!(headers.iter().any(|h| h.payload_type == 0));

    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(2), handle.next_event())
            .await
            .expect("DtmfSent within 2 s")
            .expect("session open");
        if matches!(event, MediaEvent::DtmfSent { .. }) {
            break event;
        }
    };
    assert_eq!(
        event,
        MediaEvent::DtmfSent {
            digits: "42#".to_string()
        }
    );
    // The room is given back once the digits are sent.
    assert!(
        wait_for(|| handle.shared.dtmf_pending.load(Ordering::Acquire) == 0).await,
        "pending {}",
        handle.shared.dtmf_pending.load(Ordering::Acquire)
    );
    assert_eq!(handle.stats().dtmf_digits_sent, 3);
    handle.send_dtmf("").unwrap();
    handle.send_dtmf(&"1".repeat(64)).unwrap();
    // Room comes back digit by digit, before the whole batch is sent.
    assert!(
        wait_for(|| handle.shared.dtmf_pending.load(Ordering::Acquire) < 64).await,
        "pending {}",
        handle.shared.dtmf_pending.load(Ordering::Acquire)
    );
    handle.send_dtmf("9").unwrap();
    handle.close();
}

/// A packet a phone received: arrival, payload type, decoded PCM.
type Received = (Instant, u8, Vec<i16>);

/// A phone on a loopback socket: sends `frames` tagged frames paced at 20 ms from a thread,
/// and records every packet it receives until `stop`.
struct Phone {
    socket: std::net::UdpSocket,
    law: Law,
    /// Every packet received.
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    receiver: Option<std::thread::JoinHandle<()>>,
}

impl Phone {
    fn new(law: Law) -> Phone {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = {
            let socket = socket.try_clone().unwrap();
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Acquire) {
                    let Ok(n) = socket.recv(&mut buf) else {
                        continue;
                    };
                    let at = Instant::now();
                    let packet = parse_rtp(&buf[..n]).unwrap();
                    let mut pcm = vec![0i16; packet.payload.len()];
                    law.decode(packet.payload, &mut pcm);
                    received
                        .lock()
                        .unwrap()
                        .push((at, packet.header.payload_type, pcm));
                }
            })
        };
        Phone {
            socket,
            law,
            received,
            stop,
            receiver: Some(receiver),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Sends tagged frames `ids` (packet n = id) to `to`, one every 20 ms; returns when each
    /// was sent.
    fn talk(
        &self,
        to: SocketAddr,
        ids: std::ops::Range<u8>,
        tone: i16,
    ) -> std::thread::JoinHandle<Vec<(u8, Instant)>> {
        let socket = self.socket.try_clone().unwrap();
        let law = self.law;
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = Vec::new();
            for (i, id) in ids.enumerate() {
                let due = start + PTIME * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut payload = [0u8; 160];
                law.encode(&tagged_frame(id, tone), &mut payload);
                let packet = rtp(
                    law.static_payload_type(),
                    u16::from(id),
                    160 * u32::from(id),
                    0xF0_0000 + u32::from(tone as u16),
                    &payload,
                );
                socket.send_to(&packet, to).unwrap();
                sent.push((id, Instant::now()));
            }
            sent
        })
    }

    /// What the phone heard from `from` on: (arrival, what) for audio packets.
    fn heard(&self, from: Instant, tone: i16) -> Vec<(Instant, Heard)> {
        let pt = self.law.static_payload_type();
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, packet_pt, _)| *at >= from && *packet_pt == pt)
            .map(|(at, _, pcm)| (*at, hear(pcm, tone)))
            .collect()
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

/// The next event matching `pred` within 2 s (others are skipped), with when it was seen.
fn wait_event(
    handle: &mut SessionHandle,
    pred: impl Fn(&MediaEvent) -> bool,
) -> Option<(Instant, MediaEvent)> {
    wait_event_within(handle, Duration::from_secs(2), pred)
}

fn wait_event_within(
    handle: &mut SessionHandle,
    within: Duration,
    pred: impl Fn(&MediaEvent) -> bool,
) -> Option<(Instant, MediaEvent)> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match handle.try_next_event() {
            Some(event) if pred(&event) => return Some((Instant::now(), event)),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    None
}

/// Checks that `heard` holds the tagged frames of `sent` once each, in order, nearly all of
/// them, each soon after it was sent.
fn assert_carried(heard: &[(Instant, Heard)], sent: &[(u8, Instant)], leg: &str) {
    let frames: Vec<(Instant, u8)> = heard
        .iter()
        .filter_map(|&(at, h)| match h {
            Heard::Frame(id) => Some((at, id)),
            _ => None,
        })
        .collect();
    let ids: Vec<u8> = frames.iter().map(|f| f.1).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{leg}: each frame once, in order: {ids:?}"
    );
    // Loopback on a busy 2-core machine: allow a few frames lost to scheduling hiccups.
    assert!(
        ids.len() * 10 >= sent.len() * 9,
        "{leg}: {} of {} frames: {ids:?}",
        ids.len(),
        sent.len()
    );
    let mut delays: Vec<Duration> = frames
        .iter()
        .map(|&(at, id)| {
            let (_, sent_at) = sent.iter().find(|s| s.0 == id).unwrap();
            at.duration_since(*sent_at)
        })
        .collect();
    delays.sort();
    // Socket wait (< 1 tick) + one tick of backlog at most + the other shard's phase
    // (< 1 tick); the median must be well inside that, the worst case within scheduling
    // noise.
    let median = delays[delays.len() / 2];
    assert!(
        median < Duration::from_millis(60),
        "{leg}: median {median:?}"
    );
    assert!(
        *delays.last().unwrap() < Duration::from_millis(250),
        "{leg}: {delays:?}"
    );
    // Nothing but the other leg's frames and silence.
    assert!(
        heard
            .iter()
            .all(|(_, h)| matches!(h, Heard::Frame(_) | Heard::Silence)),
        "{leg}: {heard:?}"
    );
}

#[test]
fn loopback_bridge_carries_each_phone_to_the_other_and_ends_on_unbridge_and_close() {
    const CALLER_TONE: i16 = 3000;
    const HUMAN_TONE: i16 = 6000;
    // Two shards: the legs land on different ones (least loaded), so frames cross threads.
    let engine = engine((47700, 47709), 2);
    let caller = Phone::new(Law::Mu);
    let human = Phone::new(Law::A);
    let open = |law: Law, phone: &Phone| {
        let lease = engine.allocate_port().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, lease.port()));
        let config = SessionConfig {
            remote: Some(phone.addr()),
            ..SessionConfig::new(law)
        };
        let handle = engine
            .open_session(lease, config, Box::new(EnergyVad::default()))
            .unwrap();
        (handle, addr)
    };
    let (mut a, a_addr) = open(Law::Mu, &caller);
    let (mut b, b_addr) = open(Law::A, &human);
    assert_eq!(engine.active_sessions(), 2);

    assert!(matches!(a.bridge(&a), Err(MediaError::BridgeToSelf)));
    a.bridge(&b).unwrap();
    assert_eq!(
        wait_event(&mut a, |e| *e == MediaEvent::Bridged).unwrap().1,
        MediaEvent::Bridged
    );
    assert!(wait_event(&mut b, |e| *e == MediaEvent::Bridged).is_some());

    // Both phones talk for 1.5 s at once.
    let talking = Instant::now();
    let caller_talk = caller.talk(a_addr, 0..75, CALLER_TONE);
    let human_talk = human.talk(b_addr, 0..75, HUMAN_TONE);
    let caller_sent = caller_talk.join().unwrap();
    let human_sent = human_talk.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_carried(
        &human.heard(talking, CALLER_TONE),
        &caller_sent,
        "caller → human",
    );
    assert_carried(
        &caller.heard(talking, HUMAN_TONE),
        &human_sent,
        "human → caller",
    );
    let stats = b.stats();
    assert!(
        stats.bridge_frames_in >= 67 && stats.bridge_frames_out >= 67,
        "{stats:?}"
    );

    // Unbridging one side ends both; the human then hears B's own (empty) playback.
    a.unbridge().unwrap();
    let requested = MediaEvent::Unbridged {
        reason: UnbridgeReason::Requested,
    };
    let peer_unbridged = MediaEvent::Unbridged {
        reason: UnbridgeReason::PeerUnbridged,
    };
    assert_eq!(
        wait_event(&mut a, |e| matches!(e, MediaEvent::Unbridged { .. }))
            .unwrap()
            .1,
        requested
    );
    let (ended, event) = wait_event(&mut b, |e| matches!(e, MediaEvent::Unbridged { .. })).unwrap();
    assert_eq!(event, peer_unbridged);
    caller.talk(a_addr, 75..100, CALLER_TONE).join().unwrap();
    let after = human.heard(ended + Duration::from_millis(60), CALLER_TONE);
    assert!(after.len() >= 20, "B still sends: {}", after.len());
    assert!(after.iter().all(|(_, h)| *h == Heard::Silence), "{after:?}");

    // Bridged again, then the caller hangs up: the human's leg is told, and stays open.
    a.bridge(&b).unwrap();
    assert!(wait_event(&mut b, |e| *e == MediaEvent::Bridged).is_some());
    assert!(wait_event(&mut a, |e| *e == MediaEvent::Bridged).is_some());
    a.close();
    assert_eq!(
        wait_event(&mut b, |e| matches!(e, MediaEvent::Unbridged { .. }))
            .unwrap()
            .1,
        MediaEvent::Unbridged {
            reason: UnbridgeReason::PeerClosed
        }
    );
    assert_eq!(engine.active_sessions(), 1);
    b.enqueue(1, vec![1000i16; 160].into(), false).unwrap();
    assert!(
        wait_event(&mut b, |e| *e == MediaEvent::PlaybackFinished { id: 1 }).is_some(),
        "B plays its own queue again"
    );
}

#[test]
fn bridging_a_closed_session_fails_and_a_lost_command_ends_the_other_half() {
    let engine = engine((47720, 47729), 1);
    let lease = engine.allocate_port().unwrap();
    let mut a = engine
        .open_session(
            lease,
            SessionConfig::new(Law::Mu),
            Box::new(EnergyVad::default()),
        )
        .unwrap();
    let closed_shared = Arc::new(SessionShared::default());
    closed_shared.closed.store(true, Ordering::Release);
    let (_tx, rx) = mpsc::channel(1);
    let closed = bare_handle(rx, Arc::clone(&closed_shared));
    assert!(matches!(a.bridge(&closed), Err(MediaError::Closed)));
    assert!(matches!(closed.bridge(&a), Err(MediaError::Closed)));
    // A peer whose command cannot be delivered (its shard is gone): this half starts and
    // ends at once.
    let (_tx, rx) = mpsc::channel(1);
    let unreachable = bare_handle(rx, Arc::new(SessionShared::default()));
    assert!(matches!(a.bridge(&unreachable), Err(MediaError::Closed)));
    assert!(wait_event(&mut a, |e| *e == MediaEvent::Bridged).is_some());
    assert_eq!(
        wait_event(&mut a, |e| matches!(e, MediaEvent::Unbridged { .. }))
            .unwrap()
            .1,
        MediaEvent::Unbridged {
            reason: UnbridgeReason::PeerClosed
        }
    );
    // Unbridging a session that is not bridged does nothing.
    a.unbridge().unwrap();
    let none = wait_event_within(&mut a, Duration::from_millis(200), |e| {
        matches!(e, MediaEvent::Unbridged { .. })
    });
    assert!(none.is_none());
}

#[test]
fn rtcp_port_is_bound_with_the_rtp_port_and_pairs_with_a_taken_odd_port_are_skipped() {
    let squatter = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 47401)).unwrap();
    let engine = engine((47400, 47403), 1);
    let lease = engine.allocate_port().unwrap();
    assert_eq!(lease.port(), 47402, "47400/47401 has its RTCP port taken");
    assert!(
        std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 47403)).is_err(),
        "the RTCP port is bound by the lease"
    );
    assert!(matches!(
        engine.allocate_port(),
        Err(MediaError::NoFreePort { .. })
    ));
    drop(lease);
    assert!(std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 47403)).is_ok());
    drop(squatter);
}

/// An even/odd pair of loopback sockets (a peer's RTP and RTCP ports).
fn socket_pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
    for port in (47700..47800).step_by(2) {
        if let (Ok(rtp), Ok(rtcp)) = (
            std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)),
            std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)),
        ) {
            return (rtp, rtcp);
        }
    }
    panic!("no free port pair in 47700..47800");
}

#[test]
fn loopback_rtcp_reports_loss_and_measures_rtt_from_the_peers_reply() {
    use crate::rtcp::{PT_SR, ReceptionSnapshot, RtcpSession, SenderSnapshot};
    let engine = engine((47500, 47509), 1);
    let lease = engine.allocate_port().unwrap();
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, lease.port()).into();
    let server_rtcp: SocketAddr = (Ipv4Addr::LOCALHOST, lease.port() + 1).into();
    let (client_rtp, client_rtcp) = socket_pair();
    let config = SessionConfig {
        remote: Some(client_rtp.local_addr().unwrap()),
        rtcp_interval: Some(Duration::from_secs(2)),
        ..SessionConfig::new(Law::Mu)
    };
    let handle = engine
        .open_session(lease, config, Box::new(EnergyVad::default()))
        .unwrap();
    // Our RTP: 20 ms apart, every 10th packet not sent.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if i % 10 != 9 {
                    let packet = rtp(0, i as u16, 160 * i, 0xFEED, &[0xFF; 160]);
                    client_rtp.send_to(&packet, server).unwrap();
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    client_rtcp
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut peer = RtcpSession::new(0xFEED, Instant::now(), Duration::from_secs(5));
    let mut buf = [0u8; 1500];
    // Two reports: the first may come before any loss is declared.
    let mut report = None;
    for _ in 0..2 {
        let (n, from) = client_rtcp
            .recv_from(&mut buf)
            .expect("an RTCP report within 5 s");
        assert_eq!(from, server_rtcp, "sent from our RTCP port");
        assert_eq!(buf[1], PT_SR, "we send RTP, so an SR");
        report = Some(peer.handle_compound(Instant::now(), &buf[..n]).unwrap());
    }
    let report = report.unwrap();
    assert_eq!(report.blocks.len(), 1);
    let block = report.blocks[0];
    assert_eq!(block.ssrc, 0xFEED);
    assert!((20..=32).contains(&block.fraction_lost), "{block:?}");
    assert!(block.cumulative_lost >= 3, "{block:?}");
    // Reply with an RR after holding the SR 30 ms; vaani's RTT excludes the hold.
    std::thread::sleep(Duration::from_millis(30));
    let reception = ReceptionSnapshot {
        ssrc: report.sender.unwrap().ssrc,
        extended_highest_sequence: 1,
        received: 100,
        lost: 0,
        jitter: 0.0,
    };
    let sender_info = SenderSnapshot {
        rtp_time: 0,
        packet_count: 0,
    };
    let mut out = [0u8; 256];
    let n = peer
        .write_report(Instant::now(), Some(reception), sender_info, &mut out)
        .unwrap();
    client_rtcp.send_to(&out[..n], server_rtcp).unwrap();
    let measured = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(10));
        handle.stats().rtcp.rtt_last_ms
    });
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let rtt = measured.expect("RTT from our RR");
    // Loopback: the time the report waited for the shard's tick, at most one 20 ms tick.
    assert!((0.0..25.0).contains(&rtt), "{rtt} ms");
    let stats = handle.stats();
    assert_eq!(stats.rtcp.received, 1, "{:?}", stats.rtcp);
    assert_eq!(stats.rtcp.peer_fraction_lost, Some(0.0));
    assert!(stats.rtcp.sent >= 2);
    assert!(
        stats.mos().is_some_and(|mos| (3.0..4.0).contains(&mos)),
        "{stats:?}"
    );
}

/// Sessions closing in the middle of a shard's list move its last session into their slot:
/// every remaining session's socket must still be read, bursts included, and the shards'
/// counters add up.
#[tokio::test]
async fn sessions_keep_receiving_after_others_close_and_move_slots() {
    let engine = engine((47800, 47819), 2);
    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut handles = Vec::new();
    for _ in 0..5 {
        let lease = engine.allocate_port().unwrap();
        let handle = engine
            .open_session(
                lease,
                SessionConfig::new(Law::Mu),
                Box::new(EnergyVad::default()),
            )
            .unwrap();
        handles.push(handle);
    }
    let send = |handle: &SessionHandle, seq: u16| {
        let server: SocketAddr = (Ipv4Addr::LOCALHOST, handle.port).into();
        client
            .send_to(
                &rtp(0, seq, 160 * u32::from(seq), 0xAB, &[0xFF; 160]),
                server,
            )
            .unwrap();
    };
    for handle in &handles {
        send(handle, 0);
    }
    assert!(wait_for(|| handles.iter().all(|h| h.stats().packets_received == 1)).await);
    // Close the first and the third: the fifth moves to slot 0, the fourth to slot 2.
    let third = handles.remove(2);
    let first = handles.remove(0);
    third.close();
    first.close();
    assert!(wait_for(|| engine.active_sessions() == 3).await);
    for seq in 1..=3 {
        for handle in &handles {
            send(handle, seq);
        }
    }
    assert!(
        wait_for(|| handles.iter().all(|h| h.stats().packets_received == 4)).await,
        "{:?}",
        handles
            .iter()
            .map(|h| h.stats().packets_received)
            .collect::<Vec<_>>()
    );
    // A burst of more than one datagram per tick on one socket is all read.
    for seq in 4..24 {
        send(&handles[0], seq);
    }
    assert!(wait_for(|| handles[0].stats().packets_received == 24).await);
    assert_eq!(engine.counters().packets_in, 5 + 9 + 20);
}
