//! Helpers shared by the integration tests: message builders and inspection of what the
//! endpoint transmitted.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vaani_sip::{
    AudioCodec, CallKey, EndpointConfig, SdpSession, SipEndpoint, SipEvent, Transmit, Transport,
};

pub const TRUNK: &str = "198.51.100.7:5060";
pub const OFFER: &str = "v=0\r\n\
o=root 81565042 81565042 IN IP4 168.86.128.10\r\n\
s=Twilio Media Gateway\r\n\
c=IN IP4 168.86.128.10\r\n\
t=0 0\r\n\
m=audio 40150 RTP/AVP 0 8 101\r\n\
a=maxptime:20\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=sendrecv\r\n\
a=rtcp:40151\r\n\
a=ptime:20\r\n";

/// Our answer to [`OFFER`] for RTP at `ip`:30000.
pub fn session_at(ip: &str) -> SdpSession {
    SdpSession::answer_initial(OFFER, &[AudioCodec::Pcmu], ip.parse().unwrap(), 30000, 1).unwrap()
}

/// Our answer to [`OFFER`] at the test's public address.
pub fn session() -> SdpSession {
    session_at("203.0.113.10")
}

pub fn trunk() -> SocketAddr {
    TRUNK.parse().unwrap()
}

pub fn config() -> EndpointConfig {
    EndpointConfig {
        contact_host: "203.0.113.10".to_string(),
        contact_port: 5060,
        contact_port_tls: 5061,
        user_agent: "vaani-test".to_string(),
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
        session_expires: Duration::from_secs(1800),
        min_se: Duration::from_secs(90),
    }
}

/// Parameters of a test INVITE.
pub struct Invite<'a> {
    pub branch: &'a str,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    pub cseq: u32,
    pub via_host: &'a str,
    pub via_params: &'a str,
    pub transport: &'a str,
    pub extra_headers: &'a str,
    pub body: &'a str,
}

impl Default for Invite<'_> {
    fn default() -> Self {
        Self {
            branch: "z9hG4bKinv1",
            call_id: "252a93d3-bdb2-1238-6185-06d91d68c9b0",
            from_tag: "vQXQ3g5papXpF",
            cseq: 15623387,
            via_host: TRUNK,
            via_params: ";rport",
            transport: "UDP",
            extra_headers: "",
            body: OFFER,
        }
    }
}

impl Invite<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let content_type = if self.body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "INVITE sip:+15083728299@203.0.113.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {via_host}{via_params};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice Caller\" <sip:+15083084809@198.51.100.7:5060>;tag={from_tag}\r\n\
             To: <sip:+15083728299@203.0.113.10>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:+15083084809@198.51.100.7:5060>\r\n\
             User-Agent: Twilio Gateway\r\n\
             X-Twilio-CallSid: CA708d85d118aacfcc794b730fa02bc40c\r\n\
             {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
            transport = self.transport,
            via_host = self.via_host,
            via_params = self.via_params,
            branch = self.branch,
            from_tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra_headers,
            len = self.body.len(),
            body = self.body,
        )
        .into_bytes()
    }
}

/// An in-dialog or transaction-level request from the trunk (ACK, BYE, CANCEL, re-INVITE…).
pub struct Req<'a> {
    pub method: &'a str,
    pub branch: &'a str,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    pub to_tag: Option<&'a str>,
    pub cseq: u32,
    pub extra_headers: &'a str,
    pub body: &'a str,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, branch: &'a str, cseq: u32, to_tag: Option<&'a str>) -> Self {
        Self {
            method,
            branch,
            call_id: "252a93d3-bdb2-1238-6185-06d91d68c9b0",
            from_tag: "vQXQ3g5papXpF",
            to_tag,
            cseq,
            extra_headers: "",
            body: "",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let to_tag = self.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let content_type = if self.body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:+15083728299@203.0.113.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {TRUNK};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice Caller\" <sip:+15083084809@198.51.100.7:5060>;tag={from_tag}\r\n\
             To: <sip:+15083728299@203.0.113.10>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {cseq_method}\r\n\
             Contact: <sip:+15083084809@198.51.100.7:5060>\r\n\
             {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
            extra = self.extra_headers,
            method = self.method,
            branch = self.branch,
            from_tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            cseq_method = self.method,
            len = self.body.len(),
            body = self.body,
        )
        .into_bytes()
    }
}

pub fn text(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.data).into_owned()
}

/// Status code of a response, `None` for requests.
pub fn status(t: &Transmit) -> Option<u16> {
    let text = text(t);
    let line = text.lines().next()?;
    line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

pub fn first_line(t: &Transmit) -> String {
    text(t).lines().next().unwrap_or("").to_string()
}

/// All values of a header (case-insensitive name), in order.
pub fn headers(t: &Transmit, name: &str) -> Vec<String> {
    let text = text(t);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

pub fn header(t: &Transmit, name: &str) -> String {
    headers(t, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {name} header in:\n{}", text(t)))
}

pub fn body(t: &Transmit) -> String {
    text(t)
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The `tag` parameter of a To/From value.
pub fn tag_of(value: &str) -> Option<String> {
    let params = value.rsplit_once('>').map(|(_, p)| p).unwrap_or(value);
    params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag=").map(str::to_string))
}

/// Every message must also parse with rsip (i.e. we emit valid SIP).
pub fn assert_valid_sip(t: &Transmit) {
    rsip::SipMessage::try_from(t.data.as_slice())
        .unwrap_or_else(|e| panic!("invalid SIP emitted ({e}):\n{}", text(t)));
}

/// An endpoint driven by a simulated clock.
pub struct Harness {
    pub ep: SipEndpoint,
    pub start: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: EndpointConfig) -> Self {
        let start = Instant::now();
        Self {
            ep: SipEndpoint::new(config),
            start,
            now: start,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn recv(&mut self, data: &[u8]) {
        self.ep
            .handle_datagram(self.now, Transport::Udp, trunk(), None, data);
    }

    pub fn recv_from(&mut self, source: SocketAddr, data: &[u8]) {
        self.ep
            .handle_datagram(self.now, Transport::Udp, source, None, data);
    }

    pub fn transmits(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            assert_valid_sip(&t);
            out.push(t);
        }
        out
    }

    pub fn events(&mut self) -> Vec<SipEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.ep.poll_event() {
            out.push(e);
        }
        out
    }

    /// Run timers up to `start + at`, returning every transmit with the time it went out.
    pub fn advance_to(&mut self, at: Duration) -> Vec<(Duration, Transmit)> {
        let target = self.start + at;
        let mut out = Vec::new();
        while let Some(deadline) = self.ep.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = deadline.max(self.now);
            self.ep.handle_timeout(self.now);
            let elapsed = self.elapsed();
            for t in self.transmits() {
                out.push((elapsed, t));
            }
        }
        self.now = target;
        out
    }

    /// Deliver the default INVITE; returns the call key and checks the 100 Trying.
    pub fn incoming(&mut self) -> CallKey {
        self.recv(&Invite::default().to_bytes());
        let sent = self.transmits();
        assert_eq!(sent.len(), 1);
        assert_eq!(status(&sent[0]), Some(100));
        match self.events().as_slice() {
            [SipEvent::IncomingCall(call)] => call.key,
            other => panic!("expected one IncomingCall, got {other:?}"),
        }
    }

    /// INVITE + accept; returns the key and our To-tag.
    pub fn accepted(&mut self) -> (CallKey, String) {
        let key = self.incoming();
        self.ep.accept(self.now, key, session()).unwrap();
        let sent = self.transmits();
        assert_eq!(status(&sent[0]), Some(200));
        (key, tag_of(&header(&sent[0], "To")).unwrap())
    }

    pub fn confirmed(&mut self) -> (CallKey, String) {
        let (key, tag) = self.accepted();
        self.recv(&Req::new("ACK", "z9hG4bKack1", 15623387, Some(&tag)).to_bytes());
        assert_eq!(self.events(), vec![SipEvent::CallConfirmed { key }]);
        assert!(self.transmits().is_empty());
        (key, tag)
    }
}
