//! Protection settings: `[sip]` per-number and per-source call rates, `[http]` per-key API
//! rate, and a tenant's own per-number rate and concurrent-call limit.

use std::path::Path;

use vaani_config::{Config, ConfigErrors, LoadOptions};

const MINIMAL: &str = "[http]\noperator_key = \"k\"\n";

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let opts = LoadOptions {
        env: Default::default(),
        check_files: false,
    };
    Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
}

fn with_tenant(extra: &str) -> String {
    format!(
        "{MINIMAL}\n[[trunks]]\nid = \"t\"\nallowed_cidrs = [\"127.0.0.1\"]\n\n[[tenants]]\nid = \"a\"\nnumbers = [\"+918000000001\"]\ntrunk = \"t\"\n{extra}\n"
    )
}

fn lines(errors: &ConfigErrors) -> Vec<String> {
    errors.errors().iter().map(|e| e.to_string()).collect()
}

#[test]
fn defaults_limit_numbers_sources_and_keys_but_not_tenants() {
    let config = parse(&with_tenant("")).unwrap();
    assert_eq!(config.sip.max_calls_per_minute_per_number, 10);
    assert_eq!(config.sip.max_invites_per_second_per_source, 100);
    assert_eq!(config.http.requests_per_second_per_key, 20);
    assert_eq!(config.http.request_burst_per_key, 40);
    assert_eq!(config.tenants[0].max_calls_per_minute_per_number, None);
    assert_eq!(config.tenants[0].max_concurrent_calls, None);
}

#[test]
fn limits_are_read_and_round_trip_through_the_redacted_toml() {
    let text = format!(
        "{}\n[sip]\nmax_calls_per_minute_per_number = 0\nmax_invites_per_second_per_source = 5\n",
        with_tenant("max_calls_per_minute_per_number = 3\nmax_concurrent_calls = 2")
    )
    .replace(
        "operator_key = \"k\"\n",
        "operator_key = \"k\"\nrequests_per_second_per_key = 1\nrequest_burst_per_key = 2\n",
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.sip.max_calls_per_minute_per_number, 0);
    assert_eq!(config.sip.max_invites_per_second_per_source, 5);
    assert_eq!(config.http.requests_per_second_per_key, 1);
    assert_eq!(config.http.request_burst_per_key, 2);
    assert_eq!(config.tenants[0].max_calls_per_minute_per_number, Some(3));
    assert_eq!(config.tenants[0].max_concurrent_calls, Some(2));
    let back = parse(&config.to_redacted_toml().replace("<redacted>", "k")).unwrap();
    assert_eq!(back.sip, config.sip);
    assert_eq!(back.tenants, config.tenants);
    assert_eq!(
        back.http.requests_per_second_per_key,
        config.http.requests_per_second_per_key
    );
}

#[test]
fn out_of_range_limits_are_errors_with_their_paths() {
    let errors = parse(&with_tenant("max_concurrent_calls = 0")).unwrap_err();
    assert_eq!(lines(&errors).len(), 1, "{:?}", lines(&errors));
    assert!(
        lines(&errors)[0].starts_with("tenants[0].max_concurrent_calls"),
        "{:?}",
        lines(&errors)
    );

    let errors = parse(&format!(
        "{MINIMAL}\n[sip]\nmax_invites_per_second_per_source = 2000000\n"
    ))
    .unwrap_err();
    assert!(
        lines(&errors)[0].starts_with("sip.max_invites_per_second_per_source"),
        "{:?}",
        lines(&errors)
    );

    // A burst below the rate would refuse a key's steady rate.
    let errors = parse(
        "[http]\noperator_key = \"k\"\nrequests_per_second_per_key = 10\nrequest_burst_per_key = 5\n",
    )
    .unwrap_err();
    assert!(
        lines(&errors)[0].starts_with("http.request_burst_per_key"),
        "{:?}",
        lines(&errors)
    );
}

#[test]
fn a_negative_or_unknown_limit_key_is_rejected() {
    let errors = parse(&with_tenant("max_concurrent_calls = -1")).unwrap_err();
    assert!(!lines(&errors).is_empty());
    let errors = parse(&with_tenant("max_calls_per_minute = 5")).unwrap_err();
    assert!(
        lines(&errors)[0].contains("unknown key"),
        "{:?}",
        lines(&errors)
    );
}
