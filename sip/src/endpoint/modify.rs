//! Changing an answered call: re-INVITE and UPDATE with and without an offer (RFC 3261 §14,
//! RFC 3311), hold and resume (RFC 3264 §8.4), and session-timer refreshes both ways (RFC 4028).
//!
//! When we are the refresher we send UPDATE without SDP at half the interval. A peer that does
//! not take UPDATE (its `Allow` lacks it, or it answers 405/501) gets a re-INVITE instead,
//! carrying the SDP we sent last as an unchanged offer (same `o=` version), for the rest of the
//! call (RFC 4028 §7.4, §9). Its 2xx and non-2xx are ACKed; 491 is retried after the random
//! wait of RFC 3261 §14.1; 408/481 or no answer end the call; other refusals keep it and try
//! again at the next half interval. While our re-INVITE is pending, the peer's re-INVITE or
//! UPDATE with an offer gets 491 (glare).

use super::*;
use crate::session_timer::Refresher;

/// How many of our refresh re-INVITEs a call remembers to ACK their (retransmitted) finals.
const REFRESH_INVITE_MEMORY: usize = 4;

/// Whether a peer takes UPDATE, from the `Allow` headers of its INVITE or 2xx: no `Allow` at
/// all says nothing (we try UPDATE and fall back on 405/501).
pub(super) fn allows_update(headers: &[(String, String)]) -> bool {
    let mut allow = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Allow"))
        .flat_map(|(_, value)| message::split_header_list(value))
        .peekable();
    if allow.peek().is_none() {
        return true;
    }
    allow.any(|method| method.eq_ignore_ascii_case("UPDATE"))
}

/// One of our session-refresh re-INVITEs: enough to ACK its final response (RFC 3261
/// §13.2.2.4 for a 2xx, §17.1.1.3 for the rest), and the ACK once sent.
#[derive(Debug)]
pub(super) struct RefreshInvite {
    pub(super) branch: String,
    cseq: u32,
    ack: Option<Transmit>,
}

/// The `Session-Expires` (and, when the caller refreshes, `Require: timer`) headers of a 2xx.
pub(super) fn timer_headers(interval: u32, refresher: Refresher) -> Vec<(&'static str, String)> {
    let mut headers = vec![(
        "Session-Expires",
        session_timer::header_value(interval, refresher),
    )];
    if refresher == Refresher::Uac {
        headers.push(("Require", "timer".to_string()));
    }
    headers
}

fn whole_seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

impl SipEndpoint {
    /// What a request's session-timer headers call for, under our configuration.
    pub(super) fn negotiate_timer(&self, headers: &[(String, String)]) -> Negotiation {
        session_timer::negotiate(
            &TimerRequest::read(headers),
            whole_seconds(self.config.session_expires),
            whole_seconds(self.config.min_se),
        )
    }

    /// A re-INVITE in a confirmed dialog with no other re-INVITE pending.
    pub(super) fn on_session_modify(
        &mut self,
        now: Instant,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) {
        self.modify_session(now, key, req, transport, connection);
    }

    /// An UPDATE: a session refresh, or a new offer, without touching the INVITE state.
    pub(super) fn on_update(
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
            // Glare: an offer of the peer's while our refresh re-INVITE's offer is pending
            // (RFC 3311 §5.2).
            Phase::Confirmed if !req.body.is_empty() && call.refresh_invite_pending() => {
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    491,
                    ResponseExtras::default(),
                );
            }
            Phase::Accepted | Phase::Confirmed => {
                self.modify_session(now, key, req, transport, connection)
            }
            Phase::Proceeding => {
                // We send no SDP before the 2xx, so there is no early session to change.
                self.respond_in_call(
                    key,
                    req,
                    transport,
                    connection,
                    491,
                    ResponseExtras::default(),
                );
            }
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

    fn modify_session(
        &mut self,
        now: Instant,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) {
        let is_invite = req.method == Method::Invite;
        if !req.body.is_empty() && !is_sdp_content_type(req.content_type.as_deref()) {
            self.respond_in_call(
                key,
                req,
                transport,
                connection,
                415,
                ResponseExtras {
                    headers: vec![("Accept", "application/sdp".to_string())],
                    ..Default::default()
                },
            );
            return;
        }
        let negotiation = self.negotiate_timer(&req.headers);
        if let Negotiation::TooSmall { min_se } = negotiation {
            self.respond_in_call(
                key,
                req,
                transport,
                connection,
                422,
                ResponseExtras {
                    headers: vec![("Min-SE", min_se.to_string())],
                    ..Default::default()
                },
            );
            return;
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            match String::from_utf8(req.body.clone()) {
                Ok(offer) => Some(offer),
                Err(_) => {
                    self.respond_in_call(
                        key,
                        req,
                        transport,
                        connection,
                        400,
                        ResponseExtras::default(),
                    );
                    return;
                }
            }
        };
        let contact = self.contact_uri(transport);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(sdp) = call.sdp.as_mut() else {
            return;
        };
        let before = sdp.negotiated().clone();
        let (body, awaits_answer) = match &offer {
            Some(offer) => match sdp.answer(offer) {
                Ok(_) => (Some(sdp.local_sdp().to_string()), false),
                Err(error) => {
                    // The call goes on with the session already agreed (RFC 3261 §14.2).
                    tracing::info!(?key, "re-offer refused, keeping the session: {error}");
                    self.respond_in_call(
                        key,
                        req,
                        transport,
                        connection,
                        488,
                        ResponseExtras::default(),
                    );
                    return;
                }
            },
            // A re-INVITE without an offer: ours goes in the 200, the answer in the ACK.
            None if is_invite => (Some(sdp.offer().to_string()), true),
            // An UPDATE without SDP only refreshes the session.
            None => (None, false),
        };
        let changed = (sdp.negotiated() != &before).then(|| sdp.negotiated().clone());

        let mut headers = vec![
            ("Allow", ALLOW.to_string()),
            ("Supported", message::SUPPORTED.to_string()),
        ];
        match negotiation {
            Negotiation::On {
                interval,
                refresher,
            } => {
                headers.extend(timer_headers(interval, refresher));
                call.timer = Some(SessionTimer::start(now, interval, refresher));
            }
            Negotiation::Off => call.timer = None,
            Negotiation::TooSmall { .. } => {}
        }
        let data = message::build_response(
            &req.reply,
            200,
            "OK",
            &self.config.user_agent,
            ResponseExtras {
                to_tag: Some(&call.local_tag),
                contact: Some(&contact),
                headers,
                content_type: body.as_ref().map(|_| "application/sdp"),
                body: body.as_deref().unwrap_or("").as_bytes(),
                ..Default::default()
            },
        );
        if is_invite {
            let t1 = self.config.t1;
            call.reinvite = Some(ReInvite {
                branch: req.branch.clone(),
                cseq: req.cseq,
                response: data.clone(),
                retransmit: (!transport.is_reliable()).then_some(Retransmit {
                    at: now + t1,
                    interval: t1,
                }),
                give_up_at: now + t1 * 64,
                awaits_answer,
            });
        } else {
            call.remember_answer(req, &data);
        }
        self.send_reply(transport, connection, req.reply.target, data);
        if let Some(media) = changed {
            self.push_event(SipEvent::MediaChanged { key, media });
        }
    }

    /// The ACK of a re-INVITE whose 200 carried our offer: it carries the answer.
    pub(super) fn on_ack_answer(&mut self, key: CallKey, req: &InboundRequest) {
        let Some(sdp) = self.calls.get_mut(&key).and_then(|call| call.sdp.as_mut()) else {
            return;
        };
        let answer = String::from_utf8_lossy(&req.body);
        if answer.trim().is_empty() {
            tracing::info!(
                ?key,
                "ACK without the answer to our offer; keeping the session"
            );
            return;
        }
        let before = sdp.negotiated().clone();
        match sdp.accept_answer(&answer) {
            Ok(media) if *media != before => {
                let media = media.clone();
                self.push_event(SipEvent::MediaChanged { key, media });
            }
            Ok(_) => {}
            Err(error) => {
                tracing::info!(?key, "unusable answer in ACK; keeping the session: {error}")
            }
        }
    }

    /// Session-timer duties of one call: give up on a session the peer stopped refreshing,
    /// refresh the one we are responsible for, and drive our refresh transaction.
    pub(super) fn run_session_timer(&mut self, now: Instant, key: CallKey) {
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.refresh.as_mut().map(|refresh| refresh.poll(now, t2)) {
            Some(ClientDue::TimedOut) => {
                tracing::warn!(?key, call_id = %call.call_id, "session refresh timed out");
                // A late final response to a re-INVITE still gets its ACK: its branch stays.
                if let Some(refresh) = call.refresh.take()
                    && !refresh.invite
                {
                    self.by_refresh_branch.remove(&refresh.branch);
                }
                self.end_expired_session(now, key);
                return;
            }
            Some(ClientDue::Resend(transmit)) => self.transmits.push_back(transmit),
            Some(ClientDue::Nothing) | None => {}
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.phase != Phase::Confirmed {
            return;
        }
        let Some(timer) = &mut call.timer else {
            return;
        };
        if timer.expires_at.is_some_and(|at| at <= now) {
            tracing::warn!(?key, call_id = %call.call_id, "session timer expired without a refresh");
            self.end_expired_session(now, key);
            return;
        }
        if timer.refresh_at.is_some_and(|at| at <= now) && call.refresh.is_none() {
            timer.refresh_at = None;
            self.send_refresh(now, key);
        }
    }

    fn end_expired_session(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.timer = None;
        if !call.end_reported {
            call.end_reported = true;
            self.push_event(SipEvent::CallEnded {
                key,
                reason: CallEndReason::SessionExpired,
            });
        }
        if matches!(
            self.calls.get(&key).map(|c| c.phase),
            Some(Phase::Confirmed)
        ) {
            self.send_bye(now, key);
        }
    }

    /// Sends our session refresh (RFC 4028 §7.4): an UPDATE without SDP, or, to a peer that
    /// does not take UPDATE, a re-INVITE with the SDP we sent last as an unchanged offer.
    fn send_refresh(&mut self, now: Instant, key: CallKey) {
        let t1 = self.config.t1;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(timer) = &mut call.timer else {
            return;
        };
        if call.refresh_by_invite && call.reinvite.is_some() {
            // No INVITE of ours while the peer's still waits for its ACK (RFC 3261 §14.1):
            // a little later.
            timer.refresh_at = Some(now + t1 * 4);
            return;
        }
        let interval = whole_seconds(timer.interval);
        let offer = if call.refresh_by_invite {
            match &call.sdp {
                Some(sdp) => Some(sdp.refresh_offer().to_string()),
                None => return,
            }
        } else {
            None
        };
        // In a refresh request `uac` names its sender (RFC 4028 §7.4): we stay the refresher.
        let mut headers = vec![
            (
                "Session-Expires",
                session_timer::header_value(interval, Refresher::Uac),
            ),
            ("Supported", message::SUPPORTED.to_string()),
        ];
        let method = if offer.is_some() {
            headers.push(("Allow", ALLOW.to_string()));
            Method::Invite
        } else {
            Method::Update
        };
        let Some((transmit, branch)) = self.dialog_request(
            key,
            DialogRequest {
                method,
                headers,
                cseq: None,
                branch: None,
                sdp: offer.as_deref(),
            },
        ) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if method == Method::Invite {
            call.refresh = Some(ClientTransaction::start_invite(
                branch.clone(),
                transmit.clone(),
                now,
                t1,
            ));
            if call.refresh_invites.len() >= REFRESH_INVITE_MEMORY
                && let Some(old) = call.refresh_invites.pop_front()
            {
                self.by_refresh_branch.remove(&old.branch);
            }
            call.refresh_invites.push_back(RefreshInvite {
                branch: branch.clone(),
                cseq: call.local_cseq,
                ack: None,
            });
        } else {
            call.refresh = Some(ClientTransaction::start(
                branch.clone(),
                transmit.clone(),
                now,
                t1,
            ));
        }
        self.by_refresh_branch.insert(branch, key);
        self.transmits.push_back(transmit);
    }

    /// The session timer after a 2xx to our refresh: the interval it names (else ours), and
    /// who refreshes. The response speaks of our request's roles: `uac` (or nothing) is us,
    /// `uas` hands the refreshing to the peer. The timer counts `Uas` as "we refresh".
    fn restart_timer_after_refresh(
        now: Instant,
        call: &mut Call,
        headers: &[(String, String)],
        current: u32,
    ) {
        let agreed = TimerRequest::read(headers);
        let interval = agreed.session_expires.unwrap_or(current);
        let refresher = match agreed.refresher {
            Some(Refresher::Uas) => Refresher::Uac,
            Some(Refresher::Uac) | None => Refresher::Uas,
        };
        call.timer = Some(SessionTimer::start(now, interval, refresher));
    }

    /// A response to our refresh UPDATE.
    pub(super) fn on_refresh_response(&mut self, now: Instant, resp: InboundResponse) {
        let Some(branch) = resp.branch else {
            return;
        };
        let Some(key) = self.by_refresh_branch.get(&branch).copied() else {
            return;
        };
        let t2 = self.config.t2;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call
            .refresh
            .as_ref()
            .is_some_and(|r| !r.invite && r.branch == branch)
        {
            return;
        }
        if resp.status < 200 {
            if let Some(refresh) = &mut call.refresh {
                refresh.on_provisional(t2);
            }
            return;
        }
        self.by_refresh_branch.remove(&branch);
        call.refresh = None;
        let Some(timer) = call.timer else {
            return;
        };
        let current = whole_seconds(timer.interval);
        match resp.status {
            200..=299 => {
                // UPDATE is a target refresh request (RFC 3311 §5.1).
                if let Some(contact) = &resp.contact {
                    call.remote_target = contact.clone();
                }
                Self::restart_timer_after_refresh(now, call, &resp.headers, current);
            }
            405 | 501 => {
                // The peer does not take UPDATE: from now on we refresh with re-INVITE, and do
                // so at once (RFC 4028 §7.4).
                tracing::info!(
                    ?key,
                    status = resp.status,
                    "UPDATE refused; refreshing by re-INVITE"
                );
                call.refresh_by_invite = true;
                self.send_refresh(now, key);
            }
            422 => {
                let min_se = TimerRequest::read(&resp.headers).min_se.unwrap_or(current);
                call.timer = Some(SessionTimer::start(
                    now,
                    min_se.max(current),
                    Refresher::Uas,
                ));
                self.send_refresh(now, key);
            }
            408 | 481 => {
                tracing::warn!(
                    ?key,
                    status = resp.status,
                    "session refresh failed; ending the call"
                );
                self.end_expired_session(now, key);
            }
            status => {
                // The peer refuses UPDATE or is busy: try again at the next half interval; its
                // own timer decides whether the session lives.
                tracing::info!(?key, status, "session refresh refused; retrying later");
                call.timer = Some(SessionTimer::start(now, current, Refresher::Uas));
            }
        }
    }

    /// A response to one of our refresh re-INVITEs (the current one, or an earlier one whose
    /// final response is retransmitted, or one pending when we hung up).
    pub(super) fn on_refresh_invite_response(&mut self, now: Instant, resp: InboundResponse) {
        let Some(branch) = resp.branch.clone() else {
            return;
        };
        let Some(key) = self.by_refresh_branch.get(&branch).copied() else {
            return;
        };
        let t1 = self.config.t1;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.call_id != call.call_id {
            return;
        }
        let Some(index) = call
            .refresh_invites
            .iter()
            .position(|ri| ri.branch == branch)
        else {
            return;
        };
        let current = call
            .refresh
            .as_ref()
            .is_some_and(|r| r.invite && r.branch == branch);
        if resp.status < 200 {
            if current && let Some(refresh) = &mut call.refresh {
                refresh.on_invite_provisional(now, t1);
            }
            return;
        }
        // Every final response is ACKed, retransmissions with the same ACK.
        if let Some(ack) = call.refresh_invites[index].ack.clone() {
            self.transmits.push_back(ack);
            return;
        }
        let success = (200..300).contains(&resp.status);
        if success
            && current
            && let Some(contact) = &resp.contact
        {
            // A re-INVITE is a target refresh request (RFC 3261 §12.2.1.2).
            call.remote_target = contact.clone();
        }
        let cseq = call.refresh_invites[index].cseq;
        let Some((ack, _)) = self.dialog_request(
            key,
            DialogRequest {
                method: Method::Ack,
                headers: Vec::new(),
                cseq: Some(cseq),
                // The ACK of a 2xx is a transaction of its own; of a non-2xx, part of the
                // INVITE's (RFC 3261 §17.1.1.3).
                branch: (!success).then(|| branch.clone()),
                sdp: None,
            },
        ) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(ri) = call.refresh_invites.get_mut(index) {
            ri.ack = Some(ack.clone());
        }
        self.transmits.push_back(ack);
        if !current {
            return;
        }
        call.refresh = None;
        if call.phase != Phase::Confirmed {
            return;
        }
        let Some(timer) = call.timer else {
            return;
        };
        let current_interval = whole_seconds(timer.interval);
        match resp.status {
            200..=299 => {
                Self::restart_timer_after_refresh(now, call, &resp.headers, current_interval);
                let answer = String::from_utf8_lossy(&resp.body);
                if answer.trim().is_empty() || !is_sdp_content_type(resp.content_type.as_deref()) {
                    tracing::info!(
                        ?key,
                        "refresh 2xx without an SDP answer; keeping the session"
                    );
                    return;
                }
                let Some(sdp) = call.sdp.as_mut() else {
                    return;
                };
                let before = sdp.negotiated().clone();
                match sdp.accept_answer(&answer) {
                    Ok(media) if *media != before => {
                        let media = media.clone();
                        self.push_event(SipEvent::MediaChanged { key, media });
                    }
                    Ok(_) => {}
                    Err(error) => tracing::info!(
                        ?key,
                        "unusable answer to our refresh; keeping the session: {error}"
                    ),
                }
            }
            491 => {
                // Glare with the peer's own INVITE: try again after the wait of RFC 3261
                // §14.1, longer for the side that owns the Call-ID (we do for calls we place).
                let owner = call.outbound.is_some();
                let wait_ms = if owner {
                    rand::rng().random_range(210..=400u64) * 10
                } else {
                    rand::rng().random_range(0..=200u64) * 10
                };
                tracing::debug!(?key, wait_ms, "refresh re-INVITE met glare (491); retrying");
                if let Some(timer) = &mut call.timer {
                    timer.refresh_at = Some(now + Duration::from_millis(wait_ms));
                }
            }
            422 => {
                let min_se = TimerRequest::read(&resp.headers)
                    .min_se
                    .unwrap_or(current_interval);
                call.timer = Some(SessionTimer::start(
                    now,
                    min_se.max(current_interval),
                    Refresher::Uas,
                ));
                self.send_refresh(now, key);
            }
            408 | 481 => {
                tracing::warn!(
                    ?key,
                    status = resp.status,
                    "session refresh re-INVITE failed; ending the call"
                );
                self.end_expired_session(now, key);
            }
            status => {
                // Refused (488, 500, 503 …): the session as agreed goes on; try again at the
                // next half interval.
                tracing::info!(
                    ?key,
                    status,
                    "session refresh re-INVITE refused; retrying later"
                );
                call.timer = Some(SessionTimer::start(now, current_interval, Refresher::Uas));
            }
        }
    }
}
