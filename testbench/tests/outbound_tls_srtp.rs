//! Calls vaani places (`POST /api/v1/calls`) through a trunk reached over TLS with SRTP
//! required, end to end against the real binary: a small Rust callee (sipp 3.6.1 has no TLS)
//! behind a self-signed certificate that the trunk's `tls_ca` trusts. vaani offers RTP/SAVP
//! with two SDES keys; the callee picks the 32-bit-tag suite, and both sides decrypt each
//! other's audio. A second call on the same trunk reuses the TLS connection; the callee
//! answers it without a key, and vaani hangs that call up as failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vaani_media::{SrtpKeys, SrtpSession, SrtpSuite};
use vaani_sip::CryptoAttribute;
use vaani_testbench::{RtpSink, ScratchDir, ServerSpec, VaaniServer, free_port};

const WAIT: Duration = Duration::from_secs(15);

/// Reads whole SIP messages off a stream (framing by Content-Length).
#[derive(Default)]
struct SipReader {
    buf: Vec<u8>,
}

impl SipReader {
    async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> String {
        loop {
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .map(|v| v.trim().parse().expect("Content-Length"))
                    .unwrap_or(0);
                let total = end + 4 + len;
                if self.buf.len() >= total {
                    let message: Vec<u8> = self.buf.drain(..total).collect();
                    return String::from_utf8(message).expect("UTF-8 SIP");
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("SIP from vaani in time")
                .expect("read");
            assert!(n > 0, "vaani closed the TLS connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, data: &str) {
    stream.write_all(data.as_bytes()).await.expect("write");
    stream.flush().await.expect("flush");
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v)
        })
        .unwrap_or_else(|| panic!("{name} header in {message}"))
        .trim()
}

/// A response to `request` with our To-tag and `extra` header lines.
fn reply(request: &str, status: &str, extra: &str, body: &str) -> String {
    let to = header(request, "To");
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag=callee")
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         {extra}{content_type}Content-Length: {}\r\n\r\n{body}",
        header(request, "Via"),
        header(request, "From"),
        header(request, "Call-ID"),
        header(request, "CSeq"),
        body.len()
    )
}

fn sdp_rtp(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m=audio line");
    format!("{ip}:{port}").parse().expect("RTP address")
}

/// The callee's answer: PCMU at 127.0.0.1:`rtp_port` on `profile`, with `crypto` if any.
fn answer(rtp_port: u16, profile: &str, crypto: Option<&CryptoAttribute>) -> String {
    let crypto = crypto
        .map(|c| format!("a=crypto:{c}\r\n"))
        .unwrap_or_default();
    format!(
        "v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} {profile} 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n{crypto}"
    )
}

fn silence_packet(sequence: u16, timestamp: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&0x0ca1_1ee5_u32.to_be_bytes());
    packet.extend_from_slice(&[0xFF; 160]); // PCMU silence, 20 ms
    packet
}

fn wait_status(server: &VaaniServer, id: &str, wanted: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = server.api_json(&format!("/api/v1/calls/{id}"));
        if detail["status"] == wanted {
            return detail;
        }
        assert!(Instant::now() < deadline, "call not {wanted}: {detail:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn placed_calls_over_tls_with_required_srtp_reuse_the_connection() {
    let certs = ScratchDir::new("outbound-tls");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("certificate generated");
    let ca_path = certs.path().join("trunk-ca.pem");
    std::fs::write(&ca_path, certified.cert.pem()).expect("write CA file");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server_config = vaani_sip::tls::server_config(vec![certified.cert.der().clone()], key)
        .expect("callee TLS config");

    let callee_port = free_port();
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = format!(
        "srtp = \"required\"\n[trunks.outbound]\nuri = \"sip:127.0.0.1:{callee_port};transport=tls\"\n\
         caller_id = \"+918000000099\"\ntls_ca = \"{}\"\n",
        ca_path.display()
    );
    let server = VaaniServer::start(&spec);
    let rtp = RtpSink::start();

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let listener = runtime
        .block_on(TcpListener::bind(("127.0.0.1", callee_port)))
        .expect("callee listens");
    let acceptor = TlsAcceptor::from(Arc::clone(&server_config));

    let (status, body) = server.api_post(
        "/api/v1/calls",
        &json!({ "tenant": "echo", "to": "+919876543210" }),
    );
    assert_eq!(status, 202, "{body:#}");
    let first_id = body["id"].as_str().expect("call id").to_string();

    let (decrypted, undecryptable, mut stream, mut reader) = runtime.block_on(async {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("vaani connects in time")
            .expect("accept");
        let mut stream = tokio::time::timeout(WAIT, acceptor.accept(tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        assert_eq!(
            stream.get_ref().1.server_name(),
            None,
            "an IP address is verified but sent as no SNI"
        );
        let mut reader = SipReader::default();
        let invite = reader.next(&mut stream).await;
        assert!(invite.starts_with("INVITE sip:+919876543210@127.0.0.1:"), "{invite}");
        assert!(header(&invite, "Via").starts_with("SIP/2.0/TLS "), "{invite}");
        let offer = invite.split("\r\n\r\n").nth(1).expect("SDP offer");
        assert!(offer.contains(" RTP/SAVP "), "{offer}");
        let offered: Vec<CryptoAttribute> = offer
            .lines()
            .filter_map(|l| l.strip_prefix("a=crypto:"))
            .map(|l| CryptoAttribute::parse(l).expect("vaani's a=crypto parses"))
            .collect();
        assert_eq!(offered.len(), 2, "{offer}");
        let vaani_key = offered
            .iter()
            .find(|c| c.suite == vaani_sip::SrtpSuite::AesCm128HmacSha1_32)
            .expect("an AES_CM_128_HMAC_SHA1_32 line")
            .clone();
        let ours = CryptoAttribute::generate(vaani_key.tag, vaani_key.suite);
        let vaani_rtp = sdp_rtp(offer);

        send(&mut stream, &reply(&invite, "100 Trying", "", "")).await;
        let contact = format!("Contact: <sip:callee@127.0.0.1:{callee_port};transport=tls>\r\n");
        send(
            &mut stream,
            &reply(&invite, "200 OK", &contact, &answer(rtp.port, "RTP/SAVP", Some(&ours))),
        )
        .await;
        let ack = reader.next(&mut stream).await;
        assert!(ack.starts_with("ACK sip:callee@127.0.0.1:"), "{ack}");

        // We encrypt with our key; vaani with the key of the line we picked.
        let keys = SrtpKeys {
            suite: SrtpSuite::AesCm128HmacSha1_32,
            local: ours.key_salt(),
            remote: vaani_key.key_salt(),
        };
        let mut srtp = SrtpSession::new(&keys);
        let started = Instant::now();
        let (mut sequence, mut timestamp) = (1u16, 0u32);
        while started.elapsed() < Duration::from_secs(10) {
            let packet = srtp
                .protect(&silence_packet(sequence, timestamp))
                .expect("protect");
            rtp.send_to(vaani_rtp, &packet);
            sequence = sequence.wrapping_add(1);
            timestamp = timestamp.wrapping_add(160);
            if rtp.packets().iter().filter(|p| p.source == vaani_rtp).count() >= 60 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (mut decrypted, mut undecryptable) = (0, 0);
        for packet in rtp.packets().iter().filter(|p| p.source == vaani_rtp) {
            // 12-byte header, 160 bytes of G.711, a 4-byte tag (the 32-bit suite).
            assert_eq!(packet.raw.len(), 12 + 160 + 4, "SRTP with a 32-bit tag");
            match srtp.unprotect(&packet.raw) {
                Ok(plain) if plain.len() == 172 && plain[1] & 0x7f == 0 => decrypted += 1,
                _ => undecryptable += 1,
            }
        }

        // The callee hangs up, over the connection vaani opened.
        let bye = format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{callee_port};branch=z9hG4bK-callee-bye\r\n\
             Max-Forwards: 70\r\nFrom: {from};tag=callee\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            target = header(&invite, "Contact").trim_matches(|c| c == '<' || c == '>'),
            from = header(&invite, "To"),
            to = header(&invite, "From"),
            call_id = header(&invite, "Call-ID"),
        );
        send(&mut stream, &bye).await;
        let ok = reader.next(&mut stream).await;
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        (decrypted, undecryptable, stream, reader)
    });
    assert!(
        decrypted >= 50,
        "only {decrypted} of vaani's packets decrypted"
    );
    assert_eq!(
        undecryptable, 0,
        "vaani sent packets our key could not open"
    );
    let detail = wait_status(&server, &first_id, "completed");
    assert_eq!(detail["direction"], "outbound", "{detail:#}");
    let stats = &detail["media_stats"];
    assert!(stats["packets_received"].as_u64() > Some(40), "{stats:#}");
    assert_eq!(stats["srtp_failures"], 0, "{stats:#}");

    // Second call: same trunk, same connection; a plain answer is refused by hanging up.
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &json!({ "tenant": "echo", "to": "+919876543211" }),
    );
    assert_eq!(status, 202, "{body:#}");
    let second_id = body["id"].as_str().expect("call id").to_string();
    runtime.block_on(async {
        let invite = reader.next(&mut stream).await;
        assert!(invite.starts_with("INVITE sip:+919876543211@"), "{invite}");
        let contact = format!("Contact: <sip:callee@127.0.0.1:{callee_port};transport=tls>\r\n");
        send(
            &mut stream,
            &reply(
                &invite,
                "200 OK",
                &contact,
                &answer(rtp.port, "RTP/AVP", None),
            ),
        )
        .await;
        let ack = reader.next(&mut stream).await;
        assert!(ack.starts_with("ACK "), "{ack}");
        let bye = reader.next(&mut stream).await;
        assert!(
            bye.starts_with("BYE "),
            "vaani hangs up a call without SRTP: {bye}"
        );
        send(&mut stream, &reply(&bye, "200 OK", "", "")).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(500), listener.accept())
                .await
                .is_err(),
            "both calls rode one TLS connection"
        );
    });
    let detail = wait_status(&server, &second_id, "failed");
    assert_eq!(detail["direction"], "outbound", "{detail:#}");
}
