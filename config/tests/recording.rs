//! `[tenants.recording]` and `[store] recordings_dir`.

use std::path::{Path, PathBuf};

use vaani_config::{Config, ConfigErrors, LoadOptions, RecordingConfig};

const MINIMAL: &str = "[http]\noperator_key = \"k\"\n";

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let opts = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
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

#[test]
fn recording_is_off_by_default_and_recordings_live_under_data() {
    let config = parse(&tenant("")).unwrap();
    assert_eq!(config.tenants[0].recording, RecordingConfig::default());
    assert!(!config.tenants[0].recording.enabled);
    assert_eq!(config.tenants[0].recording.retention_days, 30);
    assert_eq!(
        config.store.recordings_dir,
        PathBuf::from("/etc/vaani/data/recordings")
    );
}

#[test]
fn recording_all_keys() {
    let config = parse(&format!(
        "{}\n[store]\nrecordings_dir = \"/var/lib/vaani/rec\"\n",
        tenant(
            "[tenants.recording]\nenabled = true\nretention_days = 7\nannouncement = \" This call is recorded. \"\n"
        )
    ))
    .unwrap();
    assert_eq!(
        config.tenants[0].recording,
        RecordingConfig {
            enabled: true,
            retention_days: 7,
            announcement: Some("This call is recorded.".into()),
        }
    );
    assert_eq!(
        config.store.recordings_dir,
        PathBuf::from("/var/lib/vaani/rec")
    );
}

#[test]
fn recording_errors_name_their_keys() {
    let errors = parse(&tenant(
        "[tenants.recording]\nenabled = true\nretention_days = 0\nannouncement = \"  \"\n",
    ))
    .expect_err("should be refused");
    let found = lines(&errors);
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("tenants[0].recording.retention_days")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("tenants[0].recording.announcement")),
        "{found:?}"
    );
    let errors = parse(&tenant("[tenants.recording]\nenable = true\n")).expect_err("unknown key");
    assert!(
        lines(&errors)
            .iter()
            .any(|l| l.contains("tenants[0].recording")),
        "{:?}",
        lines(&errors)
    );
}
