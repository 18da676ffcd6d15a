//! The sans-IO SIP endpoint: UAS side of inbound calls (RFC 3261 transactions and dialogs).
//!
//! Feed it datagrams/stream messages and the current time; take out transmits, events and the
//! next deadline. It never opens sockets or reads the clock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use rsip::Method;

use crate::error::SipError;
use crate::message::{
    self, ALLOW, InboundRequest, InboundResponse, OutboundRequest, Parsed, ReplyContext,
    ResponseExtras,
};
use crate::sdp::{NegotiatedMedia, SdpSession};
use crate::session_timer::{self, Negotiation, SessionTimer, TimerRequest};
use crate::transport::{CallKey, ConnectionId, Transmit, Transport};

mod modify;
mod outbound;
mod transfer;

pub use outbound::{OutboundCall, OutboundFailure};
pub use transfer::TRANSFER_TIMEOUT;

/// Most calls in progress (not counting ended ones lingering to absorb retransmissions) held
/// at once; further INVITEs get `503`.
pub const MAX_CALLS: usize = 10_000;

/// Most ended calls kept to absorb retransmissions (64 × T1 = 32 s each over UDP, so this
/// allows about 1,500 call setups per second sustained); beyond it, new INVITEs get `503` too.
pub const MAX_LINGERING_CALLS: usize = 50_000;

/// An INVITE the application never answers is given up after this long (like a proxy's Timer C):
/// the endpoint answers `480` and reports `CallCancelled`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(180);

/// How many answered in-dialog requests a call remembers to absorb their retransmissions.
const ANSWERED_MEMORY: usize = 4;

/// Static configuration of a [`SipEndpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Public IP or host name put in our `Contact` and `Via` (never a private address behind NAT).
    pub contact_host: String,
    /// Port put in our `Contact` and `Via` for UDP and TCP.
    pub contact_port: u16,
    /// Port put in our `Contact` and `Via` for TLS (default 5061), so that a peer that dials our
    /// Contact reaches the TLS listener.
    pub contact_port_tls: u16,
    /// Sent as `Server:` in responses and `User-Agent:` in requests.
    pub user_agent: String,
    /// RTT estimate (RFC 3261 T1, default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (T2, default 4 s).
    pub t2: Duration,
    /// Maximum time a message remains in the network (T4, default 5 s).
    pub t4: Duration,
    /// Session-timer interval we ask for when the caller supports timers but names none, and
    /// the longest we accept (RFC 4028; default 1800 s).
    pub session_expires: Duration,
    /// The shortest session-timer interval we accept (`Min-SE`; default 90 s, the RFC minimum).
    pub min_se: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            contact_host: "127.0.0.1".to_string(),
            contact_port: 5060,
            contact_port_tls: 5061,
            user_agent: "vaani".to_string(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
        }
    }
}

/// A new inbound call (initial INVITE), waiting for `send_provisional`/`accept`/`reject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// Handle for all later commands and events about this call.
    pub key: CallKey,
    /// Address the INVITE came from.
    pub source: SocketAddr,
    /// Transport the INVITE came on.
    pub transport: Transport,
    /// User part of the Request-URI (the dialled number on most trunks).
    pub request_uri_user: Option<String>,
    /// User part of the From URI (the caller).
    pub from_user: Option<String>,
    /// From display name, without quotes.
    pub from_display: Option<String>,
    /// User part of the To URI.
    pub to_user: Option<String>,
    /// The Call-ID.
    pub call_id: String,
    /// The SDP offer, if the INVITE carried one.
    pub sdp: Option<String>,
    /// All headers, names as received, in order.
    pub headers: Vec<(String, String)>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEndReason {
    /// The remote side sent BYE (the endpoint answered 200).
    RemoteBye,
    /// No ACK arrived for our 2xx within 64×T1 (Timer H); the endpoint sent BYE.
    AckTimeout,
    /// Our BYE got a final response or timed out (Timer F).
    LocalByeCompleted,
    /// The session timer ran out without a refresh, or our refresh failed (RFC 4028 §10); the
    /// endpoint sent BYE.
    SessionExpired,
    /// A transfer we asked for succeeded (the peer's NOTIFY said 2xx, or it hung up after
    /// accepting the REFER); the endpoint sent BYE if the peer had not.
    Transferred,
}

/// Something the application must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few events per call; matching on an unboxed IncomingCall is simpler for callers"
)]
pub enum SipEvent {
    /// A new call arrived; `100 Trying` has already been sent.
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived: the call is up.
    CallConfirmed {
        /// The call.
        key: CallKey,
    },
    /// The call ended before we answered: the caller sent CANCEL (or BYE on the early dialog) and
    /// the endpoint already answered 200 to it and 487 to the INVITE; or the application left the
    /// INVITE unanswered for [`ANSWER_TIMEOUT`] and the endpoint answered 480.
    CallCancelled {
        /// The call.
        key: CallKey,
    },
    /// A re-INVITE or UPDATE changed the media of an answered call (new address, hold,
    /// resume, codec). The endpoint already answered it.
    MediaChanged {
        /// The call.
        key: CallKey,
        /// What is in force now.
        media: NegotiatedMedia,
    },
    /// A key pressed, sent by the peer as SIP INFO (`application/dtmf-relay` or
    /// `application/dtmf`) instead of RFC 4733 RTP events.
    Dtmf {
        /// The call.
        key: CallKey,
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// The peer accepted our REFER (2xx) and is calling the transfer target; the outcome
    /// follows as `CallEnded { Transferred }` or `TransferFailed`.
    TransferAccepted {
        /// The call.
        key: CallKey,
    },
    /// A transfer we asked for did not happen (REFER refused or unanswered, the target did
    /// not answer, no outcome within [`TRANSFER_TIMEOUT`]); the call goes on.
    TransferFailed {
        /// The call.
        key: CallKey,
        /// The SIP status that ended it (the REFER's response or the target's, from the
        /// NOTIFY), if there was one.
        status: Option<u16>,
        /// What happened.
        reason: String,
    },
    /// An answered call ended.
    CallEnded {
        /// The call.
        key: CallKey,
        /// How it ended.
        reason: CallEndReason,
    },
    /// The driver sent the INVITE of a [`SipCommand::PlaceCall`](crate::SipCommand::PlaceCall).
    OutboundStarted {
        /// The `request_id` of the command.
        request_id: u64,
        /// The call, for every later event and command.
        key: CallKey,
    },
    /// The driver could not place the call of a
    /// [`SipCommand::PlaceCall`](crate::SipCommand::PlaceCall); nothing was sent.
    OutboundRejected {
        /// The `request_id` of the command.
        request_id: u64,
        /// Why.
        error: String,
    },
    /// A provisional response (100–199) to a call we placed.
    OutboundProgress {
        /// The call.
        key: CallKey,
        /// The status (180 ringing, 183 session progress …).
        status: u16,
        /// The media agreed by the SDP answer the response carried (early media); `None`
        /// without SDP. A later answer (another 1xx, the 2xx) may change the address.
        media: Option<NegotiatedMedia>,
    },
    /// A call we placed was answered (2xx) and the endpoint sent the ACK: the call is up and
    /// behaves like a confirmed inbound call (ends with `CallEnded`).
    OutboundAnswered {
        /// The call.
        key: CallKey,
        /// What the answer agreed (from the 2xx, else from the early answer).
        media: NegotiatedMedia,
    },
    /// A call we placed was not answered. Final; no `CallEnded` follows.
    OutboundFailed {
        /// The call.
        key: CallKey,
        /// The final status (408 when nothing answered).
        status: u16,
        /// The reason phrase of the response, or what happened.
        reason_phrase: String,
        /// What the status means for the application.
        reason: OutboundFailure,
    },
}

/// Server-transaction key: branch (or a RFC 2543 fallback) plus sent-by.
type TxKey = (String, String);
/// Dialog key: Call-ID, our tag, their tag.
type DialogKey = (String, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// We sent an INVITE (a call we place) and have no final response yet.
    Calling,
    /// INVITE received, no final response yet.
    Proceeding,
    /// Non-2xx final response sent; waiting for its ACK.
    Completed,
    /// 2xx sent; waiting for ACK.
    Accepted,
    /// ACK received: the dialog is up.
    Confirmed,
    /// Our BYE is outstanding.
    Terminating,
    /// Done; kept only to absorb retransmissions until `remove_at`.
    Terminated,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Calling => "calling",
            Phase::Proceeding => "proceeding",
            Phase::Completed => "rejected",
            Phase::Accepted => "accepted",
            Phase::Confirmed => "confirmed",
            Phase::Terminating => "terminating",
            Phase::Terminated => "terminated",
        }
    }
}

/// A retransmission schedule (timers E and G).
#[derive(Debug, Clone, Copy)]
struct Retransmit {
    at: Instant,
    interval: Duration,
}

/// One of our in-dialog client transactions: non-INVITE (BYE, refresh UPDATE, REFER; RFC 3261
/// §17.1.2: timer E retransmissions on unreliable transports, timer F give-up) or a session
/// refresh re-INVITE (§17.1.1: timer A until a provisional response, timer B give-up).
#[derive(Debug)]
struct ClientTransaction {
    branch: String,
    transmit: Transmit,
    retransmit: Option<Retransmit>,
    /// Timer F (timer B for an INVITE).
    timeout_at: Instant,
    /// The request is an INVITE: retransmissions double without the T2 cap and stop at the
    /// first provisional response.
    invite: bool,
}

/// What a [`ClientTransaction`] needs at some instant.
enum ClientDue {
    /// Timer F fired: no final response will come.
    TimedOut,
    /// Timer E fired: send this again.
    Resend(Transmit),
    /// Nothing yet.
    Nothing,
}

impl ClientTransaction {
    /// Starts the transaction whose request `transmit` is being sent now.
    fn start(branch: String, transmit: Transmit, now: Instant, t1: Duration) -> Self {
        Self {
            branch,
            retransmit: (!transmit.transport.is_reliable()).then_some(Retransmit {
                at: now + t1,
                interval: t1,
            }),
            transmit,
            timeout_at: now + t1 * 64,
            invite: false,
        }
    }

    /// Starts the INVITE client transaction whose request `transmit` is being sent now.
    fn start_invite(branch: String, transmit: Transmit, now: Instant, t1: Duration) -> Self {
        Self {
            invite: true,
            ..Self::start(branch, transmit, now, t1)
        }
    }

    /// A provisional response came: retransmit every T2 from now on.
    fn on_provisional(&mut self, t2: Duration) {
        if let Some(r) = &mut self.retransmit {
            r.interval = t2;
        }
    }

    /// A provisional response to our INVITE came at `now`: no more retransmissions (timer A
    /// stops), and the INVITE is given up 64×T1 after the latest provisional response without
    /// a final one (RFC 3261 leaves the wait open; a refresh cannot wait for ever).
    fn on_invite_provisional(&mut self, now: Instant, t1: Duration) {
        self.retransmit = None;
        self.timeout_at = now + t1 * 64;
    }

    /// The earliest instant the transaction needs attention.
    fn deadline(&self) -> Instant {
        self.retransmit
            .map_or(self.timeout_at, |r| r.at.min(self.timeout_at))
    }

    /// Runs timers E and F at `now`.
    fn poll(&mut self, now: Instant, t2: Duration) -> ClientDue {
        if self.timeout_at <= now {
            return ClientDue::TimedOut;
        }
        match &mut self.retransmit {
            Some(r) if r.at <= now => {
                // Timer A doubles without a cap (RFC 3261 §17.1.1.2), timer E up to T2.
                r.interval = if self.invite {
                    r.interval * 2
                } else {
                    (r.interval * 2).min(t2)
                };
                r.at = now + r.interval;
                ClientDue::Resend(self.transmit.clone())
            }
            _ => ClientDue::Nothing,
        }
    }
}

/// What varies between the requests we send inside a dialog (see
/// [`SipEndpoint::dialog_request`]).
struct DialogRequest<'a> {
    method: Method,
    headers: Vec<(&'static str, String)>,
    /// The CSeq number; `None` takes the next of our CSeq space.
    cseq: Option<u32>,
    /// The Via branch; `None` starts a new transaction.
    branch: Option<String>,
    /// An SDP body.
    sdp: Option<&'a str>,
}

/// A re-INVITE we answered 200 and whose ACK we wait for.
#[derive(Debug)]
struct ReInvite {
    branch: Option<String>,
    cseq: u32,
    response: Vec<u8>,
    retransmit: Option<Retransmit>,
    give_up_at: Instant,
    /// The re-INVITE had no SDP: our 200 carried an offer and the ACK carries the answer.
    awaits_answer: bool,
}

/// An in-dialog request we answered, kept to re-send the answer to its retransmissions.
#[derive(Debug)]
struct AnsweredRequest {
    branch: Option<String>,
    method: Method,
    cseq: u32,
    response: Vec<u8>,
}

/// One inbound INVITE, its server transaction and the dialog it creates.
#[derive(Debug)]
struct Call {
    key: CallKey,
    transport: Transport,
    source: SocketAddr,
    connection: Option<ConnectionId>,
    /// Headers to copy into responses to the INVITE, and where they go.
    reply: ReplyContext,
    tx_key: TxKey,
    dialog_key: DialogKey,
    call_id: String,
    local_tag: String,
    /// The INVITE's From (their identity, with their tag) and To (ours, without tag).
    remote_identity: String,
    local_identity: String,
    invite_cseq: u32,
    /// Record-Route of the INVITE, in order (our route set as UAS).
    route_set: Vec<String>,
    /// The remote Contact.
    remote_target: rsip::Uri,
    remote_cseq: u32,
    local_cseq: u32,
    phase: Phase,
    last_response: Vec<u8>,
    response_retransmit: Option<Retransmit>,
    /// Timer H (ACK wait for our final response).
    timer_h: Option<Instant>,
    /// Give-up time while Proceeding (see [`ANSWER_TIMEOUT`]).
    answer_deadline: Option<Instant>,
    /// Our offer/answer state, from the moment we answer.
    sdp: Option<SdpSession>,
    /// The session timer the INVITE asked for, applied when we answer.
    timer_negotiation: Negotiation,
    /// The running session timer, from our 2xx on.
    timer: Option<SessionTimer>,
    /// Our pending session refresh (UPDATE or re-INVITE).
    refresh: Option<ClientTransaction>,
    /// The peer does not take UPDATE (its Allow lacks it, or it answered 405/501): we refresh
    /// with re-INVITE (RFC 4028 §7.4). Never reset for the call.
    refresh_by_invite: bool,
    /// Our latest refresh re-INVITEs, to ACK their final responses (and retransmissions).
    refresh_invites: VecDeque<modify::RefreshInvite>,
    hangup_after_ack: bool,
    end_reported: bool,
    bye: Option<ClientTransaction>,
    reinvite: Option<ReInvite>,
    answered: VecDeque<AnsweredRequest>,
    remove_at: Option<Instant>,
    /// The UAC side, for a call we placed.
    outbound: Option<Box<outbound::Outbound>>,
    /// A transfer we asked for (REFER) and wait the outcome of.
    refer: Option<transfer::Refer>,
    /// A transfer we gave up waiting for: the trunk may still report its success, and then the
    /// caller is with the target and we must hang up.
    refer_timed_out: bool,
}

impl Call {
    /// Our refresh re-INVITE awaits its final response (an offer of ours is outstanding).
    fn refresh_invite_pending(&self) -> bool {
        self.refresh.as_ref().is_some_and(|r| r.invite)
    }

    fn transmit(&self, data: Vec<u8>) -> Transmit {
        Transmit {
            transport: self.transport,
            destination: self.reply.target,
            connection: self.connection,
            data,
        }
    }

    fn find_answered(&self, req: &InboundRequest) -> Option<&AnsweredRequest> {
        self.answered.iter().find(|a| {
            a.method == req.method
                && match (&a.branch, &req.branch) {
                    (Some(a), Some(b)) => a == b,
                    _ => a.cseq == req.cseq,
                }
        })
    }

    fn remember_answer(&mut self, req: &InboundRequest, response: &[u8]) {
        if self.answered.len() >= ANSWERED_MEMORY {
            self.answered.pop_front();
        }
        self.answered.push_back(AnsweredRequest {
            branch: req.branch.clone(),
            method: req.method,
            cseq: req.cseq,
            response: response.to_vec(),
        });
    }
}

/// The sans-IO SIP user agent server for inbound calls.
#[derive(Debug)]
pub struct SipEndpoint {
    config: EndpointConfig,
    next_key: u64,
    calls: HashMap<CallKey, Call>,
    /// Calls in `calls` that are `Terminated` (lingering only to absorb retransmissions).
    lingering: usize,
    by_tx: HashMap<TxKey, CallKey>,
    by_dialog: HashMap<DialogKey, CallKey>,
    by_bye_branch: HashMap<String, CallKey>,
    by_refresh_branch: HashMap<String, CallKey>,
    by_refer_branch: HashMap<String, CallKey>,
    /// Branches of the INVITEs of calls we placed.
    by_invite_branch: HashMap<String, CallKey>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
}

fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

fn tx_key(req: &InboundRequest) -> TxKey {
    match &req.branch {
        Some(branch) if branch.starts_with("z9hG4bK") => (branch.clone(), req.sent_by.clone()),
        _ => (
            format!(
                "2543|{}|{}|{}",
                req.call_id,
                req.from_tag.as_deref().unwrap_or(""),
                req.cseq
            ),
            req.sent_by.clone(),
        ),
    }
}

/// The key in a SIP INFO DTMF body: `Signal=5` lines of `application/dtmf-relay` (where some
/// senders write 10 and 11 for * and #), or the bare key of `application/dtmf`.
fn info_dtmf(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let media_type = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let signal = match media_type.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    match signal {
        "10" => Some('*'),
        "11" => Some('#'),
        one if one.chars().count() == 1 => {
            let digit = one.chars().next()?.to_ascii_uppercase();
            matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D').then_some(digit)
        }
        _ => None,
    }
}

fn is_sdp_content_type(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/sdp"),
    }
}

impl SipEndpoint {
    /// Create an endpoint with no calls.
    pub fn new(config: EndpointConfig) -> Self {
        Self {
            config,
            next_key: 1,
            calls: HashMap::new(),
            lingering: 0,
            by_tx: HashMap::new(),
            by_dialog: HashMap::new(),
            by_bye_branch: HashMap::new(),
            by_refresh_branch: HashMap::new(),
            by_refer_branch: HashMap::new(),
            by_invite_branch: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Number of calls held (including ones lingering to absorb retransmissions).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Number of ended calls held only to absorb retransmissions.
    pub fn lingering_call_count(&self) -> usize {
        self.lingering
    }

    /// Whether a new call must be refused: [`MAX_CALLS`] in progress or
    /// [`MAX_LINGERING_CALLS`] ended ones still held.
    fn call_table_full(&self) -> bool {
        self.calls.len() - self.lingering.min(self.calls.len()) >= MAX_CALLS
            || self.lingering >= MAX_LINGERING_CALLS
    }

    /// Feed one received message: a UDP datagram, or one complete message framed off a TCP
    /// stream (`connection` names that stream). Never panics, whatever the bytes.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        connection: Option<ConnectionId>,
        data: &[u8],
    ) {
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // Keep-alive (RFC 5626 CRLF); the driver answers pings on streams.
            return;
        }
        let connection = if transport.is_reliable() {
            connection
        } else {
            None
        };
        match message::parse_message(data, source, transport) {
            Parsed::Request(req) => self.on_request(now, transport, source, connection, *req),
            Parsed::Response(resp) => self.on_response(now, resp, connection),
            Parsed::Unprocessable {
                method,
                reply,
                status,
                reason,
            } => {
                if method.eq_ignore_ascii_case("ACK") {
                    return; // never answer an ACK
                }
                tracing::debug!(%source, %method, status, %reason, "unprocessable SIP request");
                let extra = if status == 405 {
                    vec![("Allow", ALLOW.to_string())]
                } else {
                    Vec::new()
                };
                self.respond_stateless(transport, connection, &reply, status, &reason, extra);
            }
            Parsed::Unusable => {
                tracing::trace!(%source, len = data.len(), "dropping unusable SIP message");
            }
        }
    }

    /// Fire every timer due at `now` (retransmissions, Timer H/F, cleanup).
    pub fn handle_timeout(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.run_call_timers(now, key);
        }
    }

    /// The earliest instant at which `handle_timeout` has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        for call in self.calls.values() {
            consider(call.response_retransmit.map(|r| r.at));
            consider(call.timer_h);
            consider(call.answer_deadline);
            consider(call.remove_at);
            consider(call.bye.as_ref().map(ClientTransaction::deadline));
            if let Some(ri) = &call.reinvite {
                consider(ri.retransmit.map(|r| r.at));
                consider(Some(ri.give_up_at));
            }
            if call.phase == Phase::Confirmed {
                consider(call.timer.and_then(|t| t.deadline()));
            }
            consider(call.refresh.as_ref().map(ClientTransaction::deadline));
            consider(call.refer.as_ref().map(transfer::Refer::deadline));
            if call.phase == Phase::Calling
                && let Some(out) = &call.outbound
            {
                consider(out.deadline());
            }
        }
        earliest
    }

    /// Next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// Send a provisional response (180, 183 …) to an unanswered INVITE; it carries our To-tag,
    /// Contact and the Record-Route set.
    pub fn send_provisional(
        &mut self,
        _now: Instant,
        key: CallKey,
        status: u16,
    ) -> Result<(), SipError> {
        if !(101..=199).contains(&status) {
            return Err(SipError::InvalidStatus {
                status,
                action: "a provisional response",
            });
        }
        let contact = self.contact_uri_for_key(key)?;
        let server = self.config.user_agent.clone();
        let call = self.call_in_phase(key, Phase::Proceeding, "send a provisional response")?;
        let data = message::build_response(
            &call.reply,
            status,
            message::default_reason(status),
            &server,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                contact: Some(&contact),
                record_route: &call.route_set,
                ..Default::default()
            },
        );
        call.last_response = data.clone();
        let transmit = call.transmit(data);
        self.transmits.push_back(transmit);
        Ok(())
    }

    /// Send `183 Session Progress` with the answer in `session` to an unanswered INVITE, so
    /// that the caller hears our audio before the call is answered (early media: an
    /// announcement before a rejection, or before the 200). Sent at most once; the 200 of a
    /// later [`accept`](Self::accept) carries the same answer (RFC 3261 §13.2.1).
    pub fn send_early_media(
        &mut self,
        _now: Instant,
        key: CallKey,
        session: SdpSession,
    ) -> Result<(), SipError> {
        let contact = self.contact_uri_for_key(key)?;
        let server = self.config.user_agent.clone();
        let call = self.call_in_phase(key, Phase::Proceeding, "send early media")?;
        if call.sdp.is_some() {
            return Err(SipError::InvalidState {
                key,
                state: "in early media",
                action: "send early media again",
            });
        }
        let data = message::build_response(
            &call.reply,
            183,
            message::default_reason(183),
            &server,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                contact: Some(&contact),
                record_route: &call.route_set,
                headers: vec![("Allow", ALLOW.to_string())],
                content_type: Some("application/sdp"),
                body: session.local_sdp().as_bytes(),
            },
        );
        call.sdp = Some(session);
        call.last_response = data.clone();
        let transmit = call.transmit(data);
        self.transmits.push_back(transmit);
        Ok(())
    }

    /// Answer an INVITE `200 OK` with the answer in `session` (built by
    /// [`SdpSession::answer_initial`] from the INVITE's offer); the endpoint keeps the session to
    /// answer later re-INVITEs and UPDATEs. After [`send_early_media`](Self::send_early_media)
    /// the 200 repeats the early answer and `session` is not used. The 200 carries the session
    /// timer the INVITE asked for. It is retransmitted (UDP) until the ACK arrives; without ACK
    /// after 64×T1 the call ends with `AckTimeout` and a BYE is sent.
    pub fn accept(
        &mut self,
        now: Instant,
        key: CallKey,
        session: SdpSession,
    ) -> Result<(), SipError> {
        let contact = self.contact_uri_for_key(key)?;
        let server = self.config.user_agent.clone();
        let (t1, timer_h) = (self.config.t1, self.config.t1 * 64);
        let call = self.call_in_phase(key, Phase::Proceeding, "accept")?;
        let session = call.sdp.take().unwrap_or(session);
        let mut headers = vec![
            ("Allow", ALLOW.to_string()),
            ("Supported", message::SUPPORTED.to_string()),
        ];
        if let Negotiation::On {
            interval,
            refresher,
        } = call.timer_negotiation
        {
            headers.extend(modify::timer_headers(interval, refresher));
            call.timer = Some(SessionTimer::start(now, interval, refresher));
        }
        let data = message::build_response(
            &call.reply,
            200,
            "OK",
            &server,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                contact: Some(&contact),
                record_route: &call.route_set,
                headers,
                content_type: Some("application/sdp"),
                body: session.local_sdp().as_bytes(),
            },
        );
        call.phase = Phase::Accepted;
        call.answer_deadline = None;
        call.sdp = Some(session);
        call.last_response = data.clone();
        call.response_retransmit = (!call.transport.is_reliable()).then_some(Retransmit {
            at: now + t1,
            interval: t1,
        });
        call.timer_h = Some(now + timer_h);
        let transmit = call.transmit(data);
        self.transmits.push_back(transmit);
        Ok(())
    }

    /// Answer an INVITE with a final non-2xx status (300–699). The response is retransmitted
    /// (UDP) until its ACK is absorbed or Timer H fires. No event follows.
    pub fn reject(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
    ) -> Result<(), SipError> {
        if !(300..=699).contains(&status) {
            return Err(SipError::InvalidStatus {
                status,
                action: "reject",
            });
        }
        self.reject_with_headers(now, key, status, reason, Vec::new())
    }

    /// [`reject`](Self::reject) with further headers in the response (e.g. a 401's
    /// `WWW-Authenticate` challenges).
    pub fn reject_with_headers(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(), SipError> {
        if !(300..=699).contains(&status) {
            return Err(SipError::InvalidStatus {
                status,
                action: "reject",
            });
        }
        self.call_in_phase(key, Phase::Proceeding, "reject")?;
        self.final_failure_with(now, key, status, reason, headers);
        Ok(())
    }

    /// End the call. Answered calls get a BYE (in our CSeq space, through the route set, to the
    /// remote Contact); `CallEnded { LocalByeCompleted }` follows when it completes. If the ACK
    /// for our 2xx is still outstanding, the BYE goes out once it arrives (or at Timer H).
    /// An unanswered inbound call is rejected with `480` and no event follows. A call we placed
    /// that is still ringing is cancelled (CANCEL, once a provisional response has arrived);
    /// `OutboundFailed { reason: Cancelled }` follows when the INVITE ends.
    pub fn hangup(&mut self, now: Instant, key: CallKey) -> Result<(), SipError> {
        let call = self.calls.get_mut(&key).ok_or(SipError::UnknownCall(key))?;
        match call.phase {
            Phase::Calling => {
                self.cancel_outbound(now, key, OutboundFailure::Cancelled);
                Ok(())
            }
            Phase::Accepted => {
                call.hangup_after_ack = true;
                Ok(())
            }
            Phase::Proceeding => {
                self.final_failure(now, key, 480, "Temporarily Unavailable");
                Ok(())
            }
            Phase::Confirmed => {
                self.send_bye(now, key);
                Ok(())
            }
            Phase::Terminating => Ok(()),
            Phase::Completed | Phase::Terminated => Err(SipError::InvalidState {
                key,
                state: call.phase.name(),
                action: "hang up",
            }),
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn call_in_phase(
        &mut self,
        key: CallKey,
        phase: Phase,
        action: &'static str,
    ) -> Result<&mut Call, SipError> {
        let call = self.calls.get_mut(&key).ok_or(SipError::UnknownCall(key))?;
        if call.phase != phase {
            return Err(SipError::InvalidState {
                key,
                state: call.phase.name(),
                action,
            });
        }
        Ok(call)
    }

    fn contact_uri(&self, transport: Transport) -> String {
        let host = &self.config.contact_host;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let port = self.contact_port(transport);
        match transport {
            Transport::Udp => format!("<sip:{host}:{port}>"),
            Transport::Tcp => format!("<sip:{host}:{port};transport=tcp>"),
            Transport::Tls => format!("<sip:{host}:{port};transport=tls>"),
        }
    }

    /// The port we advertise (Contact, Via) for a transport.
    fn contact_port(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Udp | Transport::Tcp => self.config.contact_port,
            Transport::Tls => self.config.contact_port_tls,
        }
    }

    fn contact_uri_for_key(&self, key: CallKey) -> Result<String, SipError> {
        let call = self.calls.get(&key).ok_or(SipError::UnknownCall(key))?;
        Ok(self.contact_uri(call.transport))
    }

    fn linger(&self, now: Instant, transport: Transport) -> Instant {
        if transport.is_reliable() {
            now
        } else {
            now + self.config.t1 * 64
        }
    }

    fn push_event(&mut self, event: SipEvent) {
        self.events.push_back(event);
    }

    /// Send a final non-2xx to the INVITE of a call in Proceeding and enter Completed.
    fn final_failure(&mut self, now: Instant, key: CallKey, status: u16, reason: &str) {
        self.final_failure_with(now, key, status, reason, Vec::new());
    }

    fn final_failure_with(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason: &str,
        headers: Vec<(&'static str, String)>,
    ) {
        let server = self.config.user_agent.clone();
        let (t1, timer_h) = (self.config.t1, self.config.t1 * 64);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let data = message::build_response(
            &call.reply,
            status,
            reason,
            &server,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                headers,
                ..Default::default()
            },
        );
        call.phase = Phase::Completed;
        call.answer_deadline = None;
        call.last_response = data.clone();
        call.response_retransmit = (!call.transport.is_reliable()).then_some(Retransmit {
            at: now + t1,
            interval: t1,
        });
        call.timer_h = Some(now + timer_h);
        let transmit = call.transmit(data);
        self.transmits.push_back(transmit);
    }

    fn respond_stateless(
        &mut self,
        transport: Transport,
        connection: Option<ConnectionId>,
        reply: &ReplyContext,
        status: u16,
        reason: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Vec<u8> {
        let tag = random_token(12);
        let data = message::build_response(
            reply,
            status,
            reason,
            &self.config.user_agent,
            ResponseExtras {
                to_tag: Some(&tag),
                headers,
                ..Default::default()
            },
        );
        self.send_reply(transport, connection, reply.target, data.clone());
        data
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        connection: Option<ConnectionId>,
        req: InboundRequest,
    ) {
        match req.method {
            Method::Ack => return self.on_ack(now, &req),
            Method::Cancel => return self.on_cancel(now, transport, connection, &req),
            _ => {}
        }
        if req.to_tag.is_some() {
            return self.on_in_dialog(now, transport, connection, &req);
        }
        match req.method {
            Method::Invite => self.on_initial_invite(now, transport, source, connection, req),
            Method::Options => {
                if !self.reject_required_extensions(transport, connection, &req) {
                    self.respond_options(transport, connection, &req.reply);
                }
            }
            Method::Bye | Method::Info | Method::Update | Method::PRack | Method::Notify => {
                self.respond_stateless(
                    transport,
                    connection,
                    &req.reply,
                    481,
                    message::default_reason(481),
                    Vec::new(),
                );
            }
            _ => {
                self.respond_stateless(
                    transport,
                    connection,
                    &req.reply,
                    405,
                    message::default_reason(405),
                    vec![("Allow", ALLOW.to_string())],
                );
            }
        }
    }

    fn respond_options(
        &mut self,
        transport: Transport,
        connection: Option<ConnectionId>,
        reply: &ReplyContext,
    ) -> Vec<u8> {
        self.respond_stateless(
            transport,
            connection,
            reply,
            200,
            "OK",
            vec![
                ("Allow", ALLOW.to_string()),
                ("Accept", "application/sdp".to_string()),
                ("Supported", message::SUPPORTED.to_string()),
            ],
        )
    }

    /// Answers `420 Bad Extension` if the request requires an extension; returns whether it did.
    fn reject_required_extensions(
        &mut self,
        transport: Transport,
        connection: Option<ConnectionId>,
        req: &InboundRequest,
    ) -> bool {
        let unsupported: Vec<&str> = req
            .require
            .iter()
            .map(String::as_str)
            .filter(|tag| !tag.eq_ignore_ascii_case("timer"))
            .collect();
        if unsupported.is_empty() {
            return false;
        }
        self.respond_stateless(
            transport,
            connection,
            &req.reply,
            420,
            message::default_reason(420),
            vec![("Unsupported", unsupported.join(", "))],
        );
        true
    }

    fn on_initial_invite(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        connection: Option<ConnectionId>,
        req: InboundRequest,
    ) {
        let tx = tx_key(&req);
        if let Some(key) = self.by_tx.get(&tx).copied() {
            // Retransmitted INVITE: the server transaction re-sends its last response.
            if let Some(call) = self.calls.get(&key) {
                let transmit = call.transmit(call.last_response.clone());
                self.transmits.push_back(transmit);
            }
            return;
        }
        if self.reject_required_extensions(transport, connection, &req) {
            return;
        }
        if self.call_table_full() {
            tracing::warn!(%source, "call table full; answering 503");
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                503,
                message::default_reason(503),
                vec![("Retry-After", "5".to_string())],
            );
            return;
        }
        if !req.body.is_empty() && !is_sdp_content_type(req.content_type.as_deref()) {
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                415,
                message::default_reason(415),
                vec![("Accept", "application/sdp".to_string())],
            );
            return;
        }
        let sdp = if req.body.is_empty() {
            None
        } else {
            match String::from_utf8(req.body.clone()) {
                Ok(sdp) => Some(sdp),
                Err(_) => {
                    self.respond_stateless(
                        transport,
                        connection,
                        &req.reply,
                        400,
                        "Malformed SDP",
                        Vec::new(),
                    );
                    return;
                }
            }
        };
        let Some(remote_target) = req.contact.clone() else {
            return; // parse_message guarantees a Contact on INVITE
        };
        let timer_negotiation = self.negotiate_timer(&req.headers);
        if let Negotiation::TooSmall { min_se } = timer_negotiation {
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                422,
                message::default_reason(422),
                vec![("Min-SE", min_se.to_string())],
            );
            return;
        }

        let key = CallKey(self.next_key);
        self.next_key += 1;
        let local_tag = random_token(12);
        let remote_tag = req.from_tag.clone().unwrap_or_default();
        let dialog_key = (req.call_id.clone(), local_tag.clone(), remote_tag);
        let trying = message::build_response(
            &req.reply,
            100,
            "Trying",
            &self.config.user_agent,
            ResponseExtras::default(),
        );
        let call = Call {
            key,
            transport,
            source,
            connection,
            reply: req.reply.clone(),
            tx_key: tx.clone(),
            dialog_key: dialog_key.clone(),
            call_id: req.call_id.clone(),
            local_tag,
            remote_identity: req.from_raw.clone(),
            local_identity: req.to_raw.clone(),
            invite_cseq: req.cseq,
            route_set: req.record_route.clone(),
            remote_target,
            remote_cseq: req.cseq,
            local_cseq: rand::rng().random_range(1..=100_000),
            phase: Phase::Proceeding,
            last_response: trying.clone(),
            response_retransmit: None,
            timer_h: None,
            answer_deadline: Some(now + ANSWER_TIMEOUT),
            sdp: None,
            timer_negotiation,
            timer: None,
            refresh: None,
            refresh_by_invite: !modify::allows_update(&req.headers),
            refresh_invites: VecDeque::new(),
            hangup_after_ack: false,
            end_reported: false,
            bye: None,
            reinvite: None,
            answered: VecDeque::new(),
            remove_at: None,
            outbound: None,
            refer: None,
            refer_timed_out: false,
        };
        self.transmits.push_back(call.transmit(trying));
        self.calls.insert(key, call);
        self.by_tx.insert(tx, key);
        self.by_dialog.insert(dialog_key, key);

        let from_display = req
            .from
            .display_name
            .as_deref()
            .map(message::unquote_display)
            .filter(|d| !d.is_empty());
        self.push_event(SipEvent::IncomingCall(IncomingCall {
            key,
            source,
            transport,
            request_uri_user: req.uri.user().map(str::to_string),
            from_user: req.from.uri.user().map(str::to_string),
            from_display,
            to_user: req.to.uri.user().map(str::to_string),
            call_id: req.call_id,
            sdp,
            headers: req.headers,
        }));
    }

    fn find_call_for(&self, req: &InboundRequest) -> Option<CallKey> {
        if let Some(to_tag) = &req.to_tag {
            let dialog = (
                req.call_id.clone(),
                to_tag.clone(),
                req.from_tag.clone().unwrap_or_default(),
            );
            if let Some(key) = self.by_dialog.get(&dialog) {
                return Some(*key);
            }
        }
        None
    }

    fn on_ack(&mut self, now: Instant, req: &InboundRequest) {
        let key = self
            .find_call_for(req)
            .or_else(|| self.by_tx.get(&tx_key(req)).copied());
        let Some(key) = key else {
            tracing::trace!(call_id = %req.call_id, "ACK matches no call; dropped");
            return;
        };
        let t4 = self.config.t4;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.phase {
            Phase::Completed => {
                // ACK for our non-2xx: absorbed by the server transaction (Timer I).
                call.phase = Phase::Terminated;
                self.lingering += 1;
                call.response_retransmit = None;
                call.timer_h = None;
                call.remove_at = Some(if call.transport.is_reliable() {
                    now
                } else {
                    now + t4
                });
            }
            Phase::Accepted if req.cseq == call.invite_cseq => {
                call.phase = Phase::Confirmed;
                call.response_retransmit = None;
                call.timer_h = None;
                let hangup = call.hangup_after_ack;
                self.push_event(SipEvent::CallConfirmed { key });
                if hangup {
                    self.send_bye(now, key);
                }
            }
            _ => {
                if let Some(ri) = call.reinvite.take_if(|ri| ri.cseq == req.cseq)
                    && ri.awaits_answer
                {
                    self.on_ack_answer(key, req);
                }
            }
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        transport: Transport,
        connection: Option<ConnectionId>,
        req: &InboundRequest,
    ) {
        let Some(key) = self.by_tx.get(&tx_key(req)).copied() else {
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                481,
                message::default_reason(481),
                Vec::new(),
            );
            return;
        };
        let server = self.config.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(previous) = call.find_answered(req) {
            // Retransmitted CANCEL: re-send our answer, nothing else.
            let data = previous.response.clone();
            self.send_reply(transport, connection, req.reply.target, data);
            return;
        }
        let ok = message::build_response(
            &req.reply,
            200,
            "OK",
            &server,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                ..Default::default()
            },
        );
        call.remember_answer(req, &ok);
        let cancel_now = call.phase == Phase::Proceeding;
        self.send_reply(transport, connection, req.reply.target, ok);
        if cancel_now {
            self.final_failure(now, key, 487, "Request Terminated");
            self.push_event(SipEvent::CallCancelled { key });
        }
    }

    /// Queues a response for the address it must go to (RFC 3261 §18.2.2 with RFC 3581), on
    /// the connection the request came on when it came over TCP.
    fn send_reply(
        &mut self,
        transport: Transport,
        connection: Option<ConnectionId>,
        destination: SocketAddr,
        data: Vec<u8>,
    ) {
        self.transmits.push_back(Transmit {
            transport,
            destination,
            connection,
            data,
        });
    }

    fn respond_in_call(
        &mut self,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
        status: u16,
        extras: ResponseExtras<'_>,
    ) -> Vec<u8> {
        let Some(call) = self.calls.get(&key) else {
            return Vec::new();
        };
        let data = message::build_response(
            &req.reply,
            status,
            message::default_reason(status),
            &self.config.user_agent,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                ..extras
            },
        );
        if let Some(call) = self.calls.get_mut(&key) {
            call.remember_answer(req, &data);
        }
        self.send_reply(transport, connection, req.reply.target, data.clone());
        data
    }

    fn on_in_dialog(
        &mut self,
        now: Instant,
        transport: Transport,
        connection: Option<ConnectionId>,
        req: &InboundRequest,
    ) {
        let Some(key) = self.find_call_for(req) else {
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                481,
                message::default_reason(481),
                Vec::new(),
            );
            return;
        };
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if let Some(previous) = call.find_answered(req) {
            let data = previous.response.clone();
            self.send_reply(transport, connection, req.reply.target, data);
            return;
        }
        // A retransmitted re-INVITE we already answered.
        if let Some(ri) = &call.reinvite
            && req.method == Method::Invite
            && ri.cseq == req.cseq
            && ri.branch == req.branch
        {
            let data = ri.response.clone();
            self.send_reply(transport, connection, req.reply.target, data);
            return;
        }
        let phase = call.phase;
        if matches!(phase, Phase::Completed | Phase::Terminated) {
            self.respond_stateless(
                transport,
                connection,
                &req.reply,
                481,
                message::default_reason(481),
                Vec::new(),
            );
            return;
        }
        if req.cseq < call.remote_cseq {
            self.respond_in_call(
                key,
                req,
                transport,
                connection,
                500,
                ResponseExtras::default(),
            );
            return;
        }
        if self.reject_required_extensions(transport, connection, req) {
            return;
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.remote_cseq = req.cseq;
        }
        match req.method {
            Method::Bye => self.on_bye(now, key, req, transport, connection),
            Method::Invite => self.on_reinvite(now, key, req, transport, connection),
            Method::Update => self.on_update(now, key, req, transport, connection),
            Method::Options => {
                let data = self.respond_options(transport, connection, &req.reply);
                if let Some(call) = self.calls.get_mut(&key) {
                    call.remember_answer(req, &data);
                }
            }
            Method::Info => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    200,
                    ResponseExtras::default(),
                );
                if let Some(digit) = info_dtmf(req.content_type.as_deref(), &req.body) {
                    self.push_event(SipEvent::Dtmf { key, digit });
                }
            }
            Method::Notify => self.on_notify(now, key, req, transport, connection),
            Method::PRack => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    481,
                    ResponseExtras::default(),
                );
            }
            _ => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    405,
                    ResponseExtras {
                        headers: vec![("Allow", ALLOW.to_string())],
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn on_bye(
        &mut self,
        now: Instant,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) {
        self.respond_in_call(
            key,
            req,
            transport,
            connection,
            200,
            ResponseExtras::default(),
        );
        let linger_transport = transport;
        let remove_at = self.linger(now, linger_transport);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.phase {
            Phase::Proceeding => {
                // BYE on the early dialog (RFC 3261 §15.1.2): 487 the INVITE.
                self.final_failure(now, key, 487, "Request Terminated");
                self.push_event(SipEvent::CallCancelled { key });
            }
            Phase::Accepted | Phase::Confirmed => {
                call.phase = Phase::Terminated;
                self.lingering += 1;
                call.response_retransmit = None;
                call.timer_h = None;
                call.reinvite = None;
                call.remove_at = Some(remove_at);
                // A peer that took our REFER may hang up instead of (or before) notifying.
                let reason = if call.refer.as_ref().is_some_and(transfer::Refer::accepted) {
                    CallEndReason::Transferred
                } else {
                    CallEndReason::RemoteBye
                };
                if !call.end_reported {
                    call.end_reported = true;
                    self.push_event(SipEvent::CallEnded { key, reason });
                }
                self.drop_refer(key);
            }
            Phase::Terminating => {
                // BYE glare: our BYE keeps running until it completes.
                if !call.end_reported {
                    call.end_reported = true;
                    self.push_event(SipEvent::CallEnded {
                        key,
                        reason: CallEndReason::RemoteBye,
                    });
                }
            }
            Phase::Calling | Phase::Completed | Phase::Terminated => {}
        }
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match call.phase {
            Phase::Proceeding => {
                // A second INVITE before we answered the first (RFC 3261 §14.2).
                let retry_after = rand::rng().random_range(0..=10).to_string();
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    500,
                    ResponseExtras {
                        headers: vec![("Retry-After", retry_after)],
                        ..Default::default()
                    },
                );
            }
            Phase::Accepted => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    491,
                    ResponseExtras::default(),
                );
            }
            // Glare: the peer's re-INVITE meets one of ours (RFC 3261 §14.2).
            Phase::Confirmed if call.reinvite.is_some() || call.refresh_invite_pending() => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    491,
                    ResponseExtras::default(),
                );
            }
            Phase::Confirmed => self.on_session_modify(now, key, req, transport, connection),
            Phase::Calling | Phase::Terminating | Phase::Completed | Phase::Terminated => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    481,
                    ResponseExtras::default(),
                );
            }
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        resp: InboundResponse,
        connection: Option<ConnectionId>,
    ) {
        if matches!(resp.cseq_method, Method::Invite | Method::Cancel) {
            if let Some(key) = resp
                .branch
                .as_ref()
                .and_then(|b| self.by_invite_branch.get(b))
                .copied()
            {
                self.on_outbound_response(now, key, resp, connection);
            } else if resp.cseq_method == Method::Invite {
                self.on_refresh_invite_response(now, resp);
            }
            return;
        }
        if resp.cseq_method == Method::Update {
            self.on_refresh_response(now, resp);
            return;
        }
        if resp.cseq_method == Method::Refer {
            self.on_refer_response(resp);
            return;
        }
        if resp.cseq_method != Method::Bye {
            return;
        }
        let Some(branch) = resp.branch else {
            return;
        };
        let Some(key) = self.by_bye_branch.get(&branch).copied() else {
            return;
        };
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.status < 200 {
            if let Some(bye) = &mut call.bye {
                bye.on_provisional(t2);
            }
            return;
        }
        self.by_bye_branch.remove(&branch);
        let transport = call.transport;
        let remove_at = self.linger(now, transport);
        self.finish_bye(key, remove_at);
    }

    /// Our BYE completed (final response or Timer F).
    fn finish_bye(&mut self, key: CallKey, remove_at: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(bye) = call.bye.take() {
            self.by_bye_branch.remove(&bye.branch);
        }
        if call.phase != Phase::Terminated {
            self.lingering += 1;
        }
        call.phase = Phase::Terminated;
        call.remove_at = Some(remove_at);
        if !call.end_reported {
            call.end_reported = true;
            self.push_event(SipEvent::CallEnded {
                key,
                reason: CallEndReason::LocalByeCompleted,
            });
        }
    }

    /// Build and send our BYE (UAS side of the dialog, RFC 3261 §12.2.1.1).
    fn send_bye(&mut self, now: Instant, key: CallKey) {
        let t1 = self.config.t1;
        let Some((transmit, branch)) = self.in_dialog_request(key, Method::Bye, Vec::new()) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(old) = call.bye.take() {
            self.by_bye_branch.remove(&old.branch);
        }
        // A pending refresh re-INVITE stays mapped: its final response still gets its ACK.
        if let Some(refresh) = call.refresh.take()
            && !refresh.invite
        {
            self.by_refresh_branch.remove(&refresh.branch);
        }
        call.timer = None;
        call.phase = Phase::Terminating;
        if let Some(refer) = call.refer.take()
            && let Some(branch) = refer.branch()
        {
            self.by_refer_branch.remove(branch);
        }
        call.bye = Some(ClientTransaction::start(
            branch.clone(),
            transmit.clone(),
            now,
            t1,
        ));
        self.by_bye_branch.insert(branch, key);
        self.transmits.push_back(transmit);
    }

    /// Builds a request inside the dialog (RFC 3261 §12.2.1.1): our next CSeq, through the
    /// route set, to the remote Contact, as a new transaction. Returns it with its branch.
    fn in_dialog_request(
        &mut self,
        key: CallKey,
        method: Method,
        headers: Vec<(&'static str, String)>,
    ) -> Option<(Transmit, String)> {
        self.dialog_request(
            key,
            DialogRequest {
                method,
                headers,
                cseq: None,
                branch: None,
                sdp: None,
            },
        )
    }

    /// [`in_dialog_request`](Self::in_dialog_request) with everything that can vary: a given
    /// CSeq number (the ACK of an INVITE), a given branch (the ACK of a non-2xx, inside the
    /// INVITE transaction), an SDP body.
    fn dialog_request(
        &mut self,
        key: CallKey,
        spec: DialogRequest<'_>,
    ) -> Option<(Transmit, String)> {
        let DialogRequest {
            method,
            headers,
            cseq,
            branch,
            sdp,
        } = spec;
        let contact = self.contact_uri_for_key(key).unwrap_or_default();
        let contact_host = self.config.contact_host.clone();
        let (udp_port, tls_port) = (self.config.contact_port, self.config.contact_port_tls);
        let user_agent = self.config.user_agent.clone();
        let call = self.calls.get_mut(&key)?;
        let cseq = match cseq {
            Some(cseq) => cseq,
            None => {
                call.local_cseq = call.local_cseq.saturating_add(1);
                call.local_cseq
            }
        };
        let first_route = call
            .route_set
            .first()
            .and_then(|r| message::name_addr_uri(r));
        let (request_uri, routes, next_hop) = match first_route {
            None => (
                call.remote_target.clone(),
                Vec::new(),
                call.remote_target.clone(),
            ),
            Some(first) if message::uri_has_lr(&first) => {
                (call.remote_target.clone(), call.route_set.clone(), first)
            }
            Some(first) => {
                // Strict routing (RFC 3261 §12.2.1.1): first route becomes the Request-URI.
                let mut routes: Vec<String> = call.route_set.iter().skip(1).cloned().collect();
                routes.push(format!("<{}>", call.remote_target));
                (first.clone(), routes, first)
            }
        };
        let transport = message::uri_transport(&next_hop).unwrap_or(call.transport);
        let destination = message::uri_socket_addr(&next_hop).unwrap_or(call.source);
        let connection = if transport == call.transport {
            call.connection
        } else {
            None
        };
        let contact_port = if transport == Transport::Tls {
            tls_port
        } else {
            udp_port
        };
        let branch = branch.unwrap_or_else(new_branch);
        let host = if contact_host.contains(':') && !contact_host.starts_with('[') {
            format!("[{contact_host}]")
        } else {
            contact_host
        };
        let data = message::build_request(&OutboundRequest {
            method,
            request_uri: &request_uri,
            via: format!(
                "SIP/2.0/{} {}:{};branch={};rport",
                transport.via_token(),
                host,
                contact_port,
                branch
            ),
            routes: &routes,
            from: format!("{};tag={}", call.local_identity, call.local_tag),
            to: &call.remote_identity,
            call_id: &call.call_id,
            cseq,
            contact: Some(&contact),
            user_agent: &user_agent,
            headers,
            extra_headers: &[],
            content_type: sdp.map(|_| "application/sdp"),
            body: sdp.unwrap_or("").as_bytes(),
        });
        Some((
            Transmit {
                transport,
                destination,
                connection,
                data,
            },
            branch,
        ))
    }

    fn run_call_timers(&mut self, now: Instant, key: CallKey) {
        self.run_outbound_timers(now, key);
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };

        // The application never answered.
        if call.phase == Phase::Proceeding && call.answer_deadline.is_some_and(|d| d <= now) {
            tracing::warn!(key = ?call.key, call_id = %call.call_id, "INVITE never answered; sending 480");
            self.final_failure(now, key, 480, "Temporarily Unavailable");
            self.events.push_back(SipEvent::CallCancelled { key });
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };

        // Timer G / 2xx retransmission.
        if let Some(r) = &mut call.response_retransmit
            && r.at <= now
        {
            r.interval = (r.interval * 2).min(t2);
            r.at = now + r.interval;
            let transmit = call.transmit(call.last_response.clone());
            self.transmits.push_back(transmit);
        }

        // Re-INVITE 2xx retransmission and give-up.
        if let Some(ri) = &mut call.reinvite {
            if ri.give_up_at <= now {
                tracing::debug!(key = ?call.key, "no ACK for re-INVITE 200; keeping the call");
                call.reinvite = None;
            } else if let Some(r) = &mut ri.retransmit
                && r.at <= now
            {
                r.interval = (r.interval * 2).min(t2);
                r.at = now + r.interval;
                let data = ri.response.clone();
                let transmit = call.transmit(data);
                self.transmits.push_back(transmit);
            }
        }

        // Timer H.
        if call.timer_h.is_some_and(|h| h <= now) {
            call.timer_h = None;
            call.response_retransmit = None;
            match call.phase {
                Phase::Accepted => {
                    tracing::warn!(key = ?call.key, call_id = %call.call_id, "no ACK for 200 OK (Timer H); sending BYE");
                    if !call.end_reported {
                        call.end_reported = true;
                        self.push_event(SipEvent::CallEnded {
                            key,
                            reason: CallEndReason::AckTimeout,
                        });
                    }
                    self.send_bye(now, key);
                }
                Phase::Completed => {
                    call.phase = Phase::Terminated;
                    self.lingering += 1;
                    call.remove_at = Some(now);
                }
                _ => {}
            }
        }

        self.run_session_timer(now, key);
        self.run_refer_timers(now, key);

        // BYE client transaction: timer E and F.
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.bye.as_mut().map(|bye| bye.poll(now, t2)) {
            Some(ClientDue::TimedOut) => {
                tracing::debug!(key = ?call.key, "BYE timed out (Timer F)");
                self.finish_bye(key, now);
            }
            Some(ClientDue::Resend(transmit)) => self.transmits.push_back(transmit),
            Some(ClientDue::Nothing) | None => {}
        }

        // Cleanup.
        if self
            .calls
            .get(&key)
            .and_then(|c| c.remove_at)
            .is_some_and(|at| at <= now)
        {
            self.remove_call(key);
        }
    }

    fn remove_call(&mut self, key: CallKey) {
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        if call.phase == Phase::Terminated {
            self.lingering = self.lingering.saturating_sub(1);
        }
        if self.by_tx.get(&call.tx_key) == Some(&key) {
            self.by_tx.remove(&call.tx_key);
        }
        if self.by_dialog.get(&call.dialog_key) == Some(&key) {
            self.by_dialog.remove(&call.dialog_key);
        }
        if let Some(bye) = &call.bye {
            self.by_bye_branch.remove(&bye.branch);
        }
        if let Some(refresh) = &call.refresh {
            self.by_refresh_branch.remove(&refresh.branch);
        }
        for invite in &call.refresh_invites {
            self.by_refresh_branch.remove(&invite.branch);
        }
        if let Some(branch) = call.refer.as_ref().and_then(transfer::Refer::branch) {
            self.by_refer_branch.remove(branch);
        }
        if let Some(out) = &call.outbound {
            for branch in &out.branches {
                self.by_invite_branch.remove(branch);
            }
        }
    }
}
