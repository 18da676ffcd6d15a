//! Calls placed by the real [`SipDriver`] on loopback to a real peer: sipp as the callee (UAS),
//! challenging with digest auth, answering, and hanging up; or answering busy.
//!
//! Needs `sipp` (Debian `sip-tester` 3.6.1), which the set-up installs; without it the tests
//! fail.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::timeout;
use vaani_sip::{
    AudioCodec, CallEndReason, CallKey, DigestCredentials, EndpointConfig, OutboundCall,
    OutboundFailure, SdpSession, SipCommand, SipDriver, SipDriverConfig, SipEvent, Transport,
};

const WAIT: Duration = Duration::from_secs(10);

/// Fails the test unless sipp runs (`make test` installs Debian's sip-tester).
fn require_sipp() {
    if let Err(error) = Command::new("sipp").arg("-v").output() {
        panic!("sipp is not installed ({error}): run scripts/setup.sh (Debian sip-tester)");
    }
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testbench/scenarios")
        .join(name)
}

/// sipp as a UAS on 127.0.0.1:`port`, for one call.
struct Sipp {
    child: Child,
    dir: PathBuf,
}

impl Sipp {
    fn start(name: &str, port: u16, media_port: u16, transport: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vaani-outbound-sipp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("sipp")
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario(name))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
            .args(["-t", transport])
            .args(["-nostdin", "-m", "1", "-timeout", "20s", "-trace_err"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sipp");
        // Give sipp time to bind before the INVITE goes out (it is retransmitted anyway on UDP).
        std::thread::sleep(Duration::from_millis(300));
        Self { child, dir }
    }

    /// Waits for sipp to finish; panics with its error log unless it passed.
    fn assert_passed(mut self) {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    let errors = std::fs::read_dir(&self.dir)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter(|e| e.file_name().to_string_lossy().contains("errors"))
                        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\n");
                    panic!("sipp failed ({status}):\n{errors}");
                }
                return;
            }
            assert!(started.elapsed() < WAIT * 3, "sipp did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_driver() -> SipDriver {
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

fn call_to(
    port: u16,
    transport: Transport,
    credentials: Option<DigestCredentials>,
) -> OutboundCall {
    let suffix = if transport == Transport::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
    OutboundCall {
        request_uri: format!("sip:+15551234567@127.0.0.1:{port}{suffix}"),
        destination: SocketAddr::from(([127, 0, 0, 1], port)),
        transport,
        from_user: "+15550000001".to_string(),
        from_display: Some("vaani".to_string()),
        to_user: "+15551234567".to_string(),
        sdp: SdpSession::offer_initial(
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            "127.0.0.1".parse().unwrap(),
            40000,
            1,
        ),
        extra_headers: Vec::new(),
        credentials,
        ring_timeout: Duration::from_secs(30),
        tls: None,
    }
}

async fn next_event(driver: &mut SipDriver) -> SipEvent {
    timeout(WAIT, driver.events.recv())
        .await
        .expect("event within 10 s")
        .expect("driver alive")
}

async fn place(driver: &SipDriver, request_id: u64, call: OutboundCall) {
    driver
        .commands
        .send(SipCommand::PlaceCall {
            request_id,
            call: Box::new(call),
        })
        .await
        .unwrap();
}

async fn started(driver: &mut SipDriver, request_id: u64) -> CallKey {
    match next_event(driver).await {
        SipEvent::OutboundStarted {
            request_id: id,
            key,
        } if id == request_id => key,
        other => panic!("expected OutboundStarted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_challenge_answer_and_remote_bye_with_sipp() {
    require_sipp();
    let (port, media_port) = (free_port(), free_port());
    let sipp = Sipp::start("uas_digest_answer.xml", port, media_port, "u1");
    let mut driver = start_driver().await;
    let credentials = DigestCredentials {
        username: "vaani".to_string(),
        password: "secret".to_string(),
    };
    place(&driver, 7, call_to(port, Transport::Udp, Some(credentials))).await;
    let key = started(&mut driver, 7).await;

    let mut progress = Vec::new();
    let media = loop {
        match next_event(&mut driver).await {
            SipEvent::OutboundProgress { key: k, status, .. } if k == key => progress.push(status),
            SipEvent::OutboundAnswered { key: k, media } if k == key => break media,
            other => panic!("unexpected event {other:?}"),
        }
    };
    assert_eq!(progress, vec![180], "the 401 is no progress; 180 is");
    assert_eq!(media.codec, AudioCodec::Pcmu);
    assert_eq!(media.payload_type, 0);
    assert_eq!(media.dtmf_payload_type, Some(101));
    assert_eq!(
        media.remote_rtp,
        Some(SocketAddr::from(([127, 0, 0, 1], media_port))),
        "sipp's SDP address"
    );
    assert_eq!(
        next_event(&mut driver).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        },
        "sipp hangs up after a second"
    );
    tokio::task::spawn_blocking(move || sipp.assert_passed())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn our_bye_ends_a_call_sipp_answered() {
    require_sipp();
    // Same scenario, but we hang up first: sipp's BYE then meets a finished dialog, so only
    // our side is checked here (sipp itself is not asked to pass).
    let (port, media_port) = (free_port(), free_port());
    let _sipp = Sipp::start("uas_digest_answer.xml", port, media_port, "u1");
    let mut driver = start_driver().await;
    let credentials = DigestCredentials {
        username: "vaani".to_string(),
        password: "secret".to_string(),
    };
    place(&driver, 8, call_to(port, Transport::Udp, Some(credentials))).await;
    let key = started(&mut driver, 8).await;
    loop {
        match next_event(&mut driver).await {
            SipEvent::OutboundProgress { .. } => {}
            SipEvent::OutboundAnswered { key: k, .. } if k == key => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    driver
        .commands
        .send(SipCommand::Hangup { key })
        .await
        .unwrap();
    match next_event(&mut driver).await {
        SipEvent::CallEnded { key: k, reason } => {
            assert_eq!(k, key);
            assert_eq!(reason, CallEndReason::LocalByeCompleted);
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_callee_with_sipp_over_udp_and_tcp() {
    require_sipp();
    for (transport, flag) in [(Transport::Udp, "u1"), (Transport::Tcp, "t1")] {
        let (port, media_port) = (free_port(), free_port());
        let sipp = Sipp::start("uas_outbound_busy.xml", port, media_port, flag);
        let mut driver = start_driver().await;
        place(&driver, 1, call_to(port, transport, None)).await;
        let key = started(&mut driver, 1).await;
        assert_eq!(
            next_event(&mut driver).await,
            SipEvent::OutboundProgress {
                key,
                status: 100,
                media: None
            }
        );
        assert_eq!(
            next_event(&mut driver).await,
            SipEvent::OutboundFailed {
                key,
                status: 486,
                reason_phrase: "Busy Here".to_string(),
                reason: OutboundFailure::Busy
            },
            "{transport:?}"
        );
        // sipp passes only when our ACK for the 486 arrived.
        tokio::task::spawn_blocking(move || sipp.assert_passed())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn tls_calls_are_rejected_with_the_request_id() {
    let mut driver = start_driver().await;
    place(&driver, 42, call_to(5061, Transport::Tls, None)).await;
    match next_event(&mut driver).await {
        SipEvent::OutboundRejected { request_id, error } => {
            assert_eq!(request_id, 42);
            assert!(error.contains("TLS"), "{error}");
        }
        other => panic!("expected OutboundRejected, got {other:?}"),
    }
    let mut bad = call_to(5060, Transport::Udp, None);
    bad.request_uri = "mailto:someone".to_string();
    place(&driver, 43, bad).await;
    assert!(matches!(
        next_event(&mut driver).await,
        SipEvent::OutboundRejected { request_id: 43, .. }
    ));
}
