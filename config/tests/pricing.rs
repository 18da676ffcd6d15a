//! `[pricing]`: defaults, a full table, validation errors with key paths, env overrides.

use std::path::Path;

use vaani_config::{Config, ConfigErrors, LoadOptions, TelephonyBilling};

fn parse_with_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let options = LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &options)
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_with_env(text, &[])
}

fn error_lines(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

const OPERATOR: &str = "[http]\noperator_key = \"k\"\n";

#[test]
fn without_a_pricing_section_only_embedded_engines_are_priced() {
    let config = parse(OPERATOR).unwrap();
    let pricing = &config.pricing;
    assert_eq!(pricing.currency, "INR");
    assert_eq!(pricing.telephony_inr_per_minute, None);
    assert_eq!(pricing.telephony_billing, TelephonyBilling::PerSecond);
    assert_eq!(pricing.stt.keys().collect::<Vec<_>>(), ["whisper"]);
    assert_eq!(pricing.stt["whisper"].inr_per_minute, 0.0);
    assert_eq!(pricing.tts.keys().collect::<Vec<_>>(), ["espeak-ng"]);
    assert_eq!(pricing.tts["espeak-ng"].inr_per_1k_chars, 0.0);
    assert!(pricing.llm.is_empty());
}

#[test]
fn a_full_table_is_read() {
    let text = format!(
        r#"{OPERATOR}
[pricing]
currency = "inr"
telephony_inr_per_minute = 0.5
telephony_billing = "per_minute"

[pricing.stt.deepgram]
inr_per_minute = 0.36

[pricing.stt.whisper]
inr_per_minute = 0.01

[pricing.tts.elevenlabs]
inr_per_1k_chars = 2

[pricing.llm."gpt-4.1-mini"]
inr_per_1m_prompt_tokens = 33.6
inr_per_1m_completion_tokens = 134.4
"#
    );
    let config = parse(&text).unwrap();
    let pricing = &config.pricing;
    assert_eq!(pricing.currency, "INR");
    assert_eq!(pricing.telephony_inr_per_minute, Some(0.5));
    assert_eq!(pricing.telephony_billing, TelephonyBilling::PerMinute);
    assert_eq!(pricing.stt["deepgram"].inr_per_minute, 0.36);
    // A configured price for an embedded engine wins over its free default.
    assert_eq!(pricing.stt["whisper"].inr_per_minute, 0.01);
    // Integers are accepted where a rate is expected.
    assert_eq!(pricing.tts["elevenlabs"].inr_per_1k_chars, 2.0);
    assert_eq!(pricing.tts["espeak-ng"].inr_per_1k_chars, 0.0);
    let llm = pricing.llm["gpt-4.1-mini"];
    assert_eq!(llm.inr_per_1m_prompt_tokens, 33.6);
    assert_eq!(llm.inr_per_1m_completion_tokens, 134.4);

    // The redacted rendering is a complete config: the table parses back unchanged.
    let shown = config.to_redacted_toml();
    let reparsed = parse(&shown).unwrap();
    assert_eq!(reparsed.pricing, config.pricing, "{shown}");
}

#[test]
fn every_pricing_error_names_its_key() {
    let text = format!(
        r#"{OPERATOR}
[pricing]
currency = "USD"
telephony_inr_per_minute = -0.5
telephony_billing = "per_call"

[pricing.stt.deepgram]
inr_per_minute = 1e9

[pricing.tts."two words"]
inr_per_1k_chars = 1

[pricing.llm."gpt-4.1"]
inr_per_1m_prompt_tokens = -1
inr_per_1m_completion_tokens = nan
"#
    );
    let errors = parse(&text).unwrap_err();
    let lines = error_lines(&errors);
    let expected = [
        "pricing.currency: \"USD\" is not supported: prices are in INR (write \"INR\" or leave it out)",
        "pricing.telephony_inr_per_minute: -0.5 is out of range (expected 0..=100000 INR)",
        "pricing.telephony_billing: \"per_call\" is not one of \"per_second\", \"per_minute\"",
        "pricing.stt.deepgram.inr_per_minute: 1000000000 is out of range (expected 0..=100000 INR)",
        "pricing.tts.\"two words\": an engine or model name must not contain spaces",
        "pricing.llm.\"gpt-4.1\".inr_per_1m_prompt_tokens: -1 is out of range (expected 0..=100000 INR)",
        "pricing.llm.\"gpt-4.1\".inr_per_1m_completion_tokens: NaN is out of range (expected 0..=100000 INR)",
    ];
    for line in expected {
        assert!(
            lines.iter().any(|l| l == line),
            "missing {line:?} in:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.len(), expected.len(), "{}", lines.join("\n"));
}

#[test]
fn shape_errors_in_the_table_have_paths() {
    // Deserialisation stops at the first shape error in a section: one input per mistake.
    for (text, key, needle) in [
        (
            "[pricing]\ntelephony_rate = 1\n",
            "pricing.telephony_rate",
            "unknown key",
        ),
        (
            "[pricing.stt.deepgram]\ninr_per_second = 0.1\n",
            "pricing.stt.deepgram.inr_per_second",
            "unknown key",
        ),
        (
            "[pricing.llm.small]\ninr_per_1m_prompt_tokens = \"cheap\"\ninr_per_1m_completion_tokens = 1\n",
            "pricing.llm.small.inr_per_1m_prompt_tokens",
            "expected f64",
        ),
    ] {
        let errors = parse(&format!("{OPERATOR}{text}")).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors}");
        assert_eq!(errors.errors()[0].key(), key, "{errors}");
        assert!(errors.to_string().contains(needle), "{errors}");
    }
}

#[test]
fn missing_llm_price_is_a_shape_error() {
    let text = format!("{OPERATOR}\n[pricing.llm.small]\ninr_per_1m_prompt_tokens = 1\n");
    let errors = parse(&text).unwrap_err();
    let text = errors.to_string();
    assert!(
        text.starts_with("pricing.llm.small") && text.contains("inr_per_1m_completion_tokens"),
        "{text}"
    );
}

#[test]
fn environment_overrides_reach_the_table() {
    let config = parse_with_env(
        OPERATOR,
        &[
            ("VAANI_PRICING__TELEPHONY_INR_PER_MINUTE", "0.45"),
            ("VAANI_PRICING__TELEPHONY_BILLING", "per_minute"),
            ("VAANI_PRICING__STT__DEEPGRAM__INR_PER_MINUTE", "1"),
        ],
    )
    .unwrap();
    assert_eq!(config.pricing.telephony_inr_per_minute, Some(0.45));
    assert_eq!(
        config.pricing.telephony_billing,
        TelephonyBilling::PerMinute
    );
    assert_eq!(config.pricing.stt["deepgram"].inr_per_minute, 1.0);

    let errors = parse_with_env(
        OPERATOR,
        &[("VAANI_PRICING__TELEPHONY_INR_PER_MINUTE", "-2")],
    )
    .unwrap_err();
    assert_eq!(
        error_lines(&errors),
        ["pricing.telephony_inr_per_minute: -2 is out of range (expected 0..=100000 INR)"]
    );
}

#[test]
fn the_shipped_example_prices_telephony() {
    // The running checkout (cargo sets this at run time), not the one the test was built in.
    let manifest_dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    );
    let options = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    let config = Config::load_with(&manifest_dir.join("vaani.toml"), &options).unwrap();
    assert_eq!(config.pricing.telephony_inr_per_minute, Some(0.5));
    assert_eq!(
        config.pricing.telephony_billing,
        TelephonyBilling::PerSecond
    );
    assert_eq!(config.pricing.stt["whisper"].inr_per_minute, 0.0);
}
