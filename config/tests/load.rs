//! Loading, environment overrides and validation of vaani configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use vaani_config::{
    Codec, Config, ConfigError, ConfigErrors, DEFAULT_FALLBACK_TEXT, LoadOptions, PortRange,
    is_e164,
};

const SHIPPED: &str = include_str!("../vaani.toml");

/// A temporary copy of the repository layout the shipped config expects:
/// `<root>/config/vaani.toml`, `<root>/plugins/dist/*.wasm`,
/// `<root>/data/models/ggml-tiny.en.bin`. Removed on drop.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn new(config_text: &str) -> Layout {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "vaani-config-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(root.join("config/vaani.toml"), config_text).unwrap();
        // The speech model is fetched at set-up; these tests check plugin files.
        std::fs::create_dir_all(root.join("data/models")).unwrap();
        std::fs::write(root.join("data/models/ggml-tiny.en.bin"), b"ggml").unwrap();
        Layout { root }
    }

    fn with_demo_plugins(self) -> Layout {
        std::fs::create_dir_all(self.root.join("plugins/dist")).unwrap();
        for name in ["clinic", "echo", "restaurant"] {
            std::fs::write(
                self.root.join(format!("plugins/dist/{name}.wasm")),
                b"\0asm",
            )
            .unwrap();
        }
        self
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("config/vaani.toml")
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn options(env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        check_files: true,
    }
}

/// Parse `text` as if it were /etc/vaani/vaani.toml, without file checks.
fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
}

fn error_lines(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

fn assert_has(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|l| l == expected),
        "missing error line {expected:?} in:\n{}",
        lines.join("\n")
    );
}

fn assert_has_prefix(lines: &[String], prefix: &str) {
    assert!(
        lines.iter().any(|l| l.starts_with(prefix)),
        "no error line starting with {prefix:?} in:\n{}",
        lines.join("\n")
    );
}

const MINIMAL: &str = r#"
[http]
operator_key = "k"
"#;

#[test]
fn shipped_config_loads_with_demo_plugins() {
    let layout = Layout::new(SHIPPED).with_demo_plugins();
    let config = Config::load_with(&layout.config_path(), &options(&[])).unwrap();

    let config_dir = std::path::absolute(layout.root.join("config")).unwrap();
    assert_eq!(config.config_dir, config_dir);
    assert_eq!(
        config.sip.listen_udp,
        "127.0.0.1:5060".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.sip.listen_tcp,
        Some("127.0.0.1:5060".parse().unwrap())
    );
    assert_eq!(config.sip.listen_tls, None);
    assert_eq!(config.sip.public_address, "127.0.0.1");
    assert_eq!(config.media.bind_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(
        config.media.public_ip,
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        config.media.rtp_ports,
        PortRange {
            start: 20000,
            end: 20999
        }
    );
    assert_eq!(config.media.rtp_ports.pairs(), 500);
    assert_eq!(config.media.codecs, [Codec::Pcmu, Codec::Pcma]);
    assert_eq!(
        config.http.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.http.operator_key, "dev-operator-key");
    assert_eq!(
        config.store.url,
        format!("sqlite://{}", config_dir.join("../data/vaani.db").display())
    );

    assert_eq!(config.trunks.len(), 1);
    let local = config.trunk("local").unwrap();
    assert!(local.allows("127.0.0.1".parse().unwrap()));
    assert!(local.allows("::1".parse().unwrap()));
    assert!(!local.allows("10.1.2.3".parse().unwrap()));

    let ids: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["clinic", "echo", "restaurant"]);
    let clinic = config.tenant_for_number("+918000000001").unwrap();
    assert_eq!(clinic.id, "clinic");
    assert_eq!(clinic.name, "Sunny Clinic");
    assert_eq!(clinic.trunk, "local");
    assert_eq!(
        clinic.plugin,
        Some(config_dir.join("../plugins/dist/clinic.wasm"))
    );
    assert!(clinic.plugin.as_ref().unwrap().is_file());
    assert_eq!(clinic.plugin_config["clinic_name"], "Sunny Clinic");
    let echo = config.tenant_for_number("+918000000099").unwrap();
    assert_eq!(echo.id, "echo");
    assert_eq!(echo.name, "Echo line");
    assert_eq!(echo.fallback_text, DEFAULT_FALLBACK_TEXT);
    assert_eq!(echo.sandbox, config.sandbox.limits());
    let restaurant = config.tenant_for_number("+918000000002").unwrap();
    assert_eq!(restaurant.id, "restaurant");
    assert_eq!(restaurant.plugin_config["restaurant_name"], "Spice Garden");
    assert!(
        restaurant.plugin_config["menu"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(config.tenant_for_number("+918000000003"), None);
}

#[test]
fn shipped_config_in_repository_is_valid_without_file_checks() {
    // The running checkout (cargo sets this at run time), not the one the test was built in.
    let manifest_dir = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    );
    let path = manifest_dir.join("vaani.toml");
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    let config = Config::load_with(&path, &opts).unwrap();
    assert_eq!(config.tenants.len(), 3);
    let repo_data = manifest_dir.join("../data/vaani.db");
    assert_eq!(
        config.store.url,
        format!("sqlite://{}", repo_data.display())
    );
}

#[test]
fn missing_plugin_files_are_reported() {
    let layout = Layout::new(SHIPPED);
    let errors = Config::load_with(&layout.config_path(), &options(&[])).unwrap_err();
    let keys: Vec<String> = errors.errors().iter().map(ConfigError::key).collect();
    assert_eq!(
        keys,
        [
            "tenants[0].plugin",
            "tenants[1].plugin",
            "tenants[2].plugin"
        ]
    );
    assert!(matches!(
        errors.errors()[0],
        ConfigError::MissingFile { .. }
    ));
    assert!(
        errors.to_string().contains("plugins/dist/clinic.wasm"),
        "{errors}"
    );
}

#[test]
fn environment_overrides_win() {
    let layout = Layout::new(SHIPPED).with_demo_plugins();
    let env = [
        ("VAANI_HTTP__LISTEN", "127.0.0.1:9000"),
        ("VAANI_SIP__LISTEN_UDP", "0.0.0.0:5070"),
        ("VAANI_SIP__LISTEN_TCP", ""),
        ("VAANI_STORE__URL", "sqlite::memory:"),
        ("VAANI_MEDIA__RTP_PORTS", "30000-30099"),
        ("VAANI_MEDIA__BARGE_IN", "false"),
        ("VAANI_MEDIA__CODECS", "[PCMA]"),
        ("VAANI_HTTP__OPERATOR_KEY", "12345"),
        ("VAANI_SANDBOX__MEMORY_MIB", "16"),
        // Not overrides: no section separator, or another prefix.
        ("VAANI_LOG", "debug"),
        ("OTHER_HTTP__LISTEN", "1.2.3.4:1"),
    ];
    let config = Config::load_with(&layout.config_path(), &options(&env)).unwrap();
    assert_eq!(
        config.http.listen,
        "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.sip.listen_udp,
        "0.0.0.0:5070".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.sip.listen_tcp, None, "empty string disables TCP");
    assert_eq!(config.store.url, "sqlite::memory:");
    assert_eq!(
        config.media.rtp_ports,
        PortRange {
            start: 30000,
            end: 30099
        }
    );
    assert!(!config.media.barge_in);
    assert_eq!(config.media.codecs, [Codec::Pcma]);
    assert_eq!(
        config.http.operator_key, "12345",
        "a numeric value is still a string key"
    );
    assert_eq!(config.sandbox.memory_mib, 16);
    assert_eq!(
        config.tenants[0].sandbox.memory_mib, 16,
        "tenants inherit the override"
    );
    // Untouched keys keep the file's values.
    assert_eq!(config.media.bind_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn environment_override_errors_name_the_key() {
    let layout = Layout::new(SHIPPED).with_demo_plugins();
    let env = [
        ("VAANI_HTTP__LISTN", "127.0.0.1:9000"),
        ("VAANI_MEDIA__RTP_PORTS", "[20001, 20999]"),
        ("VAANI_HTTP__OPERATOR_KEY", ""),
    ];
    let errors = Config::load_with(&layout.config_path(), &options(&env)).unwrap_err();
    let lines = error_lines(&errors);
    assert_has_prefix(&lines, "http.listn: unknown key");
    assert_has(
        &lines,
        "media.rtp_ports: start must be even and below end (got 20001-20999)",
    );
    // The shape error in [http] suppresses that section's follow-on checks
    // (the empty operator key is reported once [http] parses).
    assert_eq!(errors.len(), 2, "{errors}");

    let env = [
        ("VAANI_MEDIA__RTP_PORTS", "[20001, 20999]"),
        ("VAANI_HTTP__OPERATOR_KEY", ""),
    ];
    let errors = Config::load_with(&layout.config_path(), &options(&env)).unwrap_err();
    let lines = error_lines(&errors);
    assert_has(
        &lines,
        "media.rtp_ports: start must be even and below end (got 20001-20999)",
    );
    assert_has(&lines, "http.operator_key: must not be empty");
    assert_eq!(errors.len(), 2);
}

#[test]
fn defaults_fill_everything_but_the_operator_key() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(
        config.sip.listen_udp,
        "0.0.0.0:5060".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.sip.listen_tcp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(config.sip.listen_tls, None);
    assert_eq!(config.sip.public_address, "127.0.0.1");
    assert!(config.sip.user_agent.starts_with("vaani/"));
    assert_eq!(config.sip.t1_ms, 500);
    assert_eq!(config.sip.shutdown_grace_secs, 30);
    assert_eq!(
        config.store.node_id, None,
        "default: the host name, resolved at start"
    );
    assert_eq!(
        config.media.rtp_ports,
        PortRange {
            start: 20000,
            end: 20999
        }
    );
    assert_eq!(config.media.shards, 0);
    assert!(config.media.effective_shards() >= 1);
    assert_eq!(config.media.rtp_timeout_secs, 30);
    assert_eq!(config.media.codecs, [Codec::Pcmu, Codec::Pcma]);
    assert!(config.media.barge_in);
    assert_eq!(config.media.barge_in_min_speech_ms, 200);
    assert_eq!(config.vad.threshold_on, 0.8);
    assert_eq!(config.vad.threshold_off, 0.5);
    assert_eq!(config.vad.min_speech_ms, 100);
    assert_eq!(config.vad.hangover_ms, 500);
    assert_eq!(
        config.http.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.store.url, "sqlite:///etc/vaani/data/vaani.db");
    assert_eq!(config.speech.tts_engine, "espeak-ng");
    assert_eq!(config.speech.espeak_path, "espeak-ng");
    assert_eq!(config.speech.default_voice, "en");
    assert_eq!(config.speech.rate_wpm, 160);
    let s = config.sandbox;
    assert_eq!(
        (
            s.max_instances,
            s.memory_mib,
            s.event_budget_ms,
            s.lifecycle_budget_ms
        ),
        (1000, 32, 50, 200)
    );
    assert_eq!(
        (
            s.fuel_per_event,
            s.hostcall_fuel_kib,
            s.max_says_per_call,
            s.max_timers
        ),
        (100_000_000, 128, 200, 16)
    );
    assert_eq!(
        (
            s.compile_cpu_secs,
            s.compile_memory_mib,
            s.compile_timeout_secs
        ),
        (30, 1024, 60)
    );
    assert!(config.trunks.is_empty());
    assert!(config.tenants.is_empty());

    let errors = parse("").unwrap_err();
    assert_eq!(
        error_lines(&errors),
        ["http.operator_key: must not be empty"]
    );
}

/// One config with (at least) one of each semantic error kind.
const MANY_ERRORS: &str = r#"
[sip]
listen_udp = "127.0.0.1"
listen_tls = "127.0.0.1:5061"
public_address = "pbx.example.com:5060"
t1_ms = 0
shutdown_grace_secs = 7200

[media]
bind_ip = "localhost"
rtp_ports = "20001-20999"
codecs = ["PCMU", "GSM", "pcmu"]

[vad]
threshold_on = 0.4
threshold_off = 0.6

[http]
operator_key = "  "

[store]
url = "mysql://db/vaani"
node_id = "node 1"

[speech]
rate_wpm = 10

[[trunks]]
id = "local"
allowed_cidrs = ["127.0.0.0/8", "::1/128", "10.0.0/8"]

[[trunks]]
id = "local"
allowed_cidrs = ["192.168.1.7"]

[[tenants]]
id = "clinic"
numbers = ["+918000000001"]
trunk = "local"
plugin = "plugins/missing.wasm"

[tenants.sandbox]
memory_mib = 64
max_timers = 4

[[tenants]]
id = "clinic"
numbers = ["12345", "+918000000001"]
trunk = "twilio"

[[tenants]]
id = "bad id"
trunk = "local"
silence_timeout_ms = 10
"#;

#[test]
fn every_error_is_reported_with_its_path() {
    let dir = std::env::temp_dir();
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: true,
    };
    let errors = Config::from_toml_str(MANY_ERRORS, "many.toml", &dir, &opts).unwrap_err();
    let lines = error_lines(&errors);
    let expected = [
        "sip.listen_udp: invalid socket address \"127.0.0.1\" (expected IP:PORT, e.g. 127.0.0.1:5060)",
        "sip.tls_cert: required when sip.listen_tls is set",
        "sip.tls_key: required when sip.listen_tls is set",
        "sip.public_address: invalid host \"pbx.example.com:5060\" (write the host only, without a port)",
        "sip.t1_ms: 0 is out of range (expected 10..=10000)",
        "sip.shutdown_grace_secs: 7200 is out of range (expected 0..=3600)",
        "media.bind_ip: invalid IP address \"localhost\"",
        "media.rtp_ports: start must be even and below end (got 20001-20999)",
        "media.codecs[1]: unknown codec \"GSM\" (supported: PCMU, PCMA, G722, opus)",
        "media.codecs[2]: codec PCMU is listed twice",
        "vad.threshold_off: 0.6 must not exceed vad.threshold_on (0.4)",
        "http.operator_key: must not be empty",
        "store.url: unsupported store URL \"mysql://db/vaani\" (expected sqlite://PATH, sqlite::memory: or postgres://…)",
        "store.node_id: invalid id \"node 1\" (use ASCII letters, digits, '-' and '_')",
        "speech.rate_wpm: 10 is out of range (expected 80..=450)",
        "trunks[0].allowed_cidrs[2]: invalid CIDR \"10.0.0/8\" (expected e.g. 10.0.0.0/8 or ::1/128)",
        "trunks[1].id: id \"local\" is already used by trunks[0].id",
        "tenants[0].sandbox.memory_mib: 64 exceeds the server limit 32 (tenant sandbox overrides may only lower limits)",
        "tenants[1].id: id \"clinic\" is already used by tenants[0].id",
        "tenants[1].numbers[0]: \"12345\" is not an E.164 number (+ and 8–15 digits)",
        "tenants[1].trunk: unknown trunk \"twilio\" (defined [[trunks]] ids: local, local)",
        "tenants[1].numbers[1]: number +918000000001 is already assigned at tenants[0].numbers[0]",
        "tenants[2].id: invalid id \"bad id\" (use ASCII letters, digits, '-' and '_')",
        "tenants[2].silence_timeout_ms: 10 is out of range (expected 500..=600000)",
    ];
    for line in expected {
        assert_has(&lines, line);
    }
    let plugin = dir.join("plugins/missing.wasm");
    assert_has(
        &lines,
        &format!("tenants[0].plugin: file not found: {}", plugin.display()),
    );
    assert_eq!(
        lines.len(),
        expected.len() + 1,
        "no unexpected errors:\n{}",
        lines.join("\n")
    );
    // Display is one error per line, in the order found.
    assert_eq!(errors.to_string().lines().count(), errors.len());
    assert_eq!(errors.to_string(), lines.join("\n"));
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    let text = r#"
[sipp]
listen_udp = "127.0.0.1:5060"

[sip]
listen = "127.0.0.1:5060"

[http]
operator_key = "k"

[[tenants]]
id = "clinic"
trunk = "local"
plugn = "clinic.wasm"

[[tenants]]
id = "echo"
trunk = "local"

[tenants.sandbox]
max_instances = 5
"#;
    let errors = parse(text).unwrap_err();
    let keys: Vec<String> = errors.errors().iter().map(ConfigError::key).collect();
    for key in [
        "sipp",
        "sip.listen",
        "tenants[0].plugn",
        "tenants[1].sandbox.max_instances",
    ] {
        assert!(
            keys.iter().any(|k| k == key),
            "no error for {key} in {keys:?}"
        );
    }
    assert!(
        errors
            .errors()
            .iter()
            .all(|e| matches!(e, ConfigError::UnknownKey { .. })),
        "{errors}"
    );
    // The per-tenant failure does not produce an "unknown trunk" cascade.
    assert_eq!(errors.len(), 4, "{errors}");
    assert!(errors.to_string().contains("expected one of"), "{errors}");
}

#[test]
fn wrong_types_are_reported_beside_other_errors() {
    let text = r#"
[sip]
t1_ms = "fast"

[media]
barge_in = "yes please"

[vad]
threshold_on = 2.0

[[trunks]]
id = "local"
allowed_cidrs = "127.0.0.0/8"
"#;
    let errors = parse(text).unwrap_err();
    let lines = error_lines(&errors);
    assert_has_prefix(&lines, "sip.t1_ms: ");
    assert_has_prefix(&lines, "media.barge_in: ");
    assert_has_prefix(&lines, "trunks[0].allowed_cidrs: ");
    assert_has(
        &lines,
        "vad.threshold_on: 2 is out of range (expected 0..=1)",
    );
    assert_has(&lines, "http.operator_key: must not be empty");
    assert_eq!(lines.len(), 5, "{}", lines.join("\n"));

    let errors = parse("tenants = 5\n[http]\noperator_key = \"k\"\n").unwrap_err();
    assert_eq!(
        error_lines(&errors),
        ["tenants: expected an array of tables ([[tenants]])"]
    );
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let errors = parse("[http]\noperator_key = \"k\"\nlisten = \n").unwrap_err();
    assert_eq!(errors.len(), 1);
    match &errors.errors()[0] {
        ConfigError::Toml {
            origin,
            line,
            column,
            ..
        } => {
            assert_eq!(origin, "test.toml");
            assert_eq!(*line, 3);
            assert!(*column > 1);
        }
        other => panic!("expected a TOML error, got {other}"),
    }
    assert!(errors.to_string().starts_with("test.toml:3:"), "{errors}");
}

#[test]
fn unreadable_file_is_reported() {
    let path = std::env::temp_dir().join("vaani-config-test-does-not-exist.toml");
    let errors = Config::load_with(&path, &options(&[])).unwrap_err();
    assert!(
        matches!(errors.errors(), [ConfigError::Read { .. }]),
        "{errors}"
    );
    assert!(errors.to_string().contains("cannot read config file"));
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = r#"
[sip]
listen_tls = "127.0.0.1:5061"
tls_cert = "tls/cert.pem"
tls_key = "/etc/ssl/private/vaani.key"

[http]
operator_key = "k"

[store]
url = "sqlite:db/vaani.db?mode=rwc"

[[trunks]]
id = "t"

[[tenants]]
id = "a"
trunk = "t"
plugin = "plugins/a.wasm"

[[tenants]]
id = "b"
trunk = "t"
plugin = "/opt/plugins/b.wasm"
"#;
    let config = parse(text).unwrap();
    assert_eq!(config.store.url, "sqlite:///etc/vaani/db/vaani.db?mode=rwc");
    assert_eq!(
        config.sip.tls_cert,
        Some(PathBuf::from("/etc/vaani/tls/cert.pem"))
    );
    assert_eq!(
        config.sip.tls_key,
        Some(PathBuf::from("/etc/ssl/private/vaani.key"))
    );
    assert_eq!(
        config.tenants[0].plugin,
        Some(PathBuf::from("/etc/vaani/plugins/a.wasm"))
    );
    assert_eq!(
        config.tenants[1].plugin,
        Some(PathBuf::from("/opt/plugins/b.wasm"))
    );
    assert_eq!(config.trunks[0].name, "t", "name defaults to the id");
    assert!(config.trunks[0].allowed_cidrs.is_empty());

    let absolute =
        parse("[http]\noperator_key = \"k\"\n[store]\nurl = \"sqlite:///var/lib/vaani.db\"\n")
            .unwrap();
    assert_eq!(absolute.store.url, "sqlite:///var/lib/vaani.db");
    let pg = parse("[http]\noperator_key = \"k\"\n[store]\nurl = \"postgres://vaani@db/vaani\"\n")
        .unwrap();
    assert_eq!(pg.store.url, "postgres://vaani@db/vaani");
}

#[test]
fn redacted_output_hides_the_operator_key_and_parses_back() {
    let layout = Layout::new(SHIPPED).with_demo_plugins();
    let config = Config::load_with(&layout.config_path(), &options(&[])).unwrap();

    let shown = config.to_redacted_toml();
    assert!(!shown.contains("dev-operator-key"), "{shown}");
    assert!(shown.contains("operator_key = \"<redacted>\""), "{shown}");
    let debug = format!("{config:?}");
    assert!(!debug.contains("dev-operator-key"));
    assert!(debug.contains("<redacted>"));

    // The rendering is a complete config: parsed back it gives the same values.
    let reparsed =
        Config::from_toml_str(&shown, "redacted", &config.config_dir, &options(&[])).unwrap();
    let mut expected = config.clone();
    expected.http.operator_key = "<redacted>".to_owned();
    assert_eq!(reparsed, expected);
}

#[test]
fn port_range_accepts_array_form() {
    let config =
        parse("[http]\noperator_key = \"k\"\n[media]\nrtp_ports = [30000, 30003]\n").unwrap();
    assert_eq!(
        config.media.rtp_ports,
        PortRange {
            start: 30000,
            end: 30003
        }
    );
    assert_eq!(config.media.rtp_ports.pairs(), 2);
    assert!(config.media.rtp_ports.contains(30003));
    assert!(!config.media.rtp_ports.contains(30004));

    for bad in [
        "\"30000\"",
        "[30000]",
        "\"a-b\"",
        "[0, 10]",
        "\"70000-70010\"",
        "7",
    ] {
        let text = format!("[http]\noperator_key = \"k\"\n[media]\nrtp_ports = {bad}\n");
        let errors = parse(&text).unwrap_err();
        assert!(
            matches!(errors.errors(), [ConfigError::InvalidPortRange { key, .. }] if key == "media.rtp_ports"),
            "{bad}: {errors}"
        );
    }
    let errors =
        parse("[http]\noperator_key = \"k\"\n[media]\nrtp_ports = \"20000-20000\"\n").unwrap_err();
    assert_eq!(
        error_lines(&errors),
        ["media.rtp_ports: start must be even and below end (got 20000-20000)"]
    );
}

#[test]
fn tenant_sandbox_overrides_lower_limits() {
    let text = r#"
[http]
operator_key = "k"

[[trunks]]
id = "t"
allowed_cidrs = ["10.0.0.1", "::ffff:0:0/96"]
codecs = ["pcma"]

[[tenants]]
id = "a"
trunk = "t"
plugin_config = { greeting = "hi", retries = 3, nested = { on = true } }

[tenants.sandbox]
memory_mib = 8
fuel_per_event = 1000
"#;
    let config = parse(text).unwrap();
    let limits = config.tenants[0].sandbox;
    assert_eq!(limits.memory_mib, 8);
    assert_eq!(limits.fuel_per_event, 1000);
    assert_eq!(limits.event_budget_ms, config.sandbox.event_budget_ms);
    assert_eq!(
        serde_json::Value::Object(config.tenants[0].plugin_config.clone()),
        serde_json::json!({"greeting": "hi", "retries": 3, "nested": {"on": true}})
    );
    let trunk = &config.trunks[0];
    assert_eq!(trunk.codecs, Some(vec![Codec::Pcma]));
    assert!(
        trunk.allows("10.0.0.1".parse().unwrap()),
        "a bare address is one host"
    );
    assert!(!trunk.allows("10.0.0.2".parse().unwrap()));
    // An IPv4-mapped IPv6 peer is matched as IPv4.
    assert!(trunk.allows("::ffff:10.0.0.1".parse().unwrap()));

    let zero = text.replace("memory_mib = 8", "memory_mib = 0");
    let errors = parse(&zero).unwrap_err();
    assert_eq!(
        error_lines(&errors),
        ["tenants[0].sandbox.memory_mib: 0 is out of range (expected 1..=32)"]
    );
}

#[test]
fn codecs_parse_case_insensitively() {
    assert_eq!("pcmu".parse::<Codec>().unwrap(), Codec::Pcmu);
    assert_eq!("OPUS".parse::<Codec>().unwrap(), Codec::Opus);
    assert_eq!("g722".parse::<Codec>().unwrap(), Codec::G722);
    assert!("GSM".parse::<Codec>().is_err());
    assert_eq!(Codec::Opus.to_string(), "opus");
}

#[test]
fn e164_rule() {
    for good in [
        "+918000000001",
        "+14155550100",
        "+12345678",
        "+123456789012345",
    ] {
        assert!(is_e164(good), "{good}");
    }
    for bad in [
        "918000000001",
        "+1234567",
        "+1234567890123456",
        "+0918000000",
        "+91 80000",
        "+91800000000a",
        "",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}

#[test]
fn speech_to_text_engine_and_model_are_checked() {
    let config = parse(MINIMAL).expect("minimal config");
    assert_eq!(config.speech.stt_engine, "none");
    assert_eq!(config.speech.stt_model, None);

    let config = parse(&format!(
        "{MINIMAL}\n[speech]\nstt_engine = \"whisper\"\nstt_model = \"models/ggml-tiny.en.bin\"\n"
    ))
    .expect("whisper config");
    assert_eq!(
        config.speech.stt_model.as_deref(),
        Some(Path::new("/etc/vaani/models/ggml-tiny.en.bin"))
    );

    let errors = parse(&format!("{MINIMAL}\n[speech]\nstt_engine = \"whisper\"\n"))
        .expect_err("whisper without a model");
    assert_has_prefix(&error_lines(&errors), "speech.stt_model:");
    let errors = parse(&format!("{MINIMAL}\n[speech]\nstt_engine = \"vosk\"\n"))
        .expect_err("unknown engine");
    assert_has_prefix(&error_lines(&errors), "speech.stt_engine:");
}

#[test]
fn maximum_call_duration_needs_a_shorter_warning() {
    let tenant = |extra: &str| {
        format!(
            "{MINIMAL}\n[[trunks]]\nid = \"t\"\nallowed_cidrs = [\"127.0.0.1\"]\n\n[[tenants]]\nid = \"a\"\nnumbers = [\"+918000000001\"]\ntrunk = \"t\"\n{extra}\n"
        )
    };
    let config = parse(&tenant("max_call_duration_secs = 600")).expect("valid");
    assert_eq!(config.tenants[0].max_call_duration_secs, Some(600));
    assert_eq!(config.tenants[0].duration_warning_secs, 30);
    let errors = parse(&tenant(
        "max_call_duration_secs = 20\nduration_warning_secs = 20",
    ))
    .expect_err("warning not before the end");
    assert_has_prefix(&error_lines(&errors), "tenants[0].duration_warning_secs:");
}

#[test]
fn turn_taking_silences_default_and_are_checked() {
    let tenant = |extra: &str| {
        format!(
            "{MINIMAL}\n[[trunks]]\nid = \"t\"\nallowed_cidrs = [\"127.0.0.1\"]\n\n[[tenants]]\nid = \"a\"\nnumbers = [\"+918000000001\"]\ntrunk = \"t\"\n{extra}\n"
        )
    };
    let config = parse(&tenant("")).expect("valid");
    let turns = &config.tenants[0].turns;
    assert_eq!(
        (
            turns.end_of_turn_ms,
            turns.after_sentence_ms,
            turns.expecting_number_ms
        ),
        (600, 300, 1500)
    );
    let config = parse(&tenant(
        "[tenants.turns]\nend_of_turn_ms = 800\nexpecting_number_ms = 2500",
    ))
    .expect("valid");
    assert_eq!(config.tenants[0].turns.end_of_turn_ms, 800);
    assert_eq!(config.tenants[0].turns.expecting_number_ms, 2500);
    assert_eq!(config.tenants[0].turns.after_sentence_ms, 300);
    let errors = parse(&tenant(
        "[tenants.turns]\nend_of_turn_ms = 20\nexpecting_number_ms = 60000\nguess = 1",
    ))
    .expect_err("out of range and unknown key");
    let lines = error_lines(&errors);
    assert_has_prefix(&lines, "tenants[0].turns");
    assert!(
        lines.iter().any(|l| l.contains("end_of_turn_ms"))
            && lines
                .iter()
                .any(|l| l.contains("expecting_number_ms") || l.contains("guess")),
        "{lines:?}"
    );
}

#[test]
fn plugin_compile_limits_are_checked() {
    let text = format!(
        "{MINIMAL}\n[sandbox]\ncompile_cpu_secs = 2\ncompile_memory_mib = 256\ncompile_timeout_secs = 5\n"
    );
    let sandbox = parse(&text).expect("compile limits in range").sandbox;
    assert_eq!(
        (
            sandbox.compile_cpu_secs,
            sandbox.compile_memory_mib,
            sandbox.compile_timeout_secs
        ),
        (2, 256, 5)
    );

    let text = format!(
        "{MINIMAL}\n[sandbox]\ncompile_cpu_secs = 0\ncompile_memory_mib = 10\ncompile_timeout_secs = 7200\n"
    );
    let errors = parse(&text).unwrap_err();
    assert_eq!(
        error_lines(&errors),
        [
            "sandbox.compile_cpu_secs: 0 is out of range (expected 1..=3600)",
            "sandbox.compile_memory_mib: 10 is out of range (expected 64..=65536)",
            "sandbox.compile_timeout_secs: 7200 is out of range (expected 1..=3600)",
        ]
    );
}

#[test]
fn store_node_id_is_an_id_of_at_most_64_characters() {
    let with = |value: &str| format!("{MINIMAL}\n[store]\nnode_id = \"{value}\"\n");
    let config = parse(&with("node-1_a")).expect("valid node id");
    assert_eq!(config.store.node_id.as_deref(), Some("node-1_a"));
    // Empty means the default (the host name), as when the key is absent.
    assert_eq!(parse(&with("")).expect("empty").store.node_id, None);
    let long = "n".repeat(65);
    let lines = error_lines(&parse(&with(&long)).expect_err("too long"));
    assert_eq!(lines, ["store.node_id: at most 64 characters"]);
    let lines = error_lines(&parse(&with("node.example")).expect_err("a dot"));
    assert_has_prefix(&lines, "store.node_id: invalid id");
}

#[test]
fn webhook_delivery_settings_are_checked() {
    let config = parse(MINIMAL).expect("defaults");
    assert_eq!(config.webhooks, vaani_config::WebhooksConfig::default());
    assert!(!config.webhooks.allow_private && !config.webhooks.allow_plain_http);
    let text = format!(
        "{MINIMAL}\n[webhooks]\nmax_attempts = 3\ninitial_backoff_ms = 100\nallow_private = true\n"
    );
    let webhooks = parse(&text).expect("valid").webhooks;
    assert_eq!(
        (
            webhooks.max_attempts,
            webhooks.initial_backoff_ms,
            webhooks.allow_private
        ),
        (3, 100, true)
    );
    let text = format!("{MINIMAL}\n[webhooks]\nmax_attempts = 0\ntimeout_ms = 5\n");
    assert_eq!(
        error_lines(&parse(&text).unwrap_err()),
        [
            "webhooks.max_attempts: 0 is out of range (expected 1..=100)",
            "webhooks.timeout_ms: 5 is out of range (expected 100..=60000)",
        ]
    );
    let text = format!("{MINIMAL}\n[webhooks]\nretries = 2\n");
    let lines = error_lines(&parse(&text).unwrap_err());
    assert!(
        lines[0].starts_with("webhooks.retries: unknown key"),
        "{lines:?}"
    );
}

#[test]
fn the_store_password_never_shows() {
    let text = format!("{MINIMAL}\n[store]\nurl = \"postgres://vaani:hunter2@db/vaani\"\n");
    let config = parse(&text).expect("a PostgreSQL URL");
    assert_eq!(config.store.url, "postgres://vaani:hunter2@db/vaani");
    let shown = config.to_redacted_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://vaani:***@db/vaani"), "{shown}");

    let text = format!("{MINIMAL}\n[store]\nurl = \"mysql://root:hunter2@db/vaani\"\n");
    let lines = error_lines(&parse(&text).unwrap_err());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("store.url: unsupported store URL"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("hunter2"), "{lines:?}");
}
