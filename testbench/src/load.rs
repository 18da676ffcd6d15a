//! A purpose-built RTP load generator for the capacity benchmark.
//!
//! sipp 3.6.1 sends every call's RTP from one port (reference trunks.md §3) and cannot time what
//! comes back, so media is driven here instead: one UDP socket per call, one thread with one
//! 20 ms ticker. Each tick it reads everything that arrived on every socket, then sends one
//! 172-byte G.711 µ-law packet to each call's peer: digital silence (a caller who listens) or
//! white noise at −30 dBFS ([`CallerAudio`]: a caller whose audio runs the VAD network, as
//! speech does, without being speech that would reach speech-to-text). The peer address is given, or learnt from the first packet the peer sends
//! (vaani sends from the port in its SDP answer as soon as the call is up).
//!
//! Arrival times come from the kernel (`SO_TIMESTAMPNS`), stamped when the datagram reached the
//! socket, so the outbound pacing error measured (|inter-arrival − 20 ms| between consecutive
//! sequence numbers) is the peer's and not this thread's scheduling. Nothing is allocated per
//! packet: one send buffer, one receive buffer and a fixed histogram.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One RTP packet's spacing: 20 ms.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Header (12) plus 160 µ-law samples.
const PACKET_LEN: usize = 172;
/// Histogram bucket width for the pacing error.
const BUCKET_NS: u64 = 10_000;
/// Errors at or above this go into the last bucket.
const HISTOGRAM_BUCKETS: usize = 20_000;

/// What the simulated callers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerAudio {
    /// µ-law digital silence: vaani's VAD gate skips the network (a listening caller).
    #[default]
    Silence,
    /// Gaussian white noise at −30 dBFS RMS: above the VAD gate, so the network runs on every
    /// frame as it does while a caller talks.
    Noise,
}

/// Distinct noise payloads the generator cycles through.
const NOISE_PAYLOADS: usize = 50;

/// `NOISE_PAYLOADS` × 160 µ-law bytes of white noise at about −30 dBFS RMS (seeded: the
/// same on every run).
fn noise_payloads() -> Vec<[u8; PACKET_LEN - 12]> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    // Sum of four uniforms: near-Gaussian with variance 4/12; scale to RMS 1036 (−30 dBFS).
    let scale = 1036.0 / (4.0f64 / 12.0).sqrt();
    (0..NOISE_PAYLOADS)
        .map(|_| {
            let mut payload = [0u8; PACKET_LEN - 12];
            for byte in &mut payload {
                let sample = (uniform() + uniform() + uniform() + uniform() - 2.0) * scale;
                *byte = vaani_media::g711::linear_to_ulaw(sample as i16);
            }
            payload
        })
        .collect()
}

/// Why the generator could not start.
#[derive(Debug)]
pub enum LoadError {
    /// Binding or configuring a socket failed.
    Socket(std::io::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Socket(error) => write!(f, "RTP load socket: {error}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Distribution of |inter-arrival − 20 ms| in 10 µs buckets (200 ms and more in the last).
#[derive(Clone)]
pub struct PacingHistogram {
    buckets: Vec<u64>,
    count: u64,
    max_ns: u64,
}

impl Default for PacingHistogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; HISTOGRAM_BUCKETS],
            count: 0,
            max_ns: 0,
        }
    }
}

impl std::fmt::Debug for PacingHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacingHistogram")
            .field("count", &self.count)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

impl PacingHistogram {
    /// Records one error, nanoseconds.
    pub fn record(&mut self, error_ns: u64) {
        let bucket = ((error_ns / BUCKET_NS) as usize).min(HISTOGRAM_BUCKETS - 1);
        self.buckets[bucket] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(error_ns);
    }

    /// Number of recorded intervals.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (upper edge of its bucket); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos((index as u64 + 1) * BUCKET_NS);
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    /// The largest recorded error.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = 0);
        self.count = 0;
        self.max_ns = 0;
    }
}

/// What the generator counted, since start ([`RtpLoadGenerator::totals`]) or over a measuring
/// window ([`RtpLoadGenerator::take_window`]).
#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Packets sent to the peers.
    pub sent: u64,
    /// Packets received from the peers.
    pub received: u64,
    /// Packets missing from the peers' sequence numbers (outbound loss as the caller sees it).
    pub gaps: u64,
    /// Packets that arrived with an older sequence number than one already seen.
    pub reordered: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Ticks that started more than 5 ms late (the generator itself was short of CPU).
    pub late_ticks: u64,
    /// Ticks run.
    pub ticks: u64,
    /// |inter-arrival − 20 ms| of consecutive packets from the peers.
    pub pacing: PacingHistogram,
}

/// One call's socket and sequence state.
struct Endpoint {
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    last_sequence: Option<u16>,
    last_arrival_ns: i64,
}

struct Control {
    sending: bool,
    measuring: bool,
    window: LoadStats,
    totals: LoadStats,
    peers_known: usize,
}

/// The load generator: one socket per call, one thread, one 20 ms ticker. Stops on drop.
pub struct RtpLoadGenerator {
    ports: Vec<u16>,
    control: Arc<Mutex<Control>>,
    stop: Arc<AtomicBool>,
    thread_id: Arc<AtomicI32>,
    thread: Option<JoinHandle<()>>,
}

impl RtpLoadGenerator {
    /// Binds one socket per entry of `peers` on 127.0.0.1 and starts sending as soon as each
    /// peer is known (`None`: learnt from the first packet that arrives on that socket).
    /// Sending starts enabled; measuring starts disabled.
    pub fn start(peers: &[Option<SocketAddr>], audio: CallerAudio) -> Result<Self, LoadError> {
        let mut endpoints = Vec::with_capacity(peers.len());
        let mut ports = Vec::with_capacity(peers.len());
        for (index, peer) in peers.iter().enumerate() {
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(LoadError::Socket)?;
            socket.set_nonblocking(true).map_err(LoadError::Socket)?;
            enable_timestamps(&socket).map_err(LoadError::Socket)?;
            ports.push(socket.local_addr().map_err(LoadError::Socket)?.port());
            endpoints.push(Endpoint {
                socket,
                peer: *peer,
                sequence: (index as u16).wrapping_mul(7919),
                timestamp: (index as u32).wrapping_mul(104_729),
                ssrc: 0x5EED_0000 ^ index as u32,
                last_sequence: None,
                last_arrival_ns: 0,
            });
        }
        let control = Arc::new(Mutex::new(Control {
            sending: true,
            measuring: false,
            window: LoadStats::default(),
            totals: LoadStats::default(),
            peers_known: peers.iter().filter(|p| p.is_some()).count(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_id = Arc::new(AtomicI32::new(0));
        let thread = {
            let control = control.clone();
            let stop = stop.clone();
            let thread_id = thread_id.clone();
            std::thread::Builder::new()
                .name("rtp-load".to_string())
                .spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    thread_id.store(unsafe { libc::gettid() }, Ordering::Release);
                    run(endpoints, audio, &control, &stop);
                })
                .map_err(LoadError::Socket)?
        };
        Ok(Self {
            ports,
            control,
            stop,
            thread_id,
            thread: Some(thread),
        })
    }

    /// The local port of each call's socket, in the order the peers were given (what a SIP
    /// offer for that call advertises).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The generator thread's id (for its CPU time in `/proc/self/task`); 0 until it runs.
    pub fn thread_id(&self) -> i32 {
        self.thread_id.load(Ordering::Acquire)
    }

    /// How many calls have a known peer (given, or learnt from a packet).
    pub fn peers_known(&self) -> usize {
        self.lock().peers_known
    }

    /// Starts or stops sending (receiving goes on).
    pub fn set_sending(&self, sending: bool) {
        self.lock().sending = sending;
    }

    /// Starts a measuring window (clears the previous one).
    pub fn start_window(&self) {
        let mut control = self.lock();
        control.window.pacing.clear();
        let pacing = std::mem::take(&mut control.window.pacing);
        control.window = LoadStats {
            pacing,
            ..LoadStats::default()
        };
        control.measuring = true;
    }

    /// Ends the measuring window and returns what it counted.
    pub fn take_window(&self) -> LoadStats {
        let mut control = self.lock();
        control.measuring = false;
        control.window.clone()
    }

    /// Everything counted since start (pacing is only kept for windows).
    pub fn totals(&self) -> LoadStats {
        self.lock().totals.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for RtpLoadGenerator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn enable_timestamps(socket: &UdpSocket) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One datagram read with its kernel arrival time (ns, CLOCK_REALTIME) and IPv4 source.
fn receive(socket: &UdpSocket, buffer: &mut [u8]) -> Option<(usize, i64, Option<SocketAddr>)> {
    // SAFETY: every pointer in `message` points at a live local of the size given; the kernel
    // writes at most those sizes; control messages are walked with the libc CMSG macros.
    unsafe {
        let mut source: libc::sockaddr_in = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        let mut control = [0u64; 16];
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_name = (&mut source as *mut libc::sockaddr_in).cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_DONTWAIT);
        if n < 0 {
            return None;
        }
        let mut arrival_ns = 0i64;
        let mut cmsg = libc::CMSG_FIRSTHDR(&message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let stamp: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                arrival_ns = stamp.tv_sec * 1_000_000_000 + stamp.tv_nsec;
            }
            cmsg = libc::CMSG_NXTHDR(&message, cmsg);
        }
        let peer = (i32::from(source.sin_family) == libc::AF_INET).then(|| {
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(source.sin_addr.s_addr)),
                u16::from_be(source.sin_port),
            ))
        });
        Some((n as usize, arrival_ns, peer))
    }
}

fn run(
    mut endpoints: Vec<Endpoint>,
    audio: CallerAudio,
    control: &Mutex<Control>,
    stop: &AtomicBool,
) {
    let mut packet = [0xFFu8; PACKET_LEN]; // µ-law digital silence after the header
    packet[0] = 0x80; // V=2
    packet[1] = 0; // PT 0 (PCMU)
    let noise = match audio {
        CallerAudio::Silence => Vec::new(),
        CallerAudio::Noise => noise_payloads(),
    };
    let mut tick_count = 0usize;
    let mut buffer = [0u8; 2048];
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        }
        let late = Instant::now().saturating_duration_since(next_tick) > Duration::from_millis(5);
        next_tick += PACKET_INTERVAL;
        if Instant::now() > next_tick + PACKET_INTERVAL * 5 {
            next_tick = Instant::now() + PACKET_INTERVAL;
        }
        let mut guard = control.lock().unwrap_or_else(|e| e.into_inner());
        let c = &mut *guard;
        c.totals.ticks += 1;
        c.totals.late_ticks += u64::from(late);
        if c.measuring {
            c.window.ticks += 1;
            c.window.late_ticks += u64::from(late);
        }
        tick_count = tick_count.wrapping_add(1);
        for (index, endpoint) in endpoints.iter_mut().enumerate() {
            while let Some((len, arrival_ns, source)) = receive(&endpoint.socket, &mut buffer) {
                if endpoint.peer.is_none()
                    && let Some(source) = source
                {
                    endpoint.peer = Some(source);
                    c.peers_known += 1;
                }
                if len < 12 || buffer[0] >> 6 != 2 {
                    continue;
                }
                let sequence = u16::from_be_bytes([buffer[2], buffer[3]]);
                c.totals.received += 1;
                if c.measuring {
                    c.window.received += 1;
                }
                if let Some(last) = endpoint.last_sequence {
                    let ahead = sequence.wrapping_sub(last);
                    if ahead == 0 || ahead >= 0x8000 {
                        c.totals.reordered += 1;
                        if c.measuring {
                            c.window.reordered += 1;
                        }
                        continue;
                    }
                    let missing = u64::from(ahead - 1);
                    c.totals.gaps += missing;
                    if c.measuring {
                        c.window.gaps += missing;
                        if missing == 0 && arrival_ns > 0 && endpoint.last_arrival_ns > 0 {
                            let interval = arrival_ns - endpoint.last_arrival_ns;
                            let error =
                                (interval - PACKET_INTERVAL.as_nanos() as i64).unsigned_abs();
                            c.window.pacing.record(error);
                        }
                    }
                }
                endpoint.last_sequence = Some(sequence);
                endpoint.last_arrival_ns = arrival_ns;
            }
            if !c.sending {
                continue;
            }
            let Some(peer) = endpoint.peer else {
                continue;
            };
            if !noise.is_empty() {
                packet[12..].copy_from_slice(&noise[(tick_count + index) % noise.len()]);
            }
            packet[2..4].copy_from_slice(&endpoint.sequence.to_be_bytes());
            packet[4..8].copy_from_slice(&endpoint.timestamp.to_be_bytes());
            packet[8..12].copy_from_slice(&endpoint.ssrc.to_be_bytes());
            endpoint.sequence = endpoint.sequence.wrapping_add(1);
            endpoint.timestamp = endpoint.timestamp.wrapping_add(160);
            match endpoint.socket.send_to(&packet, peer) {
                Ok(_) => {
                    c.totals.sent += 1;
                    if c.measuring {
                        c.window.sent += 1;
                    }
                }
                Err(_) => {
                    c.totals.send_errors += 1;
                    if c.measuring {
                        c.window.send_errors += 1;
                    }
                }
            }
        }
    }
}

/// A UDP echo that stands for the physical floor: `shards` threads, each owning a share of the
/// sockets, and each 20 ms tick reading everything that arrived on each of its sockets and
/// sending it straight back — the same socket pattern as vaani's media engine, without any
/// media processing. Stops on drop.
pub struct UdpEcho {
    addresses: Vec<SocketAddr>,
    thread_ids: Vec<Arc<AtomicI32>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpEcho {
    /// Binds `count` sockets on 127.0.0.1 and starts `shards` echo threads.
    pub fn start(count: usize, shards: usize) -> Result<Self, LoadError> {
        let shards = shards.max(1);
        let mut groups: Vec<Vec<UdpSocket>> = (0..shards).map(|_| Vec::new()).collect();
        let mut addresses = Vec::with_capacity(count);
        for index in 0..count {
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(LoadError::Socket)?;
            socket.set_nonblocking(true).map_err(LoadError::Socket)?;
            addresses.push(socket.local_addr().map_err(LoadError::Socket)?);
            groups[index % shards].push(socket);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut thread_ids = Vec::new();
        let mut threads = Vec::new();
        for group in groups {
            let stop = stop.clone();
            let thread_id = Arc::new(AtomicI32::new(0));
            thread_ids.push(thread_id.clone());
            let thread = std::thread::Builder::new()
                .name("udp-echo".to_string())
                .spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    thread_id.store(unsafe { libc::gettid() }, Ordering::Release);
                    echo_loop(&group, &stop);
                })
                .map_err(LoadError::Socket)?;
            threads.push(thread);
        }
        Ok(Self {
            addresses,
            thread_ids,
            stop,
            threads,
        })
    }

    /// Where each socket listens.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// CPU time the echo threads have used so far.
    pub fn cpu(&self) -> Duration {
        self.thread_ids
            .iter()
            .filter_map(|tid| crate::procstat::own_thread_cpu(tid.load(Ordering::Acquire)).ok())
            .sum()
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn echo_loop(sockets: &[UdpSocket], stop: &AtomicBool) {
    let mut buffer = [0u8; 2048];
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        }
        next_tick += PACKET_INTERVAL;
        for socket in sockets {
            while let Ok((n, source)) = socket.recv_from(&mut buffer) {
                let _ = socket.send_to(&buffer[..n], source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_upper_edges() {
        let mut histogram = PacingHistogram::default();
        for _ in 0..98 {
            histogram.record(15_000); // 15 µs -> bucket 1 (10-20 µs)
        }
        histogram.record(3_000_000);
        histogram.record(500_000_000); // beyond the last bucket
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.quantile(0.5), Duration::from_micros(20));
        assert_eq!(histogram.quantile(0.99), Duration::from_micros(3010));
        assert_eq!(histogram.quantile(1.0), Duration::from_millis(200));
        assert_eq!(histogram.max(), Duration::from_millis(500));
    }

    #[test]
    fn noise_payloads_are_minus_30_dbfs_and_above_the_vad_gate() {
        let payloads = noise_payloads();
        assert_eq!(payloads.len(), NOISE_PAYLOADS);
        let samples: Vec<i16> = payloads
            .iter()
            .flatten()
            .map(|&b| vaani_media::g711::Law::Mu.decode_sample(b))
            .collect();
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / samples.len() as f64)
            .sqrt();
        let dbfs = 20.0 * (rms / 32768.0).log10();
        assert!((-31.5..=-28.5).contains(&dbfs), "{dbfs:.1} dBFS");
        for payload in &payloads {
            let peak = payload
                .iter()
                .map(|&b| vaani_media::g711::Law::Mu.decode_sample(b).unsigned_abs())
                .max()
                .unwrap();
            assert!(
                peak > vaani_media::vad::SILENCE_PEAK as u16 * 4,
                "peak {peak}"
            );
        }
        assert_ne!(payloads[0], payloads[1]);
    }

    #[test]
    fn generator_counts_an_echo_without_loss() {
        let echo = UdpEcho::start(3, 2).unwrap();
        let peers: Vec<Option<SocketAddr>> = echo.addresses().iter().copied().map(Some).collect();
        let generator = RtpLoadGenerator::start(&peers, CallerAudio::Silence).unwrap();
        assert_eq!(generator.ports().len(), 3);
        assert_eq!(generator.peers_known(), 3);
        generator.start_window();
        std::thread::sleep(Duration::from_millis(400));
        generator.set_sending(false);
        std::thread::sleep(Duration::from_millis(150));
        let window = generator.take_window();
        let totals = generator.totals();
        assert!(window.sent >= 3 * 5, "sent {}", window.sent);
        assert_eq!(totals.received, totals.sent, "{totals:?}");
        assert_eq!(totals.gaps, 0);
        assert!(window.pacing.count() > 0);
        assert!(generator.thread_id() > 0);
    }

    #[test]
    fn generator_learns_an_unknown_peer_from_its_first_packet() {
        let generator = RtpLoadGenerator::start(&[None], CallerAudio::Noise).unwrap();
        assert_eq!(generator.peers_known(), 0);
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rtp = [0u8; 172];
        rtp[0] = 0x80;
        peer.send_to(&rtp, ("127.0.0.1", generator.ports()[0]))
            .unwrap();
        let mut buffer = [0u8; 2048];
        let (n, _) = peer
            .recv_from(&mut buffer)
            .expect("the generator answers the peer");
        assert_eq!(n, 172);
        assert_eq!(buffer[1] & 0x7f, 0, "PCMU");
        assert_eq!(generator.peers_known(), 1);
    }
}
