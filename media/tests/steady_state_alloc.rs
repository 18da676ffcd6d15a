//! The media path allocates nothing per packet in steady state: after a warm-up, a G.711,
//! G.722 or Opus session (earshot VAD, playback running, utterances on) takes a packet, ticks and sends
//! its packet every 20 ms without a single heap allocation; only the RTCP report every ~5 s
//! may allocate (the `rtcp` crate builds it in a few small buffers). Counted with a global allocator
//! wrapper, on the measuring thread only (the test harness allocates on its own threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vaani_media::g722::{FRAME_BYTES, G722Encoder};
use vaani_media::opus::OpusEncoder;
use vaani_media::packet::{RTP_HEADER_LEN, write_rtp_header};
use vaani_media::{Codec, EarshotVad, Law, MediaSession, SessionConfig};

struct CountingAllocator;

thread_local! {
    /// Whether this thread's allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread's allocations while counting.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// A steady tone: the VAD scores it, the jitter buffer releases it, nothing ends.
fn tone(rate: usize) -> Vec<i16> {
    (0..rate / 50)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 3000.0) as i16)
        .collect()
}

/// Runs `frames` 20 ms steps (packet in, tick, packets and events out) from step `from`.
fn run(
    session: &mut MediaSession,
    packets: &[Vec<u8>],
    phone: SocketAddr,
    t0: Instant,
    from: usize,
) -> u64 {
    let mut sent = 0;
    for (k, packet) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * (from + k) as u64);
        session.handle_rtp(now, phone, packet);
        session.handle_timeout(now);
        while session.poll_transmit().is_some() {
            sent += 1;
        }
        while session.poll_transmit_rtcp().is_some() {}
        while session.poll_event().is_some() {}
    }
    sent
}

/// Allocations allowed per RTCP report written.
const ALLOCATIONS_PER_REPORT: u64 = 8;

/// Steady-state allocations, RTP packets sent and RTCP reports sent over 1000 steps.
fn steady_state_allocations(codec: Codec) -> (u64, u64, u64) {
    let phone = SocketAddr::from(([192, 0, 2, 1], 30_000));
    let t0 = Instant::now();
    let config = SessionConfig {
        remote: Some(phone),
        ..SessionConfig::new(codec)
    };
    let mut session = MediaSession::new(config, Box::new(EarshotVad::new()), t0);
    let payload: Vec<u8> = match codec {
        Codec::G711(law) => {
            let mut bytes = vec![0u8; 160];
            law.encode(&tone(8000), &mut bytes);
            bytes
        }
        Codec::G722 => {
            let mut bytes = vec![0u8; FRAME_BYTES];
            G722Encoder::new().encode(&tone(16000), &mut bytes);
            bytes
        }
        Codec::Opus => {
            let mut bytes = vec![0u8; 400];
            let mut encoder = OpusEncoder::new().expect("Opus encoder");
            let n = encoder
                .encode(&tone(16000), &mut bytes)
                .expect("Opus encodes a tone");
            bytes.truncate(n);
            bytes
        }
    };
    let total = 1500;
    let packets: Vec<Vec<u8>> = (0..total)
        .map(|n| {
            let mut packet = vec![0u8; RTP_HEADER_LEN + payload.len()];
            write_rtp_header(
                &mut packet,
                false,
                codec.static_payload_type(),
                n as u16,
                (n as u32).wrapping_mul(codec.frame_units()),
                0xF00D,
            );
            packet[RTP_HEADER_LEN..].copy_from_slice(&payload);
            packet
        })
        .collect();
    // A minute of agent audio, queued before the warm-up.
    let agent: Arc<[i16]> = tone(8000).repeat(3000).into();
    session.enqueue(1, agent, false);

    let warm_up = 500;
    run(&mut session, &packets[..warm_up], phone, t0, 0);
    let reports_before = session.stats().rtcp.sent;
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let sent = run(&mut session, &packets[warm_up..], phone, t0, warm_up);
    COUNTING.with(|c| c.set(false));
    let stats = session.stats();
    assert_eq!(stats.packets_received, total as u64, "{stats:?}");
    let reports = stats.rtcp.sent - reports_before;
    (ALLOCATIONS.with(Cell::get), sent, reports)
}

#[test]
fn a_g711_session_allocates_nothing_per_packet_in_steady_state() {
    let (allocations, sent, reports) = steady_state_allocations(Codec::G711(Law::Mu));
    assert!(sent >= 999, "{sent} packets sent in 1000 ticks");
    assert!((2..=6).contains(&reports), "{reports} RTCP reports in 20 s");
    assert!(
        allocations <= reports * ALLOCATIONS_PER_REPORT,
        "{allocations} allocations in 1000 steps with {reports} RTCP reports"
    );
}

#[test]
fn a_g722_session_allocates_nothing_per_packet_in_steady_state() {
    let (allocations, sent, reports) = steady_state_allocations(Codec::G722);
    assert!(sent >= 999, "{sent} packets sent in 1000 ticks");
    assert!((2..=6).contains(&reports), "{reports} RTCP reports in 20 s");
    assert!(
        allocations <= reports * ALLOCATIONS_PER_REPORT,
        "{allocations} allocations in 1000 steps with {reports} RTCP reports"
    );
}

#[test]
fn an_opus_session_allocates_nothing_per_packet_in_steady_state() {
    let (allocations, sent, reports) = steady_state_allocations(Codec::Opus);
    assert!(sent >= 999, "{sent} packets sent in 1000 ticks");
    assert!((2..=6).contains(&reports), "{reports} RTCP reports in 20 s");
    assert!(
        allocations <= reports * ALLOCATIONS_PER_REPORT,
        "{allocations} allocations in 1000 steps with {reports} RTCP reports"
    );
}
