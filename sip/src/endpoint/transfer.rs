//! Blind transfer by REFER (RFC 3515): we ask the peer (the trunk) to connect the caller to
//! another target, follow the implicit subscription's NOTIFYs (`message/sipfrag`, RFC 3420),
//! and hang up at once when the transfer succeeds (Twilio otherwise holds the caller for 32 s).
//! When it fails the call goes on.

use super::*;

/// How long we wait, after sending the REFER, for the NOTIFY that tells how the transfer
/// ended (the target may ring for a while).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest transfer target accepted (bytes).
const MAX_TARGET_LEN: usize = 256;

/// A transfer we asked for and whose outcome we wait for.
#[derive(Debug)]
pub(super) struct Refer {
    /// The REFER transaction, until its final response.
    tx: Option<ClientTransaction>,
    /// The peer accepted the REFER (2xx).
    accepted: bool,
    /// Give up waiting for the outcome.
    deadline: Instant,
}

impl Refer {
    pub(super) fn branch(&self) -> Option<&str> {
        self.tx.as_ref().map(|tx| tx.branch.as_str())
    }

    pub(super) fn deadline(&self) -> Instant {
        self.tx
            .as_ref()
            .map_or(self.deadline, |tx| tx.deadline().min(self.deadline))
    }

    /// The peer accepted the REFER: if it now hangs up on us, the transfer went through.
    pub(super) fn accepted(&self) -> bool {
        self.accepted
    }
}

/// Whether `target` can go in a `Refer-To`: a `sip:`, `sips:` or `tel:` URI of printable
/// characters without spaces or angle brackets.
fn valid_target(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    let has_scheme = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len());
    has_scheme
        && target.len() <= MAX_TARGET_LEN
        && target
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'))
}

/// The status line of a `message/sipfrag` body (`SIP/2.0 200 OK`): status and reason.
fn sipfrag_status(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0")?.trim_start();
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = code.parse().ok()?;
    (100..=699)
        .contains(&status)
        .then(|| (status, reason.trim().to_string()))
}

/// The value of the first header called `name` (or its compact form).
fn header<'a>(headers: &'a [(String, String)], name: &str, compact: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
        .map(|(_, v)| v.trim())
}

/// Whether a `Subscription-State` value says the subscription is over.
fn subscription_terminated(headers: &[(String, String)]) -> bool {
    header(headers, "Subscription-State", "Subscription-State").is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|state| state.trim().eq_ignore_ascii_case("terminated"))
    })
}

impl SipEndpoint {
    /// Ask the peer to transfer the caller to `target` (a `sip:`, `sips:` or `tel:` URI) by
    /// REFER. Follow-up events: `TransferAccepted` when the peer takes the REFER, then either
    /// `CallEnded { Transferred }` (the transfer succeeded; the endpoint sends BYE at once) or
    /// `TransferFailed` (the call goes on). One transfer at a time, on a confirmed call.
    pub fn transfer(&mut self, now: Instant, key: CallKey, target: &str) -> Result<(), SipError> {
        if let Some(call) = self.calls.get_mut(&key) {
            call.refer_timed_out = false;
        }
        if !valid_target(target) {
            return Err(SipError::InvalidTarget(target.chars().take(80).collect()));
        }
        let call = self.call_in_phase(key, Phase::Confirmed, "transfer")?;
        if call.refer.is_some() {
            return Err(SipError::InvalidState {
                key,
                state: "transferring",
                action: "transfer again",
            });
        }
        let referred_by = message::name_addr_uri(&call.local_identity)
            .map(|uri| format!("<{uri}>"))
            .unwrap_or_else(|| call.local_identity.clone());
        let headers = vec![
            ("Refer-To", format!("<{target}>")),
            ("Referred-By", referred_by),
        ];
        let t1 = self.config.t1;
        let Some((transmit, branch)) = self.in_dialog_request(key, Method::Refer, headers) else {
            return Err(SipError::UnknownCall(key));
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(SipError::UnknownCall(key));
        };
        call.refer = Some(Refer {
            tx: Some(ClientTransaction::start(
                branch.clone(),
                transmit.clone(),
                now,
                t1,
            )),
            accepted: false,
            deadline: now + TRANSFER_TIMEOUT,
        });
        self.by_refer_branch.insert(branch, key);
        self.transmits.push_back(transmit);
        Ok(())
    }

    /// A response to our REFER.
    pub(super) fn on_refer_response(&mut self, resp: InboundResponse) {
        let Some(branch) = resp.branch else {
            return;
        };
        let Some(key) = self.by_refer_branch.get(&branch).copied() else {
            return;
        };
        let t2 = self.config.t2;
        let Some(refer) = self.calls.get_mut(&key).and_then(|c| c.refer.as_mut()) else {
            return;
        };
        if resp.status < 200 {
            if let Some(tx) = &mut refer.tx {
                tx.on_provisional(t2);
            }
            return;
        }
        self.by_refer_branch.remove(&branch);
        refer.tx = None;
        if resp.status < 300 {
            refer.accepted = true;
            self.push_event(SipEvent::TransferAccepted { key });
        } else {
            self.fail_transfer(key, Some(resp.status), resp.reason);
        }
    }

    /// A NOTIFY in the dialog: progress of our REFER, answered 200 whatever it says.
    pub(super) fn on_notify(
        &mut self,
        now: Instant,
        key: CallKey,
        req: &InboundRequest,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) {
        let event = header(&req.headers, "Event", "o").unwrap_or("");
        let package = event.split(';').next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case("refer") {
            self.respond_in_call(
                key,
                req,
                transport,
                connection,
                489,
                ResponseExtras::default(),
            );
            return;
        }
        self.respond_in_call(
            key,
            req,
            transport,
            connection,
            200,
            ResponseExtras::default(),
        );
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.refer.is_none() {
            // A late NOTIFY of a transfer that already ended. If we had given up waiting and it
            // succeeded after all, the caller is with the target: hang up as on time.
            let late_success = call.refer_timed_out
                && sipfrag_status(&req.body)
                    .is_some_and(|(status, _)| (200..300).contains(&status));
            if late_success {
                self.finish_transfer(now, key);
            }
            return;
        }
        let terminated = subscription_terminated(&req.headers);
        match sipfrag_status(&req.body) {
            Some((status, _)) if (200..300).contains(&status) => {
                self.finish_transfer(now, key);
            }
            Some((status, reason)) if status >= 300 => {
                self.fail_transfer(key, Some(status), reason);
            }
            Some((status, _)) if terminated => {
                self.fail_transfer(key, Some(status), format!("subscription ended at {status}"));
            }
            None if terminated => {
                self.fail_transfer(key, None, "subscription ended without a result".into());
            }
            _ => tracing::debug!(?key, "transfer in progress"),
        }
    }

    /// REFER timers: its retransmissions, Timer F, and the wait for the outcome.
    pub(super) fn run_refer_timers(&mut self, now: Instant, key: CallKey) {
        let t2 = self.config.t2;
        let Some(refer) = self.calls.get_mut(&key).and_then(|c| c.refer.as_mut()) else {
            return;
        };
        match refer.tx.as_mut().map(|tx| tx.poll(now, t2)) {
            Some(ClientDue::TimedOut) => {
                self.fail_transfer(key, Some(408), "no response to REFER".into());
                return;
            }
            Some(ClientDue::Resend(transmit)) => self.transmits.push_back(transmit),
            Some(ClientDue::Nothing) | None => {}
        }
        if refer_deadline(self, key).is_some_and(|at| at <= now) {
            self.fail_transfer(
                key,
                None,
                format!("no result within {} s", TRANSFER_TIMEOUT.as_secs()),
            );
            if let Some(call) = self.calls.get_mut(&key) {
                call.refer_timed_out = true;
            }
        }
    }

    /// The transfer succeeded: report the call ended and send BYE at once.
    fn finish_transfer(&mut self, now: Instant, key: CallKey) {
        self.drop_refer(key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.end_reported {
            call.end_reported = true;
            self.push_event(SipEvent::CallEnded {
                key,
                reason: CallEndReason::Transferred,
            });
        }
        if self.calls.get(&key).map(|c| c.phase) == Some(Phase::Confirmed) {
            self.send_bye(now, key);
        }
    }

    fn fail_transfer(&mut self, key: CallKey, status: Option<u16>, reason: String) {
        self.drop_refer(key);
        tracing::info!(?key, ?status, %reason, "transfer failed; the call goes on");
        self.push_event(SipEvent::TransferFailed {
            key,
            status,
            reason,
        });
    }

    /// Forgets the call's transfer (and its REFER transaction).
    pub(super) fn drop_refer(&mut self, key: CallKey) {
        let Some(refer) = self.calls.get_mut(&key).and_then(|c| c.refer.take()) else {
            return;
        };
        if let Some(branch) = refer.branch() {
            self.by_refer_branch.remove(branch);
        }
    }
}

fn refer_deadline(endpoint: &SipEndpoint, key: CallKey) -> Option<Instant> {
    endpoint
        .calls
        .get(&key)
        .and_then(|c| c.refer.as_ref())
        .map(|r| r.deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_a_sip_or_tel_scheme_and_no_brackets() {
        assert!(valid_target("sip:frontdesk@10.0.0.5"));
        assert!(valid_target("SIPS:agent@example.com:5061"));
        assert!(valid_target("tel:+918012345678"));
        assert!(!valid_target("sip:"));
        assert!(!valid_target("http://example.com"));
        assert!(!valid_target("sip:a@b>;evil"));
        assert!(!valid_target("sip:a b@c"));
        assert!(!valid_target("sip:a@b\r\nVia: x"));
        assert!(!valid_target(&format!("sip:{}", "a".repeat(300))));
    }

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(
            sipfrag_status(b"SIP/2.0 200 OK\r\n"),
            Some((200, "OK".into()))
        );
        assert_eq!(
            sipfrag_status(b"SIP/2.0 100 Trying"),
            Some((100, "Trying".into()))
        );
        assert_eq!(
            sipfrag_status(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
            Some((486, "Busy Here".into()))
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 999 Nope"), None);
        assert_eq!(sipfrag_status(b"garbage"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
        assert_eq!(sipfrag_status(b""), None);
    }

    #[test]
    fn subscription_state_terminated() {
        let h = |v: &str| vec![("Subscription-State".to_string(), v.to_string())];
        assert!(subscription_terminated(&h("terminated;reason=noresource")));
        assert!(subscription_terminated(&h(" Terminated")));
        assert!(!subscription_terminated(&h("active;expires=60")));
        assert!(!subscription_terminated(&[]));
    }
}
