//! SIP over TLS end to end (RFC 3261 §26; Exotel vSIP and Twilio Secure Trunking use it):
//! a small Rust caller, since sipp 3.6.1 has no TLS, calls the real `vaani` binary over TLS
//! with a self-signed certificate made at test time.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vaani_testbench::{RtpSink, ScratchDir, ServerSpec, VaaniServer, free_port, vaani_binary};

const WAIT: Duration = Duration::from_secs(10);
const ECHO_LINE: &str = "+918000000099";

/// Writes a self-signed certificate for `localhost`/127.0.0.1 and its key into `dir`; returns
/// the certificate (for the caller to trust) and the two paths.
fn write_certificate(
    dir: &ScratchDir,
) -> (
    CertificateDer<'static>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate generated");
    let cert_path = dir.path().join("sip-cert.pem");
    let key_path = dir.path().join("sip-key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write certificate");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
    (certified.cert.der().clone(), cert_path, key_path)
}

fn connector(cert: CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root added");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The caller's offer: PCMU and telephone-event, RTP at 127.0.0.1:`rtp_port`.
fn offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\n\
         o=caller 1 1 IN IP4 127.0.0.1\r\n\
         s=tls caller\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    )
}

/// One request from the caller; `extra` are further header lines (each ending in CRLF).
fn request(
    method: &str,
    cseq: u32,
    local: SocketAddr,
    server: SocketAddr,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:{ECHO_LINE}@{server};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-{method}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"TLS caller\" <sip:+919812345678@{local}>;tag=tls-caller\r\n\
         To: <sip:{ECHO_LINE}@{server}>{to_tag}\r\n\
         Call-ID: tls-e2e-call\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

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
                .expect("SIP from vaani within 10 s")
                .expect("read");
            assert!(n > 0, "vaani closed the TLS connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next final response whose CSeq is `cseq_method` (provisionals are skipped).
    async fn final_response<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        cseq_method: &str,
    ) -> String {
        loop {
            let message = self.next(stream).await;
            assert!(
                message.starts_with("SIP/2.0 "),
                "unexpected request: {message}"
            );
            if message.starts_with("SIP/2.0 1") || !message.contains(cseq_method) {
                continue;
            }
            return message;
        }
    }
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{name} header in {message}"))
        .trim()
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) {
    stream.write_all(data).await.expect("write");
    stream.flush().await.expect("flush");
}

/// vaani's RTP address from the SDP answer.
fn answer_rtp(answer: &str) -> SocketAddr {
    let ip = answer
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m=audio line");
    format!("{ip}:{port}").parse().expect("RTP address")
}

fn silence_packet(sequence: u16, timestamp: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&0x7715_u32.to_be_bytes());
    packet.extend_from_slice(&[0xFF; 160]); // PCMU silence, 20 ms
    packet
}

#[test]
fn call_over_tls_is_answered_streams_rtp_and_ends_with_caller_bye() {
    let certs = ScratchDir::new("tls-cert");
    let (cert, cert_path, key_path) = write_certificate(&certs);
    let tls_port = free_port();
    let mut spec = ServerSpec::demo();
    spec.sip_toml = format!(
        "listen_tls = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    );
    let server = VaaniServer::start(&spec);
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let rtp = RtpSink::start();

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let heard = runtime.block_on(async {
        let tcp = TcpStream::connect(tls_addr).await.expect("connect to TLS");
        let local = tcp.local_addr().expect("local address");
        let name = ServerName::try_from("localhost").expect("server name");
        let mut stream = tokio::time::timeout(WAIT, connector(cert).connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake with vaani's certificate");
        let mut reader = SipReader::default();

        let sdp = offer(rtp.port);
        let invite = request(
            "INVITE",
            1,
            local,
            tls_addr,
            None,
            &format!(
                "Contact: <sip:caller@{local};transport=tls>\r\nContent-Type: application/sdp\r\n"
            ),
            &sdp,
        );
        send(&mut stream, &invite).await;
        let ok = reader.final_response(&mut stream, "1 INVITE").await;
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        assert!(
            header(&ok, "Via").starts_with(&format!("SIP/2.0/TLS {local};")),
            "{ok}"
        );
        assert_eq!(
            header(&ok, "Contact"),
            format!("<sip:127.0.0.1:{tls_port};transport=tls>"),
            "{ok}"
        );
        let to_tag = header(&ok, "To")
            .split(";tag=")
            .nth(1)
            .expect("To tag")
            .trim()
            .to_string();
        let vaani_rtp = answer_rtp(&ok);

        send(
            &mut stream,
            &request("ACK", 1, local, tls_addr, Some(&to_tag), "", ""),
        )
        .await;

        // Talk silence for a while; vaani greets, so its RTP reaches our socket.
        let started = Instant::now();
        let mut sequence = 1u16;
        let mut timestamp = 0u32;
        while started.elapsed() < Duration::from_secs(10) {
            rtp.send_to(vaani_rtp, &silence_packet(sequence, timestamp));
            sequence = sequence.wrapping_add(1);
            timestamp = timestamp.wrapping_add(160);
            if rtp
                .packets()
                .iter()
                .filter(|p| p.source == vaani_rtp)
                .count()
                >= 50
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let heard = rtp
            .packets()
            .iter()
            .filter(|p| p.source == vaani_rtp && p.payload_type == 0)
            .count();

        send(
            &mut stream,
            &request("BYE", 2, local, tls_addr, Some(&to_tag), "", ""),
        )
        .await;
        let bye_ok = reader.final_response(&mut stream, "2 BYE").await;
        assert!(bye_ok.starts_with("SIP/2.0 200 OK\r\n"), "{bye_ok}");
        heard
    });
    assert!(
        heard >= 50,
        "only {heard} PCMU packets from vaani's RTP port"
    );

    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == ECHO_LINE && c["status"] == "completed")
    });
    let call = calls
        .iter()
        .find(|c| c["dialled"] == ECHO_LINE)
        .expect("the TLS call is listed");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
    let listed = server.api_json("/api/v1/calls");
    assert!(
        listed["calls"]
            .as_array()
            .is_some_and(|calls| calls.iter().any(|c| c["id"] == call["id"])),
        "{listed:#}"
    );
}

#[test]
fn unusable_tls_certificate_stops_start_up_naming_the_file() {
    let dir = ScratchDir::new("tls-bad-cert");
    let cert_path = dir.path().join("broken-cert.pem");
    let key_path = dir.path().join("broken-key.pem");
    std::fs::write(&cert_path, "this is not a certificate\n").expect("write");
    std::fs::write(&key_path, "nor is this a key\n").expect("write");
    let config_path = dir.path().join("vaani.toml");
    let config = format!(
        r#"
[sip]
listen_udp = "127.0.0.1:{sip}"
listen_tcp = ""
listen_tls = "127.0.0.1:{tls}"
tls_cert = "{cert}"
tls_key = "{key}"

[media]
bind_ip = "127.0.0.1"
rtp_ports = "{rtp}-{rtp_end}"

[http]
listen = "127.0.0.1:{http}"
operator_key = "k"

[store]
url = "sqlite://{db}"
"#,
        sip = free_port(),
        tls = free_port(),
        http = free_port(),
        rtp = 40000,
        rtp_end = 40099,
        cert = cert_path.display(),
        key = key_path.display(),
        db = dir.path().join("vaani.db").display(),
    );
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Command::new(vaani_binary())
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start vaani");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vaani kept running with an unusable TLS certificate");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "start-up must fail");
    assert!(
        stderr.contains("broken-cert.pem"),
        "the error names the certificate file:\n{stderr}"
    );
}

/// The caller's SRTP offer: RTP/SAVP with an SDES key (as Twilio Secure Trunking sends).
fn secure_offer(rtp_port: u16, crypto: &vaani_sip::CryptoAttribute) -> String {
    offer(rtp_port).replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv\r\n",
        &format!("a=sendrecv\r\na=crypto:{crypto}\r\n"),
    )
}

/// TLS signalling with SRTP media on a trunk where SRTP is required: vaani answers RTP/SAVP
/// with its own key, the caller decrypts vaani's audio with it, and vaani decrypts the
/// caller's (no SRTP failures on its side). A plain offer to the same trunk gets 488.
#[test]
fn tls_call_with_srtp_both_ways_and_a_plain_offer_refused() {
    use vaani_media::{SrtpKeys, SrtpSession, SrtpSuite};
    use vaani_sip::CryptoAttribute;

    let certs = ScratchDir::new("tls-cert");
    let (cert, cert_path, key_path) = write_certificate(&certs);
    let tls_port = free_port();
    let mut spec = ServerSpec::demo();
    spec.sip_toml = format!(
        "listen_tls = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    );
    spec.trunk_toml = "srtp = \"required\"".to_string();
    let server = VaaniServer::start(&spec);
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let rtp = RtpSink::start();
    let ours = CryptoAttribute::generate(1, vaani_sip::SrtpSuite::AesCm128HmacSha1_80);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (decrypted, undecryptable) = runtime.block_on(async {
        let tcp = TcpStream::connect(tls_addr).await.expect("connect to TLS");
        let local = tcp.local_addr().expect("local address");
        let name = ServerName::try_from("localhost").expect("server name");
        let mut stream = tokio::time::timeout(WAIT, connector(cert).connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake");
        let mut reader = SipReader::default();
        let contact = format!(
            "Contact: <sip:caller@{local};transport=tls>\r\nContent-Type: application/sdp\r\n"
        );

        // A plain offer on an SRTP-only trunk: 488, and nothing else happens.
        let plain = request(
            "INVITE",
            1,
            local,
            tls_addr,
            None,
            &contact,
            &offer(rtp.port),
        );
        let plain = String::from_utf8(plain)
            .unwrap()
            .replace("Call-ID: tls-e2e-call", "Call-ID: tls-plain-call")
            .replace("tag=tls-caller", "tag=tls-plain")
            .replace("branch=z9hG4bK-tls-INVITE-1", "branch=z9hG4bK-tls-plain-1");
        send(&mut stream, plain.as_bytes()).await;
        let refused = reader.final_response(&mut stream, "1 INVITE").await;
        assert!(refused.starts_with("SIP/2.0 488 "), "{refused}");

        let sdp = secure_offer(rtp.port, &ours);
        send(
            &mut stream,
            &request("INVITE", 1, local, tls_addr, None, &contact, &sdp),
        )
        .await;
        let ok = reader.final_response(&mut stream, "1 INVITE").await;
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        assert!(ok.contains(" RTP/SAVP 0 101\r\n"), "{ok}");
        let theirs = ok
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .map(|l| CryptoAttribute::parse(l).expect("vaani's a=crypto parses"))
            .expect("vaani answered with a key");
        assert_eq!(theirs.tag, 1);
        assert_ne!(
            theirs.key_salt(),
            ours.key_salt(),
            "vaani must use its own key"
        );
        let to_tag = header(&ok, "To")
            .split(";tag=")
            .nth(1)
            .expect("To tag")
            .trim()
            .to_string();
        let vaani_rtp = answer_rtp(&ok);
        send(
            &mut stream,
            &request("ACK", 1, local, tls_addr, Some(&to_tag), "", ""),
        )
        .await;

        // We encrypt with our key; vaani encrypts with the one it answered.
        let keys = SrtpKeys {
            suite: SrtpSuite::AesCm128HmacSha1_80,
            local: ours.key_salt(),
            remote: theirs.key_salt(),
        };
        let mut srtp = SrtpSession::new(&keys);
        let started = Instant::now();
        let mut sequence = 1u16;
        let mut timestamp = 0u32;
        while started.elapsed() < Duration::from_secs(10) {
            let packet = srtp
                .protect(&silence_packet(sequence, timestamp))
                .expect("protect");
            rtp.send_to(vaani_rtp, &packet);
            sequence = sequence.wrapping_add(1);
            timestamp = timestamp.wrapping_add(160);
            if rtp
                .packets()
                .iter()
                .filter(|p| p.source == vaani_rtp)
                .count()
                >= 60
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut decrypted = 0;
        let mut undecryptable = 0;
        for packet in rtp.packets().iter().filter(|p| p.source == vaani_rtp) {
            match srtp.unprotect(&packet.raw) {
                // 12-byte header and 160 bytes of G.711: the audio decrypts on our side.
                Ok(plain) if plain.len() == 172 && plain[1] & 0x7f == 0 => decrypted += 1,
                _ => undecryptable += 1,
            }
        }
        send(
            &mut stream,
            &request("BYE", 2, local, tls_addr, Some(&to_tag), "", ""),
        )
        .await;
        let bye_ok = reader.final_response(&mut stream, "2 BYE").await;
        assert!(bye_ok.starts_with("SIP/2.0 200 OK\r\n"), "{bye_ok}");
        (decrypted, undecryptable)
    });
    assert!(
        decrypted >= 50,
        "only {decrypted} of vaani's packets decrypted"
    );
    assert_eq!(
        undecryptable, 0,
        "vaani sent packets our key could not open"
    );

    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == ECHO_LINE && c["status"] == "completed")
    });
    let call = calls
        .iter()
        .find(|c| c["dialled"] == ECHO_LINE && c["status"] == "completed")
        .expect("the SRTP call is listed");
    let stats = &call["media_stats"];
    assert!(stats["packets_received"].as_u64() > Some(40), "{stats:#}");
    assert_eq!(stats["srtp_failures"], 0, "{stats:#}");
}
