//! Calls the tokio driver places over TLS (RFC 3261 §26), on loopback with certificates made
//! at test time: to vaani's own TLS listener (a second driver), with SRTP keys agreed end to
//! end; to a bare tokio-rustls UAS that checks SNI and that the whole dialog rides one
//! connection; and failures (untrusted or misnamed certificate, nobody listening, no trust
//! roots) that end the call at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use vaani_sip::{
    AudioCodec, CallEndReason, CallKey, EndpointConfig, NegotiatedMedia, OutboundCall,
    OutboundFailure, OutboundTls, SdpSession, SipCommand, SipDriver, SipDriverConfig, SipEvent,
    SrtpMode, Transport,
};

const WAIT: Duration = Duration::from_secs(10);

/// A self-signed certificate for `names`, and its key.
struct TestCert {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn test_cert(names: &[&str]) -> TestCert {
    let certified =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate generated");
    TestCert {
        cert: certified.cert.der().clone(),
        key_der: certified.signing_key.serialize_der(),
    }
}

fn server_config(cert: &TestCert) -> Arc<rustls::ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
    vaani_sip::tls::server_config(vec![cert.cert.clone()], key).expect("server config")
}

/// Trusts `cert` only, and expects it under `name`.
fn trusting(cert: &TestCert, name: &str) -> OutboundTls {
    let config = vaani_sip::tls::client_config(vec![cert.cert.clone()]).expect("client config");
    OutboundTls::new(config, name).expect("server name")
}

async fn start_driver(cert: &TestCert) -> SipDriver {
    SipDriver::start(SipDriverConfig {
        listen_udp: Some("127.0.0.1:0".parse().unwrap()),
        listen_tcp: None,
        listen_tls: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(server_config(cert)),
        endpoint: EndpointConfig {
            contact_host: "127.0.0.1".to_string(),
            contact_port: 0,
            contact_port_tls: 0,
            ..EndpointConfig::default()
        },
    })
    .await
    .expect("driver starts")
}

fn call_over_tls(
    host: &str,
    destination: SocketAddr,
    tls: Option<OutboundTls>,
    srtp: SrtpMode,
) -> OutboundCall {
    OutboundCall {
        request_uri: format!(
            "sip:+15551234567@{host}:{};transport=tls",
            destination.port()
        ),
        destination,
        transport: Transport::Tls,
        from_user: "+15550000001".to_string(),
        from_display: None,
        to_user: "+15551234567".to_string(),
        sdp: SdpSession::offer_initial_with_srtp(
            &[AudioCodec::Pcmu],
            "127.0.0.1".parse().unwrap(),
            40000,
            1,
            srtp,
        ),
        extra_headers: Vec::new(),
        credentials: None,
        ring_timeout: Duration::from_secs(30),
        tls,
    }
}

async fn next_event(driver: &mut SipDriver) -> SipEvent {
    timeout(WAIT, driver.events.recv())
        .await
        .expect("event within 10 s")
        .expect("driver alive")
}

async fn place(driver: &mut SipDriver, request_id: u64, call: OutboundCall) -> CallKey {
    driver
        .commands
        .send(SipCommand::PlaceCall {
            request_id,
            call: Box::new(call),
        })
        .await
        .unwrap();
    match next_event(driver).await {
        SipEvent::OutboundStarted {
            request_id: id,
            key,
        } if id == request_id => key,
        other => panic!("expected OutboundStarted, got {other:?}"),
    }
}

/// Waits for the answer of `key` (progress events skipped).
async fn answered(driver: &mut SipDriver, key: CallKey) -> NegotiatedMedia {
    loop {
        match next_event(driver).await {
            SipEvent::OutboundProgress { key: k, .. } if k == key => {}
            SipEvent::OutboundAnswered { key: k, media } if k == key => return media,
            other => panic!("expected OutboundAnswered, got {other:?}"),
        }
    }
}

/// The callee side: takes the next IncomingCall, checks it came over TLS and answers it under
/// `srtp`. Returns its key, where it came from, and the media it agreed.
async fn answer_incoming(
    callee: &mut SipDriver,
    srtp: SrtpMode,
) -> (CallKey, SocketAddr, NegotiatedMedia) {
    let SipEvent::IncomingCall(call) = next_event(callee).await else {
        panic!("expected IncomingCall")
    };
    assert_eq!(call.transport, Transport::Tls);
    let sdp = SdpSession::answer_initial_with_srtp(
        call.sdp.as_deref().expect("an offer"),
        &[AudioCodec::Pcmu],
        "127.0.0.1".parse().unwrap(),
        42000,
        9,
        srtp,
    )
    .expect("offer answered");
    let media = sdp.negotiated().clone();
    callee
        .commands
        .send(SipCommand::Accept {
            key: call.key,
            sdp: Box::new(sdp),
        })
        .await
        .unwrap();
    (call.key, call.source, media)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_placed_over_tls_to_vaanis_own_listener_with_srtp_both_ways() {
    let cert = test_cert(&["localhost"]);
    let mut callee = start_driver(&cert).await;
    let mut caller = start_driver(&test_cert(&["caller.test"])).await;
    let listener = callee.local_tls.unwrap();

    // Call 1: SRTP required on both sides; the callee hangs up.
    let key = place(
        &mut caller,
        1,
        call_over_tls(
            "localhost",
            listener,
            Some(trusting(&cert, "localhost")),
            SrtpMode::Required,
        ),
    )
    .await;
    let (callee_key, first_source, callee_media) =
        answer_incoming(&mut callee, SrtpMode::Required).await;
    let caller_media = answered(&mut caller, key).await;
    assert_eq!(
        next_event(&mut callee).await,
        SipEvent::CallConfirmed { key: callee_key }
    );
    let ours = caller_media.srtp.expect("SRTP on the call we placed");
    let theirs = callee_media.srtp.expect("SRTP on the callee");
    assert_eq!(
        ours.local, theirs.remote,
        "the callee decrypts with our key"
    );
    assert_eq!(
        ours.remote, theirs.local,
        "we decrypt with the callee's key"
    );
    assert_eq!(
        caller_media.remote_rtp,
        Some("127.0.0.1:42000".parse().unwrap())
    );
    callee
        .commands
        .send(SipCommand::Hangup { key: callee_key })
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut caller).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        },
        "the callee's BYE reached us over the connection we opened"
    );
    assert_eq!(
        next_event(&mut callee).await,
        SipEvent::CallEnded {
            key: callee_key,
            reason: CallEndReason::LocalByeCompleted
        }
    );

    // Call 2, plain RTP: it reuses the open connection (same source at the callee); we hang up.
    let key = place(
        &mut caller,
        2,
        call_over_tls(
            "localhost",
            listener,
            Some(trusting(&cert, "localhost")),
            SrtpMode::Off,
        ),
    )
    .await;
    let (callee_key, second_source, _) = answer_incoming(&mut callee, SrtpMode::Off).await;
    assert_eq!(
        second_source, first_source,
        "one TLS connection for both calls"
    );
    assert!(answered(&mut caller, key).await.srtp.is_none());
    assert_eq!(
        next_event(&mut callee).await,
        SipEvent::CallConfirmed { key: callee_key }
    );
    caller
        .commands
        .send(SipCommand::Hangup { key })
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut callee).await,
        SipEvent::CallEnded {
            key: callee_key,
            reason: CallEndReason::RemoteBye
        }
    );
    assert_eq!(
        next_event(&mut caller).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }
    );
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{name} header in {message}"))
        .trim()
}

/// Reads whole SIP messages off a stream.
#[derive(Default)]
struct StreamReader {
    buf: Vec<u8>,
}

impl StreamReader {
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
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                let total = end + 4 + len;
                if self.buf.len() >= total {
                    let message: Vec<u8> = self.buf.drain(..total).collect();
                    return String::from_utf8(message).unwrap();
                }
            }
            let mut chunk = [0u8; 4096];
            let n = timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("data within 10 s")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, data: String) {
    stream.write_all(data.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
}

/// A response to `request` with the headers that must be copied, a To-tag and `extra`.
fn reply(request: &str, status: &str, extra: &str, body: &str) -> String {
    let to = header(request, "To");
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag=uas1")
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

const UAS_ANSWER: &str = "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 43000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn sni_names_the_trunk_and_the_whole_dialog_rides_one_connection() {
    // The trunk's certificate carries its host name; we reach it by address.
    let cert = test_cert(&["trunk.example"]);
    let acceptor = TlsAcceptor::from(server_config(&cert));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut caller = start_driver(&test_cert(&["caller.test"])).await;
    let key = place(
        &mut caller,
        1,
        call_over_tls(
            "trunk.example",
            address,
            Some(trusting(&cert, "trunk.example")),
            SrtpMode::Off,
        ),
    )
    .await;

    let (tcp, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut stream = timeout(WAIT, acceptor.accept(tcp))
        .await
        .unwrap()
        .expect("handshake");
    assert_eq!(stream.get_ref().1.server_name(), Some("trunk.example"));
    let mut reader = StreamReader::default();
    let invite = reader.next(&mut stream).await;
    assert!(
        invite.to_ascii_lowercase().starts_with(&format!(
            "invite sip:+15551234567@trunk.example:{};transport=tls sip/2.0\r\n",
            address.port()
        )),
        "{invite}"
    );
    assert!(header(&invite, "Via").starts_with("SIP/2.0/TLS 127.0.0.1:"));
    assert!(header(&invite, "Contact").ends_with(";transport=tls>"));
    send(&mut stream, reply(&invite, "100 Trying", "", "")).await;
    let contact = format!(
        "Contact: <sip:uas@127.0.0.1:{};transport=tls>\r\n",
        address.port()
    );
    send(&mut stream, reply(&invite, "200 OK", &contact, UAS_ANSWER)).await;
    let media = answered(&mut caller, key).await;
    assert_eq!(media.remote_rtp, Some("127.0.0.1:43000".parse().unwrap()));
    let ack = reader.next(&mut stream).await;
    assert!(
        ack.to_ascii_lowercase().starts_with(&format!(
            "ack sip:uas@127.0.0.1:{};transport=tls sip/2.0\r\n",
            address.port()
        )),
        "{ack}"
    );

    caller
        .commands
        .send(SipCommand::Hangup { key })
        .await
        .unwrap();
    let bye = reader.next(&mut stream).await;
    assert!(bye.starts_with("BYE sip:uas@127.0.0.1:"), "{bye}");
    send(&mut stream, reply(&bye, "200 OK", "", "")).await;
    assert_eq!(
        next_event(&mut caller).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }
    );
    assert!(
        timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err(),
        "no second connection was opened"
    );
}

/// Places a TLS call that cannot connect; returns the failure.
async fn failed_call(host: &str, destination: SocketAddr, tls: OutboundTls) -> (u16, String) {
    let mut caller = start_driver(&test_cert(&["caller.test"])).await;
    let key = place(
        &mut caller,
        1,
        call_over_tls(host, destination, Some(tls), SrtpMode::Off),
    )
    .await;
    let started = std::time::Instant::now();
    match next_event(&mut caller).await {
        SipEvent::OutboundFailed {
            key: k,
            status,
            reason_phrase,
            reason,
        } => {
            assert_eq!(k, key);
            assert_eq!(reason, OutboundFailure::Failed);
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "at once, not at Timer B"
            );
            (status, reason_phrase)
        }
        other => panic!("expected OutboundFailed, got {other:?}"),
    }
}

/// A TLS listener that completes handshakes with `cert` and then reads nothing.
async fn tls_listener(cert: &TestCert) -> SocketAddr {
    let acceptor = TlsAcceptor::from(server_config(cert));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(tcp).await {
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_or_misnamed_certificate_fails_the_call_with_503() {
    let cert = test_cert(&["trunk.example"]);
    let address = tls_listener(&cert).await;

    // Trust roots that do not include the trunk's certificate.
    let stranger = test_cert(&["trunk.example"]);
    let (status, reason) = failed_call(
        "trunk.example",
        address,
        trusting(&stranger, "trunk.example"),
    )
    .await;
    assert_eq!(status, 503);
    assert!(reason.contains("TLS handshake"), "{reason}");
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");

    // The right roots, but the certificate is not for the name we expect.
    let (status, reason) =
        failed_call("other.example", address, trusting(&cert, "other.example")).await;
    assert_eq!(status, 503);
    assert!(reason.contains("TLS handshake"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_listening_fails_the_call_with_503_and_no_roots_is_refused() {
    let cert = test_cert(&["trunk.example"]);
    // A port nobody listens on.
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let (status, reason) =
        failed_call("trunk.example", closed, trusting(&cert, "trunk.example")).await;
    assert_eq!(status, 503);
    assert!(reason.contains("connection to"), "{reason}");

    let mut caller = start_driver(&cert).await;
    caller
        .commands
        .send(SipCommand::PlaceCall {
            request_id: 9,
            call: Box::new(call_over_tls("trunk.example", closed, None, SrtpMode::Off)),
        })
        .await
        .unwrap();
    match next_event(&mut caller).await {
        SipEvent::OutboundRejected { request_id, error } => {
            assert_eq!(request_id, 9);
            assert!(error.contains("TLS"), "{error}");
        }
        other => panic!("expected OutboundRejected, got {other:?}"),
    }
}

#[test]
fn ca_files_load_and_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("vaani-outbound-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["trunk.example".to_string()]).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let config = vaani_sip::tls::load_client_config(&ca).expect("CA file loads");
    assert!(OutboundTls::new(config.clone(), "trunk.example").is_ok());
    assert!(OutboundTls::new(config.clone(), "192.0.2.7").is_ok());
    let bad_name = OutboundTls::new(config, "not a name").unwrap_err();
    assert!(bad_name.to_string().contains("not a name"), "{bad_name}");

    let missing = dir.join("missing.pem");
    let error = vaani_sip::tls::load_client_config(&missing).unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no PEM here\n").unwrap();
    let error = vaani_sip::tls::load_client_config(&empty).unwrap_err();
    assert!(
        matches!(error, vaani_sip::TlsConfigError::NoCaCertificate { .. }),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
