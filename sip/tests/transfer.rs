//! Blind transfer by REFER (RFC 3515) with NOTIFY sipfrag progress, and early media (183 with
//! SDP), against the sans-IO endpoint with a simulated clock.

mod common;

use std::time::Duration;

use common::*;
use vaani_sip::{CallEndReason, CallKey, SipError, SipEvent, TRANSFER_TIMEOUT, Transmit};

const TARGET: &str = "sip:frontdesk@10.0.0.5";

/// A response from the trunk to a request we sent (Via, From, To, Call-ID and CSeq copied).
fn answer_request(request: &Transmit, status: u16, reason: &str) -> Vec<u8> {
    let copied: String = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .map(|name| format!("{name}: {}\r\n", header(request, name)))
        .collect();
    format!("SIP/2.0 {status} {reason}\r\n{copied}Content-Length: 0\r\n\r\n").into_bytes()
}

/// A NOTIFY of the REFER's implicit subscription, from the trunk, in the dialog `tag`; `cseq`
/// counts on from the INVITE's.
fn notify(tag: &str, cseq: u32, event: &str, state: &str, sipfrag: &str) -> Vec<u8> {
    format!(
        "NOTIFY sip:203.0.113.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {TRUNK};rport;branch=z9hG4bKnotify{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15083084809@198.51.100.7:5060>;tag=vQXQ3g5papXpF\r\n\
         To: <sip:+15083728299@203.0.113.10>;tag={tag}\r\n\
         Call-ID: 252a93d3-bdb2-1238-6185-06d91d68c9b0\r\n\
         CSeq: {} NOTIFY\r\n\
         Contact: <sip:{TRUNK}>\r\n\
         Event: {event}\r\n\
         Subscription-State: {state}\r\n\
         Content-Type: message/sipfrag;version=2.0\r\n\
         Content-Length: {}\r\n\r\n{sipfrag}",
        15623400 + cseq,
        sipfrag.len()
    )
    .into_bytes()
}

/// A confirmed call and the REFER we sent for it.
fn referred(h: &mut Harness) -> (CallKey, String, Transmit) {
    let (key, tag) = h.confirmed();
    h.ep.transfer(h.now, key, TARGET).unwrap();
    let mut sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let refer = sent.remove(0);
    (key, tag, refer)
}

#[test]
fn refer_then_a_200_notify_ends_the_call_as_transferred_with_our_bye() {
    let mut h = Harness::new();
    let (key, tag, refer) = referred(&mut h);
    assert!(
        first_line(&refer).starts_with("REFER sip:"),
        "{}",
        text(&refer)
    );
    assert_eq!(header(&refer, "Refer-To"), format!("<{TARGET}>"));
    assert!(header(&refer, "Referred-By").starts_with("<sip:"));
    assert!(header(&refer, "CSeq").ends_with(" REFER"));
    assert_eq!(
        tag_of(&header(&refer, "From")).as_deref(),
        Some(tag.as_str())
    );
    assert_eq!(
        tag_of(&header(&refer, "To")).as_deref(),
        Some("vQXQ3g5papXpF")
    );
    assert!(h.events().is_empty());

    h.recv(&answer_request(&refer, 202, "Accepted"));
    assert_eq!(h.events(), vec![SipEvent::TransferAccepted { key }]);

    // Progress: answered, nothing reported.
    h.recv(&notify(
        &tag,
        1,
        "refer",
        "active;expires=60",
        "SIP/2.0 100 Trying\r\n",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    h.recv(&notify(
        &tag,
        2,
        "refer",
        "active;expires=60",
        "SIP/2.0 180 Ringing\r\n",
    ));
    assert_eq!(status(&h.transmits()[0]), Some(200));
    assert!(h.events().is_empty());

    // Success: 200 to the NOTIFY, then our BYE at once.
    h.recv(&notify(
        &tag,
        3,
        "refer;id=1",
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    ));
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(first_line(&sent[1]).starts_with("BYE "));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::Transferred
        }]
    );
    // A retransmitted NOTIFY is answered again and changes nothing.
    h.recv(&notify(
        &tag,
        3,
        "refer;id=1",
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    ));
    assert_eq!(status(&h.transmits()[0]), Some(200));
    h.recv(&answer_request(&sent[1], 200, "OK"));
    assert!(h.events().is_empty(), "one CallEnded only");
}

#[test]
fn a_refused_refer_keeps_the_call_and_another_transfer_may_follow() {
    let mut h = Harness::new();
    let (key, _, refer) = referred(&mut h);
    h.recv(&answer_request(&refer, 603, "Declined"));
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            key,
            status: Some(603),
            reason: "Declined".into()
        }]
    );
    assert!(h.transmits().is_empty(), "no BYE: the call goes on");
    h.ep.transfer(h.now, key, "tel:+918012345678").unwrap();
    let again = h.transmits();
    assert_eq!(header(&again[0], "Refer-To"), "<tel:+918012345678>");
}

#[test]
fn a_busy_target_reported_by_notify_keeps_the_call() {
    let mut h = Harness::new();
    let (key, tag, refer) = referred(&mut h);
    h.recv(&answer_request(&refer, 202, "Accepted"));
    h.events();
    h.recv(&notify(
        &tag,
        1,
        "refer",
        "terminated;reason=noresource",
        "SIP/2.0 486 Busy Here\r\n",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            key,
            status: Some(486),
            reason: "Busy Here".into()
        }]
    );
    // The call is still up: hanging up sends a BYE and ends it normally.
    h.ep.hangup(h.now, key).unwrap();
    let bye = h.transmits().remove(0);
    assert!(first_line(&bye).starts_with("BYE "));
    h.recv(&answer_request(&bye, 200, "OK"));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }]
    );
}

#[test]
fn an_unanswered_refer_is_retransmitted_then_fails_with_408() {
    let mut h = Harness::new();
    let (key, _, _) = referred(&mut h);
    let sent = h.advance_to(Duration::from_secs(33));
    let refers = sent
        .iter()
        .filter(|(_, t)| first_line(t).starts_with("REFER "))
        .count();
    assert!(refers >= 6, "retransmissions: {refers}");
    assert!(!sent.iter().any(|(_, t)| first_line(t).starts_with("BYE ")));
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            key,
            status: Some(408),
            reason: "no response to REFER".into()
        }]
    );
}

#[test]
fn no_outcome_within_the_transfer_timeout_fails_it_and_a_late_success_still_hangs_up() {
    let mut h = Harness::new();
    let (key, tag, refer) = referred(&mut h);
    h.recv(&answer_request(&refer, 202, "Accepted"));
    h.recv(&notify(
        &tag,
        1,
        "refer",
        "active",
        "SIP/2.0 100 Trying\r\n",
    ));
    h.transmits();
    assert_eq!(h.events(), vec![SipEvent::TransferAccepted { key }]);
    h.advance_to(TRANSFER_TIMEOUT - Duration::from_secs(1));
    assert!(h.events().is_empty());
    h.advance_to(TRANSFER_TIMEOUT + Duration::from_secs(1));
    match h.events().as_slice() {
        [SipEvent::TransferFailed { status: None, .. }] => {}
        other => panic!("expected TransferFailed, got {other:?}"),
    }
    // The trunk reports success after all: the caller is with the target, so we hang up.
    h.recv(&notify(
        &tag,
        2,
        "refer",
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    ));
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert!(
        sent.iter().any(|t| first_line(t).starts_with("BYE ")),
        "{sent:?}"
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::Transferred
        }]
    );
}

#[test]
fn a_peer_that_hangs_up_after_accepting_the_refer_transferred_the_call() {
    let mut h = Harness::new();
    let (key, tag, refer) = referred(&mut h);
    h.recv(&answer_request(&refer, 202, "Accepted"));
    h.events();
    h.recv(&Req::new("BYE", "z9hG4bKbye1", 15623390, Some(&tag)).to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(200));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::Transferred
        }]
    );
}

#[test]
fn notify_of_another_package_gets_489_and_outside_a_dialog_481() {
    let mut h = Harness::new();
    let (_, tag, _) = referred(&mut h);
    h.recv(&notify(&tag, 1, "presence", "active", "SIP/2.0 200 OK\r\n"));
    assert_eq!(status(&h.transmits()[0]), Some(489));
    h.recv(&notify(
        "not-our-tag",
        2,
        "refer",
        "active",
        "SIP/2.0 200 OK\r\n",
    ));
    assert_eq!(status(&h.transmits()[0]), Some(481));
    assert!(h.events().is_empty());
}

#[test]
fn transfers_need_a_confirmed_call_a_valid_target_and_none_pending() {
    let mut h = Harness::new();
    let key = h.incoming();
    assert!(matches!(
        h.ep.transfer(h.now, key, TARGET),
        Err(SipError::InvalidState { .. })
    ));
    let mut h = Harness::new();
    let (key, _) = h.confirmed();
    for bad in ["", "frontdesk", "http://x", "sip:a@b>\r\nX: y", "sip:a b"] {
        assert!(
            matches!(
                h.ep.transfer(h.now, key, bad),
                Err(SipError::InvalidTarget(_))
            ),
            "{bad:?}"
        );
    }
    assert!(h.transmits().is_empty());
    h.ep.transfer(h.now, key, TARGET).unwrap();
    assert!(matches!(
        h.ep.transfer(h.now, key, TARGET),
        Err(SipError::InvalidState { .. })
    ));
    assert!(matches!(
        h.ep.transfer(h.now, CallKey(999), TARGET),
        Err(SipError::UnknownCall(_))
    ));
}

#[test]
fn early_media_sends_183_with_the_answer_and_the_200_repeats_it() {
    let mut h = Harness::new();
    let key = h.incoming();
    h.ep.send_early_media(h.now, key, session()).unwrap();
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(183));
    assert_eq!(header(&sent[0], "Content-Type"), "application/sdp");
    assert!(header(&sent[0], "Contact").contains("203.0.113.10"));
    let early_sdp = body(&sent[0]);
    assert!(early_sdp.contains("m=audio 30000 RTP/AVP 0"), "{early_sdp}");
    let tag = tag_of(&header(&sent[0], "To")).unwrap();
    assert!(matches!(
        h.ep.send_early_media(h.now, key, session()),
        Err(SipError::InvalidState { .. })
    ));
    // The 200 carries the same answer even if handed another session.
    h.ep.accept(h.now, key, session_at("192.0.2.99")).unwrap();
    let ok = h.transmits().remove(0);
    assert_eq!(status(&ok), Some(200));
    assert_eq!(body(&ok), early_sdp);
    assert_eq!(tag_of(&header(&ok, "To")).as_deref(), Some(tag.as_str()));
}

#[test]
fn early_media_then_a_rejection_ends_the_call_unanswered() {
    let mut h = Harness::new();
    let key = h.incoming();
    h.ep.send_early_media(h.now, key, session()).unwrap();
    let tag = tag_of(&header(&h.transmits()[0], "To")).unwrap();
    h.ep.reject(h.now, key, 480, "Temporarily Unavailable")
        .unwrap();
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(480));
    assert_eq!(
        tag_of(&header(&sent[0], "To")).as_deref(),
        Some(tag.as_str())
    );
    assert!(h.events().is_empty());
}
