//! A trunk that authenticates its INVITEs with digest credentials instead of source addresses:
//! sipp answers vaani's 401 challenge and the call goes through; without credentials it does not.

use std::time::Duration;

use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";

fn server() -> VaaniServer {
    let mut spec = ServerSpec::demo();
    // No address check at all: the credentials are the check.
    spec.allowed_cidrs = Vec::new();
    spec.trunk_toml = "[trunks.inbound_auth]\nusername = \"exotel\"\npassword_env = \"VAANI_TEST_TRUNK_PASSWORD\"\n\
         algorithms = [\"MD5\"]\n"
        .to_string();
    spec.env = vec![("VAANI_TEST_TRUNK_PASSWORD".into(), "s3cret".into())];
    VaaniServer::start(&spec)
}

#[test]
fn a_caller_that_answers_the_challenge_gets_through() {
    let server = server();
    Sipp::new("uac_digest.xml")
        .run(server.sip_addr(), ECHO, Duration::from_secs(30))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == ECHO && c["status"] == "completed")
    });
    let call = calls.iter().find(|c| c["dialled"] == ECHO).expect("stored");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
    assert!(call["answered_at_ms"].as_i64().is_some(), "{call:#}");
}

#[test]
fn without_credentials_the_call_gets_401() {
    let server = server();
    // No credentials at all: 401 (and the scenario ACKs it). Wrong passwords, stale and
    // forged nonces are covered by the unit tests in server/src/inbound_auth.rs.
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", "response=\"401\"")
        .run(server.sip_addr(), ECHO, Duration::from_secs(20))
        .assert_success();
    assert!(
        server.calls().iter().all(|c| c["status"] != "completed"),
        "an unauthenticated call was connected"
    );
}
