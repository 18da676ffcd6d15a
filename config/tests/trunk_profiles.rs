//! `[[trunks]] profile`: the Twilio and Exotel presets and what a trunk may override.

use std::path::Path;

use vaani_config::{Codec, Config, ConfigErrors, LoadOptions, TrunkProfile};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
}

const HTTP: &str = "[http]\noperator_key = \"k\"\n";

#[test]
fn twilio_profile_brings_its_networks_codecs_call_sid_and_headers() {
    let config = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"twilio\"\nprofile = \"twilio\"\n"
    ))
    .unwrap();
    let trunk = config.trunk("twilio").unwrap();
    assert_eq!(trunk.profile, TrunkProfile::Twilio);
    assert_eq!(trunk.allowed_cidrs.len(), 8);
    assert!(trunk.allows("54.172.60.2".parse().unwrap()), "Virginia");
    assert!(trunk.allows("177.71.206.193".parse().unwrap()), "São Paulo");
    assert!(
        !trunk.allows("54.172.60.4".parse().unwrap()),
        "outside the /30"
    );
    assert_eq!(trunk.codecs, Some(vec![Codec::Pcmu, Codec::Pcma]));
    assert_eq!(trunk.media_cidrs, vec!["168.86.128.0/18".parse().unwrap()]);
    assert_eq!(
        trunk.external_id_header.as_deref(),
        Some("X-Twilio-CallSid")
    );
    assert!(trunk.passes_to_plugin("X-Twilio-AccountSid"));
    assert!(
        trunk.passes_to_plugin("x-twilio-verstat"),
        "case-insensitive"
    );
    assert!(!trunk.passes_to_plugin("X-Other"));
    assert!(!trunk.passes_to_plugin("Authorization"));
}

#[test]
fn exotel_profile_prefers_alaw_and_accepts_its_published_hosts() {
    let config = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"exotel\"\nprofile = \"exotel\"\n"
    ))
    .unwrap();
    let trunk = config.trunk("exotel").unwrap();
    assert_eq!(trunk.codecs, Some(vec![Codec::Pcma, Codec::Pcmu]));
    assert!(trunk.allows("182.76.143.61".parse().unwrap()));
    assert!(trunk.allows("61.246.82.75".parse().unwrap()));
    assert!(!trunk.allows("182.76.143.62".parse().unwrap()));
    assert_eq!(trunk.external_id_header, None, "the SIP Call-ID is the id");
    assert!(trunk.plugin_headers.is_empty());
}

#[test]
fn explicit_settings_override_the_profile() {
    let config = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"twilio\"\nprofile = \"twilio\"\n\
         allowed_cidrs = [\"127.0.0.1\"]\ncodecs = [\"pcma\"]\n\
         external_id_header = \"\"\nplugin_headers = [\"X-Custom\", \"X-Twilio-CallSid\"]\n"
    ))
    .unwrap();
    let trunk = config.trunk("twilio").unwrap();
    assert_eq!(trunk.allowed_cidrs.len(), 1);
    assert!(!trunk.allows("54.172.60.2".parse().unwrap()));
    assert_eq!(trunk.media_cidrs.len(), 1, "media stays the profile's");
    assert_eq!(trunk.codecs, Some(vec![Codec::Pcma]));
    assert_eq!(
        trunk.external_id_header, None,
        "an empty header turns it off"
    );
    assert!(trunk.passes_to_plugin("x-custom"));
    assert!(
        !trunk.passes_to_plugin("X-Twilio-AccountSid"),
        "no prefix match"
    );
}

#[test]
fn a_generic_trunk_has_no_defaults_and_bad_values_are_reported() {
    let config = parse(&format!("{HTTP}[[trunks]]\nid = \"t\"\n")).unwrap();
    let trunk = config.trunk("t").unwrap();
    assert_eq!(trunk.profile, TrunkProfile::Generic);
    assert!(trunk.allowed_cidrs.is_empty());
    assert_eq!(trunk.codecs, None);
    assert!(trunk.plugin_headers.is_empty());

    let errors = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"t\"\nprofile = \"plivo\"\nplugin_headers = [\"X Bad\", \"*\"]\n"
    ))
    .unwrap_err();
    let lines: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "trunks[0].profile: \"plivo\" is not one of generic, twilio, exotel"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("trunks[0].plugin_headers[0]: ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("trunks[0].plugin_headers[1]: ")),
        "{lines:#?}"
    );
}

#[test]
fn outbound_settings_take_profile_rates_and_check_the_uri_and_secrets() {
    let config = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"exotel\"\nprofile = \"exotel\"\nsrtp = \"optional\"\n\
         [trunks.outbound]\nuri = \"sip:pstn.in2.exotel.com:5070;transport=tcp\"\n\
         caller_id = \"+918047000000\"\n"
    ))
    .unwrap();
    let trunk = config.trunk("exotel").unwrap();
    assert_eq!(trunk.srtp, vaani_config::SrtpPolicy::Optional);
    let outbound = trunk.outbound.as_ref().expect("outbound");
    assert_eq!(outbound.uri, "sip:pstn.in2.exotel.com:5070;transport=tcp");
    assert!(
        (outbound.calls_per_second - 200.0 / 60.0).abs() < 1e-9,
        "200 per minute"
    );
    assert_eq!(outbound.max_concurrent, 100);
    assert_eq!(outbound.ring_timeout_secs, 45);
    assert_eq!(outbound.username, None);

    let twilio = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"t\"\nprofile = \"twilio\"\n[trunks.outbound]\n\
         uri = \"sip:vaani.pstn.twilio.com\"\nusername = \"vaani\"\npassword_env = \"TWILIO_SIP_PASSWORD\"\n"
    ))
    .unwrap();
    let outbound = twilio.trunk("t").unwrap().outbound.clone().unwrap();
    assert_eq!(outbound.calls_per_second, 30.0);
    assert_eq!(
        outbound.password_env.as_deref(),
        Some("TWILIO_SIP_PASSWORD")
    );
    assert_eq!(
        twilio.trunk("t").unwrap().srtp,
        vaani_config::SrtpPolicy::Off
    );

    let errors = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"t\"\nsrtp = \"always\"\n[trunks.outbound]\n\
         uri = \"http://x\"\nusername = \"u\"\ncaller_id = \"12345\"\nring_timeout_secs = 1\n"
    ))
    .unwrap_err();
    let lines: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
    for prefix in [
        "trunks[0].srtp: ",
        "trunks[0].outbound.uri: ",
        "trunks[0].outbound.username: username and password_env go together",
        "trunks[0].outbound.caller_id: ",
        "trunks[0].outbound.ring_timeout_secs: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "no {prefix:?} in {lines:#?}"
        );
    }
    for bad in ["sip:", "sip:host:0", "sip:host;transport=sctp", "sip:ho st"] {
        let errors = parse(&format!(
            "{HTTP}[[trunks]]\nid = \"t\"\n[trunks.outbound]\nuri = \"{bad}\"\n"
        ))
        .unwrap_err();
        assert!(
            errors
                .errors()
                .iter()
                .any(|e| e.to_string().starts_with("trunks[0].outbound.uri: ")),
            "{bad} accepted"
        );
    }
}

#[test]
fn inbound_auth_takes_its_defaults_and_checks_its_values() {
    let config = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"t\"\nallowed_cidrs = []\n[trunks.inbound_auth]\n\
         username = \"exotel\"\npassword_env = \"EXOTEL_PW\"\n"
    ))
    .unwrap();
    let trunk = config.trunk("t").unwrap();
    let auth = trunk.inbound_auth.as_ref().unwrap();
    assert_eq!(auth.algorithms, vec!["SHA-256", "MD5"]);
    assert_eq!(auth.realm, None);
    assert!(
        trunk.allows("203.0.113.9".parse().unwrap()),
        "credentials replace an empty address list"
    );
    let errors = parse(&format!(
        "{HTTP}[[trunks]]\nid = \"t\"\n[trunks.inbound_auth]\nusername = \"\"\n\
         password_env = \"1bad\"\nalgorithms = [\"SHA-512\"]\n"
    ))
    .unwrap_err();
    let lines: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
    for prefix in [
        "trunks[0].inbound_auth.username: ",
        "trunks[0].inbound_auth.password_env: ",
        "trunks[0].inbound_auth.algorithms[0]: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "no {prefix:?} in {lines:#?}"
        );
    }
}
