//! The sans-IO endpoint driven with a simulated clock.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use vaani_sip::{CallEndReason, ConnectionId, SipError, SipEvent, Transport};

const ANSWER: &str = "v=0\r\no=vaani 1 1 IN IP4 203.0.113.10\r\ns=vaani\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

#[test]
fn invite_gets_100_trying_at_once_and_raises_incoming_call() {
    let mut h = Harness::new();
    h.recv(&Invite::default().to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let trying = &sent[0];
    assert_eq!(first_line(trying), "SIP/2.0 100 Trying");
    assert_eq!(
        tag_of(&header(trying, "To")),
        None,
        "100 must not carry a To-tag"
    );
    assert_eq!(
        header(trying, "Call-ID"),
        "252a93d3-bdb2-1238-6185-06d91d68c9b0"
    );
    assert_eq!(header(trying, "CSeq"), "15623387 INVITE");
    assert_eq!(trying.destination, trunk());

    let events = h.events();
    let [SipEvent::IncomingCall(call)] = events.as_slice() else {
        panic!("expected IncomingCall, got {events:?}");
    };
    assert_eq!(call.request_uri_user.as_deref(), Some("+15083728299"));
    assert_eq!(call.from_user.as_deref(), Some("+15083084809"));
    assert_eq!(call.from_display.as_deref(), Some("Alice Caller"));
    assert_eq!(call.to_user.as_deref(), Some("+15083728299"));
    assert_eq!(call.call_id, "252a93d3-bdb2-1238-6185-06d91d68c9b0");
    assert_eq!(call.sdp.as_deref(), Some(OFFER));
    assert_eq!(call.transport, Transport::Udp);
    assert_eq!(call.source, trunk());
    assert!(call.headers.contains(&(
        "X-Twilio-CallSid".to_string(),
        "CA708d85d118aacfcc794b730fa02bc40c".to_string()
    )));
}

#[test]
fn accept_sends_200_with_sdp_same_to_tag_as_180_and_record_route() {
    let mut h = Harness::new();
    let rr = "Record-Route: <sip:10.0.0.1:5060;lr;ftag=vQXQ3g5papXpF>\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n";
    h.recv(
        &Invite {
            extra_headers: rr,
            ..Default::default()
        }
        .to_bytes(),
    );
    h.transmits();
    let SipEvent::IncomingCall(call) = h.events().remove(0) else {
        panic!()
    };
    h.ep.send_provisional(h.now, call.key, 180).unwrap();
    let ringing = h.transmits().remove(0);
    assert_eq!(first_line(&ringing), "SIP/2.0 180 Ringing");
    let tag = tag_of(&header(&ringing, "To")).expect("18x carries a To-tag");
    assert_eq!(
        headers(&ringing, "Record-Route"),
        vec![
            "<sip:10.0.0.1:5060;lr;ftag=vQXQ3g5papXpF>",
            "<sip:10.0.0.2;lr>"
        ]
    );

    h.ep.accept(h.now, call.key, session()).unwrap();
    let ok = h.transmits().remove(0);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK");
    assert_eq!(
        tag_of(&header(&ok, "To")),
        Some(tag),
        "same To-tag on 18x and 2xx"
    );
    assert_eq!(
        headers(&ok, "Record-Route"),
        vec![
            "<sip:10.0.0.1:5060;lr;ftag=vQXQ3g5papXpF>",
            "<sip:10.0.0.2;lr>"
        ]
    );
    assert_eq!(header(&ok, "Contact"), "<sip:203.0.113.10:5060>");
    assert_eq!(header(&ok, "Content-Type"), "application/sdp");
    assert_eq!(header(&ok, "Content-Length"), ANSWER.len().to_string());
    assert_eq!(body(&ok), ANSWER);
    assert_eq!(header(&ok, "CSeq"), "15623387 INVITE");
    assert_eq!(
        tag_of(&header(&ok, "From")).as_deref(),
        Some("vQXQ3g5papXpF")
    );
}

#[test]
fn ok_is_retransmitted_with_doubling_capped_at_t2_until_ack() {
    let mut h = Harness::new();
    let (key, tag) = h.accepted();
    let sent = h.advance_to(Duration::from_millis(12_000));
    let times: Vec<u64> = sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    // Intervals T1, 2T1, 4T1, then capped at T2 = 4 s.
    assert_eq!(times, vec![500, 1500, 3500, 7500, 11500]);
    assert!(sent.iter().all(|(_, t)| status(t) == Some(200)));

    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert_eq!(h.events(), vec![SipEvent::CallConfirmed { key }]);
    assert!(h.transmits().is_empty(), "ACK is never answered");
    let after = h.advance_to(Duration::from_secs(60));
    assert!(after.is_empty(), "no retransmission after ACK: {after:?}");
    assert!(h.events().is_empty());

    // A duplicate ACK changes nothing.
    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert!(h.events().is_empty());
    assert!(h.transmits().is_empty());
}

#[test]
fn timer_h_without_ack_ends_call_and_sends_bye() {
    let mut h = Harness::new();
    let (key, tag) = h.accepted();
    let sent = h.advance_to(Duration::from_millis(31_999));
    assert!(sent.iter().all(|(_, t)| status(t) == Some(200)));
    assert!(h.events().is_empty());

    let sent = h.advance_to(Duration::from_secs(32));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::AckTimeout
        }]
    );
    let byes: Vec<_> = sent
        .iter()
        .filter(|(_, t)| first_line(t).starts_with("BYE "))
        .collect();
    assert_eq!(byes.len(), 1, "one BYE at Timer H: {sent:?}");
    let bye = &byes[0].1;
    assert_eq!(
        first_line(bye),
        "BYE sip:+15083084809@198.51.100.7:5060 SIP/2.0"
    );
    assert_eq!(tag_of(&header(bye, "From")), Some(tag));
    assert_eq!(bye.destination, trunk());

    // The BYE completes silently: no second CallEnded, and the call is cleaned up.
    let branch = header(bye, "Via")
        .split(";branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cseq = header(bye, "CSeq");
    let response = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
        header(bye, "Via"),
        header(bye, "From"),
        header(bye, "To"),
        header(bye, "Call-ID"),
    );
    assert!(!branch.is_empty());
    h.recv(response.as_bytes());
    assert!(h.events().is_empty());
    h.advance_to(Duration::from_secs(120));
    assert_eq!(h.ep.call_count(), 0);
    assert_eq!(h.ep.poll_timeout(), None);
}

#[test]
fn retransmitted_invite_is_absorbed_and_gets_the_last_response() {
    let mut h = Harness::new();
    let key = h.incoming();
    h.recv(&Invite::default().to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(100));
    assert!(h.events().is_empty(), "no second IncomingCall");

    h.ep.send_provisional(h.now, key, 180).unwrap();
    h.transmits();
    h.recv(&Invite::default().to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(180));

    h.ep.accept(h.now, key, session()).unwrap();
    h.transmits();
    h.recv(&Invite::default().to_bytes());
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(body(&sent[0]), ANSWER);
    assert!(h.events().is_empty());
}

#[test]
fn cancel_before_answer_gets_200_and_487_once() {
    let mut h = Harness::new();
    let key = h.incoming();
    let cancel = Req::new("CANCEL", "z9hG4bKinv1", 15623387, None).to_bytes();
    h.recv(&cancel);
    let sent = h.transmits();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(header(&sent[0], "CSeq"), "15623387 CANCEL");
    assert_eq!(first_line(&sent[1]), "SIP/2.0 487 Request Terminated");
    assert_eq!(header(&sent[1], "CSeq"), "15623387 INVITE");
    let tag = tag_of(&header(&sent[1], "To")).expect("487 has a To-tag");
    assert_eq!(h.events(), vec![SipEvent::CallCancelled { key }]);

    // Retransmitted CANCEL: the same 200 again, nothing else.
    h.recv(&cancel);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "CSeq"), "15623387 CANCEL");
    assert!(h.events().is_empty());

    // The application can no longer answer.
    assert!(matches!(
        h.ep.accept(h.now, key, session()),
        Err(SipError::InvalidState { .. })
    ));

    // The 487 is retransmitted until its ACK, which is absorbed (same branch as the INVITE).
    let sent = h.advance_to(Duration::from_millis(600));
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0].1), Some(487));
    h.recv(&Req::new("ACK", "z9hG4bKinv1", 15623387, Some(&tag)).to_bytes());
    assert!(h.transmits().is_empty());
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn cancel_after_200_only_gets_200_and_the_call_continues() {
    let mut h = Harness::new();
    let (key, tag) = h.accepted();
    h.recv(&Req::new("CANCEL", "z9hG4bKinv1", 15623387, None).to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(header(&sent[0], "CSeq"), "15623387 CANCEL");
    assert!(h.events().is_empty());
    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert_eq!(h.events(), vec![SipEvent::CallConfirmed { key }]);
}

#[test]
fn cancel_for_unknown_transaction_gets_481() {
    let mut h = Harness::new();
    h.recv(&Req::new("CANCEL", "z9hG4bKnothere", 1, None).to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(481));
}

#[test]
fn bye_between_200_and_ack_is_accepted() {
    let mut h = Harness::new();
    let (key, tag) = h.accepted();
    h.recv(&Req::new("BYE", "z9hG4bKbye1", 15623388, Some(&tag)).to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(header(&sent[0], "CSeq"), "15623388 BYE");
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }]
    );
    // 2xx retransmissions stop and Timer H does not fire any more.
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn remote_bye_gets_200_and_ends_the_call_once() {
    let mut h = Harness::new();
    let (key, tag) = h.confirmed();
    let bye = Req::new("BYE", "z9hG4bKbye1", 15623388, Some(&tag)).to_bytes();
    h.recv(&bye);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(tag_of(&header(&sent[0], "To")), Some(tag.clone()));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }]
    );
    // A retransmitted BYE gets the same 200 and no new event.
    h.recv(&bye);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert!(h.events().is_empty());
    assert!(matches!(
        h.ep.hangup(h.now, key),
        Err(SipError::InvalidState { .. })
    ));
    // State is released after the linger period.
    h.advance_to(Duration::from_secs(40));
    assert_eq!(h.ep.call_count(), 0);
    assert!(matches!(
        h.ep.hangup(h.now, key),
        Err(SipError::UnknownCall(_))
    ));
}

#[test]
fn hangup_sends_bye_through_the_route_set_to_the_remote_contact() {
    let mut h = Harness::new();
    let rr = "Record-Route: <sip:10.0.0.1:5070;lr;ftag=vQXQ3g5papXpF>, <sip:10.0.0.2;lr>\r\n";
    h.recv(
        &Invite {
            extra_headers: rr,
            ..Default::default()
        }
        .to_bytes(),
    );
    h.transmits();
    let SipEvent::IncomingCall(call) = h.events().remove(0) else {
        panic!()
    };
    let key = call.key;
    h.ep.accept(h.now, key, session()).unwrap();
    let tag = tag_of(&header(&h.transmits()[0], "To")).unwrap();
    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert_eq!(h.events(), vec![SipEvent::CallConfirmed { key }]);

    h.ep.hangup(h.now, key).unwrap();
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let bye = &sent[0];
    assert_eq!(
        first_line(bye),
        "BYE sip:+15083084809@198.51.100.7:5060 SIP/2.0",
        "Request-URI is the remote Contact"
    );
    assert_eq!(
        headers(bye, "Route"),
        vec![
            "<sip:10.0.0.1:5070;lr;ftag=vQXQ3g5papXpF>",
            "<sip:10.0.0.2;lr>"
        ],
        "Route = Record-Route in received order"
    );
    assert_eq!(
        bye.destination,
        "10.0.0.1:5070".parse().unwrap(),
        "sent to the first route"
    );
    assert_eq!(bye.transport, Transport::Udp);
    assert_eq!(tag_of(&header(bye, "From")), Some(tag.clone()));
    assert_eq!(tag_of(&header(bye, "To")).as_deref(), Some("vQXQ3g5papXpF"));
    assert_eq!(
        header(bye, "Call-ID"),
        "252a93d3-bdb2-1238-6185-06d91d68c9b0"
    );
    assert!(header(bye, "Via").starts_with("SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK"));
    let cseq = header(bye, "CSeq");
    let (number, method) = cseq.split_once(' ').unwrap();
    assert_eq!(method, "BYE");
    let number: u32 = number.parse().unwrap();
    assert_ne!(number, 15623387, "our own CSeq space, not the caller's");

    // Timer E retransmits the same request (same branch and CSeq).
    let again = h.advance_to(h.elapsed() + Duration::from_millis(500));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.data, bye.data);

    // hangup again is harmless while the BYE runs.
    h.ep.hangup(h.now, key).unwrap();
    assert!(h.transmits().is_empty());

    let response = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
        header(bye, "Via"),
        header(bye, "From"),
        header(bye, "To"),
        header(bye, "Call-ID"),
    );
    h.recv_from("10.0.0.1:5070".parse().unwrap(), response.as_bytes());
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }]
    );
    assert!(h.advance_to(Duration::from_secs(100)).is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn bye_without_response_times_out_with_timer_f() {
    let mut h = Harness::new();
    let (key, _) = h.confirmed();
    h.ep.hangup(h.now, key).unwrap();
    h.transmits();
    let sent = h.advance_to(Duration::from_secs(40));
    let times: Vec<u64> = sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(
        times,
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }]
    );
}

#[test]
fn hangup_before_ack_waits_for_the_ack() {
    let mut h = Harness::new();
    let (key, tag) = h.accepted();
    h.ep.hangup(h.now, key).unwrap();
    assert!(h.transmits().is_empty(), "no BYE before the ACK");
    h.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
    assert_eq!(h.events(), vec![SipEvent::CallConfirmed { key }]);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert!(first_line(&sent[0]).starts_with("BYE "));
}

#[test]
fn hangup_before_answer_rejects_with_480() {
    let mut h = Harness::new();
    let key = h.incoming();
    h.ep.hangup(h.now, key).unwrap();
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(480));
}

#[test]
fn unanswered_invite_is_given_up_after_the_answer_timeout() {
    let mut h = Harness::new();
    let key = h.incoming();
    assert!(h.advance_to(Duration::from_secs(179)).is_empty());
    let sent = h.advance_to(Duration::from_secs(181));
    assert_eq!(status(&sent[0].1), Some(480));
    assert_eq!(h.events(), vec![SipEvent::CallCancelled { key }]);
    h.advance_to(Duration::from_secs(300));
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn reject_is_retransmitted_until_ack() {
    let mut h = Harness::new();
    let key = h.incoming();
    assert!(matches!(
        h.ep.reject(h.now, key, 200, "OK"),
        Err(SipError::InvalidStatus { .. })
    ));
    h.ep.reject(h.now, key, 486, "Busy Here").unwrap();
    let sent = h.transmits();
    assert_eq!(first_line(&sent[0]), "SIP/2.0 486 Busy Here");
    let tag = tag_of(&header(&sent[0], "To")).unwrap();
    let again = h.advance_to(Duration::from_millis(1600));
    assert_eq!(again.len(), 2);
    h.recv(&Req::new("ACK", "z9hG4bKinv1", 15623387, Some(&tag)).to_bytes());
    assert!(h.transmits().is_empty());
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn reject_without_ack_gives_up_at_timer_h() {
    let mut h = Harness::new();
    let key = h.incoming();
    h.ep.reject(h.now, key, 404, "Not Found").unwrap();
    h.transmits();
    let sent = h.advance_to(Duration::from_secs(60));
    assert!(
        sent.iter()
            .all(|(t, m)| status(m) == Some(404) && *t < Duration::from_secs(32))
    );
    assert!(h.events().is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn options_gets_200_with_allow_and_accept() {
    let mut h = Harness::new();
    h.recv(&Req::new("OPTIONS", "z9hG4bKopt1", 1, None).to_bytes());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(first_line(&sent[0]), "SIP/2.0 200 OK");
    assert_eq!(
        header(&sent[0], "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY"
    );
    assert_eq!(header(&sent[0], "Accept"), "application/sdp");
    assert!(tag_of(&header(&sent[0], "To")).is_some());
    assert_eq!(h.ep.call_count(), 0, "OPTIONS keeps no state");
}

#[test]
fn in_dialog_requests_for_unknown_dialogs_get_481() {
    let mut h = Harness::new();
    for method in ["BYE", "INVITE", "INFO"] {
        h.recv(&Req::new(method, "z9hG4bKx", 5, Some("nosuchtag")).to_bytes());
        let sent = h.transmits();
        assert_eq!(sent.len(), 1, "{method}");
        assert_eq!(status(&sent[0]), Some(481), "{method}");
    }
    // A BYE outside any dialog too.
    h.recv(&Req::new("BYE", "z9hG4bKy", 5, None).to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(481));
    // ACK for nothing is dropped silently.
    h.recv(&Req::new("ACK", "z9hG4bKz", 5, Some("nosuchtag")).to_bytes());
    assert!(h.transmits().is_empty());
}

#[test]
fn unsupported_methods_get_405_with_allow() {
    let mut h = Harness::new();
    h.recv(&Req::new("REGISTER", "z9hG4bKreg", 1, None).to_bytes());
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(405));
    assert_eq!(
        header(&sent[0], "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY"
    );
    // A method rsip does not know at all.
    h.recv(&Req::new("FROBNICATE", "z9hG4bKfrob", 1, None).to_bytes());
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(405));
    assert_eq!(
        header(&sent[0], "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY"
    );
}

#[test]
fn reinvite_gets_200_with_the_same_sdp_and_never_kills_the_call() {
    let mut h = Harness::new();
    let (key, tag) = h.confirmed();
    let reinvite = Req {
        body: OFFER,
        ..Req::new("INVITE", "z9hG4bKreinv", 15623388, Some(&tag))
    }
    .to_bytes();
    h.recv(&reinvite);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(body(&sent[0]), ANSWER);
    assert_eq!(header(&sent[0], "CSeq"), "15623388 INVITE");
    assert_eq!(tag_of(&header(&sent[0], "To")), Some(tag.clone()));
    assert!(h.events().is_empty());

    // Retransmitted until its ACK; a retransmitted re-INVITE gets the same 200.
    let again = h.advance_to(h.elapsed() + Duration::from_millis(500));
    assert_eq!(again.len(), 1);
    h.recv(&reinvite);
    assert_eq!(status(&h.transmits()[0]), Some(200));
    h.recv(&Req::new("ACK", "z9hG4bKack2", 15623388, Some(&tag)).to_bytes());
    assert!(h.advance_to(Duration::from_secs(100)).is_empty());
    assert!(h.events().is_empty(), "the call is still up");

    // And the dialog still works.
    h.recv(&Req::new("BYE", "z9hG4bKbye", 15623389, Some(&tag)).to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(200));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }]
    );
}

#[test]
fn out_of_order_cseq_in_dialog_gets_500() {
    let mut h = Harness::new();
    let (_, tag) = h.confirmed();
    h.recv(&Req::new("BYE", "z9hG4bKold", 100, Some(&tag)).to_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(500));
    assert!(h.events().is_empty());
}

#[test]
fn rport_sends_to_source_port_and_adds_received() {
    let mut h = Harness::new();
    // NAT: Via says 10.1.1.1:5060 with rport; the packet came from 198.51.100.7:40000.
    let nat_source: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    h.recv_from(
        nat_source,
        &Invite {
            via_host: "10.1.1.1:5060",
            via_params: ";rport",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent[0].destination, nat_source);
    assert_eq!(
        header(&sent[0], "Via"),
        "SIP/2.0/UDP 10.1.1.1:5060;rport=40000;branch=z9hG4bKinv1;received=198.51.100.7"
    );
}

#[test]
fn without_rport_responses_go_to_source_ip_and_via_port() {
    let mut h = Harness::new();
    let source: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    h.recv_from(
        source,
        &Invite {
            via_host: "10.1.1.1:5070",
            via_params: "",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent[0].destination, "198.51.100.7:5070".parse().unwrap());
    assert_eq!(
        header(&sent[0], "Via"),
        "SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKinv1;received=198.51.100.7"
    );

    // Via host equal to the source IP: no received parameter.
    let mut h = Harness::new();
    h.recv_from(
        source,
        &Invite {
            via_host: "198.51.100.7",
            via_params: "",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent[0].destination, "198.51.100.7:5060".parse().unwrap());
    assert_eq!(
        header(&sent[0], "Via"),
        "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKinv1"
    );
}

#[test]
fn tcp_responses_use_the_connection_and_are_not_retransmitted() {
    let mut h = Harness::new();
    let conn = ConnectionId(7);
    let source: SocketAddr = "198.51.100.7:51234".parse().unwrap();
    h.ep.handle_datagram(
        h.now,
        Transport::Tcp,
        source,
        Some(conn),
        &Invite {
            transport: "TCP",
            via_params: "",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transport, Transport::Tcp);
    assert_eq!(sent[0].connection, Some(conn));
    assert_eq!(sent[0].destination, source);
    let SipEvent::IncomingCall(call) = h.events().remove(0) else {
        panic!()
    };
    assert_eq!(call.transport, Transport::Tcp);

    h.ep.accept(h.now, call.key, session()).unwrap();
    let ok = h.transmits().remove(0);
    assert_eq!(ok.connection, Some(conn));
    assert_eq!(
        header(&ok, "Contact"),
        "<sip:203.0.113.10:5060;transport=tcp>"
    );

    // No retransmissions on a reliable transport, but Timer H still applies.
    let sent = h.advance_to(Duration::from_millis(31_900));
    assert!(sent.is_empty(), "{sent:?}");
    let sent = h.advance_to(Duration::from_secs(33));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key: call.key,
            reason: CallEndReason::AckTimeout
        }]
    );
    assert_eq!(sent.len(), 1);
    let bye = &sent[0].1;
    assert!(first_line(bye).starts_with("BYE "));
    assert_eq!(bye.transport, Transport::Tcp);
    assert_eq!(bye.connection, Some(conn));
    assert!(header(bye, "Via").starts_with("SIP/2.0/TCP "));
    // Timer F still ends the BYE transaction (no E retransmits).
    let sent = h.advance_to(Duration::from_secs(100));
    assert!(sent.is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

fn without_header(message: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| {
            !l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .collect();
    format!("{}\r\n\r\n{}", head.join("\r\n"), body).into_bytes()
}

fn replace_header(message: &[u8], name: &str, line: &str) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| {
            if l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            {
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{}", head.join("\r\n"), body).into_bytes()
}

fn single_response(h: &mut Harness, data: &[u8]) -> Option<String> {
    h.recv(data);
    let sent = h.transmits();
    assert!(sent.len() <= 1);
    assert!(
        h.events().is_empty(),
        "malformed request must not raise a call"
    );
    sent.first().map(first_line)
}

#[test]
fn malformed_requests_get_400_with_a_specific_reason() {
    let mut h = Harness::new();
    let invite = Invite::default().to_bytes();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            without_header(&invite, "Call-ID"),
            "SIP/2.0 400 Missing Call-ID",
        ),
        (without_header(&invite, "CSeq"), "SIP/2.0 400 Missing CSeq"),
        (without_header(&invite, "From"), "SIP/2.0 400 Missing From"),
        (without_header(&invite, "To"), "SIP/2.0 400 Missing To"),
        (
            without_header(&invite, "Contact"),
            "SIP/2.0 400 Missing Contact",
        ),
        (
            replace_header(&invite, "CSeq", "CSeq: abc INVITE"),
            "SIP/2.0 400 Malformed CSeq",
        ),
        (
            replace_header(&invite, "CSeq", "CSeq: 1 BYE"),
            "SIP/2.0 400 CSeq Method Mismatch",
        ),
        (
            replace_header(&invite, "Content-Length", "Content-Length: 99999"),
            "SIP/2.0 400 Content-Length Mismatch",
        ),
        (
            replace_header(&invite, "Content-Length", "Content-Length: lots"),
            "SIP/2.0 400 Malformed Content-Length",
        ),
        (
            replace_header(&invite, "User-Agent", "User-Agent \u{1}broken"),
            "SIP/2.0 400 Malformed Header",
        ),
        (
            replace_header(&invite, "User-Agent", "User-Agent: caf\u{e9}")
                .into_iter()
                .map(|b| if b == 0xc3 { 0xff } else { b })
                .collect(),
            "SIP/2.0 400 Invalid UTF-8 In Header",
        ),
    ];
    for (data, expected) in cases {
        assert_eq!(
            single_response(&mut h, &data).as_deref(),
            Some(expected),
            "for:\n{}",
            String::from_utf8_lossy(&data)
        );
    }
    // The 400 still copies what it could recover.
    h.recv(&without_header(&invite, "Call-ID"));
    let sent = h.transmits();
    assert_eq!(header(&sent[0], "CSeq"), "15623387 INVITE");
    assert_eq!(sent[0].destination, trunk());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn unanswerable_garbage_is_dropped_silently() {
    let mut h = Harness::new();
    let invite = Invite::default().to_bytes();
    let cases: Vec<Vec<u8>> = vec![
        without_header(&invite, "Via"),
        replace_header(&invite, "Via", "Via: nonsense"),
        b"hello world".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"INVITE\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        vec![0xff; 300],
        without_header(
            &Req::new("ACK", "z9hG4bKa", 1, Some("t")).to_bytes(),
            "Call-ID",
        ),
    ];
    for data in cases {
        assert_eq!(
            single_response(&mut h, &data),
            None,
            "{}",
            String::from_utf8_lossy(&data)
        );
    }
}

#[test]
fn required_extensions_get_420_with_unsupported() {
    let mut h = Harness::new();
    h.recv(
        &Invite {
            extra_headers: "Require: 100rel\r\n",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(first_line(&sent[0]), "SIP/2.0 420 Bad Extension");
    assert_eq!(header(&sent[0], "Unsupported"), "100rel");
    assert!(h.events().is_empty());
    // Supported: 100rel alone is fine.
    h.recv(
        &Invite {
            extra_headers: "Supported: 100rel, timer\r\n",
            ..Default::default()
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(100));
}

#[test]
fn compact_header_forms_are_understood() {
    let mut h = Harness::new();
    let invite = format!(
        "INVITE sip:+15551234567@203.0.113.10 SIP/2.0\r\n\
         v: SIP/2.0/UDP {TRUNK};branch=z9hG4bKcompact;rport\r\n\
         f: <sip:+15550000001@198.51.100.7>;tag=abc\r\n\
         t: <sip:+15551234567@203.0.113.10>\r\n\
         i: compact-call@198.51.100.7\r\n\
         CSeq: 1 INVITE\r\n\
         m: <sip:caller@198.51.100.7:5060>\r\n\
         c: application/sdp\r\n\
         l: {}\r\n\r\n{OFFER}",
        OFFER.len()
    );
    h.recv(invite.as_bytes());
    assert_eq!(status(&h.transmits()[0]), Some(100));
    let events = h.events();
    let [SipEvent::IncomingCall(call)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(call.call_id, "compact-call@198.51.100.7");
    assert_eq!(call.sdp.as_deref(), Some(OFFER));
}

#[test]
fn no_panic_on_random_truncated_and_mutated_input() {
    // Deterministic xorshift so failures reproduce.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut h = Harness::new();
    let invite = Invite {
        extra_headers: "Record-Route: <sip:10.0.0.1;lr>\r\n",
        ..Default::default()
    }
    .to_bytes();
    let (_, tag) = {
        let mut h2 = Harness::new();
        h2.accepted()
    };
    let bye = Req::new("BYE", "z9hG4bKb", 15623388, Some(&tag)).to_bytes();
    let samples = [
        invite.clone(),
        bye,
        Req::new("CANCEL", "z9hG4bKinv1", 15623387, None).to_bytes(),
    ];

    // Every truncation of a valid INVITE.
    for len in 0..invite.len() {
        h.recv(&invite[..len]);
    }
    // Random bytes of random length.
    for _ in 0..3000 {
        let len = (next() % 1500) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        h.recv(&data);
    }
    // Mutations of valid messages: byte flips, inserted separators, huge numbers.
    let specials: [&[u8]; 8] = [
        b"\r\n",
        b":",
        b";",
        b"<",
        b">",
        b"\"",
        b"99999999999999999999",
        b"\0",
    ];
    for i in 0..6000 {
        let mut data = samples[i % samples.len()].clone();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % data.len().max(1);
            match next() % 4 {
                0 => {
                    if pos < data.len() {
                        data[pos] = next() as u8;
                    }
                }
                1 => {
                    let s = specials[(next() % specials.len() as u64) as usize];
                    let pos = pos.min(data.len());
                    data.splice(pos..pos, s.iter().copied());
                }
                2 => {
                    let end = (pos + (next() % 20) as usize).min(data.len());
                    data.drain(pos.min(end)..end);
                }
                _ => data.truncate(pos),
            }
        }
        h.recv(&data);
        h.ep.handle_timeout(h.now);
        h.transmits();
        h.events();
        if i % 500 == 0 {
            h.now += Duration::from_secs(1);
        }
    }
    // Huge Content-Length and an oversized datagram.
    h.recv(&replace_header(
        &invite,
        "Content-Length",
        "Content-Length: 18446744073709551616",
    ));
    h.recv(&vec![b'A'; 70_000]);
    h.transmits();
    h.events();

    // The endpoint still works afterwards.
    h.advance_to(h.elapsed() + Duration::from_secs(600));
    h.recv(
        &Invite {
            call_id: "after-fuzz",
            branch: "z9hG4bKafterfuzz",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent: Vec<_> = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(100));
}

/// Calls that ended linger 32 s to absorb retransmissions; they do not count against
/// `MAX_CALLS`, so a sustained setup rate above `MAX_CALLS / 32 s` (≈ 312 per second) is not
/// refused with `503`.
#[test]
fn ended_calls_lingering_for_retransmissions_do_not_fill_the_call_table() {
    let mut h = Harness::new();
    let ended = vaani_sip::MAX_CALLS + 50;
    for n in 0..ended {
        let call_id = format!("linger-{n}");
        let branch = format!("z9hG4bKinv{n}");
        h.recv(
            &Invite {
                call_id: &call_id,
                branch: &branch,
                ..Default::default()
            }
            .to_bytes(),
        );
        let key = match h.events().as_slice() {
            [SipEvent::IncomingCall(call)] => call.key,
            other => panic!("call {n}: expected one IncomingCall, got {other:?}"),
        };
        h.ep.accept(h.now, key, session()).unwrap();
        let sent = h.transmits();
        assert_eq!(status(sent.last().unwrap()), Some(200), "call {n}");
        let tag = tag_of(&header(sent.last().unwrap(), "To")).unwrap();
        let ack_branch = format!("z9hG4bKack{n}");
        let bye_branch = format!("z9hG4bKbye{n}");
        for (method, branch, cseq) in [
            ("ACK", &ack_branch, 15623387),
            ("BYE", &bye_branch, 15623388),
        ] {
            h.recv(
                &Req {
                    call_id: &call_id,
                    ..Req::new(method, branch, cseq, Some(&tag))
                }
                .to_bytes(),
            );
        }
        let sent = h.transmits();
        assert_eq!(status(&sent[0]), Some(200), "call {n}: BYE answered");
        h.events();
    }
    assert_eq!(h.ep.call_count(), ended);
    assert_eq!(h.ep.lingering_call_count(), ended);

    // A new call is taken, not refused.
    h.recv(
        &Invite {
            branch: "z9hG4bKfresh",
            ..Default::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(100), "{}", first_line(&sent[0]));
    assert!(matches!(h.events().as_slice(), [SipEvent::IncomingCall(_)]));

    // After 64 × T1 the ended calls are gone; the one in progress stays.
    h.advance_to(Duration::from_secs(40));
    assert_eq!(h.ep.lingering_call_count(), 0);
    assert_eq!(h.ep.call_count(), 1);
}
