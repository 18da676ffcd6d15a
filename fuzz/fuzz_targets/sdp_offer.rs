//! Any SDP a peer can offer, first and as a re-offer or an answer to ours: parsing must never
//! panic, and a refused re-offer must leave the session as it was.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vaani_sip::{AudioCodec, SdpSession};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let preference = [AudioCodec::Pcmu, AudioCodec::Pcma];
    let local = "203.0.113.10".parse().unwrap();
    let _ = SdpSession::answer_initial(text, &preference, local, 30000, 1);
    let mut session = SdpSession::answer_initial(OFFER, &preference, local, 30000, 1).unwrap();
    let before = session.clone();
    if session.answer(text).is_err() {
        assert_eq!(session, before, "a refused re-offer changed the session");
    }
    let _ = session.offer();
    let _ = session.accept_answer(text);
});
