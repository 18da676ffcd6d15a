//! Changing an answered call: re-INVITE and UPDATE with and without an offer (RFC 3261 §14,
//! RFC 3311), hold and resume (RFC 3264 §8.4), and session-timer refreshes both ways (RFC 4028).

use super::*;
use crate::session_timer::Refresher;

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
                if let Some(refresh) = call.refresh.take() {
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

    /// Sends our session refresh: an UPDATE without SDP (RFC 4028 §7.4).
    fn send_refresh(&mut self, now: Instant, key: CallKey) {
        let t1 = self.config.t1;
        let Some(interval) = self
            .calls
            .get(&key)
            .and_then(|call| call.timer)
            .map(|timer| whole_seconds(timer.interval))
        else {
            return;
        };
        // In a refresh request `uac` names its sender (RFC 4028 §7.4): we stay the refresher.
        let headers = vec![
            (
                "Session-Expires",
                session_timer::header_value(interval, Refresher::Uac),
            ),
            ("Supported", message::SUPPORTED.to_string()),
        ];
        let Some((transmit, branch)) = self.in_dialog_request(key, Method::Update, headers) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.refresh = Some(ClientTransaction::start(
            branch.clone(),
            transmit.clone(),
            now,
            t1,
        ));
        self.by_refresh_branch.insert(branch, key);
        self.transmits.push_back(transmit);
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
                let agreed = TimerRequest::read(&resp.headers);
                let interval = agreed.session_expires.unwrap_or(current);
                // The response speaks of our UPDATE's roles: `uac` (or nothing) is us, `uas`
                // hands the refreshing to the peer. The timer counts `Uas` as "we refresh".
                let refresher = match agreed.refresher {
                    Some(Refresher::Uas) => Refresher::Uac,
                    Some(Refresher::Uac) | None => Refresher::Uas,
                };
                call.timer = Some(SessionTimer::start(now, interval, refresher));
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
}
