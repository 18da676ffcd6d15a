//! Minimal UAS on the driver: answers every call (PCMU/PCMA, echoing telephone-event), and
//! optionally hangs up after a delay. For trying the stack with sipp:
//!
//! ```sh
//! cargo run -p vaani-sip --example auto_answer -- 127.0.0.1:5090 [hangup_after_secs]
//! sipp -sn uac 127.0.0.1:5090 -m 5            # UDP
//! sipp -sn uac 127.0.0.1:5090 -m 5 -t t1      # TCP
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use vaani_sip::{
    AudioCodec, EndpointConfig, SdpSession, SipCommand, SipDriver, SipDriverConfig, SipEvent,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().unwrap_or("127.0.0.1:5090".into()).parse()?;
    let hangup_after = args.next().map(|s| s.parse::<u64>()).transpose()?;
    let mut driver = SipDriver::start(SipDriverConfig {
        listen_udp: Some(listen),
        listen_tcp: Some(listen),
        listen_tls: None,
        tls: None,
        endpoint: EndpointConfig {
            contact_host: listen.ip().to_string(),
            contact_port: listen.port(),
            ..EndpointConfig::default()
        },
    })
    .await?;
    println!(
        "listening on udp {:?} tcp {:?}",
        driver.local_udp, driver.local_tcp
    );
    let mut next_port = 30_000u16;
    while let Some(event) = driver.events.recv().await {
        println!("{event:?}");
        let SipEvent::IncomingCall(call) = event else {
            continue;
        };
        let commands = driver.commands.clone();
        let offer = call.sdp.unwrap_or_default();
        let answer = SdpSession::answer_initial(
            &offer,
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            listen.ip(),
            next_port,
            u64::from(next_port),
        );
        next_port = next_port.wrapping_add(2).max(30_000);
        let command = match answer {
            Ok(session) => SipCommand::Accept {
                key: call.key,
                sdp: Box::new(session),
            },
            Err(error) => SipCommand::Reject {
                key: call.key,
                status: 488,
                reason: error.to_string(),
                headers: Vec::new(),
            },
        };
        commands.send(command).await?;
        if let Some(secs) = hangup_after {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                let _ = commands.send(SipCommand::Hangup { key: call.key }).await;
            });
        }
    }
    Ok(())
}
