//! `[log] format`: JSON by default, text on request, anything else an error with its path.

use std::path::Path;

use vaani_config::{Config, ConfigErrors, LoadOptions, LogFormat};

const MINIMAL: &str = "[http]\noperator_key = \"k\"\n";

fn parse_with_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
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
    parse_with_env(text, &[])
}

fn lines(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

#[test]
fn log_format_defaults_to_json() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn log_format_text_and_json_are_read_case_insensitively() {
    let config = parse(&format!("{MINIMAL}\n[log]\nformat = \"text\"\n")).unwrap();
    assert_eq!(config.log.format, LogFormat::Text);
    let config = parse(&format!("{MINIMAL}\n[log]\nformat = \" JSON \"\n")).unwrap();
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn log_format_is_overridable_from_the_environment() {
    let config = parse_with_env(MINIMAL, &[("VAANI_LOG__FORMAT", "text")]).unwrap();
    assert_eq!(config.log.format, LogFormat::Text);
    let config = parse_with_env(
        &format!("{MINIMAL}\n[log]\nformat = \"text\"\n"),
        &[("VAANI_LOG__FORMAT", "json")],
    )
    .unwrap();
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn unknown_log_format_is_an_error_with_its_path() {
    let errors = parse(&format!("{MINIMAL}\n[log]\nformat = \"xml\"\n")).unwrap_err();
    assert_eq!(
        lines(&errors),
        ["log.format: \"xml\" is not one of \"json\", \"text\""]
    );
    let errors = parse_with_env(MINIMAL, &[("VAANI_LOG__FORMAT", "pretty")]).unwrap_err();
    assert_eq!(
        lines(&errors),
        ["log.format: \"pretty\" is not one of \"json\", \"text\""]
    );
}

#[test]
fn unknown_log_keys_are_rejected() {
    let errors = parse(&format!("{MINIMAL}\n[log]\nlevel = \"debug\"\n")).unwrap_err();
    let lines = lines(&errors);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("log.level: unknown key (expected one of: format)"),
        "{lines:?}"
    );
}

#[test]
fn redacted_output_shows_the_log_format() {
    let config = parse(&format!("{MINIMAL}\n[log]\nformat = \"text\"\n")).unwrap();
    let shown = config.to_redacted_toml();
    assert!(shown.contains("[log]\nformat = \"text\""), "{shown}");
    let back = parse(&shown).unwrap();
    assert_eq!(back.log, config.log);
}
