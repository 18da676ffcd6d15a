//! Changing an answered call: hold and resume by re-INVITE and UPDATE, offers without SDP,
//! refused re-offers, and session timers (RFC 4028) over a simulated hour.

mod common;

use std::time::Duration;

use common::*;
use vaani_sip::{CallEndReason, CallKey, MediaDirection, SipEvent, Transmit};

/// [`OFFER`] with its direction line replaced.
fn offer_with(direction: &str) -> String {
    OFFER.replace("a=sendrecv\r\n", &format!("a={direction}\r\n"))
}

fn origin_version(sdp: &str) -> u64 {
    let origin = sdp.lines().find(|l| l.starts_with("o=")).expect("o= line");
    origin.split(' ').nth(2).unwrap().parse().unwrap()
}

fn media_changed(events: &[SipEvent]) -> Option<vaani_sip::NegotiatedMedia> {
    events.iter().find_map(|e| match e {
        SipEvent::MediaChanged { media, .. } => Some(media.clone()),
        _ => None,
    })
}

/// A response from the trunk to a request we sent (Via, From, To, Call-ID and CSeq copied).
fn answer_request(request: &Transmit, status: u16, extra_headers: &str) -> Vec<u8> {
    let copied: String = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .map(|name| format!("{name}: {}\r\n", header(request, name)))
        .collect();
    format!("SIP/2.0 {status} Whatever\r\n{copied}{extra_headers}Content-Length: 0\r\n\r\n")
        .into_bytes()
}

/// Delivers an INVITE with `extra_headers`, answers it and takes the ACK; returns the key, our
/// To-tag and the 200.
fn confirmed_with(h: &mut Harness, extra_headers: &str) -> (CallKey, String, Transmit) {
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

#[test]
fn hold_is_answered_recvonly_and_resume_sendrecv_with_rising_versions() {
    let mut h = Harness::new();
    let (_, tag) = h.confirmed();
    let first_version = origin_version(session().local_sdp());

    let hold = offer_with("sendonly");
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("INVITE", "z9hG4bKhold", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    let answer = body(&sent[0]);
    assert!(answer.contains("a=recvonly\r\n"), "{answer}");
    let hold_version = origin_version(&answer);
    assert!(
        hold_version > first_version,
        "o= version must rise on a changed answer"
    );
    let media = media_changed(&h.events()).expect("hold changes the media");
    assert_eq!(media.direction, MediaDirection::RecvOnly);
    h.recv(&Req::new("ACK", "z9hG4bKhold-ack", 15623388, Some(&tag)).to_bytes());

    let resume = offer_with("sendrecv");
    h.recv(
        &Req {
            body: &resume,
            ..Req::new("INVITE", "z9hG4bKresume", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    let answer = body(&sent[0]);
    assert!(answer.contains("a=sendrecv\r\n"), "{answer}");
    assert!(origin_version(&answer) > hold_version);
    let media = media_changed(&h.events()).expect("resume changes the media");
    assert_eq!(media.direction, MediaDirection::SendRecv);
    assert!(media.remote_rtp.is_some());
}

#[test]
fn legacy_hold_with_zero_address_stops_our_sending() {
    let mut h = Harness::new();
    let (_, tag) = h.confirmed();
    let hold = OFFER.replace("c=IN IP4 168.86.128.10", "c=IN IP4 0.0.0.0");
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("INVITE", "z9hG4bKhold0", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(200));
    let media = media_changed(&h.events()).expect("media changed");
    assert_eq!(media.remote_rtp, None, "c=0.0.0.0 means: send nothing");
}

#[test]
fn an_unacceptable_reoffer_gets_488_and_the_call_goes_on() {
    let mut h = Harness::new();
    let (key, tag) = h.confirmed();
    let g729_only = OFFER
        .replace("m=audio 40150 RTP/AVP 0 8 101", "m=audio 40150 RTP/AVP 18")
        .replace(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:18 G729/8000\r\n",
        );
    h.recv(
        &Req {
            body: &g729_only,
            ..Req::new("INVITE", "z9hG4bKg729", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(488));
    assert!(h.events().is_empty(), "the call is untouched");
    h.recv(&Req::new("ACK", "z9hG4bKg729", 15623388, Some(&tag)).to_bytes());

    // The old session still holds: a hold afterwards is answered from it.
    let hold = offer_with("sendonly");
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("INVITE", "z9hG4bKhold", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert!(body(&sent[0]).contains("m=audio 30000 RTP/AVP 0 101"));
    h.recv(&Req::new("ACK", "z9hG4bKhold", 15623389, Some(&tag)).to_bytes());
    h.events();
    h.recv(&Req::new("BYE", "z9hG4bKbye", 15623390, Some(&tag)).to_bytes());
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
fn a_reinvite_without_sdp_gets_our_sendrecv_offer_and_the_ack_answers_it() {
    let mut h = Harness::new();
    // The peer put us on hold first: our offer must still say sendrecv (RFC 6337 §5.1).
    let (_, tag) = h.confirmed();
    let hold = offer_with("sendonly");
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("INVITE", "z9hG4bKhold", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    h.transmits();
    h.events();
    h.recv(&Req::new("ACK", "z9hG4bKhold", 15623388, Some(&tag)).to_bytes());

    h.recv(&Req::new("INVITE", "z9hG4bKdelayed", 15623389, Some(&tag)).to_bytes());
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    let offer = body(&sent[0]);
    assert!(offer.contains("a=sendrecv\r\n"), "{offer}");
    assert!(offer.contains("m=audio 30000 RTP/AVP 0 101"), "{offer}");
    assert!(h.events().is_empty(), "nothing changes before the answer");

    let answer = OFFER
        .replace(
            "m=audio 40150 RTP/AVP 0 8 101",
            "m=audio 40200 RTP/AVP 0 101",
        )
        .replace("a=rtpmap:8 PCMA/8000\r\n", "");
    h.recv(
        &Req {
            body: &answer,
            ..Req::new("ACK", "z9hG4bKdelayed-ack", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    let media = media_changed(&h.events()).expect("the answer changes the media");
    assert_eq!(media.remote_rtp.unwrap().port(), 40200);
    assert_eq!(media.direction, MediaDirection::SendRecv);
    // The 200 is no longer retransmitted once the ACK came.
    let later = h.advance_to(Duration::from_secs(10));
    assert!(later.is_empty(), "{later:?}");
}

#[test]
fn update_without_sdp_refreshes_and_with_sdp_reoffers() {
    let mut h = Harness::new();
    let (_, tag) = h.confirmed();
    h.recv(
        &Req {
            extra_headers: "Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n",
            ..Req::new("UPDATE", "z9hG4bKupd1", 15623388, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(body(&sent[0]), "");
    assert_eq!(header(&sent[0], "Session-Expires"), "1800;refresher=uac");
    assert!(h.events().is_empty());

    let hold = offer_with("inactive");
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("UPDATE", "z9hG4bKupd2", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert!(body(&sent[0]).contains("a=inactive\r\n"));
    assert_eq!(
        media_changed(&h.events()).map(|m| m.direction),
        Some(MediaDirection::Inactive)
    );
    // A retransmitted UPDATE gets the same answer and no second event.
    h.recv(
        &Req {
            body: &hold,
            ..Req::new("UPDATE", "z9hG4bKupd2", 15623389, Some(&tag))
        }
        .to_bytes(),
    );
    assert_eq!(status(&h.transmits()[0]), Some(200));
    assert!(h.events().is_empty());
}

#[test]
fn a_too_short_session_interval_gets_422_with_our_minimum() {
    let mut h = Harness::new();
    h.recv(
        &Invite {
            extra_headers: "Supported: timer\r\nSession-Expires: 60\r\n",
            ..Invite::default()
        }
        .to_bytes(),
    );
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(422));
    assert_eq!(header(&sent[0], "Min-SE"), "90");
    assert!(h.events().is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn require_timer_is_accepted_and_the_caller_is_made_refresher() {
    let mut h = Harness::new();
    let (_, _, ok) = confirmed_with(
        &mut h,
        "Supported: timer\r\nRequire: timer\r\nSession-Expires: 1800\r\nMin-SE: 90\r\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), "1800;refresher=uac");
    assert_eq!(header(&ok, "Require"), "timer");
    assert!(header(&ok, "Supported").contains("timer"));
}

/// A one-hour call with the carrier's usual settings: it re-INVITEs every 15 minutes with
/// `Session-Expires: 1800`. Nothing drops; when the refreshes stop, we end the call in time.
#[test]
fn an_hour_of_carrier_refreshes_keeps_the_call_and_silence_ends_it() {
    let mut h = Harness::new();
    let (key, tag, _) = confirmed_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\n",
    );
    for (cseq, quarter) in (15623388..).zip(1..=4u64) {
        let sent = h.advance_to(Duration::from_secs(quarter * 900));
        assert!(sent.is_empty(), "quarter {quarter}: {sent:?}");
        assert!(h.events().is_empty(), "quarter {quarter}");
        let branch = format!("z9hG4bKrefresh{quarter}");
        h.recv(
            &Req {
                body: OFFER,
                extra_headers: "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
                ..Req::new("INVITE", &branch, cseq, Some(&tag))
            }
            .to_bytes(),
        );
        let sent = h.transmits();
        assert_eq!(status(&sent[0]), Some(200), "quarter {quarter}");
        assert_eq!(header(&sent[0], "Session-Expires"), "1800;refresher=uac");
        h.recv(&Req::new("ACK", &format!("{branch}-ack"), cseq, Some(&tag)).to_bytes());
        assert!(
            h.events().is_empty(),
            "an unchanged re-offer is no media change"
        );
    }
    // The last refresh was at 60 min; the session expires 1800 s later, and we send BYE
    // 32 s before that (RFC 4028 §10).
    let sent = h.advance_to(Duration::from_secs(3600 + 1800 - 33));
    assert!(sent.is_empty(), "{sent:?}");
    let sent = h.advance_to(Duration::from_millis((3600 + 1800 - 32) * 1000 + 100));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(first_line(&sent[0].1).starts_with("BYE "));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::SessionExpired
        }]
    );
}

/// When the caller asks us to refresh, we send UPDATEs at half the interval for as long as the
/// call lasts, and end the call when a refresh is answered 481.
#[test]
fn as_refresher_we_send_updates_at_half_the_interval() {
    let mut h = Harness::new();
    let (key, _, ok) = confirmed_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), "90;refresher=uas");
    assert!(headers(&ok, "Require").is_empty(), "we refresh: no Require");
    let mut updates = 0;
    let mut at = Duration::ZERO;
    while at < Duration::from_secs(3600) {
        at += Duration::from_secs(45);
        let sent = h.advance_to(at);
        assert_eq!(sent.len(), 1, "at {at:?}: {sent:?}");
        let update = &sent[0].1;
        assert!(
            first_line(update).starts_with("UPDATE "),
            "{}",
            first_line(update)
        );
        // In our UPDATE, `uac` is us: we stay the refresher (RFC 4028 §7.4).
        assert_eq!(header(update, "Session-Expires"), "90;refresher=uac");
        assert_eq!(body(update), "");
        // Peers confirm with `refresher=uac` (the UPDATE's sender) or leave the header out.
        let confirmation = if updates % 2 == 0 {
            "Session-Expires: 90;refresher=uac\r\n"
        } else {
            ""
        };
        h.recv(&answer_request(update, 200, confirmation));
        updates += 1;
    }
    assert_eq!(updates, 80);
    assert!(h.events().is_empty(), "the call is still up");

    at += Duration::from_secs(45);
    let sent = h.advance_to(at);
    h.recv(&answer_request(&sent[0].1, 481, ""));
    let sent = h.transmits();
    assert!(
        first_line(&sent[0]).starts_with("BYE "),
        "{}",
        first_line(&sent[0])
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
fn an_unanswered_refresh_is_retransmitted_then_ends_the_call() {
    let mut h = Harness::new();
    let (key, _, _) = confirmed_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
    );
    let sent = h.advance_to(Duration::from_secs(45));
    assert_eq!(sent.len(), 1);
    // Timer E doubles to T2 and Timer F gives up after 64×T1 = 32 s.
    let sent = h.advance_to(Duration::from_secs(45 + 33));
    let updates = sent
        .iter()
        .filter(|(_, t)| first_line(t).starts_with("UPDATE "))
        .count();
    assert!(updates >= 6, "retransmissions: {updates}");
    assert!(
        sent.iter().any(|(_, t)| first_line(t).starts_with("BYE ")),
        "{sent:?}"
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
fn sip_info_keys_become_dtmf_events_once() {
    let mut h = Harness::new();
    let (key, tag) = h.confirmed();
    let info = |branch: &str, cseq: u32, ctype: &str, body: &str| {
        // Req writes an SDP content type for a body; this INFO is built by hand.
        format!(
            "INFO sip:+15083728299@203.0.113.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {TRUNK};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15083084809@198.51.100.7:5060>;tag=vQXQ3g5papXpF\r\n\
             To: <sip:+15083728299@203.0.113.10>;tag={tag}\r\n\
             Call-ID: 252a93d3-bdb2-1238-6185-06d91d68c9b0\r\n\
             CSeq: {cseq} INFO\r\n\
             Content-Type: {ctype}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let cases = [
        (
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
            Some('5'),
        ),
        (
            "application/dtmf-relay",
            "Signal= 11\r\nDuration=160\r\n",
            Some('#'),
        ),
        ("application/dtmf", "*", Some('*')),
        ("application/dtmf-relay", "Signal=b\r\n", Some('B')),
        ("application/dtmf-relay", "Signal=55\r\n", None),
        ("application/media_control+xml", "<x/>", None),
    ];
    for (i, (ctype, body, expected)) in cases.iter().enumerate() {
        let branch = format!("z9hG4bKinfo{i}");
        let cseq = 15623388 + i as u32;
        h.recv(&info(&branch, cseq, ctype, body));
        assert_eq!(status(&h.transmits()[0]), Some(200), "{body}");
        let events = h.events();
        match expected {
            Some(digit) => assert_eq!(events, vec![SipEvent::Dtmf { key, digit: *digit }]),
            None => assert!(events.is_empty(), "{body}: {events:?}"),
        }
        // A retransmission is answered again but is not a second key.
        h.recv(&info(&branch, cseq, ctype, body));
        assert_eq!(status(&h.transmits()[0]), Some(200));
        assert!(h.events().is_empty());
    }
}

#[test]
fn a_peer_that_takes_over_refreshing_gets_no_more_updates_and_is_held_to_it() {
    let mut h = Harness::new();
    let (key, _, _) = confirmed_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n",
    );
    let sent = h.advance_to(Duration::from_secs(45));
    assert_eq!(sent.len(), 1);
    // The 2xx names the UPDATE's UAS (the peer) as refresher from now on.
    h.recv(&answer_request(
        &sent[0].1,
        200,
        "Session-Expires: 90;refresher=uas\r\n",
    ));
    // No UPDATE from us any more; without the peer's refresh the call ends 30 s before expiry.
    let sent = h.advance_to(Duration::from_secs(45 + 59));
    assert!(sent.is_empty(), "{sent:?}");
    let sent = h.advance_to(Duration::from_millis((45 + 60) * 1000 + 100));
    assert!(first_line(&sent[0].1).starts_with("BYE "), "{sent:?}");
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::SessionExpired
        }]
    );
}
