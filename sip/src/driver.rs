//! Tokio driver: owns one [`SipEndpoint`] and does its I/O over UDP, TCP and TLS.
//!
//! One task owns the endpoint and selects over the UDP socket, messages framed off TCP and TLS
//! connections (each connection has its own small task), application commands, and a sleep until
//! the endpoint's next deadline. The SIP loop never blocks on the application: events go through
//! a bounded channel and, when it is full, new INVITEs are answered `503`.
//!
//! TCP and TLS connections share one machinery (RFC 3261 §18): framing by Content-Length,
//! CRLF keep-alive pongs, responses on the connection the request came in on, idle timeouts, a
//! cap on connections and a bounded queue per connection. A TLS connection first completes its
//! handshake in its own task, within [`TLS_HANDSHAKE_TIMEOUT`]; a failed or stalled handshake
//! closes only that connection.
//!
//! Outbound connections: TCP is opened on demand to whatever address a message goes to. TLS is
//! opened only to addresses of calls placed over TLS ([`SipCommand::PlaceCall`] with
//! [`OutboundCall::tls`]: trust roots and the name to verify, sent as SNI), within
//! [`CONNECT_TIMEOUT`] for TCP and [`TLS_HANDSHAKE_TIMEOUT`] for the handshake; the dialog then
//! reuses that connection both ways, and a dropped one is re-opened with the same settings. A
//! connection that cannot be opened fails the calls waiting on it at once (`503`, see
//! [`SipEndpoint::connection_failed`]). Any other TLS message with no live connection (e.g. a
//! BYE after the peer's connection closed) is logged and dropped. Calls placed over UDP go out
//! from the listening socket, so the trunk's responses and requests come back to it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::endpoint::{EndpointConfig, OutboundCall, SipEndpoint, SipEvent};
use crate::error::SipError;
use crate::message::MAX_MESSAGE_SIZE;
use crate::sdp::SdpSession;
use crate::tls::OutboundTls;
use crate::transport::{CallKey, ConnectionId, Transmit, Transport};

/// Capacity of the event channel to the application.
pub const EVENT_QUEUE_CAPACITY: usize = 256;
/// Capacity of the command channel from the application.
pub const COMMAND_QUEUE_CAPACITY: usize = 1024;
/// Most TCP and TLS connections (together, handshaking ones included) held at once; further
/// ones are closed on accept.
pub const MAX_TCP_CONNECTIONS: usize = 4096;
/// A connection that never delivered a complete SIP message is closed after this long.
pub const UNUSED_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection with no traffic either way is closed after this long. Long, because an
/// established call may be silent on signalling for its whole duration.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// A TLS peer that has not completed its handshake this long after connecting is disconnected.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a stream header block may be before the connection is dropped.
const MAX_STREAM_HEADER: usize = 32 * 1024;
/// Time allowed to open an outbound TCP connection (before any TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to flush and close a connection that is being dropped.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages queued per connection before further ones are dropped.
const CONNECTION_QUEUE: usize = 128;

/// Where to listen and how the endpoint presents itself.
#[derive(Debug, Clone)]
pub struct SipDriverConfig {
    /// UDP listen address (port 0 picks a free port).
    pub listen_udp: Option<SocketAddr>,
    /// TCP listen address (port 0 picks a free port).
    pub listen_tcp: Option<SocketAddr>,
    /// TLS listen address (port 0 picks a free port); needs `tls`.
    pub listen_tls: Option<SocketAddr>,
    /// Certificate and key the TLS listener presents (see
    /// [`load_server_config`](crate::tls::load_server_config)). Required with `listen_tls`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Endpoint configuration; `contact_port` 0 means "the bound UDP port" (else the TCP one),
    /// `contact_port_tls` 0 "the bound TLS port".
    pub endpoint: EndpointConfig,
}

/// What the application asks the SIP loop to do for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipCommand {
    /// Send a provisional response (e.g. 180).
    Provisional {
        /// The call.
        key: CallKey,
        /// 101–199.
        status: u16,
    },
    /// Send `183 Session Progress` with this session's answer (early media before answer or
    /// rejection); a later `Accept` repeats the same answer.
    EarlyMedia {
        /// The call.
        key: CallKey,
        /// The answered session.
        sdp: Box<SdpSession>,
    },
    /// Ask the peer to transfer the call to `target` by REFER; the outcome comes as
    /// [`SipEvent::TransferAccepted`] then `CallEnded { Transferred }`, or as
    /// [`SipEvent::TransferFailed`] (also when the REFER cannot be sent).
    Transfer {
        /// The call.
        key: CallKey,
        /// A `sip:`, `sips:` or `tel:` URI.
        target: String,
    },
    /// Answer 200 OK with this offer/answer session (its answer goes in the 200).
    Accept {
        /// The call.
        key: CallKey,
        /// The answered session; the endpoint keeps it for re-offers.
        sdp: Box<SdpSession>,
    },
    /// Answer with a final failure.
    Reject {
        /// The call.
        key: CallKey,
        /// 300–699.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Further headers, e.g. `WWW-Authenticate` on a 401.
        headers: Vec<(&'static str, String)>,
    },
    /// Hang up (BYE, or 480 before answer; CANCEL for a call we placed that is ringing).
    Hangup {
        /// The call.
        key: CallKey,
    },
    /// Place a call through a trunk. The driver answers with [`SipEvent::OutboundStarted`]
    /// (carrying the call's key) or [`SipEvent::OutboundRejected`], both with `request_id`.
    /// UDP goes out from the listening socket (symmetric signalling); TCP and TLS open a
    /// connection unless one to the destination is open. TLS needs [`OutboundCall::tls`] (else
    /// the call is rejected); a connection or handshake that fails ends the call with
    /// [`SipEvent::OutboundFailed`] `503`.
    PlaceCall {
        /// Chosen by the application to match the answer to the command.
        request_id: u64,
        /// The call.
        call: Box<OutboundCall>,
    },
}

/// A running SIP driver. Dropping every clone of `commands` stops it.
#[derive(Debug)]
pub struct SipDriver {
    /// The bound UDP address, if UDP is enabled.
    pub local_udp: Option<SocketAddr>,
    /// The bound TCP address, if TCP is enabled.
    pub local_tcp: Option<SocketAddr>,
    /// The bound TLS address, if TLS is enabled.
    pub local_tls: Option<SocketAddr>,
    /// Commands to the SIP loop.
    pub commands: mpsc::Sender<SipCommand>,
    /// Events from the SIP loop.
    pub events: mpsc::Receiver<SipEvent>,
}

impl SipDriver {
    /// Bind the sockets and spawn the SIP loop on the current tokio runtime.
    pub async fn start(config: SipDriverConfig) -> Result<SipDriver, SipError> {
        if config.listen_udp.is_none() && config.listen_tcp.is_none() && config.listen_tls.is_none()
        {
            return Err(SipError::Config(
                "none of listen_udp, listen_tcp and listen_tls is set".to_string(),
            ));
        }
        let tls_acceptor = match (config.listen_tls, config.tls) {
            (Some(_), Some(tls)) => Some(TlsAcceptor::from(tls)),
            (Some(_), None) => {
                return Err(SipError::Config(
                    "listen_tls is set but there is no TLS certificate".to_string(),
                ));
            }
            (None, _) => None,
        };
        let udp = match config.listen_udp {
            Some(addr) => Some(UdpSocket::bind(addr).await.map_err(|source| SipError::Io {
                context: format!("binding UDP {addr}"),
                source,
            })?),
            None => None,
        };
        let listener = match config.listen_tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| SipError::Io {
                        context: format!("binding TCP {addr}"),
                        source,
                    })?,
            ),
            None => None,
        };
        let tls_listener = match config.listen_tls {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| SipError::Io {
                        context: format!("binding TLS {addr}"),
                        source,
                    })?,
            ),
            None => None,
        };
        let local_udp = udp
            .as_ref()
            .map(UdpSocket::local_addr)
            .transpose()
            .map_err(|source| SipError::Io {
                context: "reading the UDP address".to_string(),
                source,
            })?;
        let local_tcp = listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|source| SipError::Io {
                context: "reading the TCP address".to_string(),
                source,
            })?;
        let local_tls = tls_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|source| SipError::Io {
                context: "reading the TLS address".to_string(),
                source,
            })?;
        let mut endpoint_config = config.endpoint;
        if endpoint_config.contact_port == 0 {
            endpoint_config.contact_port = local_udp.or(local_tcp).map_or(0, |a| a.port());
        }
        if endpoint_config.contact_port_tls == 0 {
            endpoint_config.contact_port_tls = local_tls.map_or(0, |a| a.port());
        }
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE_CAPACITY);
        let (stream_tx, stream_rx) = mpsc::channel(1024);
        let sip_loop = SipLoop {
            endpoint: SipEndpoint::new(endpoint_config),
            udp,
            listener,
            accept_paused_until: None,
            tls_listener,
            tls_acceptor,
            tls_accept_paused_until: None,
            connections: HashMap::new(),
            by_peer: HashMap::new(),
            tls_clients: HashMap::new(),
            next_connection: 1,
            stream_tx,
            stream_rx,
            commands: commands_rx,
            events: events_tx,
            backlog: VecDeque::new(),
        };
        tokio::spawn(sip_loop.run());
        Ok(SipDriver {
            local_udp,
            local_tcp,
            local_tls,
            commands: commands_tx,
            events: events_rx,
        })
    }
}

/// What connection tasks report to the SIP loop.
enum StreamInput {
    Message {
        connection: ConnectionId,
        transport: Transport,
        peer: SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        connection: ConnectionId,
    },
    /// An outbound connection could not be opened or secured; nothing was sent on it.
    ConnectFailed {
        connection: ConnectionId,
        transport: Transport,
        peer: SocketAddr,
        error: String,
    },
}

struct ConnectionHandle {
    outbound: mpsc::Sender<Vec<u8>>,
    peer: SocketAddr,
    transport: Transport,
}

/// Why a TLS connection was closed before it carried any SIP.
#[derive(Debug, thiserror::Error)]
enum TlsHandshakeError {
    /// The peer sent something that is not a TLS handshake we accept, or went away.
    #[error("TLS handshake failed: {0}")]
    Failed(#[source] std::io::Error),
    /// The peer did not finish the handshake in time.
    #[error("no TLS handshake within {0:?}")]
    TimedOut(Duration),
}

/// Why an outbound connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// TCP connect failed (refused, unreachable …).
    #[error("{} connection to {peer} failed: {source}", transport.via_token())]
    Connect {
        transport: Transport,
        peer: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// TCP connect did not finish in time.
    #[error("{} connection to {peer}: no answer within {timeout:?}", transport.via_token())]
    ConnectTimedOut {
        transport: Transport,
        peer: SocketAddr,
        timeout: Duration,
    },
    /// The TLS handshake failed (untrusted or misnamed certificate, protocol error …).
    #[error("TLS handshake with {peer} failed: {source}")]
    Handshake {
        peer: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake did not finish in time.
    #[error("TLS handshake with {peer}: not done within {timeout:?}")]
    HandshakeTimedOut { peer: SocketAddr, timeout: Duration },
}

struct SipLoop {
    endpoint: SipEndpoint,
    udp: Option<UdpSocket>,
    listener: Option<TcpListener>,
    accept_paused_until: Option<tokio::time::Instant>,
    tls_listener: Option<TcpListener>,
    tls_acceptor: Option<TlsAcceptor>,
    tls_accept_paused_until: Option<tokio::time::Instant>,
    connections: HashMap<ConnectionId, ConnectionHandle>,
    by_peer: HashMap<(Transport, SocketAddr), ConnectionId>,
    /// How to open TLS connections to the addresses of calls placed over TLS.
    tls_clients: HashMap<SocketAddr, OutboundTls>,
    next_connection: u64,
    stream_tx: mpsc::Sender<StreamInput>,
    stream_rx: mpsc::Receiver<StreamInput>,
    commands: mpsc::Receiver<SipCommand>,
    events: mpsc::Sender<SipEvent>,
    /// Events other than IncomingCall that did not fit in the channel; delivered in order.
    backlog: VecDeque<SipEvent>,
}

async fn recv_udp(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn accept_tcp(
    listener: Option<&TcpListener>,
    paused_until: Option<tokio::time::Instant>,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    if let Some(until) = paused_until {
        tokio::time::sleep_until(until).await;
    }
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Waits for room in the event channel (only while a backlog exists).
async fn reserve_event_slot(
    sender: Option<mpsc::Sender<SipEvent>>,
) -> Option<mpsc::OwnedPermit<SipEvent>> {
    match sender {
        Some(sender) => sender.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

impl SipLoop {
    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
        loop {
            self.drain_endpoint().await;
            let deadline = self.endpoint.poll_timeout();
            let have_backlog = !self.backlog.is_empty();
            tokio::select! {
                received = recv_udp(self.udp.as_ref(), &mut buf) => match received {
                    Ok((len, source)) => {
                        let data = buf.get(..len).unwrap_or_default();
                        self.endpoint.handle_datagram(Instant::now(), Transport::Udp, source, None, data);
                    }
                    // E.g. ICMP port unreachable from an earlier send: not fatal.
                    Err(error) => tracing::debug!(%error, "UDP receive error"),
                },
                Some(input) = self.stream_rx.recv() => self.on_stream_input(input),
                accepted = accept_tcp(self.listener.as_ref(), self.accept_paused_until) => {
                    self.accept_paused_until = None;
                    match accepted {
                        Ok((stream, peer)) => self.on_accepted(stream, peer, Transport::Tcp),
                        Err(error) => {
                            tracing::warn!(%error, "TCP accept failed; pausing accepts");
                            self.accept_paused_until =
                                Some(tokio::time::Instant::now() + Duration::from_millis(100));
                        }
                    }
                },
                accepted = accept_tcp(self.tls_listener.as_ref(), self.tls_accept_paused_until) => {
                    self.tls_accept_paused_until = None;
                    match accepted {
                        Ok((stream, peer)) => self.on_accepted(stream, peer, Transport::Tls),
                        Err(error) => {
                            tracing::warn!(%error, "TLS accept failed; pausing accepts");
                            self.tls_accept_paused_until =
                                Some(tokio::time::Instant::now() + Duration::from_millis(100));
                        }
                    }
                },
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        tracing::debug!("SIP command channel closed; stopping the SIP loop");
                        break;
                    }
                },
                permit = reserve_event_slot(have_backlog.then(|| self.events.clone())) => match permit {
                    Some(permit) => {
                        if let Some(event) = self.backlog.pop_front() {
                            permit.send(event);
                        }
                    }
                    // The application dropped its receiver: nobody will read these.
                    None => self.backlog.clear(),
                },
                () = sleep_until_deadline(deadline) => self.endpoint.handle_timeout(Instant::now()),
            }
        }
    }

    /// Deliver events and send transmits until the endpoint has nothing more.
    async fn drain_endpoint(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.deliver(event);
            }
            while let Some(transmit) = self.endpoint.poll_transmit() {
                progressed = true;
                self.send(transmit).await;
            }
            if !progressed {
                break;
            }
        }
    }

    fn refuse_call(&mut self, key: CallKey) {
        tracing::warn!(
            ?key,
            "application not keeping up with events; answering 503"
        );
        if let Err(error) = self
            .endpoint
            .reject(Instant::now(), key, 503, "Service Unavailable")
        {
            tracing::debug!(%error, "could not refuse call");
        }
    }

    fn deliver(&mut self, event: SipEvent) {
        if !self.backlog.is_empty() {
            match event {
                SipEvent::IncomingCall(call) => self.refuse_call(call.key),
                other => self.backlog.push_back(other),
            }
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(SipEvent::IncomingCall(call))) => self.refuse_call(call.key),
            Err(TrySendError::Full(other)) => self.backlog.push_back(other),
            Err(TrySendError::Closed(SipEvent::IncomingCall(call))) => self.refuse_call(call.key),
            Err(TrySendError::Closed(_)) => {}
        }
    }

    async fn send(&mut self, transmit: Transmit) {
        match transmit.transport {
            Transport::Udp => match &self.udp {
                Some(udp) => {
                    if let Err(error) = udp.send_to(&transmit.data, transmit.destination).await {
                        tracing::debug!(%error, destination = %transmit.destination, "UDP send failed");
                    }
                }
                None => tracing::debug!("no UDP socket; dropping UDP transmit"),
            },
            Transport::Tcp | Transport::Tls => self.send_stream(transmit),
        }
    }

    /// Send on the request's connection, else on any live one to the destination over the same
    /// transport, else (TCP only) on a new connection.
    fn send_stream(&mut self, transmit: Transmit) {
        let transport = transmit.transport;
        let existing = transmit
            .connection
            .filter(|id| {
                self.connections
                    .get(id)
                    .is_some_and(|handle| handle.transport == transport)
            })
            .or_else(|| {
                self.by_peer
                    .get(&(transport, transmit.destination))
                    .copied()
            });
        if let Some(handle) = existing.and_then(|id| self.connections.get(&id)) {
            if let Err(error) = handle.outbound.try_send(transmit.data) {
                tracing::warn!(peer = %handle.peer, ?transport, %error, "stream send queue full or closed; message dropped");
            }
            return;
        }
        let destination = transmit.destination;
        let tls = match transport {
            Transport::Tls => match self.tls_clients.get(&destination) {
                Some(tls) => Some(tls.clone()),
                None => {
                    tracing::warn!(
                        %destination,
                        "no live TLS connection and no TLS settings to open one; message dropped"
                    );
                    return;
                }
            },
            Transport::Tcp | Transport::Udp => None,
        };
        if self.connections.len() >= MAX_TCP_CONNECTIONS {
            tracing::warn!(
                ?transport,
                "too many connections; dropping outbound message"
            );
            return;
        }
        let (id, outbound_rx) = self.register_connection(destination, transport);
        if let Some(handle) = self.connections.get(&id) {
            // Queued until the connection (and handshake) is up.
            let _ = handle.outbound.try_send(transmit.data);
        }
        let stream_tx = self.stream_tx.clone();
        tokio::spawn(async move {
            if let Err(error) =
                run_outbound_connection(id, destination, tls, outbound_rx, stream_tx.clone()).await
            {
                tracing::info!(%destination, %error, "outbound connection failed");
                let _ = stream_tx
                    .send(StreamInput::ConnectFailed {
                        connection: id,
                        transport,
                        peer: destination,
                        error: error.to_string(),
                    })
                    .await;
            }
        });
    }

    fn register_connection(
        &mut self,
        peer: SocketAddr,
        transport: Transport,
    ) -> (ConnectionId, mpsc::Receiver<Vec<u8>>) {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        let (outbound_tx, outbound_rx) = mpsc::channel(CONNECTION_QUEUE);
        self.connections.insert(
            id,
            ConnectionHandle {
                outbound: outbound_tx,
                peer,
                transport,
            },
        );
        self.by_peer.insert((transport, peer), id);
        (id, outbound_rx)
    }

    fn on_accepted(&mut self, stream: TcpStream, peer: SocketAddr, transport: Transport) {
        if self.connections.len() >= MAX_TCP_CONNECTIONS {
            tracing::warn!(%peer, ?transport, "too many connections; closing new one");
            return;
        }
        let acceptor = match transport {
            Transport::Tls => match &self.tls_acceptor {
                Some(acceptor) => Some(acceptor.clone()),
                None => return, // no TLS listener without an acceptor
            },
            Transport::Tcp | Transport::Udp => None,
        };
        let _ = stream.set_nodelay(true);
        let (id, outbound_rx) = self.register_connection(peer, transport);
        let inbound = self.stream_tx.clone();
        match acceptor {
            Some(acceptor) => {
                tokio::spawn(run_tls_connection(
                    acceptor,
                    id,
                    peer,
                    stream,
                    outbound_rx,
                    inbound,
                ));
            }
            None => {
                tokio::spawn(run_connection(
                    id,
                    peer,
                    transport,
                    stream,
                    outbound_rx,
                    inbound,
                ));
            }
        }
    }

    fn on_stream_input(&mut self, input: StreamInput) {
        match input {
            StreamInput::Message {
                connection,
                transport,
                peer,
                data,
            } => self.endpoint.handle_datagram(
                Instant::now(),
                transport,
                peer,
                Some(connection),
                &data,
            ),
            StreamInput::Closed { connection } => self.forget_connection(connection),
            StreamInput::ConnectFailed {
                connection,
                transport,
                peer,
                error,
            } => {
                self.forget_connection(connection);
                self.endpoint
                    .connection_failed(Instant::now(), transport, peer, &error);
            }
        }
    }

    fn forget_connection(&mut self, connection: ConnectionId) {
        if let Some(handle) = self.connections.remove(&connection) {
            let key = (handle.transport, handle.peer);
            if self.by_peer.get(&key) == Some(&connection) {
                self.by_peer.remove(&key);
            }
        }
    }

    fn place_call(&mut self, now: Instant, call: OutboundCall) -> Result<CallKey, SipError> {
        match (call.transport, &call.tls) {
            (Transport::Udp, _) if self.udp.is_none() => Err(SipError::TransportUnavailable(
                "UDP is not enabled (no listen_udp)".to_string(),
            )),
            (Transport::Tls, None) => Err(SipError::TransportUnavailable(
                "a call over TLS needs trust roots and a server name (OutboundCall::tls)"
                    .to_string(),
            )),
            (Transport::Tls, Some(tls)) => {
                // Kept for the dialog's life and beyond: re-opening a dropped connection to the
                // trunk needs the same settings. Trunks are few.
                self.tls_clients.insert(call.destination, tls.clone());
                self.endpoint.place_call(now, call)
            }
            _ => self.endpoint.place_call(now, call),
        }
    }

    fn on_command(&mut self, command: SipCommand) {
        let now = Instant::now();
        let result = match command {
            SipCommand::Provisional { key, status } => {
                self.endpoint.send_provisional(now, key, status)
            }
            SipCommand::EarlyMedia { key, sdp } => self.endpoint.send_early_media(now, key, *sdp),
            SipCommand::Transfer { key, target } => {
                if let Err(error) = self.endpoint.transfer(now, key, &target) {
                    tracing::info!(?key, %error, "transfer not started");
                    self.deliver(SipEvent::TransferFailed {
                        key,
                        status: None,
                        reason: error.to_string(),
                    });
                }
                Ok(())
            }
            SipCommand::Accept { key, sdp } => self.endpoint.accept(now, key, *sdp),
            SipCommand::Reject {
                key,
                status,
                reason,
                headers,
            } => self
                .endpoint
                .reject_with_headers(now, key, status, &reason, headers),
            SipCommand::Hangup { key } => self.endpoint.hangup(now, key),
            SipCommand::PlaceCall { request_id, call } => {
                let event = match self.place_call(now, *call) {
                    Ok(key) => SipEvent::OutboundStarted { request_id, key },
                    Err(error) => {
                        tracing::info!(request_id, %error, "call not placed");
                        SipEvent::OutboundRejected {
                            request_id,
                            error: error.to_string(),
                        }
                    }
                };
                self.deliver(event);
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "SIP command not applied");
        }
    }
}

/// One unit read off a SIP stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamFrame {
    /// A complete SIP message.
    Message(Vec<u8>),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1); answer with CRLF.
    Ping,
    /// More bytes are needed.
    Incomplete,
    /// The stream cannot be framed any more; close the connection.
    Invalid(&'static str),
}

fn content_length_of(head: &[u8]) -> Result<usize, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "non-UTF-8 header block")?;
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                return value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| "invalid Content-Length");
            }
        }
    }
    Ok(0)
}

/// Take the next frame off a stream buffer (RFC 3261 §18.3: framing by Content-Length).
pub(crate) fn next_stream_frame(buf: &mut BytesMut) -> StreamFrame {
    loop {
        if buf.starts_with(b"\r\n\r\n") {
            buf.advance(4);
            return StreamFrame::Ping;
        }
        if buf.starts_with(b"\r\n") {
            if buf.len() < 4 && buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                return StreamFrame::Incomplete;
            }
            // A lone CRLF (keep-alive pong or stray line end): skip it.
            buf.advance(2);
            continue;
        }
        if buf.first() == Some(&b'\n') {
            buf.advance(1);
            continue;
        }
        break;
    }
    if buf.is_empty() {
        return StreamFrame::Incomplete;
    }
    let Some(head_end) =
        crate::message::find(&buf[..buf.len().min(MAX_STREAM_HEADER + 4)], b"\r\n\r\n")
    else {
        return if buf.len() > MAX_STREAM_HEADER {
            StreamFrame::Invalid("header block too long")
        } else {
            StreamFrame::Incomplete
        };
    };
    let body_len = match content_length_of(&buf[..head_end]) {
        Ok(len) => len,
        Err(reason) => return StreamFrame::Invalid(reason),
    };
    let total = head_end + 4 + body_len;
    if total > MAX_MESSAGE_SIZE {
        return StreamFrame::Invalid("message too large");
    }
    if buf.len() < total {
        return StreamFrame::Incomplete;
    }
    StreamFrame::Message(buf.split_to(total).to_vec())
}

/// Completes the TLS handshake on an accepted connection, then runs it like a TCP one. A failed
/// or stalled handshake closes only this connection.
async fn run_tls_connection(
    acceptor: TlsAcceptor,
    id: ConnectionId,
    peer: SocketAddr,
    stream: TcpStream,
    outbound: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<StreamInput>,
) {
    let handshake = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(TlsHandshakeError::Failed(error)),
        Err(_) => Err(TlsHandshakeError::TimedOut(TLS_HANDSHAKE_TIMEOUT)),
    };
    match handshake {
        Ok(stream) => run_connection(id, peer, Transport::Tls, stream, outbound, inbound).await,
        Err(error) => {
            tracing::debug!(%peer, %error, "closing TLS connection");
            let _ = inbound.send(StreamInput::Closed { connection: id }).await;
        }
    }
}

/// Opens an outbound connection to `peer` (TLS when `tls` is given), then runs it like an
/// accepted one. Errors only when it never came up.
async fn run_outbound_connection(
    id: ConnectionId,
    peer: SocketAddr,
    tls: Option<OutboundTls>,
    outbound: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<StreamInput>,
) -> Result<(), ConnectError> {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            return Err(ConnectError::Connect {
                transport,
                peer,
                source,
            });
        }
        Err(_) => {
            return Err(ConnectError::ConnectTimedOut {
                transport,
                peer,
                timeout: CONNECT_TIMEOUT,
            });
        }
    };
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        run_connection(id, peer, Transport::Tcp, stream, outbound, inbound).await;
        return Ok(());
    };
    let connector = TlsConnector::from(tls.config().clone());
    let handshake = connector.connect(tls.server_name().clone(), stream);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => {
            run_connection(id, peer, Transport::Tls, stream, outbound, inbound).await;
            Ok(())
        }
        Ok(Err(source)) => Err(ConnectError::Handshake { peer, source }),
        Err(_) => Err(ConnectError::HandshakeTimedOut {
            peer,
            timeout: TLS_HANDSHAKE_TIMEOUT,
        }),
    }
}

/// Writes one message and flushes it (TLS holds written data in its buffer until a flush).
async fn write_flushed<W: AsyncWrite + Unpin>(writer: &mut W, data: &[u8]) -> std::io::Result<()> {
    writer.write_all(data).await?;
    writer.flush().await
}

/// Owns one TCP or TLS connection: frames inbound messages for the SIP loop and writes outbound
/// ones.
async fn run_connection<S>(
    id: ConnectionId,
    peer: SocketAddr,
    transport: Transport,
    stream: S,
    mut outbound: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<StreamInput>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    let mut used = false;
    let mut last_activity = tokio::time::Instant::now();
    'connection: loop {
        let timeout = if used {
            IDLE_CONNECTION_TIMEOUT
        } else {
            UNUSED_CONNECTION_TIMEOUT
        };
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break 'connection,
                    Ok(_) => last_activity = tokio::time::Instant::now(),
                }
                loop {
                    match next_stream_frame(&mut buf) {
                        StreamFrame::Message(data) => {
                            used = true;
                            let input = StreamInput::Message { connection: id, transport, peer, data };
                            if inbound.send(input).await.is_err() {
                                break 'connection;
                            }
                        }
                        StreamFrame::Ping => {
                            if write_flushed(&mut writer, b"\r\n").await.is_err() {
                                break 'connection;
                            }
                        }
                        StreamFrame::Incomplete => break,
                        StreamFrame::Invalid(reason) => {
                            tracing::debug!(%peer, reason, "closing unframeable SIP stream");
                            break 'connection;
                        }
                    }
                }
            }
            message = outbound.recv() => match message {
                Some(data) => {
                    last_activity = tokio::time::Instant::now();
                    if write_flushed(&mut writer, &data).await.is_err() {
                        break 'connection;
                    }
                }
                None => break 'connection,
            },
            () = tokio::time::sleep_until(last_activity + timeout) => {
                tracing::debug!(%peer, ?transport, "closing idle SIP connection");
                break 'connection;
            }
        }
    }
    // Tell the SIP loop first, so nothing more is queued here, then close politely (TLS
    // close_notify, TCP FIN) without waiting long on a peer that does not read.
    let _ = inbound.send(StreamInput::Closed { connection: id }).await;
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, writer.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> (Vec<StreamFrame>, usize) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match next_stream_frame(&mut buf) {
                StreamFrame::Incomplete => break,
                frame @ StreamFrame::Invalid(_) => {
                    out.push(frame);
                    break;
                }
                frame => out.push(frame),
            }
        }
        (out, buf.len())
    }

    const MSG: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn frames_pipelined_messages_and_keepalives() {
        let mut input = b"\r\n\r\n".to_vec();
        input.extend_from_slice(MSG);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(MSG);
        input.extend_from_slice(&MSG[..10]);
        let (out, rest) = frames(&input);
        assert_eq!(
            out,
            vec![
                StreamFrame::Ping,
                StreamFrame::Message(MSG.to_vec()),
                StreamFrame::Message(MSG.to_vec())
            ]
        );
        assert_eq!(rest, 10, "a partial message stays buffered");
    }

    #[test]
    fn waits_for_the_whole_body() {
        let (out, rest) = frames(&MSG[..MSG.len() - 1]);
        assert!(out.is_empty());
        assert_eq!(rest, MSG.len() - 1);
    }

    #[test]
    fn missing_content_length_means_empty_body() {
        let (out, _) =
            frames(b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\nOPTIONS sip:b SIP/2.0\r\n\r\n");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn rejects_bad_or_huge_content_length_and_endless_headers() {
        let (out, _) = frames(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n");
        assert_eq!(out, vec![StreamFrame::Invalid("invalid Content-Length")]);
        let (out, _) = frames(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n");
        assert_eq!(out, vec![StreamFrame::Invalid("message too large")]);
        let (out, _) = frames(&vec![b'a'; MAX_STREAM_HEADER + 10]);
        assert_eq!(out, vec![StreamFrame::Invalid("header block too long")]);
    }
}
