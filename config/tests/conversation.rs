//! `[tenants.llm]`, `[tenants.http]` and the cloud engines of `[speech]`.

use std::path::Path;

use vaani_config::{
    Config, ConfigErrors, DEFAULT_HTTP_MAX_RESPONSE_BYTES, HttpSettings, LlmSettings, LoadOptions,
};

const MINIMAL: &str = "[http]\noperator_key = \"k\"\n";

fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let opts = LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_with(text, &[])
}

/// A config with one tenant whose body ends with `extra` (sub-tables go there).
fn tenant(extra: &str) -> String {
    format!(
        "{MINIMAL}\n[[trunks]]\nid = \"t\"\nallowed_cidrs = [\"127.0.0.1\"]\n\n[[tenants]]\nid = \"a\"\nnumbers = [\"+918000000001\"]\ntrunk = \"t\"\n{extra}\n"
    )
}

fn lines(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

#[track_caller]
fn assert_error(text: &str, prefix: &str) {
    let errors = parse(text).expect_err("should be refused");
    let lines = lines(&errors);
    assert!(
        lines.iter().any(|l| l.starts_with(prefix)),
        "no error line starting with {prefix:?} in:\n{}",
        lines.join("\n")
    );
}

fn llm(config: &Config) -> &LlmSettings {
    config.tenants[0].llm.as_ref().expect("llm settings")
}

fn http(config: &Config) -> &HttpSettings {
    config.tenants[0].http.as_ref().expect("http settings")
}

#[test]
fn tables_are_optional() {
    let config = parse(&tenant("")).expect("valid");
    assert_eq!(config.tenants[0].llm, None);
    assert_eq!(config.tenants[0].http, None);
}

#[test]
fn llm_defaults() {
    let config = parse(&tenant(
        "[tenants.llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"gpt-4o-mini\"\n",
    ))
    .expect("valid");
    assert_eq!(
        llm(&config),
        &LlmSettings {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key_env: None,
            temperature: None,
            max_tokens: 300,
            first_token_timeout_ms: 4000,
            total_timeout_ms: 20000,
            summarize: true,
        }
    );
}

#[test]
fn llm_all_keys() {
    let config = parse(&tenant(
        "[tenants.llm]\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"llama\"\napi_key_env = \"CLINIC_OPENAI_KEY\"\ntemperature = 0.4\nmax_tokens = 120\nfirst_token_timeout_ms = 2000\ntotal_timeout_ms = 9000\nsummarize = false\n",
    ))
    .expect("valid");
    let llm = llm(&config);
    assert_eq!(llm.api_key_env.as_deref(), Some("CLINIC_OPENAI_KEY"));
    assert_eq!(llm.temperature, Some(0.4));
    assert_eq!(
        (
            llm.max_tokens,
            llm.first_token_timeout_ms,
            llm.total_timeout_ms
        ),
        (120, 2000, 9000)
    );
    assert!(!llm.summarize);
    // A whole-number temperature is fine too.
    let config = parse(&tenant(
        "[tenants.llm]\nbase_url = \"https://x.example/v1\"\nmodel = \"m\"\ntemperature = 1\n",
    ))
    .expect("integer temperature");
    assert_eq!(
        config.tenants[0].llm.as_ref().unwrap().temperature,
        Some(1.0)
    );
}

#[test]
fn llm_errors_name_their_keys() {
    let base = "[tenants.llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"m\"\n";
    assert_error(
        &tenant("[tenants.llm]\nmodel = \"m\"\n"),
        "tenants[0].llm.base_url: must not be empty",
    );
    assert_error(
        &tenant("[tenants.llm]\nbase_url = \"ftp://x/v1\"\nmodel = \"m\"\n"),
        "tenants[0].llm.base_url: invalid URL",
    );
    assert_error(
        &tenant("[tenants.llm]\nbase_url = \"api.openai.com/v1\"\nmodel = \"m\"\n"),
        "tenants[0].llm.base_url: invalid URL",
    );
    assert_error(
        &tenant("[tenants.llm]\nbase_url = \"https://user:pw@x/v1\"\nmodel = \"m\"\n"),
        "tenants[0].llm.base_url: invalid URL",
    );
    assert_error(
        &tenant("[tenants.llm]\nbase_url = \"https://x/v1\"\n"),
        "tenants[0].llm.model: must not be empty",
    );
    assert_error(
        &tenant(&format!("{base}api_key_env = \"sk-abc\"\n")),
        "tenants[0].llm.api_key_env: invalid environment variable name",
    );
    assert_error(
        &tenant(&format!("{base}temperature = 2.5\n")),
        "tenants[0].llm.temperature: 2.5 is out of range",
    );
    assert_error(
        &tenant(&format!("{base}max_tokens = 0\n")),
        "tenants[0].llm.max_tokens:",
    );
    assert_error(
        &tenant(&format!("{base}first_token_timeout_ms = 10\n")),
        "tenants[0].llm.first_token_timeout_ms:",
    );
    assert_error(
        &tenant(&format!(
            "{base}first_token_timeout_ms = 5000\ntotal_timeout_ms = 3000\n"
        )),
        "tenants[0].llm.total_timeout_ms: 3000 must be at least first_token_timeout_ms",
    );
    assert_error(
        &tenant(&format!("{base}api_key = \"sk-secret\"\n")),
        "tenants[0].llm.api_key: unknown key",
    );
}

#[test]
fn http_defaults_and_normalisation() {
    let config = parse(&tenant(
        "[tenants.http]\nallow = [\"API.Example.com\", \"*.shop.in.\"]\n",
    ))
    .expect("valid");
    let http = http(&config);
    assert_eq!(http.allow, ["api.example.com", "*.shop.in"]);
    assert!(!http.allow_private);
    assert!(!http.allow_plain_http);
    assert_eq!(http.timeout_ms, 5000);
    assert_eq!(http.max_response_bytes, DEFAULT_HTTP_MAX_RESPONSE_BYTES);
    assert_eq!(http.max_response_bytes, 256 * 1024);
    assert!(http.allows_host("api.example.com"));
    assert!(http.allows_host("orders.shop.in"));
    assert!(!http.allows_host("shop.in"));

    let config = parse(&tenant("[tenants.http]\n")).expect("empty table");
    assert!(http_allows_nothing(&config));
}

fn http_allows_nothing(config: &Config) -> bool {
    let http = http(config);
    http.allow.is_empty() && !http.allows_host("example.com")
}

#[test]
fn http_errors_name_their_keys() {
    assert_error(
        &tenant("[tenants.http]\nallow = [\"ok.example.com\", \"https://api.example.com\"]\n"),
        "tenants[0].http.allow[1]: invalid host pattern \"https://api.example.com\" (write the host only, without a scheme)",
    );
    assert_error(
        &tenant("[tenants.http]\nallow = [\"api.example.com/v1\"]\n"),
        "tenants[0].http.allow[0]: invalid host pattern",
    );
    assert_error(
        &tenant("[tenants.http]\nallow = [\"api.example.com:8443\"]\n"),
        "tenants[0].http.allow[0]: invalid host pattern",
    );
    assert_error(
        &tenant("[tenants.http]\nallow = [\"*\"]\n"),
        "tenants[0].http.allow[0]: invalid host pattern",
    );
    assert_error(
        &tenant("[tenants.http]\nallow = [\"api.*.com\"]\n"),
        "tenants[0].http.allow[0]: invalid host pattern",
    );
    assert_error(
        &tenant("[tenants.http]\ntimeout_ms = 60000\n"),
        "tenants[0].http.timeout_ms: 60000 is out of range (expected 100..=30000)",
    );
    assert_error(
        &tenant("[tenants.http]\nmax_response_bytes = 5000000\n"),
        "tenants[0].http.max_response_bytes: 5000000 is out of range (expected 1..=4194304)",
    );
    assert_error(
        &tenant("[tenants.http]\nallow_redirects = true\n"),
        "tenants[0].http.allow_redirects: unknown key",
    );
    assert_error(
        &tenant("[tenants.http]\nallow_private = \"yes\"\n"),
        "tenants[0].http.allow_private:",
    );
}

#[test]
fn errors_in_several_tenants_are_all_reported() {
    let text = format!(
        "{}\n[[tenants]]\nid = \"b\"\nnumbers = [\"+918000000002\"]\ntrunk = \"t\"\n[tenants.http]\ntimeout_ms = 1\n",
        tenant("[tenants.llm]\nbase_url = \"x\"\nmodel = \"m\"\n")
    );
    let errors = parse(&text).expect_err("two errors");
    let lines = lines(&errors);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("tenants[0].llm.base_url:"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("tenants[1].http.timeout_ms:"),
        "{lines:?}"
    );
}

#[test]
fn speech_defaults_are_unchanged() {
    let config = parse(MINIMAL).expect("valid");
    let s = &config.speech;
    assert_eq!(s.tts_engine, "espeak-ng");
    assert_eq!(s.stt_engine, "none");
    assert_eq!(
        (
            &s.tts_api_key_env,
            &s.tts_base_url,
            &s.tts_voice,
            &s.models_dir
        ),
        (&None, &None, &None, &None)
    );
    assert_eq!(
        (&s.stt_api_key_env, &s.stt_base_url, &s.stt_language),
        (&None, &None, &None)
    );
}

#[test]
fn cloud_speech_engines_are_accepted() {
    for engine in ["elevenlabs", "openai", "deepgram", "sarvam"] {
        let config = parse(&format!(
            "{MINIMAL}[speech]\ntts_engine = \"{engine}\"\ntts_api_key_env = \"TTS_KEY\"\ntts_voice = \"v\"\ntts_base_url = \"http://127.0.0.1:9/\"\n"
        ))
        .unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(config.speech.tts_engine, engine);
        assert_eq!(config.speech.tts_api_key_env.as_deref(), Some("TTS_KEY"));
    }
    for engine in ["openai", "sarvam"] {
        let config = parse(&format!(
            "{MINIMAL}[speech]\nstt_engine = \"{engine}\"\nstt_api_key_env = \"STT_KEY\"\nstt_language = \"hi\"\nstt_base_url = \"https://proxy.example/v1\"\n"
        ))
        .unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(config.speech.stt_engine, engine);
        assert_eq!(config.speech.stt_language.as_deref(), Some("hi"));
    }
    let config = parse(&format!(
        "{MINIMAL}[speech]\nstt_engine = \"deepgram\"\nstt_api_key_env = \"DG\"\nstt_base_url = \"ws://127.0.0.1:9/v1/listen\"\n"
    ))
    .expect("deepgram with a ws URL");
    assert_eq!(config.speech.stt_engine, "deepgram");
}

#[test]
fn hibari_needs_a_models_directory() {
    let config = parse(&format!(
        "{MINIMAL}[speech]\ntts_engine = \"hibari\"\nmodels_dir = \"../data/models\"\n"
    ))
    .expect("valid without file checks");
    assert_eq!(
        config.speech.models_dir.as_deref(),
        Some(Path::new("/etc/vaani/../data/models"))
    );
    assert_error(
        &format!("{MINIMAL}[speech]\ntts_engine = \"hibari\"\n"),
        "speech.models_dir: is required when speech.tts_engine is \"hibari\"",
    );
    // With file checks, the directory must exist.
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: true,
    };
    let errors = Config::from_toml_str(
        &format!("{MINIMAL}[speech]\ntts_engine = \"hibari\"\nmodels_dir = \"no/such/dir\"\n"),
        "test.toml",
        Path::new("/nonexistent-vaani"),
        &opts,
    )
    .expect_err("missing directory");
    assert!(
        lines(&errors)
            .iter()
            .any(|l| l.starts_with("speech.models_dir: directory not found")),
        "{errors}"
    );
}

#[test]
fn speech_errors_name_their_keys() {
    assert_error(
        &format!("{MINIMAL}[speech]\ntts_engine = \"polly\"\n"),
        "speech.tts_engine: \"polly\" is not one of",
    );
    assert_error(
        &format!("{MINIMAL}[speech]\ntts_engine = \"elevenlabs\"\n"),
        "speech.tts_api_key_env: is required when speech.tts_engine is \"elevenlabs\"",
    );
    assert_error(
        &format!("{MINIMAL}[speech]\nstt_engine = \"deepgram\"\n"),
        "speech.stt_api_key_env: is required when speech.stt_engine is \"deepgram\"",
    );
    assert_error(
        &format!("{MINIMAL}[speech]\nstt_engine = \"elevenlabs\"\nstt_api_key_env = \"K\"\n"),
        "speech.stt_engine: \"elevenlabs\" is not one of",
    );
    assert_error(
        &format!(
            "{MINIMAL}[speech]\nstt_engine = \"deepgram\"\nstt_api_key_env = \"K\"\nstt_base_url = \"https://api.deepgram.com/v1/listen\"\n"
        ),
        "speech.stt_base_url: invalid URL",
    );
    assert_error(
        &format!(
            "{MINIMAL}[speech]\ntts_engine = \"openai\"\ntts_api_key_env = \"K\"\ntts_base_url = \"wss://x\"\n"
        ),
        "speech.tts_base_url: invalid URL",
    );
    assert_error(
        &format!("{MINIMAL}[speech]\ntts_engine = \"openai\"\ntts_api_key_env = \"1KEY\"\n"),
        "speech.tts_api_key_env: invalid environment variable name",
    );
    assert_error(
        &format!("{MINIMAL}[speech]\ntts_api_key = \"secret\"\n"),
        "speech.tts_api_key: unknown key",
    );
}

#[test]
fn speech_engines_can_be_chosen_from_the_environment() {
    let config = parse_with(
        MINIMAL,
        &[
            ("VAANI_SPEECH__TTS_ENGINE", "deepgram"),
            ("VAANI_SPEECH__TTS_API_KEY_ENV", "DEEPGRAM_API_KEY"),
            ("VAANI_SPEECH__STT_ENGINE", "openai"),
            ("VAANI_SPEECH__STT_API_KEY_ENV", "OPENAI_API_KEY"),
            ("VAANI_SPEECH__STT_LANGUAGE", "en"),
        ],
    )
    .expect("valid");
    assert_eq!(config.speech.tts_engine, "deepgram");
    assert_eq!(
        config.speech.tts_api_key_env.as_deref(),
        Some("DEEPGRAM_API_KEY")
    );
    assert_eq!(config.speech.stt_engine, "openai");
    assert_eq!(config.speech.stt_language.as_deref(), Some("en"));

    // An override that leaves the engine without its key is reported with the key path.
    let errors = parse_with(MINIMAL, &[("VAANI_SPEECH__STT_ENGINE", "sarvam")])
        .expect_err("no key variable");
    assert!(
        lines(&errors)
            .iter()
            .any(|l| l.starts_with("speech.stt_api_key_env:")),
        "{errors}"
    );
}

#[test]
fn tenant_tables_cannot_be_overridden_from_the_environment() {
    // [[tenants]] is an array of tables: overrides do not reach it, so the tenant's
    // LLM settings stay as written.
    let text = tenant("[tenants.llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"m\"\n");
    let result = parse_with(&text, &[("VAANI_TENANTS__LLM", "x")]);
    match result {
        Ok(config) => assert_eq!(llm(&config).model, "m"),
        Err(errors) => assert!(
            lines(&errors).iter().all(|l| l.starts_with("tenants")),
            "{errors}"
        ),
    }
}

#[test]
fn redacted_toml_round_trips_the_new_tables() {
    let text = tenant(
        "[tenants.llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"m\"\napi_key_env = \"K\"\n[tenants.http]\nallow = [\"api.example.com\"]\n",
    );
    let config = parse(&text).expect("valid");
    let shown = config.to_redacted_toml();
    assert!(shown.contains("api_key_env = \"K\""), "{shown}");
    assert!(shown.contains("allow = [\"api.example.com\"]"), "{shown}");
}

#[test]
fn transfer_targets_are_named_uris_and_resolve_by_name_or_uri() {
    let config = parse(&tenant(
        "[tenants.transfer_targets]\nfrontdesk = \"sip:+918000000009@trunk.example\"\nmanager = \" tel:+918000000010 \"\n",
    ))
    .expect("valid");
    let t = &config.tenants[0];
    assert_eq!(
        t.transfer_target("frontdesk"),
        Some("sip:+918000000009@trunk.example")
    );
    assert_eq!(t.transfer_target("manager"), Some("tel:+918000000010"));
    assert_eq!(
        t.transfer_target("SIP:+918000000009@trunk.example"),
        Some("sip:+918000000009@trunk.example")
    );
    assert_eq!(t.transfer_target("sip:someone@else.example"), None);
    assert_eq!(t.transfer_target("nobody"), None);
    assert!(
        parse(&tenant("")).unwrap().tenants[0]
            .transfer_targets
            .is_empty()
    );
}

#[test]
fn transfer_targets_must_be_sip_or_tel_uris_under_plain_names() {
    assert_error(
        &tenant("[tenants.transfer_targets]\nfrontdesk = \"https://example.com\"\n"),
        "tenants[0].transfer_targets.frontdesk: invalid URL",
    );
    assert_error(
        &tenant("[tenants.transfer_targets]\nfrontdesk = \"sip:a@b>;x\"\n"),
        "tenants[0].transfer_targets.frontdesk: invalid URL",
    );
    assert_error(
        &tenant("[tenants.transfer_targets]\n\"front desk\" = \"sip:a@b\"\n"),
        "tenants[0].transfer_targets.front desk",
    );
}
