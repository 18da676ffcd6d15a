//! Calls we place (UAC): the INVITE client transaction (RFC 3261 §17.1.1), digest
//! authentication on 401/407 (RFC 3261 §22.2, RFC 7616, RFC 8760), early media in any 1xx,
//! ACK for 2xx (a new transaction through the route set, §13.2.2.4) and for non-2xx (inside the
//! INVITE transaction, §17.1.1.3), and CANCEL on ring timeout or hang-up (§9.1), including the
//! race with a 2xx (ACK then BYE).
//!
//! Once answered, the call is an ordinary confirmed dialog of the [`Call`] machinery: BYE either
//! way, re-INVITE and UPDATE from the peer, session timers.

use super::*;
use crate::digest::{self, DigestChallenge, DigestCredentials};
use crate::session_timer::Refresher;

/// A call to place through a trunk (see [`SipEndpoint::place_call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    /// Request-URI, e.g. `sip:+919876543210@pstn.in2.exotel.com`; the To URI is this URI's host
    /// with [`to_user`](Self::to_user).
    pub request_uri: String,
    /// Where the INVITE goes (the trunk's address, already resolved).
    pub destination: SocketAddr,
    /// Transport to the trunk.
    pub transport: Transport,
    /// User part of our From (the caller id, e.g. `+15108675309`); the host is our contact host.
    pub from_user: String,
    /// From display name, if any.
    pub from_display: Option<String>,
    /// User part of the To URI (normally the dialled number).
    pub to_user: String,
    /// Our offer, from [`SdpSession::offer_initial`]; the endpoint keeps the session.
    pub sdp: SdpSession,
    /// Further headers for the INVITE (e.g. `X-` headers, `P-Asserted-Identity`). Headers the
    /// endpoint writes itself (Via, From, To, Call-ID, CSeq, Contact, Route, Content-*,
    /// Authorization …) and names that are not tokens are left out.
    pub extra_headers: Vec<(String, String)>,
    /// Credentials to answer one digest challenge (401/407) with; `None` fails on a challenge.
    pub credentials: Option<DigestCredentials>,
    /// Without a final response this long after the INVITE, the endpoint sends CANCEL and the
    /// call fails with [`OutboundFailure::NoAnswer`].
    pub ring_timeout: Duration,
    /// For [`Transport::Tls`]: the trust roots and the name to verify the trunk's certificate
    /// against (and send as SNI). The [driver](crate::driver) needs it to open the connection;
    /// the sans-IO endpoint does not use it.
    pub tls: Option<crate::tls::OutboundTls>,
}

/// Why a call we placed did not get answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundFailure {
    /// The callee is busy (486, 600).
    Busy,
    /// Nobody answered: 408, 480, or the ring timeout ran out and we cancelled.
    NoAnswer,
    /// The trunk or callee refused the call (401/407 we could not answer, 403, 404, 603 …).
    Rejected,
    /// We cancelled the call before it was answered ([`SipEndpoint::hangup`]).
    Cancelled,
    /// Anything else: other 3xx–6xx, no response at all (Timer B), an unusable answer.
    Failed,
}

impl OutboundFailure {
    /// How a final status of the INVITE is reported when we did not cancel it.
    pub fn from_status(status: u16) -> Self {
        match status {
            486 | 600 => OutboundFailure::Busy,
            408 | 480 => OutboundFailure::NoAnswer,
            401 | 403 | 404 | 405 | 407 | 410 | 484 | 485 | 603 | 604 => OutboundFailure::Rejected,
            _ => OutboundFailure::Failed,
        }
    }

    /// A short name for logs and stored outcomes: `busy`, `no_answer`, `rejected`,
    /// `cancelled`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundFailure::Busy => "busy",
            OutboundFailure::NoAnswer => "no_answer",
            OutboundFailure::Rejected => "rejected",
            OutboundFailure::Cancelled => "cancelled",
            OutboundFailure::Failed => "failed",
        }
    }
}

/// Our CANCEL client transaction (non-INVITE: timers E and F).
#[derive(Debug)]
struct CancelTransaction {
    transmit: Transmit,
    retransmit: Option<Retransmit>,
}

/// The UAC side of a call we placed.
#[derive(Debug)]
pub(super) struct Outbound {
    request_uri: rsip::Uri,
    /// The To value of our requests until the dialog exists (no tag).
    to: String,
    extra_headers: Vec<(String, String)>,
    credentials: Option<DigestCredentials>,
    /// `(header name, value)` of the credentials in the current INVITE.
    authorization: Option<(&'static str, String)>,
    challenged: bool,
    /// Branch and CSeq of the current INVITE (a challenge starts a new one).
    branch: String,
    cseq: u32,
    invite: Transmit,
    /// Timer A (UDP only).
    timer_a: Option<Retransmit>,
    /// Timer B.
    timer_b: Option<Instant>,
    ring_deadline: Option<Instant>,
    provisional_seen: bool,
    /// We want the INVITE cancelled, and why; the CANCEL waits for a provisional response.
    cancel_reason: Option<OutboundFailure>,
    cancel: Option<CancelTransaction>,
    /// Give up on the INVITE this long after asking for the CANCEL (64×T1).
    give_up_at: Option<Instant>,
    /// ACKs we sent for non-2xx final responses, by INVITE branch (re-sent on retransmissions).
    failure_acks: Vec<(String, Transmit)>,
    /// The ACK of the 2xx (re-sent on retransmitted 2xx).
    ack: Option<Transmit>,
    /// The peer's tag in the 2xx we took.
    answered_tag: Option<String>,
    /// Early media arrived: the session holds an answer even when the 2xx has none.
    early_answer: bool,
    /// Every INVITE branch of the call (to unmap them when the call goes).
    pub(super) branches: Vec<String>,
}

impl Outbound {
    /// The earliest of this call's UAC timers.
    pub(super) fn deadline(&self) -> Option<Instant> {
        [
            self.timer_a.map(|r| r.at),
            self.timer_b,
            self.ring_deadline,
            self.give_up_at,
            self.cancel
                .as_ref()
                .and_then(|c| c.retransmit.map(|r| r.at)),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

fn bracket_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn quote_display(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n' | '\0'))
        .collect();
    format!("\"{cleaned}\"")
}

/// A user part is kept to characters that need no escaping (RFC 3261 §25.1 `user`).
fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b))
}

/// A `sip:`/`sips:` URI with a host and nothing that would need escaping on the request line.
fn parse_request_uri(text: &str) -> Result<rsip::Uri, SipError> {
    let invalid = |why: &str| SipError::InvalidOutboundCall(format!("request URI {text:?}: {why}"));
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return Err(invalid("not a sip: or sips: URI"));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return Err(invalid("contains characters that need escaping"));
    }
    let uri = rsip::Uri::try_from(text).map_err(|e| invalid(&e.to_string()))?;
    if uri.host_with_port.host.to_string().is_empty() {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

impl SipEndpoint {
    /// Place a call: send the INVITE with our offer and run its client transaction. Progress
    /// follows as [`SipEvent::OutboundProgress`], then either [`SipEvent::OutboundAnswered`]
    /// (the call is then a confirmed dialog like an inbound one: [`hangup`](Self::hangup), BYE
    /// from the peer, re-INVITEs and session timers work the same) or
    /// [`SipEvent::OutboundFailed`]. [`hangup`](Self::hangup) before the answer cancels.
    pub fn place_call(&mut self, now: Instant, call: OutboundCall) -> Result<CallKey, SipError> {
        if self.call_table_full() {
            return Err(SipError::TooManyCalls);
        }
        let request_uri = parse_request_uri(&call.request_uri)?;
        if !valid_user(&call.from_user) {
            return Err(SipError::InvalidOutboundCall(format!(
                "from_user {:?} is empty or needs escaping",
                call.from_user
            )));
        }
        if !valid_user(&call.to_user) {
            return Err(SipError::InvalidOutboundCall(format!(
                "to_user {:?} is empty or needs escaping",
                call.to_user
            )));
        }
        let host = bracket_host(&self.config.contact_host);
        let local_identity = match &call.from_display {
            Some(display) if !display.trim().is_empty() => format!(
                "{} <sip:{}@{host}>",
                quote_display(display.trim()),
                call.from_user
            ),
            _ => format!("<sip:{}@{host}>", call.from_user),
        };
        let to = format!("<sip:{}@{}>", call.to_user, request_uri.host_with_port);
        let key = CallKey(self.next_key);
        self.next_key += 1;
        let local_tag = random_token(12);
        let call_id = format!("{}@vaani", random_token(24));
        let cseq = rand::rng().random_range(1..=1_000_000);
        let branch = new_branch();
        let reply = ReplyContext {
            vias: Vec::new(),
            from: None,
            to: None,
            to_has_tag: false,
            call_id: Some(call_id.clone()),
            cseq: None,
            target: call.destination,
        };
        let outbound = Outbound {
            request_uri: request_uri.clone(),
            to: to.clone(),
            extra_headers: call.extra_headers,
            credentials: call.credentials,
            authorization: None,
            challenged: false,
            branch: branch.clone(),
            cseq,
            invite: Transmit {
                transport: call.transport,
                destination: call.destination,
                connection: None,
                data: Vec::new(),
            },
            timer_a: None,
            timer_b: None,
            ring_deadline: Some(now + call.ring_timeout),
            provisional_seen: false,
            cancel_reason: None,
            cancel: None,
            give_up_at: None,
            failure_acks: Vec::new(),
            ack: None,
            answered_tag: None,
            early_answer: false,
            branches: vec![branch.clone()],
        };
        let entry = Call {
            key,
            transport: call.transport,
            source: call.destination,
            connection: None,
            reply,
            tx_key: (format!("uac|{branch}"), String::new()),
            dialog_key: (call_id.clone(), local_tag.clone(), String::new()),
            call_id,
            local_tag,
            remote_identity: to,
            local_identity,
            invite_cseq: cseq,
            route_set: Vec::new(),
            remote_target: request_uri,
            remote_cseq: 0,
            local_cseq: cseq,
            phase: Phase::Calling,
            last_response: Vec::new(),
            response_retransmit: None,
            timer_h: None,
            answer_deadline: None,
            sdp: Some(call.sdp),
            timer_negotiation: Negotiation::Off,
            timer: None,
            refresh: None,
            refresh_by_invite: false,
            refresh_invites: VecDeque::new(),
            hangup_after_ack: false,
            end_reported: false,
            bye: None,
            reinvite: None,
            answered: VecDeque::new(),
            remove_at: None,
            outbound: Some(Box::new(outbound)),
            refer: None,
            refer_timed_out: false,
        };
        self.calls.insert(key, entry);
        self.by_invite_branch.insert(branch, key);
        self.send_invite(now, key);
        Ok(key)
    }

    /// The driver could not open (or secure) a connection to `destination` over `transport`:
    /// every call still sending its first INVITE there, with no connection yet, fails at once
    /// as `503` with `reason` (RFC 3261 §8.1.3.1: a transport error counts as 503), instead of
    /// at Timer B.
    pub fn connection_failed(
        &mut self,
        now: Instant,
        transport: Transport,
        destination: SocketAddr,
        reason: &str,
    ) {
        let failed: Vec<(CallKey, OutboundFailure)> = self
            .calls
            .values()
            .filter(|call| {
                call.phase == Phase::Calling
                    && call.transport == transport
                    && call.connection.is_none()
            })
            .filter_map(|call| {
                let out = call.outbound.as_deref()?;
                (out.invite.destination == destination).then(|| {
                    (
                        call.key,
                        out.cancel_reason.unwrap_or(OutboundFailure::Failed),
                    )
                })
            })
            .collect();
        for (key, failure) in failed {
            self.fail_outbound(now, key, 503, reason.to_string(), failure, false);
        }
    }

    /// The Via we put on a request with this branch.
    fn our_via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            transport.via_token(),
            bracket_host(&self.config.contact_host),
            self.contact_port(transport)
        )
    }

    /// Builds the call's current INVITE, sends it and starts timers A and B.
    fn send_invite(&mut self, now: Instant, key: CallKey) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(out) = call.outbound.as_deref() else {
            return;
        };
        let contact = self.contact_uri(call.transport);
        let via = self.our_via(call.transport, &out.branch);
        let mut headers = vec![
            ("Allow", ALLOW.to_string()),
            ("Supported", message::SUPPORTED.to_string()),
        ];
        if let Some((name, value)) = &out.authorization {
            headers.push((name, value.clone()));
        }
        let body = call
            .sdp
            .as_ref()
            .map(|s| s.local_sdp().to_string())
            .unwrap_or_default();
        let data = message::build_request(&OutboundRequest {
            method: Method::Invite,
            request_uri: &out.request_uri,
            via,
            routes: &[],
            from: format!("{};tag={}", call.local_identity, call.local_tag),
            to: &out.to,
            call_id: &call.call_id,
            cseq: out.cseq,
            contact: Some(&contact),
            user_agent: &self.config.user_agent,
            headers,
            extra_headers: &out.extra_headers,
            content_type: Some("application/sdp"),
            body: body.as_bytes(),
        });
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let reliable = call.transport.is_reliable();
        let connection = call.connection;
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        out.invite.data = data;
        out.invite.connection = connection;
        out.timer_a = (!reliable).then_some(Retransmit {
            at: now + t1,
            interval: t1,
        });
        out.timer_b = Some(now + t1 * 64);
        out.provisional_seen = false;
        let transmit = out.invite.clone();
        self.transmits.push_back(transmit);
    }

    /// A request inside the INVITE transaction (ACK of a non-2xx, CANCEL): the INVITE's branch
    /// and Request-URI, From and Call-ID, CSeq number and the given To.
    fn invite_transaction_request(
        &self,
        call: &Call,
        out: &Outbound,
        method: Method,
        to: &str,
    ) -> Transmit {
        let data = message::build_request(&OutboundRequest {
            method,
            request_uri: &out.request_uri,
            via: self.our_via(call.transport, &out.branch),
            routes: &[],
            from: format!("{};tag={}", call.local_identity, call.local_tag),
            to,
            call_id: &call.call_id,
            cseq: out.cseq,
            contact: None,
            user_agent: &self.config.user_agent,
            headers: Vec::new(),
            extra_headers: &[],
            content_type: None,
            body: &[],
        });
        Transmit {
            data,
            ..out.invite.clone()
        }
    }

    /// Cancel the INVITE of a call still ringing: now if a provisional response has arrived,
    /// else as soon as one does (RFC 3261 §9.1). Gives up 64×T1 later.
    pub(super) fn cancel_outbound(&mut self, now: Instant, key: CallKey, reason: OutboundFailure) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase != Phase::Calling {
            return;
        }
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        if out.cancel_reason.is_some() {
            return;
        }
        out.cancel_reason = Some(reason);
        out.ring_deadline = None;
        out.give_up_at = Some(now + t1 * 64);
        if out.provisional_seen {
            self.send_cancel(now, key);
        }
    }

    fn send_cancel(&mut self, now: Instant, key: CallKey) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(out) = call.outbound.as_deref() else {
            return;
        };
        if out.cancel.is_some() {
            return;
        }
        let transmit = self.invite_transaction_request(call, out, Method::Cancel, &out.to);
        let Some(out) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.outbound.as_deref_mut())
        else {
            return;
        };
        out.cancel = Some(CancelTransaction {
            transmit: transmit.clone(),
            retransmit: (!transmit.transport.is_reliable()).then_some(Retransmit {
                at: now + t1,
                interval: t1,
            }),
        });
        self.transmits.push_back(transmit);
    }

    /// The INVITE ended without an answer: report it and keep the call only to absorb
    /// retransmissions of the final response (Timer D) unless `quiet`.
    fn fail_outbound(
        &mut self,
        now: Instant,
        key: CallKey,
        status: u16,
        reason_phrase: String,
        reason: OutboundFailure,
        linger: bool,
    ) {
        let remove_at = if linger {
            self.linger(
                now,
                self.calls.get(&key).map_or(Transport::Tcp, |c| c.transport),
            )
        } else {
            now
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase != Phase::Terminated {
            self.lingering += 1;
        }
        call.phase = Phase::Terminated;
        call.remove_at = Some(remove_at);
        call.end_reported = true;
        if let Some(out) = call.outbound.as_deref_mut() {
            out.timer_a = None;
            out.timer_b = None;
            out.ring_deadline = None;
            out.give_up_at = None;
            out.cancel = None;
        }
        tracing::info!(?key, status, %reason_phrase, ?reason, "outbound call failed");
        self.push_event(SipEvent::OutboundFailed {
            key,
            status,
            reason_phrase,
            reason,
        });
    }

    /// A response whose top Via carries one of our INVITE branches (to the INVITE or CANCEL).
    pub(super) fn on_outbound_response(
        &mut self,
        now: Instant,
        key: CallKey,
        resp: InboundResponse,
        connection: Option<ConnectionId>,
    ) {
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.call_id != call.call_id {
            tracing::debug!(
                ?key,
                "response with our branch but another Call-ID; dropped"
            );
            return;
        }
        if call.transport.is_reliable() && call.connection.is_none() {
            call.connection = connection;
        }
        let phase = call.phase;
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        let branch = resp.branch.clone().unwrap_or_default();
        if resp.cseq_method == Method::Cancel {
            if branch == out.branch
                && let Some(cancel) = &mut out.cancel
            {
                if resp.status >= 200 {
                    cancel.retransmit = None;
                } else if let Some(r) = &mut cancel.retransmit {
                    r.interval = t2;
                }
            }
            return;
        }
        if resp.cseq_method != Method::Invite {
            return;
        }
        if branch != out.branch {
            // A retransmitted final response to an INVITE we already re-sent with credentials.
            if resp.status >= 300
                && let Some((_, ack)) = out.failure_acks.iter().find(|(b, _)| *b == branch)
            {
                let ack = ack.clone();
                self.transmits.push_back(ack);
            }
            return;
        }
        if resp.cseq != out.cseq {
            return;
        }
        match resp.status {
            100..=199 => {
                if phase != Phase::Calling {
                    return;
                }
                out.timer_a = None;
                out.timer_b = None;
                let first = !out.provisional_seen;
                out.provisional_seen = true;
                let cancel_now = first && out.cancel_reason.is_some();
                let media = if resp.body.is_empty() {
                    None
                } else {
                    self.take_answer(key, &resp)
                };
                if cancel_now {
                    self.send_cancel(now, key);
                }
                self.push_event(SipEvent::OutboundProgress {
                    key,
                    status: resp.status,
                    media,
                });
            }
            200..=299 => self.on_outbound_success(now, key, resp),
            _ => self.on_outbound_failure(now, key, resp),
        }
    }

    /// Takes an SDP answer from a 1xx or 2xx; `None` (and the session unchanged) if unusable.
    fn take_answer(&mut self, key: CallKey, resp: &InboundResponse) -> Option<NegotiatedMedia> {
        if !is_sdp_content_type(resp.content_type.as_deref()) {
            return None;
        }
        let call = self.calls.get_mut(&key)?;
        let answer = String::from_utf8_lossy(&resp.body);
        let sdp = call.sdp.as_mut()?;
        match sdp.accept_answer(&answer) {
            Ok(media) => {
                let media = media.clone();
                if let Some(out) = call.outbound.as_deref_mut() {
                    out.early_answer = true;
                }
                Some(media)
            }
            Err(error) => {
                tracing::info!(?key, status = resp.status, "unusable SDP answer: {error}");
                None
            }
        }
    }

    fn on_outbound_success(&mut self, now: Instant, key: CallKey, resp: InboundResponse) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        if call.phase != Phase::Calling {
            // A retransmitted 2xx: the same ACK again. A 2xx from another fork is ignored.
            if let Some(ack) = &out.ack
                && resp.to_tag == out.answered_tag
            {
                let ack = ack.clone();
                self.transmits.push_back(ack);
            }
            return;
        }
        // The dialog (RFC 3261 §12.1.2).
        let remote_tag = resp.to_tag.clone().unwrap_or_default();
        out.timer_a = None;
        out.timer_b = None;
        out.ring_deadline = None;
        out.give_up_at = None;
        out.cancel = None;
        out.answered_tag = resp.to_tag.clone();
        let cancel_reason = out.cancel_reason;
        let authorization = out.authorization.clone();
        call.remote_identity = resp.to_raw.clone();
        call.route_set = resp.record_route.iter().rev().cloned().collect();
        if let Some(contact) = &resp.contact {
            call.remote_target = contact.clone();
        }
        // A callee whose Allow lacks UPDATE gets our session refreshes as re-INVITEs.
        call.refresh_by_invite = !modify::allows_update(&resp.headers);
        call.invite_cseq = out.cseq;
        call.local_cseq = out.cseq;
        call.phase = Phase::Confirmed;
        let dialog_key = (call.call_id.clone(), call.local_tag.clone(), remote_tag);
        self.by_dialog.remove(&call.dialog_key);
        call.dialog_key = dialog_key.clone();
        self.by_dialog.insert(dialog_key, key);

        // The ACK: a new transaction with the INVITE's CSeq number (§13.2.2.4).
        let cseq = call.invite_cseq;
        let Some((ack, _)) = self.dialog_request(
            key,
            DialogRequest {
                method: Method::Ack,
                headers: authorization.into_iter().collect(),
                cseq: Some(cseq),
                branch: None,
                sdp: None,
            },
        ) else {
            return;
        };
        if let Some(out) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.outbound.as_deref_mut())
        {
            out.ack = Some(ack.clone());
        }
        self.transmits.push_back(ack);

        if let Some(reason) = cancel_reason {
            // Answered after our CANCEL: ACK then BYE (RFC 3261 §15).
            tracing::info!(?key, "2xx after our CANCEL; sending BYE");
            if let Some(call) = self.calls.get_mut(&key) {
                call.end_reported = true;
            }
            self.send_bye(now, key);
            self.push_event(SipEvent::OutboundFailed {
                key,
                status: resp.status,
                reason_phrase: "Answered after CANCEL".to_string(),
                reason,
            });
            return;
        }
        let media = if resp.body.is_empty() {
            None
        } else {
            self.take_answer(key, &resp)
        };
        let media = media.or_else(|| {
            let call = self.calls.get(&key)?;
            let early = call.outbound.as_deref().is_some_and(|o| o.early_answer);
            early.then(|| call.sdp.as_ref().map(|s| s.negotiated().clone()))?
        });
        let Some(media) = media else {
            tracing::warn!(?key, "2xx without a usable SDP answer; hanging up");
            if let Some(call) = self.calls.get_mut(&key) {
                call.end_reported = true;
            }
            self.send_bye(now, key);
            self.push_event(SipEvent::OutboundFailed {
                key,
                status: 488,
                reason_phrase: "No usable SDP answer".to_string(),
                reason: OutboundFailure::Failed,
            });
            return;
        };
        // Session timer of the 2xx (RFC 4028 §7.2). In the 2xx, `uac` names us.
        let agreed = TimerRequest::read(&resp.headers);
        if let (Some(call), Some(interval)) = (self.calls.get_mut(&key), agreed.session_expires) {
            let ours = match agreed.refresher {
                Some(Refresher::Uas) => Refresher::Uac,
                Some(Refresher::Uac) | None => Refresher::Uas,
            };
            call.timer = Some(SessionTimer::start(now, interval, ours));
        }
        self.push_event(SipEvent::OutboundAnswered { key, media });
    }

    fn on_outbound_failure(&mut self, now: Instant, key: CallKey, resp: InboundResponse) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(out) = call.outbound.as_deref() else {
            return;
        };
        // ACK it inside the INVITE transaction (RFC 3261 §17.1.1.3), on every retransmission.
        if let Some((_, ack)) = out.failure_acks.iter().find(|(b, _)| *b == out.branch) {
            let ack = ack.clone();
            self.transmits.push_back(ack);
            return;
        }
        let ack = self.invite_transaction_request(call, out, Method::Ack, &resp.to_raw);
        let phase = call.phase;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        out.failure_acks.push((out.branch.clone(), ack.clone()));
        self.transmits.push_back(ack);
        if phase != Phase::Calling {
            return;
        }
        if matches!(resp.status, 401 | 407)
            && !out.challenged
            && out.cancel_reason.is_none()
            && let Some(credentials) = out.credentials.clone()
        {
            let (challenge_header, auth_header) = if resp.status == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            let challenge = resp
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(challenge_header))
                .find_map(|(_, v)| DigestChallenge::parse(v).ok());
            if let Some(challenge) = challenge {
                let uri = out.request_uri.to_string();
                let value = digest::authorization(
                    &challenge,
                    &credentials,
                    "INVITE",
                    &uri,
                    &random_token(16),
                );
                out.challenged = true;
                out.authorization = Some((auth_header, value));
                out.cseq = out.cseq.saturating_add(1);
                out.branch = new_branch();
                out.branches.push(out.branch.clone());
                let branch = out.branch.clone();
                call.invite_cseq = out.cseq;
                call.local_cseq = out.cseq;
                self.by_invite_branch.insert(branch, key);
                self.send_invite(now, key);
                return;
            }
            tracing::info!(?key, status = resp.status, "no usable digest challenge");
        }
        let reason = match out.cancel_reason {
            Some(reason) if resp.status == 487 => reason,
            _ => OutboundFailure::from_status(resp.status),
        };
        self.fail_outbound(now, key, resp.status, resp.reason, reason, true);
    }

    /// Timers of a call we placed: A (INVITE retransmission), B, the ring timeout, the CANCEL's
    /// retransmission and the give-up after CANCEL.
    pub(super) fn run_outbound_timers(&mut self, now: Instant, key: CallKey) {
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase != Phase::Calling {
            return;
        }
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        if let Some(r) = &mut out.timer_a
            && r.at <= now
        {
            // Timer A doubles without the T2 cap (RFC 3261 §17.1.1.2).
            r.interval *= 2;
            r.at = now + r.interval;
            self.transmits.push_back(out.invite.clone());
        }
        if let Some(cancel) = &mut out.cancel
            && let Some(r) = &mut cancel.retransmit
            && r.at <= now
        {
            r.interval = (r.interval * 2).min(t2);
            r.at = now + r.interval;
            self.transmits.push_back(cancel.transmit.clone());
        }
        if out.timer_b.is_some_and(|b| b <= now) {
            let reason = out.cancel_reason.unwrap_or(OutboundFailure::Failed);
            self.fail_outbound(now, key, 408, "Request Timeout".to_string(), reason, false);
            return;
        }
        if out.give_up_at.is_some_and(|at| at <= now) {
            let reason = out.cancel_reason.unwrap_or(OutboundFailure::NoAnswer);
            self.fail_outbound(
                now,
                key,
                408,
                "No final response after CANCEL".to_string(),
                reason,
                false,
            );
            return;
        }
        if out.ring_deadline.is_some_and(|at| at <= now) {
            tracing::info!(?key, "ring timeout; cancelling the INVITE");
            self.cancel_outbound(now, key, OutboundFailure::NoAnswer);
        }
    }
}
