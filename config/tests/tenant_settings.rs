//! A database tenant's settings JSON (`tenants.settings_json`), checked by the same rules as
//! the config file's `[[tenants]]`.

use std::path::Path;

use serde_json::json;
use vaani_config::{
    Config, DEFAULT_FALLBACK_TEXT, LoadOptions, SandboxLimits, TenantConfig, TenantIdentity,
    check_tenant_settings,
};

/// The config file the comparisons read: one tenant `a` on trunk `t` with `extra` in its table.
fn config_with_tenant(extra: &str) -> Config {
    let text = format!(
        "[http]\noperator_key = \"k\"\n\n[[trunks]]\nid = \"t\"\nallowed_cidrs = [\"127.0.0.1\"]\n\n\
         [[tenants]]\nid = \"a\"\nname = \"A\"\nnumbers = [\"+918000000001\"]\ntrunk = \"t\"\n{extra}\n"
    );
    let options = LoadOptions {
        env: Vec::new(),
        check_files: false,
    };
    Config::from_toml_str(&text, "test.toml", Path::new("/etc/vaani"), &options)
        .unwrap_or_else(|errors| panic!("{errors}"))
}

fn identity() -> TenantIdentity {
    TenantIdentity {
        id: "a".to_owned(),
        name: "A".to_owned(),
        trunk: "t".to_owned(),
        numbers: vec!["+918000000001".to_owned()],
    }
}

fn server_limits() -> SandboxLimits {
    config_with_tenant("").sandbox.limits()
}

fn errors_of(settings: serde_json::Value) -> Vec<String> {
    TenantConfig::from_settings_json(identity(), &settings, &server_limits())
        .expect_err("the settings are invalid")
}

#[test]
fn empty_settings_are_a_tenant_with_every_default() {
    let tenant = TenantConfig::from_settings_json(identity(), &json!({}), &server_limits())
        .expect("{} is valid");
    assert_eq!(tenant, config_with_tenant("").tenants[0]);
    assert_eq!(tenant.fallback_text, DEFAULT_FALLBACK_TEXT);
    assert_eq!(tenant.duration_warning_secs, 30);
    assert_eq!(tenant.plugin, None);
    assert_eq!(tenant.numbers, vec!["+918000000001"]);
    assert_eq!(tenant.sandbox, server_limits());
}

#[test]
fn settings_read_like_the_config_files_tenant_tables() {
    let settings = json!({
        "fallback_text": " Please call later. ",
        "ring_ms": 2000,
        "silence_timeout_ms": 8000,
        "max_call_duration_secs": 600,
        "plugin_config": { "clinic_name": "Sunny", "slots": [1, 2] },
        "turns": { "end_of_turn_ms": 900 },
        "sandbox": { "memory_mib": 16 },
        "llm": { "base_url": "http://127.0.0.1:8080/v1", "model": "m", "max_tokens": 64 },
        "http": { "allow": ["api.example.com"] },
        "transfer_targets": { "frontdesk": "sip:+918000000009@trunk.example" },
        "recording": { "enabled": true, "retention_days": 7 }
    });
    let from_json = TenantConfig::from_settings_json(identity(), &settings, &server_limits())
        .unwrap_or_else(|errors| panic!("{errors:?}"));
    let from_toml = config_with_tenant(
        "fallback_text = \" Please call later. \"\nring_ms = 2000\nsilence_timeout_ms = 8000\n\
         max_call_duration_secs = 600\n\
         plugin_config = { clinic_name = \"Sunny\", slots = [1, 2] }\n\
         transfer_targets = { frontdesk = \"sip:+918000000009@trunk.example\" }\n\
         [tenants.turns]\nend_of_turn_ms = 900\n[tenants.sandbox]\nmemory_mib = 16\n\
         [tenants.llm]\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"m\"\nmax_tokens = 64\n\
         [tenants.http]\nallow = [\"api.example.com\"]\n\
         [tenants.recording]\nenabled = true\nretention_days = 7\n",
    )
    .tenants
    .remove(0);
    assert_eq!(from_json, from_toml);
    assert_eq!(from_json.fallback_text, "Please call later.");
    assert_eq!(from_json.ring_ms, 2000);
    assert_eq!(from_json.sandbox.memory_mib, 16);
    assert!(from_json.recording.enabled);
}

#[test]
fn every_problem_is_listed_with_its_key_path() {
    let errors = errors_of(json!({
        "ring_ms": 70000,
        "fallback_text": "  ",
        "max_call_duration_secs": 20,
        "duration_warning_secs": 30,
        "transfer_targets": { "desk": "http://not-sip" }
    }));
    let joined = errors.join("\n");
    for key in [
        "settings.ring_ms",
        "settings.fallback_text",
        "settings.duration_warning_secs",
        "settings.transfer_targets.desk",
    ] {
        assert!(joined.contains(key), "{key} missing from {joined}");
    }
    assert_eq!(errors.len(), 4, "{joined}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let errors = errors_of(json!({ "bogus": 1 }));
    assert!(errors[0].starts_with("settings.bogus"), "{errors:?}");
    // The keys offered are the settings' own.
    assert!(
        errors[0].contains("fallback_text, plugin_config"),
        "{errors:?}"
    );
    assert!(
        !errors[0].contains("trunk") && !errors[0].contains(" id,"),
        "{errors:?}"
    );
    let errors = errors_of(json!({ "ring_ms": "soon" }));
    assert!(errors[0].starts_with("settings.ring_ms"), "{errors:?}");
    let errors = errors_of(json!({ "turns": { "end_of_turn": 5 } }));
    assert!(errors[0].starts_with("settings.turns"), "{errors:?}");
    let errors = errors_of(json!({ "ring_ms": -1 }));
    assert!(errors[0].starts_with("settings.ring_ms"), "{errors:?}");
}

#[test]
fn identity_keys_and_files_are_not_settings() {
    // A plugin path in the settings would let the settings name a file on the server.
    for key in ["id", "name", "numbers", "trunk", "plugin"] {
        let errors = errors_of(json!({ key: "x" }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!("settings.{key}: not a setting")),
            "{errors:?}"
        );
    }
}

#[test]
fn settings_may_only_lower_the_sandbox_limits() {
    let limits = server_limits();
    let errors = errors_of(json!({ "sandbox": { "memory_mib": limits.memory_mib + 1 } }));
    assert!(
        errors[0].starts_with("settings.sandbox.memory_mib"),
        "{errors:?}"
    );
}

#[test]
fn settings_must_be_an_object() {
    for settings in [json!(null), json!([1]), json!("x"), json!(3)] {
        assert_eq!(
            check_tenant_settings(&settings, &server_limits()),
            Err(vec!["settings: must be a JSON object".to_owned()])
        );
    }
    assert_eq!(check_tenant_settings(&json!({}), &server_limits()), Ok(()));
}
