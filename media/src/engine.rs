//! The media socket engine: N shard threads, each owning the UDP sockets and
//! [`MediaSession`]s of its calls and ONE 20 ms ticker (not a timer per call).
//!
//! Every tick a shard applies queued commands, then for each session drains its socket with
//! non-blocking `recv_from` into one reused buffer, feeds the session, sends the session's
//! outbound packets from the same socket (the port advertised in SDP — symmetric RTP) and
//! delivers its events to the call over a bounded tokio channel. Shards are plain std threads,
//! so media never shares a runtime with SIP or plugins, and they never block on a call: a full
//! event channel drops speech events and recording batches (counted) and keeps DTMF/playback/barge-in/timeout events
//! and utterances in a per-session backlog until the call catches up. Utterance audio is
//! bounded per call: at most [`UTTERANCES_IN_CHANNEL`] unread in the channel plus
//! [`UTTERANCE_BACKLOG_LIMIT`] in the backlog; beyond that the oldest waiting utterance is
//! dropped (counted in `events_dropped`), so a stuck call cannot make the shard hoard audio.
//!
//! Two sessions can be bridged ([`SessionHandle::bridge`], see [`crate::bridge`]): each
//! direction is a bounded channel of 20 ms frames ([`BRIDGE_CHANNEL_FRAMES`]) between the
//! sessions' shards, which may be different threads. Each tick a bridged session first takes
//! the frames the other leg sent, then runs as usual, then sends the frames its own caller's
//! audio produced. Either side ending the bridge (unbridge, closing, a new bridge) shows in a
//! flag both sides share; the other side ends its half on its next tick.
//!
//! RTP ports come in pairs (even RTP port, odd RTCP port) from a configured range, both bound
//! on a configured address before the SDP answer is sent ([`MediaEngine::allocate_port`]), and
//! released when the session closes. Each tick also drains the session's RTCP socket (the
//! arrival time of each report is read right then: it is part of the round-trip time) and
//! sends the session's RTCP report, when one is due, from it.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::bridge::{BridgeFrame, UnbridgeReason};
use crate::dtmf::{DtmfError, MAX_QUEUED_DIGITS};
use crate::error::MediaError;
use crate::session::{MediaEvent, MediaSession, MediaStats, PTIME, SessionConfig};
use crate::vad::Vad;

/// Capacity of each session's event channel to its call.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;
/// Capacity of each shard's command queue.
const COMMAND_QUEUE_CAPACITY: usize = 4096;
/// Undeliverable must-keep events held per session before they are dropped too.
const EVENT_BACKLOG_LIMIT: usize = 1024;
/// Utterances a call may have sent to it and not yet read; further ones wait in the backlog.
pub const UTTERANCES_IN_CHANNEL: usize = 2;
/// Utterances held in a session's backlog; when another arrives the oldest one is dropped.
pub const UTTERANCE_BACKLOG_LIMIT: usize = 2;
/// Datagrams read from one socket per tick at most (fairness between calls).
const MAX_RECV_PER_TICK: usize = 64;
/// Receive buffer size (larger than any sane RTP datagram; longer ones are truncated).
const RECV_BUFFER: usize = 2048;
/// 20 ms frames in flight per direction between two bridged sessions. One crosses per tick;
/// the rest is slack for shards whose ticks drift apart. When the other shard does not keep
/// up, newer frames are dropped (counted in `bridge_frames_dropped`).
pub const BRIDGE_CHANNEL_FRAMES: usize = 4;

/// Where and how the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Address RTP sockets are bound on.
    pub bind_ip: IpAddr,
    /// Inclusive port range; RTP uses its even ports, RTCP the following odd port.
    pub port_range: (u16, u16),
    /// Number of shard threads (0 = number of CPU cores).
    pub shards: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_range: (10000, 20000),
            shards: 0,
        }
    }
}

/// One shard's counters for metrics (each shard has its own, on its own cache lines, so the
/// shards never write the same line; the engine sums them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    packets_lost: AtomicU64,
    packets_late: AtomicU64,
    send_errors: AtomicU64,
    events_dropped: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
}

/// A snapshot of the engine-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Datagrams received on RTP sockets.
    pub packets_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Caller packets declared lost by the jitter buffers.
    pub packets_lost: u64,
    /// Caller packets that arrived after their deadline.
    pub packets_late: u64,
    /// `send_to` failures.
    pub send_errors: u64,
    /// Events dropped because a call did not read them.
    pub events_dropped: u64,
    /// Sessions opened since start.
    pub sessions_opened: u64,
    /// Sessions closed since start.
    pub sessions_closed: u64,
}

/// Reserved and bound RTP port pairs.
#[derive(Debug)]
struct PortPool {
    bind_ip: IpAddr,
    first: u16,
    last: u16,
    first_even: u32,
    pairs: usize,
    state: Mutex<PortPoolState>,
}

#[derive(Debug)]
struct PortPoolState {
    in_use: Vec<bool>,
    cursor: usize,
}

impl PortPool {
    fn new(bind_ip: IpAddr, (first, last): (u16, u16)) -> Result<Self, MediaError> {
        let first_even = (first as u32).div_ceil(2) * 2;
        if first > last || first_even + 1 > last as u32 || first_even == 0 {
            return Err(MediaError::InvalidConfig(format!(
                "RTP port range {first}..={last} holds no even/odd port pair"
            )));
        }
        let pairs = ((last as u32 - first_even - 1) / 2 + 1) as usize;
        Ok(Self {
            bind_ip,
            first,
            last,
            first_even,
            pairs,
            state: Mutex::new(PortPoolState {
                in_use: vec![false; pairs],
                cursor: 0,
            }),
        })
    }

    fn allocate(self: &Arc<Self>) -> Result<PortLease, MediaError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for step in 0..self.pairs {
            let index = (state.cursor + step) % self.pairs;
            if state.in_use[index] {
                continue;
            }
            let port = (self.first_even + 2 * index as u32) as u16;
            let addr = SocketAddr::new(self.bind_ip, port);
            let rtcp_addr = SocketAddr::new(self.bind_ip, port + 1);
            let (Ok(socket), Ok(rtcp_socket)) = (UdpSocket::bind(addr), UdpSocket::bind(rtcp_addr))
            else {
                continue; // either port is taken by someone else; try the next pair
            };
            for (socket, addr) in [(&socket, addr), (&rtcp_socket, rtcp_addr)] {
                socket
                    .set_nonblocking(true)
                    .map_err(|source| MediaError::Io {
                        context: "set RTP/RTCP socket non-blocking",
                        addr: Some(addr),
                        source,
                    })?;
            }
            state.in_use[index] = true;
            state.cursor = (index + 1) % self.pairs;
            return Ok(PortLease {
                port,
                socket: Some(socket),
                rtcp_socket: Some(rtcp_socket),
                pool: Arc::clone(self),
            });
        }
        Err(MediaError::NoFreePort {
            bind: self.bind_ip,
            first: self.first,
            last: self.last,
        })
    }

    fn release(&self, port: u16) {
        let index = ((port as u32).saturating_sub(self.first_even) / 2) as usize;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = state.in_use.get_mut(index) {
            *slot = false;
        }
    }
}

/// A reserved RTP port pair with its bound RTP and RTCP sockets. Put `port()` in the SDP
/// answer, then hand the lease to [`MediaEngine::open_session`]. Dropping it releases the
/// ports.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    socket: Option<UdpSocket>,
    rtcp_socket: Option<UdpSocket>,
    pool: Arc<PortPool>,
}

impl PortLease {
    /// The RTP port (even); RTCP is `port() + 1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound local address.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pool.bind_ip, self.port)
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        // Close the sockets before the ports become allocatable again.
        self.socket.take();
        self.rtcp_socket.take();
        self.pool.release(self.port);
    }
}

/// State a call and its shard share.
#[derive(Debug, Default)]
struct SessionShared {
    closed: AtomicBool,
    stats: Mutex<MediaStats>,
    /// Utterances in the event channel not yet received by the call.
    utterances_in_channel: AtomicUsize,
    /// DTMF digits accepted by the handle and not yet sent by the shard (bounds the session's
    /// queue without a round trip).
    dtmf_pending: AtomicUsize,
}

enum Command {
    Open {
        id: u64,
        lease: PortLease,
        config: Box<SessionConfig>,
        vad: Box<dyn Vad>,
        events: mpsc::Sender<MediaEvent>,
        shared: Arc<SessionShared>,
    },
    Enqueue {
        id: u64,
        item: u64,
        pcm: Arc<[i16]>,
        interruptible: bool,
    },
    Flush {
        id: u64,
        item: Option<u64>,
    },
    SetRemote {
        id: u64,
        remote: Option<SocketAddr>,
    },
    SetDirection {
        id: u64,
        sending: bool,
        receiving: bool,
    },
    SetSrtp {
        id: u64,
        keys: Option<Box<crate::srtp::SrtpKeys>>,
    },
    SendDtmf {
        id: u64,
        /// Validated digits.
        digits: Box<str>,
    },
    Bridge {
        id: u64,
        end: BridgeEnd,
    },
    Unbridge {
        id: u64,
    },
}

/// The bridge is up.
const LINK_LIVE: u8 = 0;
/// One side ended it (unbridge, or bridged elsewhere).
const LINK_UNBRIDGED: u8 = 1;
/// One side's session was closed (or the bridge command never reached it).
const LINK_CLOSED: u8 = 2;

/// What the two sides of one bridge share: whether, and how, it ended.
#[derive(Debug, Default)]
struct BridgeLink {
    state: AtomicU8,
}

impl BridgeLink {
    /// Ends the link the way `how` says, unless it already ended.
    fn end(&self, how: u8) {
        let _ = self
            .state
            .compare_exchange(LINK_LIVE, how, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Why the other side ended it, if it did.
    fn ended_by_peer(&self) -> Option<UnbridgeReason> {
        match self.state.load(Ordering::Acquire) {
            LINK_LIVE => None,
            LINK_UNBRIDGED => Some(UnbridgeReason::PeerUnbridged),
            _ => Some(UnbridgeReason::PeerClosed),
        }
    }
}

/// One session's half of a bridge. Dropping it without [`BridgeEnd::unbridge`] (the session
/// closed, or the command found no session) tells the other side the session is gone.
struct BridgeEnd {
    link: Arc<BridgeLink>,
    to_peer: SyncSender<BridgeFrame>,
    from_peer: Receiver<BridgeFrame>,
}

impl BridgeEnd {
    /// A linked pair of halves.
    fn pair() -> (BridgeEnd, BridgeEnd) {
        let link = Arc::new(BridgeLink::default());
        let (a_to_b, b_from_a) = sync_channel(BRIDGE_CHANNEL_FRAMES);
        let (b_to_a, a_from_b) = sync_channel(BRIDGE_CHANNEL_FRAMES);
        (
            BridgeEnd {
                link: Arc::clone(&link),
                to_peer: a_to_b,
                from_peer: a_from_b,
            },
            BridgeEnd {
                link,
                to_peer: b_to_a,
                from_peer: b_from_a,
            },
        )
    }

    /// After the session's tick: sends the frames its received audio produced to the other
    /// leg; returns how many could not be sent.
    fn send_frames(&self, session: &mut MediaSession) -> u64 {
        let mut dropped = 0;
        while let Some(frame) = session.take_bridge_frame() {
            if self.to_peer.try_send(frame).is_err() {
                // Full: the other shard is behind (it keeps the newest it has). Disconnected:
                // it ended, which this side sees on its next tick.
                dropped += 1;
            }
        }
        dropped
    }

    /// Ends the bridge on request (the other side sees `PeerUnbridged`).
    fn unbridge(self) {
        self.link.end(LINK_UNBRIDGED);
    }
}

impl Drop for BridgeEnd {
    fn drop(&mut self) {
        self.link.end(LINK_CLOSED);
    }
}

struct ShardHandle {
    commands: SyncSender<Command>,
    load: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct EngineInner {
    shards: Vec<ShardHandle>,
    ports: Arc<PortPool>,
    active: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    next_id: AtomicU64,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for shard in &self.shards {
            let handle = shard.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(handle) = handle {
                let _ = handle.join();
            }
        }
    }
}

/// The sharded media engine. Cheap to clone (shared); `Send + Sync`. The shard threads stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("shards", &self.inner.shards.len())
            .field("active_sessions", &self.active_sessions())
            .finish()
    }
}

impl MediaEngine {
    /// Validates the configuration and starts the shard threads.
    pub fn start(config: EngineConfig) -> Result<MediaEngine, MediaError> {
        let ports = Arc::new(PortPool::new(config.bind_ip, config.port_range)?);
        let shard_count = if config.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.shards
        };
        let active = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut shards = Vec::with_capacity(shard_count);
        for index in 0..shard_count {
            let (tx, rx) = sync_channel(COMMAND_QUEUE_CAPACITY);
            let load = Arc::new(AtomicUsize::new(0));
            let counters = Arc::new(Counters::default());
            let shard = Shard {
                commands: rx,
                sessions: Vec::new(),
                load: Arc::clone(&load),
                active: Arc::clone(&active),
                counters: Arc::clone(&counters),
                stop: Arc::clone(&stop),
            };
            let thread = std::thread::Builder::new()
                .name(format!("vaani-media-{index}"))
                .spawn(move || shard.run())
                .map_err(MediaError::Thread)?;
            shards.push(ShardHandle {
                commands: tx,
                load,
                counters,
                thread: Mutex::new(Some(thread)),
            });
        }
        tracing::info!(shards = shard_count, bind = %config.bind_ip, range = ?config.port_range, "media engine started");
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                shards,
                ports,
                active,
                stop,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// Reserves an RTP port pair and binds its RTP socket (do this before the SDP answer).
    pub fn allocate_port(&self) -> Result<PortLease, MediaError> {
        self.inner.ports.allocate()
    }

    /// Starts media on a reserved port. The session's outbound clock starts on its shard's
    /// next tick.
    pub fn open_session(
        &self,
        lease: PortLease,
        config: SessionConfig,
        vad: Box<dyn Vad>,
    ) -> Result<SessionHandle, MediaError> {
        let shard_index = self
            .inner
            .shards
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.load.load(Ordering::Relaxed))
            .map(|(i, _)| i)
            .ok_or(MediaError::Closed)?;
        let shard = &self.inner.shards[shard_index];
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let port = lease.port();
        let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let shared = Arc::new(SessionShared::default());
        let dtmf_negotiated = config.dtmf_payload_type.is_some();
        let command = Command::Open {
            id,
            lease,
            config: Box::new(config),
            vad,
            events: events_tx,
            shared: Arc::clone(&shared),
        };
        shard.commands.try_send(command).map_err(command_error)?;
        shard.load.fetch_add(1, Ordering::Relaxed);
        self.inner.active.fetch_add(1, Ordering::Relaxed);
        shard
            .counters
            .sessions_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(SessionHandle {
            port,
            id,
            dtmf_negotiated,
            commands: shard.commands.clone(),
            events: events_rx,
            shared,
        })
    }

    /// Sessions opened and not yet removed by their shard.
    pub fn active_sessions(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Engine-wide counters.
    pub fn counters(&self) -> EngineCounters {
        let mut total = EngineCounters::default();
        for shard in &self.inner.shards {
            let c = &shard.counters;
            total.packets_in += c.packets_in.load(Ordering::Relaxed);
            total.packets_out += c.packets_out.load(Ordering::Relaxed);
            total.bytes_in += c.bytes_in.load(Ordering::Relaxed);
            total.bytes_out += c.bytes_out.load(Ordering::Relaxed);
            total.packets_lost += c.packets_lost.load(Ordering::Relaxed);
            total.packets_late += c.packets_late.load(Ordering::Relaxed);
            total.send_errors += c.send_errors.load(Ordering::Relaxed);
            total.events_dropped += c.events_dropped.load(Ordering::Relaxed);
            total.sessions_opened += c.sessions_opened.load(Ordering::Relaxed);
            total.sessions_closed += c.sessions_closed.load(Ordering::Relaxed);
        }
        total
    }
}

fn command_error<T>(e: TrySendError<T>) -> MediaError {
    match e {
        TrySendError::Full(_) => MediaError::Busy,
        TrySendError::Disconnected(_) => MediaError::Closed,
    }
}

/// The call's side of a media session. Dropping it (or [`close`](Self::close)) ends the
/// session and releases its port at the shard's next tick.
#[derive(Debug)]
pub struct SessionHandle {
    /// The local RTP port (as advertised in SDP).
    pub port: u16,
    id: u64,
    /// The session has a telephone-event payload type to send DTMF with.
    dtmf_negotiated: bool,
    commands: SyncSender<Command>,
    events: mpsc::Receiver<MediaEvent>,
    shared: Arc<SessionShared>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Open { id, .. } => write!(f, "Open({id})"),
            Command::Enqueue { id, item, .. } => write!(f, "Enqueue({id}, {item})"),
            Command::Flush { id, item } => write!(f, "Flush({id}, {item:?})"),
            Command::SetRemote { id, remote } => write!(f, "SetRemote({id}, {remote:?})"),
            Command::SetDirection {
                id,
                sending,
                receiving,
            } => write!(f, "SetDirection({id}, send {sending}, receive {receiving})"),
            Command::SetSrtp { id, keys } => {
                write!(f, "SetSrtp({id}, {:?})", keys.as_ref().map(|k| k.suite))
            }
            Command::SendDtmf { id, digits } => write!(f, "SendDtmf({id}, {digits:?})"),
            Command::Bridge { id, .. } => write!(f, "Bridge({id})"),
            Command::Unbridge { id } => write!(f, "Unbridge({id})"),
        }
    }
}

impl SessionHandle {
    fn send(&self, command: Command) -> Result<(), MediaError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(MediaError::Closed);
        }
        self.commands.try_send(command).map_err(command_error)
    }

    /// Queues 8 kHz PCM to play; `interruptible` items are cut by caller speech (barge-in).
    pub fn enqueue(
        &self,
        id: u64,
        pcm8k: Arc<[i16]>,
        interruptible: bool,
    ) -> Result<(), MediaError> {
        self.send(Command::Enqueue {
            id: self.id,
            item: id,
            pcm: pcm8k,
            interruptible,
        })
    }

    /// Stops item `id`, or everything queued when `None`.
    pub fn flush(&self, id: Option<u64>) -> Result<(), MediaError> {
        self.send(Command::Flush {
            id: self.id,
            item: id,
        })
    }

    /// Changes where RTP goes (re-INVITE); `None` latches to the next RTP source.
    pub fn set_remote(&self, remote: Option<SocketAddr>) -> Result<(), MediaError> {
        self.send(Command::SetRemote {
            id: self.id,
            remote,
        })
    }

    /// Applies the SDP direction after a re-offer (hold: nothing sent; see
    /// [`MediaSession::set_direction`](crate::MediaSession::set_direction)).
    pub fn set_direction(&self, sending: bool, receiving: bool) -> Result<(), MediaError> {
        self.send(Command::SetDirection {
            id: self.id,
            sending,
            receiving,
        })
    }

    /// Replaces the SRTP keys after a re-offer that changed the `a=crypto` lines, or turns
    /// SRTP off with `None` (see
    /// [`MediaSession::set_srtp`](crate::MediaSession::set_srtp)).
    pub fn set_srtp(&self, keys: Option<crate::srtp::SrtpKeys>) -> Result<(), MediaError> {
        self.send(Command::SetSrtp {
            id: self.id,
            keys: keys.map(Box::new),
        })
    }

    /// Queues DTMF `digits` to send as RFC 4733 telephone-events (see
    /// [`MediaSession::send_dtmf`](crate::MediaSession::send_dtmf)); the call gets
    /// [`MediaEvent::DtmfSent`] once every queued digit has gone out. The digits are checked
    /// here, so a bad request fails at once with [`MediaError::Dtmf`] (no telephone-event
    /// payload type negotiated, a character that is not a key, or more than
    /// [`MAX_QUEUED_DIGITS`] digits not yet sent); nothing is queued then. Also
    /// [`MediaError::Busy`] / [`MediaError::Closed`] like every command.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(MediaError::Closed);
        }
        if !self.dtmf_negotiated {
            return Err(DtmfError::NotNegotiated.into());
        }
        let requested = crate::dtmf::sender::parse_digits(digits)?.len();
        if requested == 0 {
            return Ok(());
        }
        let pending = &self.shared.dtmf_pending;
        pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued + requested <= MAX_QUEUED_DIGITS).then_some(queued + requested)
            })
            .map_err(|queued| DtmfError::QueueFull {
                pending: queued,
                requested,
                max: MAX_QUEUED_DIGITS,
            })?;
        let command = Command::SendDtmf {
            id: self.id,
            digits: digits.into(),
        };
        self.send(command).inspect_err(|_| {
            pending.fetch_sub(requested, Ordering::AcqRel);
        })
    }

    /// Bridges this session and `other` (a bridged transfer, see [`crate::bridge`]): each
    /// sends the audio the other receives, converting between their G.711 laws, each with its
    /// own SRTP keys, with at most one 20 ms tick of delay beyond the jitter buffer. Both
    /// playback queues are held meanwhile (not flushed); speech, utterance and DTMF events keep
    /// coming; DTMF can still be sent; hold ([`set_direction`](Self::set_direction)) works as
    /// usual. The two sessions may be on different shards (or engines).
    ///
    /// Each session reports [`MediaEvent::Bridged`] when its shard starts its half, and later
    /// exactly one [`MediaEvent::Unbridged`]: `Requested` on the side that called
    /// [`unbridge`](Self::unbridge) (or was bridged elsewhere), `PeerUnbridged` /
    /// `PeerClosed` on the other side within a tick. Closing either session ends the bridge;
    /// the other goes back to its own playback. A session already bridged is unbridged from
    /// its previous peer first.
    ///
    /// Errors: [`MediaError::BridgeToSelf`]; [`MediaError::Closed`] if either session is
    /// closed; [`MediaError::Busy`] if a shard's command queue is full. Nothing is bridged
    /// then — except that if only `other`'s command failed, this session may already have
    /// started, and it then reports `Unbridged { reason: PeerClosed }` at once.
    pub fn bridge(&self, other: &SessionHandle) -> Result<(), MediaError> {
        if Arc::ptr_eq(&self.shared, &other.shared) {
            return Err(MediaError::BridgeToSelf);
        }
        if other.shared.closed.load(Ordering::Acquire) {
            return Err(MediaError::Closed);
        }
        let (ours, theirs) = BridgeEnd::pair();
        // A command that fails is dropped with its half: the other half then ends as closed.
        self.send(Command::Bridge {
            id: self.id,
            end: ours,
        })?;
        other.send(Command::Bridge {
            id: other.id,
            end: theirs,
        })
    }

    /// Ends this session's bridge, if any: it reports `Unbridged { reason: Requested }` and
    /// its peer `Unbridged { reason: PeerUnbridged }`; both go back to their own playback,
    /// which resumes where it stopped. Errors only like every command (`Busy`, `Closed`).
    pub fn unbridge(&self) -> Result<(), MediaError> {
        self.send(Command::Unbridge { id: self.id })
    }

    /// Next event; `None` once the session has been removed. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        let event = self.events.recv().await;
        self.received(event)
    }

    /// Next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<MediaEvent> {
        let event = self.events.try_recv().ok();
        self.received(event)
    }

    fn received(&self, event: Option<MediaEvent>) -> Option<MediaEvent> {
        if let Some(MediaEvent::Utterance { .. }) = &event {
            self.shared
                .utterances_in_channel
                .fetch_sub(1, Ordering::AcqRel);
        }
        event
    }

    /// Latest counters (updated by the shard every tick).
    pub fn stats(&self) -> MediaStats {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the session (same as dropping the handle).
    pub fn close(self) {}
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

struct ShardSession {
    id: u64,
    lease: PortLease,
    session: MediaSession,
    outbox: EventOutbox,
    shared: Arc<SessionShared>,
    reported_lost: u64,
    reported_late: u64,
    /// `dtmf_digits_sent` already subtracted from `shared.dtmf_pending`.
    reported_dtmf_sent: u64,
    /// This session's half of a bridge.
    bridge: Option<BridgeEnd>,
    /// Frames for the other leg its channel could not take.
    bridge_send_drops: u64,
}

impl ShardSession {
    /// Starts a bridge over `end`, ending any previous one.
    fn start_bridge(&mut self, end: BridgeEnd) {
        self.end_bridge();
        self.session.start_bridge();
        self.bridge = Some(end);
    }

    /// Ends the bridge on this side's request, if bridged.
    fn end_bridge(&mut self) {
        if let Some(end) = self.bridge.take() {
            end.unbridge();
            self.session.end_bridge(UnbridgeReason::Requested);
        }
    }

    /// Before the session's tick: ends the bridge if the other side did, otherwise hands the
    /// session the frames the other leg sent.
    fn receive_bridge_frames(&mut self) {
        let Some(end) = &self.bridge else {
            return;
        };
        let mut ended = end.link.ended_by_peer();
        if ended.is_none() {
            loop {
                match end.from_peer.try_recv() {
                    Ok(frame) => self.session.push_bridge_frame(&frame),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = Some(UnbridgeReason::PeerClosed);
                        break;
                    }
                }
            }
        }
        if let Some(reason) = ended {
            self.bridge = None;
            self.session.end_bridge(reason);
        }
    }
}

/// Events the call must see even when it is slow to read them (utterances within the limits
/// of [`EventOutbox`]).
fn must_deliver(event: &MediaEvent) -> bool {
    !matches!(
        event,
        MediaEvent::SpeechStarted { .. }
            | MediaEvent::SpeechStopped { .. }
            | MediaEvent::Recorded { .. }
    )
}

fn is_utterance(event: &MediaEvent) -> bool {
    matches!(event, MediaEvent::Utterance { .. })
}

/// Hands one session's events to its call without ever blocking the shard: in order, through
/// the bounded channel, with a backlog for must-deliver events the channel cannot take yet and
/// bounded utterance audio (see the module docs).
struct EventOutbox {
    sender: mpsc::Sender<MediaEvent>,
    backlog: VecDeque<MediaEvent>,
    /// Utterances in `backlog`.
    backlog_utterances: usize,
    /// Events dropped for this session.
    dropped: u64,
}

impl EventOutbox {
    fn new(sender: mpsc::Sender<MediaEvent>) -> Self {
        Self {
            sender,
            backlog: VecDeque::new(),
            backlog_utterances: 0,
            dropped: 0,
        }
    }

    /// Sends the backlog, then every event `next` yields, as far as the call keeps up.
    fn deliver(
        &mut self,
        shared: &SessionShared,
        counters: &Counters,
        mut next: impl FnMut() -> Option<MediaEvent>,
    ) {
        // Older undelivered events first, to keep order.
        while let Some(event) = self.backlog.pop_front() {
            let utterance = is_utterance(&event);
            match self.try_send(shared, event) {
                Ok(()) => {
                    if utterance {
                        self.backlog_utterances -= 1;
                    }
                }
                Err(Some(event)) => {
                    self.backlog.push_front(event);
                    break;
                }
                Err(None) => {
                    self.backlog.clear();
                    self.backlog_utterances = 0;
                    break;
                }
            }
        }
        while let Some(event) = next() {
            let event = if self.backlog.is_empty() {
                match self.try_send(shared, event) {
                    Ok(()) | Err(None) => continue,
                    Err(Some(event)) => event,
                }
            } else {
                event
            };
            if !must_deliver(&event) || self.backlog.len() >= EVENT_BACKLOG_LIMIT {
                self.drop_event(counters);
                continue;
            }
            if is_utterance(&event) {
                if self.backlog_utterances >= UTTERANCE_BACKLOG_LIMIT
                    && let Some(oldest) = self.backlog.iter().position(is_utterance)
                {
                    self.backlog.remove(oldest);
                    self.backlog_utterances -= 1;
                    self.drop_event(counters);
                }
                self.backlog_utterances += 1;
            }
            self.backlog.push_back(event);
        }
    }

    /// `Err(Some(event))`: the call cannot take it now; `Err(None)`: the call is gone.
    fn try_send(
        &self,
        shared: &SessionShared,
        event: MediaEvent,
    ) -> Result<(), Option<MediaEvent>> {
        let in_channel = &shared.utterances_in_channel;
        let utterance = is_utterance(&event);
        if utterance {
            // Counted before sending: the call decrements only after receiving it.
            if in_channel.fetch_add(1, Ordering::AcqRel) >= UTTERANCES_IN_CHANNEL {
                in_channel.fetch_sub(1, Ordering::AcqRel);
                return Err(Some(event));
            }
        }
        let result = self.sender.try_send(event);
        if result.is_err() && utterance {
            in_channel.fetch_sub(1, Ordering::AcqRel);
        }
        match result {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(event)) => Err(Some(event)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(None),
        }
    }

    fn drop_event(&mut self, counters: &Counters) {
        self.dropped += 1;
        counters.events_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

struct Shard {
    commands: Receiver<Command>,
    sessions: Vec<ShardSession>,
    load: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Shard {
    fn run(mut self) {
        let mut buffer = vec![0u8; RECV_BUFFER];
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            if next_tick > now {
                std::thread::sleep(next_tick - now);
            }
            let tick = next_tick;
            next_tick += PTIME;
            let now = Instant::now();
            if now > next_tick + PTIME * 5 {
                // Far behind (suspended VM, debugger): re-anchor instead of spinning through
                // missed ticks; sessions skip the ticks themselves.
                next_tick = now + PTIME;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if !self.apply_commands(tick) {
                break;
            }
            self.tick(Instant::now(), &mut buffer);
        }
        let remaining = self.sessions.len();
        self.sessions.clear();
        self.load.fetch_sub(remaining, Ordering::Relaxed);
        self.active.fetch_sub(remaining, Ordering::Relaxed);
    }

    /// Returns false when the engine is gone.
    fn apply_commands(&mut self, tick: Instant) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match command {
                Command::Open {
                    id,
                    lease,
                    config,
                    vad,
                    events,
                    shared,
                } => {
                    // Start the session's clock on this shard's tick grid so that every tick
                    // sends exactly one packet.
                    let mut session = MediaSession::new(*config, vad, tick);
                    // NTP timestamps of our sender reports: wall-clock time.
                    session.set_wall_clock(Instant::now(), std::time::SystemTime::now());
                    self.sessions.push(ShardSession {
                        id,
                        lease,
                        session,
                        outbox: EventOutbox::new(events),
                        shared,
                        reported_lost: 0,
                        reported_late: 0,
                        reported_dtmf_sent: 0,
                        bridge: None,
                        bridge_send_drops: 0,
                    });
                }
                Command::Enqueue {
                    id,
                    item,
                    pcm,
                    interruptible,
                } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.session.enqueue(item, pcm, interruptible);
                    }
                }
                Command::Flush { id, item } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.session.flush(item);
                    }
                }
                Command::SetRemote { id, remote } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.session.set_remote(remote);
                    }
                }
                Command::SetDirection {
                    id,
                    sending,
                    receiving,
                } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.session.set_direction(Instant::now(), sending, receiving);
                    }
                }
                Command::SetSrtp { id, keys } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.session.set_srtp(keys.map(|k| *k));
                    }
                }
                Command::SendDtmf { id, digits } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        // Start on this tick's frame. The handle checked the digits and
                        // reserved room, so this cannot fail; if it did, give the room back.
                        if let Err(error) = s.session.send_dtmf(tick, &digits) {
                            tracing::warn!(%error, "DTMF not queued");
                            s.shared
                                .dtmf_pending
                                .fetch_sub(digits.chars().count(), Ordering::AcqRel);
                        }
                    }
                }
                Command::Bridge { id, end } => {
                    // No such session (closed meanwhile): `end` is dropped, and the other side
                    // sees the bridge closed.
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.start_bridge(end);
                    }
                }
                Command::Unbridge { id } => {
                    if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                        s.end_bridge();
                    }
                }
            }
        }
    }

    fn tick(&mut self, now: Instant, buffer: &mut [u8]) {
        let counters = &self.counters;
        let mut index = 0;
        while index < self.sessions.len() {
            let s = &mut self.sessions[index];
            if s.shared.closed.load(Ordering::Acquire) {
                self.sessions.swap_remove(index);
                self.load.fetch_sub(1, Ordering::Relaxed);
                self.active.fetch_sub(1, Ordering::Relaxed);
                counters.sessions_closed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            index += 1;
            s.receive_bridge_frames();
            let Some(socket) = s.lease.socket.as_ref() else {
                continue;
            };
            for _ in 0..MAX_RECV_PER_TICK {
                match socket.recv_from(buffer) {
                    Ok((n, source)) => {
                        counters.packets_in.fetch_add(1, Ordering::Relaxed);
                        counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        s.session.handle_rtp(now, source, &buffer[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            if let Some(rtcp_socket) = s.lease.rtcp_socket.as_ref() {
                for _ in 0..MAX_RECV_PER_TICK {
                    match rtcp_socket.recv_from(buffer) {
                        Ok((n, source)) => {
                            // When it was read, not the tick: RTT is measured with it.
                            s.session.handle_rtcp(Instant::now(), source, &buffer[..n]);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            }
            s.session.handle_timeout(now);
            if let Some(end) = &s.bridge {
                s.bridge_send_drops += end.send_frames(&mut s.session);
            }
            while let Some((remote, bytes)) = s.session.poll_transmit() {
                match socket.send_to(bytes, remote) {
                    Ok(n) => {
                        counters.packets_out.fetch_add(1, Ordering::Relaxed);
                        counters.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let Some((remote, bytes)) = s.session.poll_transmit_rtcp()
                && let Some(rtcp_socket) = s.lease.rtcp_socket.as_ref()
                && rtcp_socket.send_to(bytes, remote).is_err()
            {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
            }
            let session = &mut s.session;
            s.outbox
                .deliver(&s.shared, counters, || session.poll_event());
            let mut stats = s.session.stats();
            counters.packets_lost.fetch_add(
                stats.jitter.lost.saturating_sub(s.reported_lost),
                Ordering::Relaxed,
            );
            counters.packets_late.fetch_add(
                stats.jitter.late.saturating_sub(s.reported_late),
                Ordering::Relaxed,
            );
            s.reported_lost = stats.jitter.lost;
            s.reported_late = stats.jitter.late;
            let dtmf_sent = stats.dtmf_digits_sent - s.reported_dtmf_sent;
            if dtmf_sent > 0 {
                s.shared
                    .dtmf_pending
                    .fetch_sub(dtmf_sent as usize, Ordering::AcqRel);
                s.reported_dtmf_sent = stats.dtmf_digits_sent;
            }
            stats.events_dropped = s.outbox.dropped;
            stats.bridge_frames_dropped += s.bridge_send_drops;
            if let Ok(mut cell) = s.shared.stats.try_lock() {
                *cell = stats;
            }
        }
    }
}

#[cfg(test)]
mod tests;
