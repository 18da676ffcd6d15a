//! The tokio driver on loopback: real UDP and TCP sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use vaani_sip::{
    CallKey, EndpointConfig, SipCommand, SipDriver, SipDriverConfig, SipEvent, Transport,
};

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> SipDriver {
    SipDriver::start(SipDriverConfig {
        listen_udp: Some("127.0.0.1:0".parse().unwrap()),
        listen_tcp: Some("127.0.0.1:0".parse().unwrap()),
        listen_tls: None,
        tls: None,
        endpoint: EndpointConfig {
            contact_host: "127.0.0.1".to_string(),
            contact_port: 0,
            ..EndpointConfig::default()
        },
    })
    .await
    .expect("driver starts")
}

fn invite(transport: &str, local: SocketAddr, call_id: &str) -> Vec<u8> {
    let sdp = common::OFFER;
    format!(
        "INVITE sip:+15551234567@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"sipp\" <sip:+15550000001@{local}>;tag=caller-{call_id}\r\n\
         To: <sip:+15551234567@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:sipp@{local};transport={transport}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn ack(transport: &str, local: SocketAddr, call_id: &str, to_tag: &str) -> Vec<u8> {
    format!(
        "ACK sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-ack-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"sipp\" <sip:+15550000001@{local}>;tag=caller-{call_id}\r\n\
         To: <sip:+15551234567@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn udp_recv(socket: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65536];
    let (len, _) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("response within 5 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

async fn next_event(driver: &mut SipDriver) -> SipEvent {
    timeout(WAIT, driver.events.recv())
        .await
        .expect("event within 5 s")
        .expect("driver alive")
}

fn to_tag(message: &str) -> String {
    let to = message
        .lines()
        .find(|l| l.starts_with("To:"))
        .expect("To header");
    to.split(";tag=").nth(1).unwrap().trim().to_string()
}

#[tokio::test]
async fn udp_invite_gets_100_then_200_after_accept() {
    let mut driver = start().await;
    let server = driver.local_udp.unwrap();
    assert_ne!(server.port(), 0, "the bound port is reported");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();

    socket
        .send_to(&invite("UDP", local, "udp-call-1"), server)
        .await
        .unwrap();
    let trying = udp_recv(&socket).await;
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");

    let SipEvent::IncomingCall(call) = next_event(&mut driver).await else {
        panic!("expected IncomingCall")
    };
    assert_eq!(call.transport, Transport::Udp);
    assert_eq!(call.source, local);
    assert_eq!(call.call_id, "udp-call-1");
    driver
        .commands
        .send(SipCommand::Accept {
            key: call.key,
            sdp: Box::new(common::session_at("127.0.0.1")),
        })
        .await
        .unwrap();
    let ok = udp_recv(&socket).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with(common::session_at("127.0.0.1").local_sdp()));
    assert!(
        ok.contains(&format!("Contact: <sip:127.0.0.1:{}>", server.port())),
        "contact_port 0 becomes the bound UDP port: {ok}"
    );

    socket
        .send_to(&ack("UDP", local, "udp-call-1", &to_tag(&ok)), server)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallConfirmed { key: call.key }
    );

    // Our hangup reaches the caller's Contact.
    driver
        .commands
        .send(SipCommand::Hangup { key: call.key })
        .await
        .unwrap();
    let bye = udp_recv(&socket).await;
    assert!(
        bye.starts_with(&format!("BYE sip:sipp@{local};transport=UDP SIP/2.0")),
        "{bye}"
    );
}

#[tokio::test]
async fn tcp_invite_gets_100_then_200_on_the_same_connection() {
    let mut driver = start().await;
    let server = driver.local_tcp.unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    let local = stream.local_addr().unwrap();

    // A keep-alive ping is answered with a pong.
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    // Send the INVITE in two pieces to exercise stream framing.
    let message = invite("TCP", local, "tcp-call-1");
    stream.write_all(&message[..50]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stream.write_all(&message[50..]).await.unwrap();

    let mut reader = TcpReader::default();
    let trying = reader.next(&mut stream).await;
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");

    let SipEvent::IncomingCall(call) = next_event(&mut driver).await else {
        panic!("expected IncomingCall")
    };
    assert_eq!(call.transport, Transport::Tcp);
    driver
        .commands
        .send(SipCommand::Accept {
            key: call.key,
            sdp: Box::new(common::session_at("127.0.0.1")),
        })
        .await
        .unwrap();
    let ok = reader.next(&mut stream).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.contains(";transport=tcp>"), "{ok}");
    assert!(ok.ends_with(common::session_at("127.0.0.1").local_sdp()));

    stream
        .write_all(&ack("TCP", local, "tcp-call-1", &to_tag(&ok)))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallConfirmed { key: call.key }
    );
    // The BYE goes back on the same connection.
    driver
        .commands
        .send(SipCommand::Hangup { key: call.key })
        .await
        .unwrap();
    let bye = reader.next(&mut stream).await;
    assert!(bye.starts_with("BYE "), "{bye}");
    assert!(bye.contains("Via: SIP/2.0/TCP "), "{bye}");
}

#[tokio::test]
async fn slow_event_reader_gets_503_instead_of_blocking_the_loop() {
    let driver = start().await;
    let server = driver.local_udp.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let capacity = vaani_sip::driver::EVENT_QUEUE_CAPACITY;
    let calls = capacity + 20;
    let mut trying = std::collections::HashSet::new();
    let mut refused = std::collections::HashSet::new();
    // One INVITE at a time, waiting for its 100, so the client socket buffer never overflows.
    for i in 0..calls {
        let call_id = format!("flood-{i}");
        socket
            .send_to(&invite("UDP", local, &call_id), server)
            .await
            .unwrap();
        loop {
            let response = udp_recv(&socket).await;
            record(&response, &mut trying, &mut refused);
            if response.starts_with("SIP/2.0 100")
                && response.contains(&format!("Call-ID: {call_id}\r\n"))
            {
                break;
            }
        }
    }
    // 503s are retransmitted until ACKed, so every one eventually shows up.
    let deadline = tokio::time::Instant::now() + WAIT;
    while (0..calls)
        .filter(|i| *i >= capacity)
        .any(|i| !refused.contains(&format!("flood-{i}")))
        && tokio::time::Instant::now() < deadline
    {
        let response = udp_recv(&socket).await;
        record(&response, &mut trying, &mut refused);
    }
    assert_eq!(trying.len(), calls);
    let mut expected: Vec<String> = (capacity..calls).map(|i| format!("flood-{i}")).collect();
    let mut refused: Vec<String> = refused.into_iter().collect();
    expected.sort();
    refused.sort();
    assert_eq!(
        refused, expected,
        "exactly the calls beyond the queue are refused"
    );

    // The loop still answers.
    let options = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopt;rport\r\n\
         From: <sip:probe@{local}>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), server).await.unwrap();
    let mut response = udp_recv(&socket).await;
    while !response.contains("CSeq: 1 OPTIONS") {
        response = udp_recv(&socket).await; // skip 503 retransmissions
    }
    assert!(response.starts_with("SIP/2.0 200 OK"), "{response}");
    drop(driver);
}

#[tokio::test]
async fn call_end_events_are_kept_while_the_queue_is_full() {
    let mut driver = start().await;
    let server = driver.local_udp.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();

    // Call A is answered and confirmed.
    socket
        .send_to(&invite("UDP", local, "call-a"), server)
        .await
        .unwrap();
    udp_recv(&socket).await; // 100
    let SipEvent::IncomingCall(a) = next_event(&mut driver).await else {
        panic!()
    };
    driver
        .commands
        .send(SipCommand::Accept {
            key: a.key,
            sdp: Box::new(common::session_at("127.0.0.1")),
        })
        .await
        .unwrap();
    let ok = udp_recv(&socket).await;
    let tag = to_tag(&ok);
    socket
        .send_to(&ack("UDP", local, "call-a", &tag), server)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallConfirmed { key: a.key }
    );

    // Fill the event queue with new calls nobody reads.
    let capacity = vaani_sip::driver::EVENT_QUEUE_CAPACITY;
    for i in 0..capacity {
        let call_id = format!("filler-{i}");
        socket
            .send_to(&invite("UDP", local, &call_id), server)
            .await
            .unwrap();
        loop {
            let response = udp_recv(&socket).await;
            if response.contains(&format!("Call-ID: {call_id}\r\n")) {
                break;
            }
        }
    }
    // Now the caller of A hangs up: the 200 comes back at once even though the queue is full.
    let bye = format!(
        "BYE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-bye-a;rport\r\n\
         From: <sip:+15550000001@{local}>;tag=caller-call-a\r\nTo: <sip:+15551234567@127.0.0.1>;tag={tag}\r\n\
         Call-ID: call-a\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(bye.as_bytes(), server).await.unwrap();
    loop {
        let response = udp_recv(&socket).await;
        if response.contains("CSeq: 2 BYE") {
            assert!(response.starts_with("SIP/2.0 200 OK"), "{response}");
            break;
        }
    }
    // Draining the queue eventually yields A's CallEnded, after the fillers.
    let mut fillers = 0;
    loop {
        match next_event(&mut driver).await {
            SipEvent::IncomingCall(_) => fillers += 1,
            SipEvent::CallEnded { key, reason } => {
                assert_eq!(key, a.key);
                assert_eq!(reason, vaani_sip::CallEndReason::RemoteBye);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fillers, capacity);
}

#[tokio::test]
async fn commands_for_unknown_calls_are_ignored() {
    let driver = start().await;
    driver
        .commands
        .send(SipCommand::Hangup { key: CallKey(999) })
        .await
        .unwrap();
    // Still alive: a UDP OPTIONS is answered.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopt2\r\n\
         From: <sip:probe@{local}>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe2\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket
        .send_to(options.as_bytes(), driver.local_udp.unwrap())
        .await
        .unwrap();
    assert!(udp_recv(&socket).await.starts_with("SIP/2.0 200 OK"));
}

#[tokio::test]
async fn config_without_listeners_is_rejected() {
    let result = SipDriver::start(SipDriverConfig {
        listen_udp: None,
        listen_tcp: None,
        listen_tls: None,
        tls: None,
        endpoint: EndpointConfig::default(),
    })
    .await;
    assert!(matches!(result, Err(vaani_sip::SipError::Config(_))));
    // A TLS listener without a certificate cannot work either.
    let result = SipDriver::start(SipDriverConfig {
        listen_udp: None,
        listen_tcp: None,
        listen_tls: Some("127.0.0.1:0".parse().unwrap()),
        tls: None,
        endpoint: EndpointConfig::default(),
    })
    .await;
    assert!(matches!(result, Err(vaani_sip::SipError::Config(_))));
}

fn record(
    response: &str,
    trying: &mut std::collections::HashSet<String>,
    refused: &mut std::collections::HashSet<String>,
) {
    let call_id = response
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap()
        .to_string();
    if response.starts_with("SIP/2.0 100") {
        trying.insert(call_id);
    } else if response.starts_with("SIP/2.0 503") {
        refused.insert(call_id);
    }
}

/// Reads whole SIP messages off a test TCP stream.
#[derive(Default)]
struct TcpReader {
    buf: Vec<u8>,
}

impl TcpReader {
    async fn next(&mut self, stream: &mut TcpStream) -> String {
        loop {
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
