//! Calls we place (UAC), driven by a simulated clock: the INVITE client transaction, early
//! media, ACK for 2xx and non-2xx, digest challenges, CANCEL on ring timeout and hang-up, and
//! the dialog after the answer.

mod common;

use std::time::Duration;

use common::*;
use vaani_sip::digest::{DigestAlgorithm, digest_response};
use vaani_sip::{
    AudioCodec, CallEndReason, CallKey, DigestCredentials, MediaDirection, OutboundCall,
    OutboundFailure, SdpSession, SipEvent, Transmit, Transport,
};

const REQUEST_URI: &str = "sip:+919876543210@198.51.100.7";

fn offer() -> SdpSession {
    SdpSession::offer_initial(
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
        "203.0.113.10".parse().unwrap(),
        30000,
        7,
    )
}

fn outbound_call() -> OutboundCall {
    OutboundCall {
        request_uri: REQUEST_URI.to_string(),
        destination: trunk(),
        transport: Transport::Udp,
        from_user: "+15108675309".to_string(),
        from_display: Some("Clinic Bot".to_string()),
        to_user: "+919876543210".to_string(),
        sdp: offer(),
        extra_headers: vec![("X-Tenant".to_string(), "clinic".to_string())],
        credentials: None,
        ring_timeout: Duration::from_secs(60),
        tls: None,
    }
}

fn credentials() -> DigestCredentials {
    DigestCredentials {
        username: "vaani".to_string(),
        password: "secret".to_string(),
    }
}

/// Place `call`; returns its key and the INVITE.
fn place(h: &mut Harness, call: OutboundCall) -> (CallKey, Transmit) {
    let key = h.ep.place_call(h.now, call).expect("call placed");
    let mut sent = h.transmits();
    assert_eq!(sent.len(), 1, "exactly the INVITE goes out");
    let invite = sent.remove(0);
    assert!(first_line(&invite).starts_with("INVITE sip:+919876543210@198.51.100.7 SIP/2.0"));
    assert_eq!(invite.destination, trunk());
    (key, invite)
}

fn branch_of(t: &Transmit) -> String {
    let via = header(t, "Via");
    via.split(';')
        .find_map(|p| p.trim().strip_prefix("branch=").map(str::to_string))
        .unwrap_or_else(|| panic!("no branch in {via}"))
}

fn cseq_of(t: &Transmit) -> (u32, String) {
    let cseq = header(t, "CSeq");
    let (n, m) = cseq.split_once(' ').unwrap();
    (n.parse().unwrap(), m.trim().to_string())
}

const ANSWER_183: &str = "v=0\r\n\
o=gw 1 1 IN IP4 10.20.0.1\r\n\
s=-\r\n\
c=IN IP4 10.20.0.1\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 8 96\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const ANSWER_200: &str = "v=0\r\n\
o=gw 1 2 IN IP4 168.86.128.20\r\n\
s=-\r\n\
c=IN IP4 168.86.128.20\r\n\
t=0 0\r\n\
m=audio 5000 RTP/AVP 8 96\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A response to `request` (Via, From, Call-ID, CSeq copied), with a To-tag when given.
fn response(
    request: &Transmit,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let to = header(request, "To");
    let to = match to_tag {
        Some(tag) => format!("{to};tag={tag}"),
        None => to,
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status} {reason}\r\n\
         Via: {via};received=203.0.113.10\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
        via = header(request, "Via"),
        from = header(request, "From"),
        call_id = header(request, "Call-ID"),
        cseq = header(request, "CSeq"),
        len = body.len(),
    )
    .into_bytes()
}

const GW_CONTACT: &str = "Contact: <sip:+919876543210@198.51.100.50:5080>\r\n";
const RECORD_ROUTE: &str =
    "Record-Route: <sip:192.0.2.1;lr>\r\nRecord-Route: <sip:192.0.2.2:5070;lr;ftag=x>\r\n";

fn answered(h: &mut Harness) -> (CallKey, Transmit, Transmit) {
    let (key, invite) = place(h, outbound_call());
    h.recv(&response(
        &invite,
        180,
        "Ringing",
        Some("gw1"),
        GW_CONTACT,
        "",
    ));
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        &format!("{GW_CONTACT}{RECORD_ROUTE}"),
        ANSWER_200,
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1, "one ACK");
    let events = h.events();
    assert!(matches!(
        events.last(),
        Some(SipEvent::OutboundAnswered { .. })
    ));
    (key, invite, sent[0].clone())
}

#[test]
fn the_invite_carries_our_offer_and_identity() {
    let mut h = Harness::new();
    let (_, invite) = place(&mut h, outbound_call());
    assert!(branch_of(&invite).starts_with("z9hG4bK"));
    assert!(header(&invite, "Via").starts_with("SIP/2.0/UDP 203.0.113.10:5060;"));
    assert!(header(&invite, "Via").contains(";rport"));
    assert_eq!(cseq_of(&invite).1, "INVITE");
    assert!(
        header(&invite, "From").starts_with("\"Clinic Bot\" <sip:+15108675309@203.0.113.10>;tag=")
    );
    assert_eq!(
        header(&invite, "To"),
        "<sip:+919876543210@198.51.100.7>",
        "no To-tag on the initial INVITE"
    );
    assert_eq!(header(&invite, "Contact"), "<sip:203.0.113.10:5060>");
    assert_eq!(header(&invite, "Max-Forwards"), "70");
    assert_eq!(header(&invite, "Supported"), "timer");
    assert!(header(&invite, "Allow").contains("INVITE"));
    assert_eq!(header(&invite, "X-Tenant"), "clinic");
    assert_eq!(header(&invite, "Content-Type"), "application/sdp");
    let sdp = body(&invite);
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(sdp.contains("a=rtpmap:8 PCMA/8000\r\n"));
    assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
    assert!(sdp.contains("a=ptime:20\r\na=sendrecv\r\n"));
    assert!(sdp.contains("c=IN IP4 203.0.113.10\r\n"));
    assert_eq!(
        header(&invite, "Content-Length"),
        sdp.len().to_string(),
        "Content-Length counts the body"
    );

    // Two calls get different Call-IDs, tags and branches.
    let (_, second) = place(&mut h, outbound_call());
    assert_ne!(header(&invite, "Call-ID"), header(&second, "Call-ID"));
    assert_ne!(branch_of(&invite), branch_of(&second));
    assert_ne!(
        tag_of(&header(&invite, "From")),
        tag_of(&header(&second, "From"))
    );
}

#[test]
fn application_headers_cannot_override_ours() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.extra_headers = vec![
        ("Call-ID".to_string(), "evil".to_string()),
        ("Via".to_string(), "SIP/2.0/UDP evil".to_string()),
        ("Bad Name".to_string(), "x".to_string()),
        (
            "P-Asserted-Identity".to_string(),
            "<sip:+15108675309@x>\r\nX: y".to_string(),
        ),
    ];
    let (_, invite) = place(&mut h, call);
    assert_eq!(headers(&invite, "Call-ID").len(), 1);
    assert_ne!(header(&invite, "Call-ID"), "evil");
    assert_eq!(headers(&invite, "Via").len(), 1);
    assert_eq!(
        header(&invite, "P-Asserted-Identity"),
        "<sip:+15108675309@x>X: y"
    );
    assert!(headers(&invite, "X").is_empty(), "no header injection");
}

#[test]
fn bad_calls_are_refused_without_sending() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.request_uri = "not a uri".to_string();
    assert!(h.ep.place_call(h.now, call).is_err());
    let mut call = outbound_call();
    call.request_uri = "sip:+1@trunk\r\nX: y".to_string();
    assert!(h.ep.place_call(h.now, call).is_err());
    let mut call = outbound_call();
    call.to_user = "a b".to_string();
    assert!(h.ep.place_call(h.now, call).is_err());
    assert!(h.transmits().is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn early_media_then_answer_acks_through_the_route_set() {
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, outbound_call());
    let (invite_cseq, _) = cseq_of(&invite);

    h.recv(&response(&invite, 100, "Trying", None, "", ""));
    h.recv(&response(
        &invite,
        180,
        "Ringing",
        Some("gw1"),
        GW_CONTACT,
        "",
    ));
    h.recv(&response(
        &invite,
        183,
        "Session Progress",
        Some("gw1"),
        GW_CONTACT,
        ANSWER_183,
    ));
    assert!(
        h.transmits().is_empty(),
        "provisional responses get no answer"
    );
    let events = h.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[0],
        SipEvent::OutboundProgress {
            key,
            status: 100,
            media: None
        }
    );
    assert_eq!(
        events[1],
        SipEvent::OutboundProgress {
            key,
            status: 180,
            media: None
        }
    );
    let SipEvent::OutboundProgress {
        status: 183,
        media: Some(early),
        ..
    } = &events[2]
    else {
        panic!("183 with media expected: {:?}", events[2]);
    };
    assert_eq!(early.codec, AudioCodec::Pcma, "the answer's codec");
    assert_eq!(early.payload_type, 8);
    assert_eq!(
        early.dtmf_payload_type,
        Some(96),
        "their telephone-event PT"
    );
    assert_eq!(early.remote_rtp, Some("10.20.0.1:4000".parse().unwrap()));

    // No INVITE retransmissions after a provisional response.
    assert!(h.advance_to(Duration::from_secs(10)).is_empty());

    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        &format!("{GW_CONTACT}{RECORD_ROUTE}Session-Expires: 1800;refresher=uas\r\n"),
        ANSWER_200,
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let ack = &sent[0];
    assert_eq!(
        first_line(ack),
        "ACK sip:+919876543210@198.51.100.50:5080 SIP/2.0",
        "Request-URI is the 2xx Contact"
    );
    assert_ne!(
        branch_of(ack),
        branch_of(&invite),
        "ACK of a 2xx is a new transaction"
    );
    assert_eq!(cseq_of(ack), (invite_cseq, "ACK".to_string()));
    assert_eq!(
        headers(ack, "Route"),
        vec!["<sip:192.0.2.2:5070;lr;ftag=x>", "<sip:192.0.2.1;lr>"],
        "Record-Route reversed"
    );
    assert_eq!(
        ack.destination,
        "192.0.2.2:5070".parse().unwrap(),
        "first route"
    );
    assert_eq!(tag_of(&header(ack, "To")).as_deref(), Some("gw1"));
    assert_eq!(
        tag_of(&header(ack, "From")),
        tag_of(&header(&invite, "From"))
    );
    assert_eq!(header(ack, "Call-ID"), header(&invite, "Call-ID"));
    let events = h.events();
    let [SipEvent::OutboundAnswered { key: k, media }] = events.as_slice() else {
        panic!("answered expected: {events:?}");
    };
    assert_eq!(*k, key);
    assert_eq!(
        media.remote_rtp,
        Some("168.86.128.20:5000".parse().unwrap()),
        "the address changed between 183 and 200"
    );
    assert_eq!(media.codec, AudioCodec::Pcma);
    assert_eq!(media.direction, MediaDirection::SendRecv);

    // A retransmitted 200 gets the same ACK again, and no new event.
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        &format!("{GW_CONTACT}{RECORD_ROUTE}"),
        ANSWER_200,
    ));
    let again = h.transmits();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, ack.data);
    assert!(h.events().is_empty());

    // Our BYE: next CSeq, to the remote target through the route set.
    h.ep.hangup(h.now, key).unwrap();
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let bye = &sent[0];
    assert_eq!(
        first_line(bye),
        "BYE sip:+919876543210@198.51.100.50:5080 SIP/2.0"
    );
    assert_eq!(cseq_of(bye), (invite_cseq + 1, "BYE".to_string()));
    assert_eq!(
        headers(bye, "Route"),
        vec!["<sip:192.0.2.2:5070;lr;ftag=x>", "<sip:192.0.2.1;lr>"]
    );
    assert_eq!(bye.destination, "192.0.2.2:5070".parse().unwrap());
    assert_eq!(tag_of(&header(bye, "To")).as_deref(), Some("gw1"));
    assert!(header(bye, "From").contains("Clinic Bot"));
    h.recv(&response(bye, 200, "OK", None, "", ""));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }]
    );
}

#[test]
fn the_peer_can_hang_up_and_reinvite_an_answered_call() {
    let mut h = Harness::new();
    let (key, invite, _) = answered(&mut h);
    let from = header(&invite, "From");
    let call_id = header(&invite, "Call-ID");
    let peer_request = |method: &str, cseq: u32, body: &str| {
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:203.0.113.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bKpeer{cseq}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+919876543210@198.51.100.7>;tag=gw1\r\n\
             To: {from}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:+919876543210@198.51.100.50:5080>\r\n\
             {content_type}Content-Length: {len}\r\n\r\n{body}",
            len = body.len()
        )
        .into_bytes()
    };

    // A hold re-INVITE is answered like on an inbound call.
    let hold = ANSWER_200.replace("a=sendrecv", "a=sendonly");
    h.recv(&peer_request("INVITE", 5, &hold));
    let sent = h.transmits();
    assert_eq!(status(&sent[0]), Some(200));
    assert!(body(&sent[0]).contains("a=recvonly"));
    let events = h.events();
    assert!(
        matches!(&events[..], [SipEvent::MediaChanged { key: k, media }] if *k == key && media.direction == MediaDirection::RecvOnly),
        "{events:?}"
    );

    h.recv(&peer_request("BYE", 6, ""));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(status(&sent[0]), Some(200));
    assert_eq!(
        h.events(),
        vec![SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }]
    );
}

#[test]
fn busy_is_acked_on_the_invite_branch() {
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, outbound_call());
    h.recv(&response(&invite, 180, "Ringing", Some("gw9"), "", ""));
    h.events();
    h.recv(&response(&invite, 486, "Busy Here", Some("gw9"), "", ""));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let ack = &sent[0];
    assert_eq!(first_line(ack), format!("ACK {REQUEST_URI} SIP/2.0"));
    assert_eq!(branch_of(ack), branch_of(&invite), "same transaction");
    assert_eq!(cseq_of(ack), (cseq_of(&invite).0, "ACK".to_string()));
    assert_eq!(tag_of(&header(ack, "To")).as_deref(), Some("gw9"));
    assert_eq!(ack.destination, trunk());
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key,
            status: 486,
            reason_phrase: "Busy Here".to_string(),
            reason: OutboundFailure::Busy
        }]
    );
    // The retransmitted 486 gets the ACK again and nothing else.
    h.recv(&response(&invite, 486, "Busy Here", Some("gw9"), "", ""));
    let again = h.transmits();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, ack.data);
    assert!(h.events().is_empty());
    assert!(h.ep.hangup(h.now, key).is_err(), "the call is over");
    // Lingers for Timer D, then goes.
    h.advance_to(Duration::from_secs(40));
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn failure_statuses_map_to_reasons() {
    for (status, expected) in [
        (486, OutboundFailure::Busy),
        (600, OutboundFailure::Busy),
        (480, OutboundFailure::NoAnswer),
        (408, OutboundFailure::NoAnswer),
        (403, OutboundFailure::Rejected),
        (404, OutboundFailure::Rejected),
        (603, OutboundFailure::Rejected),
        (503, OutboundFailure::Failed),
        (302, OutboundFailure::Failed),
        (487, OutboundFailure::Failed),
    ] {
        let mut h = Harness::new();
        let (key, invite) = place(&mut h, outbound_call());
        h.recv(&response(&invite, status, "Whatever", Some("t"), "", ""));
        assert_eq!(h.transmits().len(), 1, "ACK for {status}");
        assert_eq!(
            h.events(),
            vec![SipEvent::OutboundFailed {
                key,
                status,
                reason_phrase: "Whatever".to_string(),
                reason: expected
            }],
            "status {status}"
        );
    }
}

/// `name="value"` or `name=value` out of an Authorization value.
fn auth_param(value: &str, name: &str) -> Option<String> {
    value
        .trim_start_matches("Digest")
        .split(", ")
        .find_map(|p| p.trim().strip_prefix(&format!("{name}=")))
        .map(|v| v.trim_matches('"').to_string())
}

#[test]
fn a_401_md5_challenge_is_answered_once() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.credentials = Some(credentials());
    let (key, invite) = place(&mut h, call);
    h.recv(&response(
        &invite,
        401,
        "Unauthorized",
        Some("px"),
        "WWW-Authenticate: Digest realm=\"sip.twilio.com\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5\r\n",
        "",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2, "ACK for the 401, then the new INVITE");
    let (ack, second) = (&sent[0], &sent[1]);
    assert!(first_line(ack).starts_with("ACK "));
    assert_eq!(branch_of(ack), branch_of(&invite));
    assert!(first_line(second).starts_with("INVITE sip:+919876543210@198.51.100.7 "));
    assert_ne!(branch_of(second), branch_of(&invite), "new branch");
    assert_eq!(
        cseq_of(second),
        (cseq_of(&invite).0 + 1, "INVITE".to_string())
    );
    assert_eq!(header(second, "Call-ID"), header(&invite, "Call-ID"));
    assert_eq!(
        header(second, "From"),
        header(&invite, "From"),
        "same From tag"
    );
    assert_eq!(header(second, "To"), header(&invite, "To"), "no To-tag");
    assert_eq!(body(second), body(&invite));
    let auth = header(second, "Authorization");
    assert!(auth.starts_with("Digest "));
    assert_eq!(auth_param(&auth, "username").as_deref(), Some("vaani"));
    assert_eq!(
        auth_param(&auth, "realm").as_deref(),
        Some("sip.twilio.com")
    );
    assert_eq!(auth_param(&auth, "uri").as_deref(), Some(REQUEST_URI));
    assert_eq!(auth_param(&auth, "qop").as_deref(), Some("auth"));
    assert_eq!(auth_param(&auth, "nc").as_deref(), Some("00000001"));
    let cnonce = auth_param(&auth, "cnonce").expect("cnonce");
    let expected = digest_response(
        DigestAlgorithm::Md5,
        &credentials(),
        "sip.twilio.com",
        "INVITE",
        REQUEST_URI,
        "abc123",
        Some(("00000001", &cnonce)),
    );
    assert_eq!(auth_param(&auth, "response"), Some(expected));
    assert!(h.events().is_empty(), "a challenge is not a failure");

    // The first INVITE's transaction is over: no more retransmissions of it, the new one
    // retransmits on its own schedule.
    let later = h.advance_to(Duration::from_millis(600));
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].1.data, second.data);

    h.recv(&response(
        second,
        200,
        "OK",
        Some("gw"),
        GW_CONTACT,
        ANSWER_200,
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(cseq_of(&sent[0]), (cseq_of(second).0, "ACK".to_string()));
    assert_eq!(
        header(&sent[0], "Authorization"),
        auth,
        "the 2xx ACK carries the INVITE's credentials"
    );
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundAnswered { key: k, .. }] if *k == key
    ));
    // A late retransmission of the 401 is ACKed again (same old branch).
    h.recv(&response(&invite, 401, "Unauthorized", Some("px"), "", ""));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].data, ack.data);
}

#[test]
fn a_407_sha256_challenge_gets_proxy_authorization() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.credentials = Some(credentials());
    let (_, invite) = place(&mut h, call);
    h.recv(&response(
        &invite,
        407,
        "Proxy Authentication Required",
        Some("px"),
        "Proxy-Authenticate: Digest realm=\"exotel\", nonce=\"n0nce\", algorithm=SHA-256, opaque=\"op4que\"\r\n",
        "",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2);
    let second = &sent[1];
    assert!(headers(second, "Authorization").is_empty());
    let auth = header(second, "Proxy-Authorization");
    assert_eq!(auth_param(&auth, "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(auth_param(&auth, "opaque").as_deref(), Some("op4que"));
    assert_eq!(auth_param(&auth, "realm").as_deref(), Some("exotel"));
    assert_eq!(
        auth_param(&auth, "qop"),
        None,
        "no qop offered, none answered"
    );
    let expected = digest_response(
        DigestAlgorithm::Sha256,
        &credentials(),
        "exotel",
        "INVITE",
        REQUEST_URI,
        "n0nce",
        None,
    );
    assert_eq!(expected.len(), 64);
    assert_eq!(auth_param(&auth, "response"), Some(expected));
}

#[test]
fn a_second_challenge_or_no_credentials_is_rejected() {
    let challenge = "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n";
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.credentials = Some(credentials());
    let (key, invite) = place(&mut h, call);
    h.recv(&response(
        &invite,
        401,
        "Unauthorized",
        Some("a"),
        challenge,
        "",
    ));
    let second = h.transmits().remove(1);
    h.recv(&response(
        &second,
        401,
        "Unauthorized",
        Some("b"),
        challenge,
        "",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1, "only the ACK, no third INVITE");
    assert!(first_line(&sent[0]).starts_with("ACK "));
    assert_eq!(branch_of(&sent[0]), branch_of(&second));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key,
            status: 401,
            reason_phrase: "Unauthorized".to_string(),
            reason: OutboundFailure::Rejected
        }]
    );

    let mut h = Harness::new();
    let (key, invite) = place(&mut h, outbound_call());
    h.recv(&response(
        &invite,
        407,
        "Proxy Authentication Required",
        Some("a"),
        challenge,
        "",
    ));
    assert_eq!(h.transmits().len(), 1, "ACK only");
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundFailed { key: k, status: 407, reason: OutboundFailure::Rejected, .. }] if *k == key
    ));
}

#[test]
fn ring_timeout_cancels_and_the_487_means_no_answer() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.ring_timeout = Duration::from_secs(20);
    let (key, invite) = place(&mut h, call);
    h.recv(&response(&invite, 180, "Ringing", Some("gw1"), "", ""));
    h.events();
    assert!(h.advance_to(Duration::from_millis(19_999)).is_empty());
    let sent = h.advance_to(Duration::from_secs(20));
    assert_eq!(sent.len(), 1);
    let cancel = &sent[0].1;
    assert_eq!(first_line(cancel), format!("CANCEL {REQUEST_URI} SIP/2.0"));
    assert_eq!(branch_of(cancel), branch_of(&invite));
    assert_eq!(cseq_of(cancel), (cseq_of(&invite).0, "CANCEL".to_string()));
    assert_eq!(header(cancel, "To"), header(&invite, "To"));
    assert_eq!(header(cancel, "From"), header(&invite, "From"));
    assert_eq!(header(cancel, "Call-ID"), header(&invite, "Call-ID"));
    assert!(h.events().is_empty());

    // The CANCEL is retransmitted on UDP until it is answered.
    let sent = h.advance_to(Duration::from_millis(20_500));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.data, cancel.data);
    h.recv(&response(cancel, 200, "OK", Some("gw1"), "", ""));
    assert!(h.advance_to(Duration::from_secs(25)).is_empty());

    h.recv(&response(
        &invite,
        487,
        "Request Terminated",
        Some("gw1"),
        "",
        "",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert!(first_line(&sent[0]).starts_with("ACK "));
    assert_eq!(branch_of(&sent[0]), branch_of(&invite));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key,
            status: 487,
            reason_phrase: "Request Terminated".to_string(),
            reason: OutboundFailure::NoAnswer
        }]
    );
}

#[test]
fn a_200_after_our_cancel_is_acked_and_hung_up() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.ring_timeout = Duration::from_secs(5);
    let (key, invite) = place(&mut h, call);
    h.recv(&response(&invite, 180, "Ringing", Some("gw1"), "", ""));
    h.events();
    let sent = h.advance_to(Duration::from_secs(5));
    assert!(first_line(&sent[0].1).starts_with("CANCEL "));
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        &format!("{GW_CONTACT}{RECORD_ROUTE}"),
        ANSWER_200,
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2, "ACK then BYE: {sent:?}");
    assert!(first_line(&sent[0]).starts_with("ACK sip:+919876543210@198.51.100.50:5080 "));
    assert!(first_line(&sent[1]).starts_with("BYE sip:+919876543210@198.51.100.50:5080 "));
    assert_eq!(
        cseq_of(&sent[1]),
        (cseq_of(&invite).0 + 1, "BYE".to_string())
    );
    assert_eq!(headers(&sent[1], "Route").len(), 2);
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [SipEvent::OutboundFailed { key: k, reason: OutboundFailure::NoAnswer, .. }] if *k == key
        ),
        "{events:?}"
    );
    // The CANCEL is not retransmitted any more; the BYE completes without a CallEnded.
    h.recv(&response(&sent[1], 200, "OK", None, "", ""));
    let later = h.advance_to(Duration::from_secs(60));
    assert!(
        later
            .iter()
            .all(|(_, t)| !first_line(t).starts_with("CANCEL")),
        "{later:?}"
    );
    assert!(h.events().is_empty());
}

#[test]
fn without_a_final_response_after_cancel_we_give_up() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.ring_timeout = Duration::from_secs(10);
    let (key, invite) = place(&mut h, call);
    h.recv(&response(
        &invite,
        183,
        "Session Progress",
        Some("gw1"),
        "",
        "",
    ));
    h.events();
    let sent = h.advance_to(Duration::from_secs(10));
    let cancel = sent[0].1.clone();
    h.recv(&response(&cancel, 200, "OK", Some("gw1"), "", ""));
    assert!(h.advance_to(Duration::from_millis(41_999)).is_empty());
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(42)).is_empty(), "no sends");
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundFailed { key: k, reason: OutboundFailure::NoAnswer, .. }] if *k == key
    ));
    assert!(h.advance_to(Duration::from_secs(200)).is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn hangup_while_ringing_cancels() {
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, outbound_call());
    // Before any provisional response the CANCEL waits (RFC 3261 §9.1).
    h.ep.hangup(h.now, key).unwrap();
    assert!(h.transmits().is_empty());
    h.recv(&response(&invite, 100, "Trying", None, "", ""));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert!(first_line(&sent[0]).starts_with("CANCEL "));
    h.recv(&response(&sent[0], 200, "OK", None, "", ""));
    h.recv(&response(
        &invite,
        487,
        "Request Terminated",
        Some("x"),
        "",
        "",
    ));
    assert!(first_line(&h.transmits()[0]).starts_with("ACK "));
    let events = h.events();
    assert_eq!(
        events.last(),
        Some(&SipEvent::OutboundFailed {
            key,
            status: 487,
            reason_phrase: "Request Terminated".to_string(),
            reason: OutboundFailure::Cancelled
        })
    );
}

#[test]
fn invite_retransmits_on_udp_until_timer_b() {
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, outbound_call());
    let sent = h.advance_to(Duration::from_secs(40));
    let times: Vec<u64> = sent.iter().map(|(at, _)| at.as_millis() as u64).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 15_500, 31_500]);
    assert!(sent.iter().all(|(_, t)| t.data == invite.data));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key,
            status: 408,
            reason_phrase: "Request Timeout".to_string(),
            reason: OutboundFailure::Failed
        }]
    );
    assert!(h.advance_to(Duration::from_secs(100)).is_empty());
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn no_retransmissions_over_tcp() {
    let mut h = Harness::new();
    let mut call = outbound_call();
    call.transport = Transport::Tcp;
    let (key, invite) = place(&mut h, call);
    assert!(header(&invite, "Via").starts_with("SIP/2.0/TCP "));
    assert_eq!(
        header(&invite, "Contact"),
        "<sip:203.0.113.10:5060;transport=tcp>"
    );
    assert_eq!(invite.transport, Transport::Tcp);
    assert!(h.advance_to(Duration::from_millis(31_999)).is_empty());
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(32)).is_empty());
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundFailed { key: k, status: 408, reason: OutboundFailure::Failed, .. }] if *k == key
    ));
}

#[test]
fn garbage_and_mismatched_responses_change_nothing() {
    let mut h = Harness::new();
    let (_, invite) = place(&mut h, outbound_call());
    let ok = String::from_utf8(response(
        &invite,
        200,
        "OK",
        Some("gw"),
        GW_CONTACT,
        ANSWER_200,
    ))
    .unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"SIP/2.0 abc\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_vec(),
        vec![0xff, 0x00, 0x13, 0x37],
        ok.replace(&header(&invite, "Call-ID"), "other-call")
            .into_bytes(),
        ok.replace(&branch_of(&invite), "z9hG4bKunknown")
            .into_bytes(),
        ok.replace(
            &format!("CSeq: {}", cseq_of(&invite).0),
            &format!("CSeq: {}", cseq_of(&invite).0 + 7),
        )
        .into_bytes(),
        ok.replace("INVITE", "BYE").into_bytes(),
        ok.replace("Content-Length: ", "Content-Length: 99999")
            .into_bytes(),
        ok.as_bytes()[..ok.find("Content-Type").unwrap()].to_vec(),
        ok.as_bytes()[..ok.find("Content-Length").unwrap() + 5].to_vec(),
        ok.as_bytes()[..ok.len() - 10].to_vec(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        h.recv(input);
        assert!(h.transmits().is_empty(), "nothing answers garbage #{i}");
    }
    assert!(h.events().is_empty());
    // Broken SDP in a 183 is ignored; a 200 with unusable SDP is hung up, not panicked on.
    h.recv(&response(
        &invite,
        183,
        "Session Progress",
        Some("gw"),
        "",
        "v=garbage\r\n",
    ));
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundProgress {
            status: 183,
            media: None,
            ..
        }]
    ));
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw"),
        GW_CONTACT,
        "m=nonsense\r\n",
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2, "ACK and BYE");
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundFailed {
            reason: OutboundFailure::Failed,
            ..
        }]
    ));
    // The real thing still parses afterwards (the endpoint is intact).
    let (_, second) = place(&mut h, outbound_call());
    h.recv(&response(
        &second,
        200,
        "OK",
        Some("gw"),
        GW_CONTACT,
        ANSWER_200,
    ));
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundAnswered { .. }]
    ));
}

#[test]
fn offer_takes_an_answer_with_another_telephone_event_type() {
    let mut session = offer();
    let answer = ANSWER_200
        .replace("8 96", "0 110")
        .replace("rtpmap:8 PCMA", "rtpmap:0 PCMU")
        .replace("rtpmap:96", "rtpmap:110");
    let media = session.accept_answer(&answer).unwrap().clone();
    assert_eq!(media.codec, AudioCodec::Pcmu);
    assert_eq!(media.dtmf_payload_type, Some(110));
    assert_eq!(
        media.remote_rtp,
        Some("168.86.128.20:5000".parse().unwrap())
    );
    // A later re-offer of ours keeps the agreed codec and their event type.
    let reoffer = session.offer().to_string();
    assert!(
        reoffer.contains("m=audio 30000 RTP/AVP 0 110\r\n"),
        "{reoffer}"
    );
    assert!(
        reoffer.contains("o=vaani 7 8 IN IP4"),
        "version rises: {reoffer}"
    );
}

/// A trunk's answer on `profile` with an `a=crypto` line (tag, suite) or none.
fn answer_with_crypto(profile: &str, crypto: Option<(u32, &str)>) -> String {
    let crypto = crypto
        .map(|(tag, suite)| {
            format!("a=crypto:{tag} {suite} inline:NgAkdAl4/i3qE5KcjXwhjLSDwDrgpJjcMVg2ydBp\r\n")
        })
        .unwrap_or_default();
    format!(
        "v=0\r\no=gw 1 2 IN IP4 168.86.128.20\r\ns=-\r\nc=IN IP4 168.86.128.20\r\nt=0 0\r\n\
         m=audio 5000 {profile} 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n{crypto}"
    )
}

fn srtp_call(mode: vaani_sip::SrtpMode) -> OutboundCall {
    OutboundCall {
        sdp: SdpSession::offer_initial_with_srtp(
            &[AudioCodec::Pcmu],
            "203.0.113.10".parse().unwrap(),
            30000,
            7,
            mode,
        ),
        ..outbound_call()
    }
}

#[test]
fn a_required_srtp_call_is_answered_with_the_chosen_key_or_hung_up_without_one() {
    use vaani_sip::{CryptoAttribute, SrtpMode, SrtpSuite};
    // The peer picks our second line (AES_CM_128_HMAC_SHA1_32).
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, srtp_call(SrtpMode::Required));
    let offer = body(&invite);
    assert!(
        offer.contains("m=audio 30000 RTP/SAVP 0 101\r\n"),
        "{offer}"
    );
    let ours: Vec<CryptoAttribute> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|l| CryptoAttribute::parse(l).unwrap())
        .collect();
    assert_eq!(ours.len(), 2);
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        GW_CONTACT,
        &answer_with_crypto("RTP/SAVP", Some((2, "AES_CM_128_HMAC_SHA1_32"))),
    ));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert!(first_line(&sent[0]).starts_with("ACK "));
    let Some(SipEvent::OutboundAnswered {
        key: answered,
        media,
    }) = h.events().pop()
    else {
        panic!("not answered");
    };
    assert_eq!(answered, key);
    let keys = media.srtp.expect("SRTP keys for the media session");
    assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(keys.local, ours[1]);
    assert_eq!(keys.remote.tag, 2);

    // An answer without a key (plain RTP/AVP) is ACKed, then hung up: the call fails.
    let mut h = Harness::new();
    let (key, invite) = place(&mut h, srtp_call(SrtpMode::Required));
    h.recv(&response(
        &invite,
        200,
        "OK",
        Some("gw1"),
        GW_CONTACT,
        &answer_with_crypto("RTP/AVP", None),
    ));
    let sent = h.transmits();
    let methods: Vec<String> = sent.iter().map(|t| cseq_of(t).1).collect();
    assert_eq!(methods, ["ACK", "BYE"], "{sent:?}");
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key,
            status: 488,
            reason_phrase: "No usable SDP answer".to_string(),
            reason: OutboundFailure::Failed,
        }]
    );
    // The BYE completes quietly: no CallEnded after the failure.
    h.recv(&response(&sent[1], 200, "OK", None, "", ""));
    assert!(h.events().is_empty());
}

#[test]
fn an_optional_srtp_call_takes_a_plain_or_a_keyed_answer() {
    use vaani_sip::SrtpMode;
    for (answer, secure) in [
        (answer_with_crypto("RTP/AVP", None), false),
        (
            answer_with_crypto("RTP/AVP", Some((1, "AES_CM_128_HMAC_SHA1_80"))),
            true,
        ),
    ] {
        let mut h = Harness::new();
        let (_, invite) = place(&mut h, srtp_call(SrtpMode::Optional));
        let offer = body(&invite);
        assert!(offer.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{offer}");
        assert_eq!(offer.matches("a=crypto:").count(), 2, "{offer}");
        h.recv(&response(
            &invite,
            200,
            "OK",
            Some("gw1"),
            GW_CONTACT,
            &answer,
        ));
        assert_eq!(h.transmits().len(), 1, "only the ACK");
        let Some(SipEvent::OutboundAnswered { media, .. }) = h.events().pop() else {
            panic!("not answered");
        };
        assert_eq!(media.srtp.is_some(), secure, "{answer}");
    }
}

#[test]
fn a_connection_that_cannot_be_opened_fails_only_the_calls_waiting_on_it() {
    let mut h = Harness::new();
    let over_tcp = |destination: &str| OutboundCall {
        transport: Transport::Tcp,
        destination: destination.parse().unwrap(),
        ..outbound_call()
    };
    let (waiting, _) = {
        let key = h.ep.place_call(h.now, over_tcp(TRUNK)).unwrap();
        (key, h.transmits())
    };
    let elsewhere = h.ep.place_call(h.now, over_tcp("192.0.2.99:5060")).unwrap();
    h.transmits();
    // A call on UDP to the same address is no TCP call.
    let udp = h.ep.place_call(h.now, outbound_call()).unwrap();
    h.transmits();

    h.ep.connection_failed(h.now, Transport::Tcp, trunk(), "TCP connection refused");
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            key: waiting,
            status: 503,
            reason_phrase: "TCP connection refused".to_string(),
            reason: OutboundFailure::Failed,
        }]
    );
    assert!(h.transmits().is_empty(), "nothing to ACK or cancel");
    // The others still run: the UDP INVITE is retransmitted, nothing failed.
    let sent = h.advance_to(Duration::from_secs(1));
    assert!(sent.iter().all(|(_, t)| t.transport == Transport::Udp));
    assert!(!sent.is_empty());
    assert!(h.events().is_empty(), "{elsewhere:?} and {udp:?} go on");
    // Reported once: the failed call is gone.
    h.ep.connection_failed(h.now, Transport::Tcp, trunk(), "again");
    assert!(h.events().is_empty());
}
