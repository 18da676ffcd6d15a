//! The tokio driver's SIP-over-TLS listener on loopback (RFC 3261 §18, §26), with a
//! self-signed certificate made at test time and a tokio-rustls client that trusts it.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vaani_sip::{
    CallEndReason, EndpointConfig, SipCommand, SipDriver, SipDriverConfig, SipEvent,
    TlsConfigError, Transport,
};

const WAIT: Duration = Duration::from_secs(5);

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
struct TestCert {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

fn test_cert() -> TestCert {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate generated");
    TestCert {
        cert: certified.cert.der().clone(),
        key_der: certified.signing_key.serialize_der(),
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

fn private_key(cert: &TestCert) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()))
}

async fn start_tls(cert: &TestCert) -> SipDriver {
    let tls = vaani_sip::tls::server_config(vec![cert.cert.clone()], private_key(cert))
        .expect("server config");
    SipDriver::start(SipDriverConfig {
        listen_udp: Some("127.0.0.1:0".parse().unwrap()),
        listen_tcp: None,
        listen_tls: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(tls),
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

fn connector(cert: &TestCert) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.clone()).expect("root added");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn connect(cert: &TestCert, server: SocketAddr) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    timeout(WAIT, connector(cert).connect(name, tcp))
        .await
        .expect("handshake within 5 s")
        .expect("handshake succeeds")
}

fn invite(local: SocketAddr, call_id: &str) -> Vec<u8> {
    let sdp = common::OFFER;
    format!(
        "INVITE sip:+15551234567@127.0.0.1;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"trunk\" <sip:+15550000001@{local}>;tag=caller-{call_id}\r\n\
         To: <sip:+15551234567@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:trunk@{local};transport=tls>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn in_dialog(method: &str, cseq: u32, local: SocketAddr, call_id: &str, to_tag: &str) -> Vec<u8> {
    format!(
        "{method} sip:127.0.0.1;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-{method}-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"trunk\" <sip:+15550000001@{local}>;tag=caller-{call_id}\r\n\
         To: <sip:+15551234567@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn next_event(driver: &mut SipDriver) -> SipEvent {
    timeout(WAIT, driver.events.recv())
        .await
        .expect("event within 5 s")
        .expect("driver alive")
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{name} header in {message}"))
        .trim()
}

fn to_tag(message: &str) -> String {
    header(message, "To")
        .split(";tag=")
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
}

/// Reads whole SIP messages off a test stream.
#[derive(Default)]
struct StreamReader {
    buf: Vec<u8>,
}

impl StreamReader {
    async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> String {
        loop {
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2); // keep-alive pongs
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
                .expect("data within 5 s")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) {
    stream.write_all(data).await.unwrap();
    stream.flush().await.unwrap();
}

/// INVITE over `stream`, 100, IncomingCall, accept, 200 (checked), ACK, CallConfirmed.
/// Returns the call's key and our To tag.
async fn answered_call(
    driver: &mut SipDriver,
    stream: &mut TlsStream<TcpStream>,
    reader: &mut StreamReader,
    call_id: &str,
) -> (vaani_sip::CallKey, String) {
    let local = stream.get_ref().0.local_addr().unwrap();
    let tls_port = driver.local_tls.unwrap().port();
    send(stream, &invite(local, call_id)).await;
    let trying = reader.next(stream).await;
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");
    assert!(
        header(&trying, "Via").starts_with(&format!("SIP/2.0/TLS {local};")),
        "{trying}"
    );

    let SipEvent::IncomingCall(call) = next_event(driver).await else {
        panic!("expected IncomingCall")
    };
    assert_eq!(call.transport, Transport::Tls);
    assert_eq!(call.source, local);
    assert_eq!(call.call_id, call_id);
    driver
        .commands
        .send(SipCommand::Accept {
            key: call.key,
            sdp: Box::new(common::session_at("127.0.0.1")),
        })
        .await
        .unwrap();
    let ok = reader.next(stream).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(
        header(&ok, "Via").starts_with(&format!("SIP/2.0/TLS {local};")),
        "the Via (and its TLS transport) comes back as sent: {ok}"
    );
    assert_eq!(
        header(&ok, "Contact"),
        format!("<sip:127.0.0.1:{tls_port};transport=tls>"),
        "Contact names the TLS listener: {ok}"
    );
    assert!(ok.ends_with(common::session_at("127.0.0.1").local_sdp()));

    let tag = to_tag(&ok);
    send(stream, &in_dialog("ACK", 1, local, call_id, &tag)).await;
    assert_eq!(
        next_event(driver).await,
        SipEvent::CallConfirmed { key: call.key }
    );
    (call.key, tag)
}

#[tokio::test]
async fn tls_call_answered_and_hung_up_on_one_connection() {
    let cert = test_cert();
    let mut driver = start_tls(&cert).await;
    let server = driver.local_tls.unwrap();
    assert_ne!(server.port(), 0, "the bound port is reported");
    let mut stream = connect(&cert, server).await;
    let local = stream.get_ref().0.local_addr().unwrap();
    let mut reader = StreamReader::default();

    // A keep-alive ping is answered with a pong, inside TLS.
    send(&mut stream, b"\r\n\r\n").await;
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    let (key, tag) = answered_call(&mut driver, &mut stream, &mut reader, "tls-call-1").await;

    // The caller hangs up on the same connection.
    send(&mut stream, &in_dialog("BYE", 2, local, "tls-call-1", &tag)).await;
    let ok = reader.next(&mut stream).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.contains("CSeq: 2 BYE\r\n"), "{ok}");
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }
    );

    // A second call on the same connection, which we hang up: the BYE comes back over TLS.
    let (key, _) = answered_call(&mut driver, &mut stream, &mut reader, "tls-call-2").await;
    driver
        .commands
        .send(SipCommand::Hangup { key })
        .await
        .unwrap();
    let bye = reader.next(&mut stream).await;
    assert!(
        bye.to_ascii_lowercase()
            .starts_with(&format!("bye sip:trunk@{local};transport=tls sip/2.0\r\n")),
        "{bye}"
    );
    assert!(
        header(&bye, "Via").starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{};", server.port())),
        "{bye}"
    );
    let response = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: tls-call-2\r\n\
         CSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via"),
        header(&bye, "From"),
        header(&bye, "To"),
        header(&bye, "CSeq"),
    );
    // Our 200 to that BYE, on the same connection.
    send(&mut stream, response.as_bytes()).await;
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::LocalByeCompleted
        }
    );
}

#[tokio::test]
async fn bad_tls_peers_do_not_disturb_a_good_call() {
    let cert = test_cert();
    let mut driver = start_tls(&cert).await;
    let server = driver.local_tls.unwrap();

    // Plain SIP instead of a ClientHello: the handshake fails and the connection is closed.
    let mut plain = TcpStream::connect(server).await.unwrap();
    // A peer that connects and never says anything.
    let silent = TcpStream::connect(server).await.unwrap();
    // A peer that sends half a ClientHello and stalls.
    let mut stalled = TcpStream::connect(server).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    plain
        .write_all(&invite(plain.local_addr().unwrap(), "not-tls"))
        .await
        .unwrap();

    // Meanwhile a real call completes.
    let mut stream = connect(&cert, server).await;
    let local = stream.get_ref().0.local_addr().unwrap();
    let mut reader = StreamReader::default();
    let (key, tag) = answered_call(&mut driver, &mut stream, &mut reader, "good-call").await;

    // The plain-text peer got at most a TLS alert, then the connection was closed.
    let mut received = Vec::new();
    let closed = timeout(WAIT, plain.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the non-TLS connection is closed");
    assert!(
        !String::from_utf8_lossy(&received).contains("SIP/2.0"),
        "no SIP answer on a connection without TLS"
    );

    send(&mut stream, &in_dialog("BYE", 2, local, "good-call", &tag)).await;
    let ok = reader.next(&mut stream).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }
    );
    // No stray events from the bad peers.
    assert!(driver.events.try_recv().is_err());
    drop(silent);
    drop(stalled);
}

#[tokio::test]
async fn stalled_tls_handshakes_are_closed_after_the_timeout() {
    let cert = test_cert();
    let driver = start_tls(&cert).await;
    let server = driver.local_tls.unwrap();
    let mut silent = TcpStream::connect(server).await.unwrap();
    let mut stalled = TcpStream::connect(server).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let limit = vaani_sip::driver::TLS_HANDSHAKE_TIMEOUT + WAIT;
    let started = tokio::time::Instant::now();
    for stream in [&mut silent, &mut stalled] {
        let mut received = Vec::new();
        // Closed (EOF or reset) within the limit.
        let _ = timeout(limit, stream.read_to_end(&mut received))
            .await
            .expect("the server closes a connection that never completes its handshake");
    }
    assert!(
        started.elapsed() >= vaani_sip::driver::TLS_HANDSHAKE_TIMEOUT - Duration::from_secs(1),
        "not closed before the handshake timeout"
    );

    // The listener still works.
    let mut stream = connect(&cert, server).await;
    send(&mut stream, b"\r\n\r\n").await;
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
}

#[test]
fn pem_files_load_and_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("vaani-sip-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = test_cert();
    let other = test_cert();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let other_key_path = dir.join("other-key.pem");
    let empty_path = dir.join("empty.pem");
    let missing_path = dir.join("missing.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    std::fs::write(&other_key_path, &other.key_pem).unwrap();
    std::fs::write(&empty_path, "not a PEM file\n").unwrap();

    vaani_sip::tls::load_server_config(&cert_path, &key_path).expect("a good pair loads");

    let error = vaani_sip::tls::load_server_config(&missing_path, &key_path).unwrap_err();
    assert!(
        matches!(error, TlsConfigError::Certificate { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let error = vaani_sip::tls::load_server_config(&empty_path, &key_path).unwrap_err();
    assert!(
        matches!(error, TlsConfigError::NoCertificate { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("empty.pem"), "{error}");

    // The certificate is no key.
    let error = vaani_sip::tls::load_server_config(&cert_path, &cert_path).unwrap_err();
    assert!(
        matches!(error, TlsConfigError::PrivateKey { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("cert.pem"), "{error}");

    // A key that does not belong to the certificate.
    let error = vaani_sip::tls::load_server_config(&cert_path, &other_key_path).unwrap_err();
    assert!(
        matches!(error, TlsConfigError::Rejected { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("other-key.pem"), "{error}");

    let _ = std::fs::remove_dir_all(&dir);
}
