//! Session refresh by re-INVITE (RFC 4028 §7.4, §9) when the peer does not take UPDATE: its
//! `Allow` says so, or it answers our UPDATE 405/501. Driven by a simulated clock: the refresh
//! re-INVITE and its offer, the ACK of every final response, 491 glare both ways with the
//! RFC 3261 §14.1 waits, timer A/B, failures that end the call and ones that do not.

mod common;

use std::time::Duration;

use common::*;
use vaani_sip::{
    AudioCodec, CallEndReason, CallKey, OutboundCall, SdpSession, SipEvent, Transmit, Transport,
};

/// Twilio's Allow: no UPDATE.
const TWILIO_ALLOW: &str = "Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS\r\n";
/// The caller makes us the refresher, every 90 s.
const WE_REFRESH: &str = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n";

fn cseq_of(t: &Transmit) -> (u32, String) {
    let cseq = header(t, "CSeq");
    let (n, m) = cseq.split_once(' ').unwrap();
    (n.parse().unwrap(), m.trim().to_string())
}

fn branch_of(t: &Transmit) -> String {
    let via = header(t, "Via");
    via.split(';')
        .find_map(|p| p.trim().strip_prefix("branch=").map(str::to_string))
        .unwrap_or_else(|| panic!("no branch in {via}"))
}

fn origin_version(sdp: &str) -> u64 {
    let origin = sdp.lines().find(|l| l.starts_with("o=")).expect("o= line");
    origin.split(' ').nth(2).unwrap().parse().unwrap()
}

/// A response from the peer to a request we sent (Via, From, To, Call-ID and CSeq copied),
/// with an SDP body when given.
fn respond(request: &Transmit, status: u16, extra_headers: &str, sdp: &str) -> Vec<u8> {
    let copied: String = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .map(|name| format!("{name}: {}\r\n", header(request, name)))
        .collect();
    let content_type = if sdp.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status} Whatever\r\n{copied}{extra_headers}{content_type}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// An inbound call with `extra_headers` on its INVITE, answered and confirmed; returns the
/// key, our To-tag and our 200.
fn inbound(h: &mut Harness, extra_headers: &str) -> (CallKey, String, Transmit) {
    h.recv(
        &Invite {
            extra_headers,
            ..Invite::default()
        }
        .to_bytes(),
    );
    let key = match h.events().as_slice() {
        [SipEvent::IncomingCall(call)] => call.key,
        other => panic!("expected one IncomingCall, got {other:?}"),
    };
    h.transmits();
    h.ep.accept(h.now, key, session()).unwrap();
    let ok = h.transmits().remove(0);
    assert_eq!(status(&ok), Some(200));
    let tag = tag_of(&header(&ok, "To")).unwrap();
    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert_eq!(h.events(), vec![SipEvent::CallConfirmed { key }]);
    (key, tag, ok)
}

/// First lines and times of what went out, for assertion messages.
fn lines(sent: &[(Duration, Transmit)]) -> Vec<(Duration, String)> {
    sent.iter().map(|(at, t)| (*at, first_line(t))).collect()
}

/// The INVITEs among `sent`, first transmissions only (timer A repeats dropped).
fn new_invites(sent: &[(Duration, Transmit)]) -> Vec<(Duration, Transmit)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (at, t) in sent {
        if first_line(t).starts_with("INVITE ") && !seen.contains(&branch_of(t)) {
            seen.push(branch_of(t));
            out.push((*at, t.clone()));
        }
    }
    out
}

/// Runs the clock to `at` and returns the one message that went out.
fn one_sent(h: &mut Harness, at: Duration) -> Transmit {
    let sent = h.advance_to(at);
    assert_eq!(sent.len(), 1, "at {at:?}: {:?}", lines(&sent));
    sent.into_iter().next().unwrap().1
}

fn assert_refresh_invite(invite: &Transmit, our_sdp: &str) {
    assert!(
        first_line(invite).starts_with("INVITE sip:+15083084809@198.51.100.7:5060 SIP/2.0"),
        "{}",
        first_line(invite)
    );
    assert_eq!(cseq_of(invite).1, "INVITE");
    // In a refresh request `uac` names its sender: we stay the refresher.
    assert_eq!(header(invite, "Session-Expires"), "90;refresher=uac");
    assert_eq!(header(invite, "Supported"), "timer");
    assert_eq!(header(invite, "Content-Type"), "application/sdp");
    assert!(header(invite, "Contact").starts_with("<sip:203.0.113.10:5060"));
    // The offer is the SDP we sent last, unchanged, version and all.
    assert_eq!(body(invite), our_sdp);
}

/// The ACK of a 2xx to our re-INVITE: a new transaction, same CSeq number, no body.
fn assert_ack_of_2xx(ack: &Transmit, invite: &Transmit) {
    assert!(first_line(ack).starts_with("ACK sip:+15083084809@198.51.100.7:5060 SIP/2.0"));
    assert_eq!(cseq_of(ack), (cseq_of(invite).0, "ACK".to_string()));
    assert_ne!(branch_of(ack), branch_of(invite));
    assert_eq!(body(ack), "");
}

/// The ACK of a non-2xx to our re-INVITE: inside the INVITE transaction (same branch).
fn assert_ack_of_failure(ack: &Transmit, invite: &Transmit) {
    assert!(first_line(ack).starts_with("ACK "), "{}", first_line(ack));
    assert_eq!(cseq_of(ack), (cseq_of(invite).0, "ACK".to_string()));
    assert_eq!(branch_of(ack), branch_of(invite));
}

#[test]
fn a_peer_without_update_in_allow_is_refreshed_by_reinvite_for_the_whole_call() {
    let mut h = Harness::new();
    let (key, tag, ok) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let our_sdp = body(&ok);
    let mut last_cseq = 0;
    for round in 1..=4u64 {
        let invite = one_sent(&mut h, Duration::from_secs(45 * round));
        assert_refresh_invite(&invite, &our_sdp);
        assert!(header(&invite, "From").contains(&format!("tag={tag}")));
        assert!(header(&invite, "To").ends_with(";tag=vQXQ3g5papXpF"));
        let (cseq, _) = cseq_of(&invite);
        assert!(cseq > last_cseq, "our CSeq space rises");
        last_cseq = cseq;
        // The caller answers with its (unchanged) SDP.
        let answer = respond(
            &invite,
            200,
            "Session-Expires: 90;refresher=uac\r\nContact: <sip:+15083084809@198.51.100.7:5060>\r\n",
            OFFER,
        );
        h.recv(&answer);
        let sent = h.transmits();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_ack_of_2xx(&sent[0], &invite);
        // A retransmitted 2xx gets the same ACK again, nothing else.
        h.recv(&answer);
        assert_eq!(h.transmits(), sent);
        assert!(h.events().is_empty(), "nothing changed: no event");
    }
    // Our SDP never changed, so neither did its version.
    assert_eq!(origin_version(&our_sdp), 1);
    // A 481 to a refresh ends the call: ACK, then BYE.
    let invite = one_sent(&mut h, Duration::from_secs(45 * 5));
    h.recv(&respond(&invite, 481, "", ""));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_ack_of_failure(&sent[0], &invite);
    assert!(first_line(&sent[1]).starts_with("BYE "));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::SessionExpired
        }]
    );
}

#[test]
fn update_refused_with_405_or_501_switches_to_reinvite_at_once_and_for_good() {
    for refusal in [405, 501] {
        let mut h = Harness::new();
        let (key, _, ok) = inbound(&mut h, WE_REFRESH);
        // No Allow on the INVITE: UPDATE first.
        let update = one_sent(&mut h, Duration::from_secs(45));
        assert!(first_line(&update).starts_with("UPDATE "));
        h.recv(&respond(&update, refusal, TWILIO_ALLOW, ""));
        let sent = h.transmits();
        assert_eq!(sent.len(), 1, "the re-INVITE goes out at once: {sent:?}");
        let invite = &sent[0];
        assert_refresh_invite(invite, &body(&ok));
        assert!(cseq_of(invite).0 > cseq_of(&update).0);
        h.recv(&respond(invite, 200, "", OFFER));
        assert_ack_of_2xx(&h.transmits()[0], invite);
        // Later refreshes stay re-INVITEs.
        let next = one_sent(&mut h, Duration::from_secs(90));
        assert!(first_line(&next).starts_with("INVITE "), "{refusal}");
        h.recv(&respond(&next, 200, "", OFFER));
        h.transmits();
        assert!(h.events().is_empty(), "{key:?} goes on");
    }
}

#[test]
fn glare_491_is_retried_after_a_random_wait_and_retransmissions_are_acked() {
    let mut h = Harness::new();
    let (key, _, _) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let invite = one_sent(&mut h, Duration::from_secs(45));
    let glare = respond(&invite, 491, "", "");
    h.recv(&glare);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_ack_of_failure(&sent[0], &invite);
    h.recv(&glare);
    assert_eq!(h.transmits(), sent, "a retransmitted 491 gets the same ACK");
    // We do not own the Call-ID of an inbound call: the retry comes within 0–2 s (RFC 3261
    // §14.1), in 10 ms steps.
    let sent = h.advance_to(Duration::from_millis(47_001));
    let retry = new_invites(&sent);
    assert_eq!(retry.len(), 1, "{:?}", lines(&sent));
    let (at, retry) = &retry[0];
    assert!(*at <= Duration::from_secs(47), "{at:?}");
    assert_eq!(at.subsec_millis() % 10, 0, "{at:?}");
    assert!(cseq_of(retry).0 > cseq_of(&invite).0);
    assert_ne!(branch_of(retry), branch_of(&invite));
    h.recv(&respond(retry, 200, "", OFFER));
    assert_ack_of_2xx(&h.transmits()[0], retry);
    assert!(h.events().is_empty(), "{key:?} goes on");
}

#[test]
fn the_peers_reinvite_or_offer_during_our_refresh_reinvite_gets_491() {
    let mut h = Harness::new();
    let (key, tag, _) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let invite = one_sent(&mut h, Duration::from_secs(45));
    h.recv(&respond(&invite, 100, "", ""));
    assert!(h.transmits().is_empty());

    // The caller's own re-INVITE meets ours: 491.
    h.recv(
        &Req {
            body: OFFER,
            ..Req::new("INVITE", "z9hG4bKglare1", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(491));
    // So does an UPDATE with an offer; one without SDP is just a refresh.
    h.recv(
        &Req {
            body: OFFER,
            ..Req::new("UPDATE", "z9hG4bKglare2", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(491));
    h.recv(&Req::new("UPDATE", "z9hG4bKglare3", 15623390, Some(&tag)).to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(200));

    // Our re-INVITE completes; afterwards the caller's re-INVITE is answered normally.
    h.recv(&respond(&invite, 200, "", OFFER));
    assert_ack_of_2xx(&h.transmits()[0], &invite);
    h.recv(
        &Req {
            body: OFFER,
            ..Req::new("INVITE", "z9hG4bKafter", 15623391, Some(&tag))
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(200));
    assert!(h.events().is_empty(), "{key:?}: nothing changed");
}

#[test]
fn the_refresh_reinvite_waits_while_the_peers_reinvite_awaits_its_ack() {
    let mut h = Harness::new();
    let (_, tag, _) = inbound(&mut h, WE_REFRESH);
    let update = one_sent(&mut h, Duration::from_secs(45));
    assert!(first_line(&update).starts_with("UPDATE "));
    // Meanwhile the caller re-INVITEs; we answer 200 and wait for its ACK.
    h.recv(
        &Req {
            body: OFFER,
            extra_headers: WE_REFRESH,
            ..Req::new("INVITE", "z9hG4bKtheirs", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(200));
    // Our UPDATE is refused: the re-INVITE that replaces it must wait for that ACK (RFC 3261
    // §14.1: no new INVITE transaction while one is in progress either way).
    h.recv(&respond(&update, 405, "", ""));
    assert!(h.transmits().is_empty());
    let sent = h.advance_to(Duration::from_millis(46_500));
    assert!(
        sent.iter().all(|(_, t)| status(t) == Some(200)),
        "only our 200 again: {sent:?}"
    );
    h.recv(&Req::new("ACK", "z9hG4bKtheirsack", 15623388, Some(&tag)).to_bytes());
    let sent = h.advance_to(Duration::from_secs(50));
    let invites: Vec<Duration> = new_invites(&sent).into_iter().map(|(at, _)| at).collect();
    assert_eq!(invites, [Duration::from_secs(47)], "{:?}", lines(&sent));
}

#[test]
fn an_unanswered_refresh_reinvite_is_retransmitted_by_timer_a_then_ends_the_call() {
    let mut h = Harness::new();
    let (key, _, _) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let invite = one_sent(&mut h, Duration::from_secs(45));
    // Timer A doubles without the T2 cap: 0.5, 1, 2, 4, 8, 16 s; timer B gives up at 32 s.
    let sent = h.advance_to(Duration::from_secs(45 + 33));
    let resent: Vec<Duration> = sent
        .iter()
        .filter(|(_, t)| first_line(t).starts_with("INVITE "))
        .map(|(at, t)| {
            assert_eq!(t.data, invite.data, "the same request again");
            *at - Duration::from_secs(45)
        })
        .collect();
    assert_eq!(
        resent,
        [500, 1500, 3500, 7500, 15500, 31500].map(Duration::from_millis)
    );
    assert!(
        sent.iter().any(|(_, t)| first_line(t).starts_with("BYE ")),
        "{:?}",
        lines(&sent)
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::SessionExpired
        }]
    );
}

#[test]
fn a_provisional_response_stops_retransmissions_and_a_refusal_keeps_the_call() {
    let mut h = Harness::new();
    let (key, _, _) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let invite = one_sent(&mut h, Duration::from_secs(45));
    h.recv(&respond(&invite, 100, "", ""));
    let sent = h.advance_to(Duration::from_secs(60));
    assert!(sent.is_empty(), "no retransmission after 100: {sent:?}");
    // 488 (say, the peer dislikes the offer): ACKed, the call goes on, next try at the next
    // half interval, still by re-INVITE.
    h.recv(&respond(&invite, 488, "", ""));
    assert_ack_of_failure(&h.transmits()[0], &invite);
    assert!(h.events().is_empty());
    let sent = h.advance_to(Duration::from_secs(60 + 44));
    assert!(sent.is_empty(), "{:?}", lines(&sent));
    let next = one_sent(&mut h, Duration::from_secs(60 + 45));
    assert!(first_line(&next).starts_with("INVITE "));
    // A 100 and then silence: given up 64×T1 after the provisional response.
    h.recv(&respond(&next, 100, "", ""));
    let sent = h.advance_to(Duration::from_secs(60 + 45 + 33));
    assert!(
        sent.iter().any(|(_, t)| first_line(t).starts_with("BYE ")),
        "{:?}",
        lines(&sent)
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::SessionExpired
        }]
    );
}

#[test]
fn a_late_2xx_to_a_refresh_pending_at_hangup_is_still_acked() {
    let mut h = Harness::new();
    let (key, _, _) = inbound(&mut h, &format!("{TWILIO_ALLOW}{WE_REFRESH}"));
    let invite = one_sent(&mut h, Duration::from_secs(45));
    h.ep.hangup(h.now, key).unwrap();
    let bye = h.transmits().remove(0);
    assert!(first_line(&bye).starts_with("BYE "));
    h.recv(&respond(&invite, 200, "", OFFER));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_ack_of_2xx(&sent[0], &invite);
    assert!(cseq_of(&bye).0 > cseq_of(&invite).0);
    h.recv(&respond(&bye, 200, "", ""));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }]
    );
}

// ---- calls we place --------------------------------------------------------------------------

const ANSWER: &str = "v=0\r\n\
o=gw 1 1 IN IP4 168.86.128.20\r\n\
s=-\r\n\
c=IN IP4 168.86.128.20\r\n\
t=0 0\r\n\
m=audio 5000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

fn placed_call() -> OutboundCall {
    OutboundCall {
        request_uri: "sip:+919876543210@198.51.100.7".to_string(),
        destination: trunk(),
        transport: Transport::Udp,
        from_user: "+15108675309".to_string(),
        from_display: None,
        to_user: "+919876543210".to_string(),
        sdp: SdpSession::offer_initial(
            &[AudioCodec::Pcmu],
            "203.0.113.10".parse().unwrap(),
            30000,
            7,
        ),
        extra_headers: Vec::new(),
        credentials: None,
        ring_timeout: Duration::from_secs(60),
        tls: None,
    }
}

/// A response to our INVITE with a To-tag.
fn answer_invite(invite: &Transmit, status: u16, extra: &str, sdp: &str) -> Vec<u8> {
    let to = format!("{};tag=gw1", header(invite, "To"));
    let content_type = if sdp.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status} OK\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         {extra}{content_type}Content-Length: {}\r\n\r\n{sdp}",
        header(invite, "Via"),
        header(invite, "From"),
        header(invite, "Call-ID"),
        header(invite, "CSeq"),
        sdp.len()
    )
    .into_bytes()
}

#[test]
fn a_call_we_placed_refreshes_by_reinvite_through_the_route_set_and_takes_new_media() {
    let mut h = Harness::new();
    let key = h.ep.place_call(h.now, placed_call()).unwrap();
    let invite = h.transmits().remove(0);
    let offer = body(&invite);
    // The callee makes us the refresher (uac = the INVITE's sender) and has no UPDATE.
    h.recv(&answer_invite(
        &invite,
        200,
        "Contact: <sip:+919876543210@198.51.100.50:5080>\r\n\
         Record-Route: <sip:192.0.2.1;lr>\r\n\
         Session-Expires: 90;refresher=uac\r\n\
         Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n",
        ANSWER,
    ));
    assert_eq!(h.transmits().len(), 1, "the ACK");
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundAnswered { .. }]
    ));

    let refresh = one_sent(&mut h, Duration::from_secs(45));
    assert!(
        first_line(&refresh).starts_with("INVITE sip:+919876543210@198.51.100.50:5080 SIP/2.0"),
        "{}",
        first_line(&refresh)
    );
    assert_eq!(header(&refresh, "Route"), "<sip:192.0.2.1;lr>");
    assert_eq!(refresh.destination, "192.0.2.1:5060".parse().unwrap());
    assert_eq!(cseq_of(&refresh), (cseq_of(&invite).0 + 1, "INVITE".into()));
    assert!(header(&refresh, "To").ends_with(";tag=gw1"));
    assert_eq!(body(&refresh), offer, "our offer as sent, same o= version");
    assert_eq!(header(&refresh, "Session-Expires"), "90;refresher=uac");

    // Glare: we own the Call-ID, so the retry waits 2.1–4 s.
    h.recv(&respond(&refresh, 491, "", ""));
    assert_ack_of_failure_to(&h.transmits()[0], &refresh);
    let sent = h.advance_to(Duration::from_millis(45_000 + 2_099));
    assert!(sent.is_empty(), "{:?}", lines(&sent));
    let sent = h.advance_to(Duration::from_secs(45 + 4));
    let retry = new_invites(&sent);
    assert_eq!(retry.len(), 1, "{:?}", lines(&sent));
    let (at, retry) = &retry[0];
    assert!(*at >= Duration::from_millis(47_100), "{at:?}");
    assert!(first_line(retry).starts_with("INVITE "));

    // The callee moved its media: the answer says so and the application hears of it.
    let moved = ANSWER.replace("m=audio 5000", "m=audio 5002");
    h.recv(&respond(retry, 200, "", &moved));
    let ack = h.transmits().remove(0);
    assert!(first_line(&ack).starts_with("ACK sip:+919876543210@198.51.100.50:5080"));
    assert_eq!(cseq_of(&ack), (cseq_of(retry).0, "ACK".into()));
    let events = h.events();
    let [
        SipEvent::MediaChanged {
            key: changed,
            media,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*changed, key);
    assert_eq!(
        media.remote_rtp,
        Some("168.86.128.20:5002".parse().unwrap())
    );
}

/// The ACK of a non-2xx for requests going through a route set (first line not checked).
fn assert_ack_of_failure_to(ack: &Transmit, invite: &Transmit) {
    assert_ack_of_failure(ack, invite);
    assert_eq!(ack.destination, invite.destination);
}
