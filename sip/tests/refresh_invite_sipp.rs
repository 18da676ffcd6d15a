//! Session refresh by re-INVITE against a real peer: sipp as the callee of a call the real
//! [`SipDriver`] places, over UDP and TCP on loopback. One callee's Allow has no UPDATE and it
//! meets our first refresh with 491 (glare); the other refuses our UPDATE with 405. sipp checks
//! what it receives (the refresh re-INVITEs, our unchanged offer, the ACKs) and passes only if
//! all of it came in order.
//!
//! Needs `sipp` (Debian `sip-tester` 3.6.1), which the set-up installs; without it the tests
//! fail.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::timeout;
use vaani_sip::{
    AudioCodec, CallEndReason, CallKey, EndpointConfig, OutboundCall, SdpSession, SipCommand,
    SipDriver, SipDriverConfig, SipEvent, Transport,
};

const WAIT: Duration = Duration::from_secs(15);

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
            std::env::temp_dir().join(format!("vaani-refresh-sipp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("sipp")
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario(name))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
            .args(["-t", transport])
            .args(["-nostdin", "-m", "1", "-timeout", "30s", "-trace_err"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sipp");
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
            assert!(started.elapsed() < WAIT * 2, "sipp did not finish");
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

fn call_to(port: u16, transport: Transport) -> OutboundCall {
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
        from_display: None,
        to_user: "+15551234567".to_string(),
        // Session id 1: the scenarios check for "o=vaani 1 1" in every refresh offer.
        sdp: SdpSession::offer_initial(&[AudioCodec::Pcmu], "127.0.0.1".parse().unwrap(), 40000, 1),
        extra_headers: Vec::new(),
        credentials: None,
        ring_timeout: Duration::from_secs(30),
        tls: None,
    }
}

async fn next_event(driver: &mut SipDriver) -> SipEvent {
    timeout(WAIT, driver.events.recv())
        .await
        .expect("event within 15 s")
        .expect("driver alive")
}

/// Places the call, waits for the answer, then for sipp's BYE; nothing else may happen
/// between (no media change: the refreshes change nothing).
async fn call_refreshed_then_hung_up(driver: &mut SipDriver, call: OutboundCall) {
    driver
        .commands
        .send(SipCommand::PlaceCall {
            request_id: 1,
            call: Box::new(call),
        })
        .await
        .unwrap();
    let key: CallKey = match next_event(driver).await {
        SipEvent::OutboundStarted { key, .. } => key,
        other => panic!("expected OutboundStarted, got {other:?}"),
    };
    match next_event(driver).await {
        SipEvent::OutboundAnswered { key: k, .. } if k == key => {}
        other => panic!("expected OutboundAnswered, got {other:?}"),
    }
    assert_eq!(
        next_event(driver).await,
        SipEvent::CallEnded {
            key,
            reason: CallEndReason::RemoteBye
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callee_without_update_is_refreshed_by_reinvite_through_glare() {
    require_sipp();
    for (transport, flag) in [(Transport::Udp, "u1"), (Transport::Tcp, "t1")] {
        let (port, media_port) = (free_port(), free_port());
        let sipp = Sipp::start("uas_refresh_reinvite.xml", port, media_port, flag);
        let mut driver = start_driver().await;
        call_refreshed_then_hung_up(&mut driver, call_to(port, transport)).await;
        tokio::task::spawn_blocking(move || sipp.assert_passed())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callee_refusing_update_gets_reinvites_from_then_on() {
    require_sipp();
    for (transport, flag) in [(Transport::Udp, "u1"), (Transport::Tcp, "t1")] {
        let (port, media_port) = (free_port(), free_port());
        let sipp = Sipp::start("uas_refresh_update_405.xml", port, media_port, flag);
        let mut driver = start_driver().await;
        call_refreshed_then_hung_up(&mut driver, call_to(port, transport)).await;
        tokio::task::spawn_blocking(move || sipp.assert_passed())
            .await
            .unwrap();
    }
}
