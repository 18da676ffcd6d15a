//! Any bytes a peer can send, on every transport, into an endpoint that already holds a call:
//! the endpoint must never panic, and the timers must keep working afterwards.

#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vaani_sip::{EndpointConfig, SipEndpoint, Transport};

const INVITE: &[u8] = b"INVITE sip:+918000000001@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKfuzz\r\n\
From: <sip:+919800000001@127.0.0.1>;tag=f1\r\n\
To: <sip:+918000000001@127.0.0.1>\r\n\
Call-ID: fuzz-call\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5070>\r\n\
Content-Length: 0\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut endpoint = SipEndpoint::new(EndpointConfig::default());
    let peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    endpoint.handle_datagram(start, Transport::Udp, peer, None, INVITE);
    // The first byte picks the transport; the rest is the message, whole and split in two.
    let (selector, message) = data.split_first().unwrap_or((&0, &[]));
    let transport = match selector % 3 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        _ => Transport::Tls,
    };
    endpoint.handle_datagram(start, transport, peer, None, message);
    let half = message.len() / 2;
    endpoint.handle_datagram(start, transport, peer, None, &message[..half]);
    while endpoint.poll_transmit().is_some() {}
    while endpoint.poll_event().is_some() {}
    endpoint.handle_timeout(start + Duration::from_secs(40));
    let _ = endpoint.poll_timeout();
});
