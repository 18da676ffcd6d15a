//! `Config::load` reads `VAANI_*` overrides from the process environment.
//! The only test in this binary, so changing the environment races with nothing.

use vaani_config::Config;

#[test]
fn load_reads_process_environment() {
    let dir = std::env::temp_dir().join(format!("vaani-config-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vaani.toml");
    std::fs::write(&path, "[http]\noperator_key = \"from-file\"\n").unwrap();

    // SAFETY: this test binary runs this single test; no other thread reads the environment.
    unsafe {
        std::env::set_var("VAANI_HTTP__LISTEN", "127.0.0.1:9123");
        std::env::set_var("VAANI_HTTP__OPERATOR_KEY", "from-env");
    }
    let config = Config::load(&path).unwrap();
    assert_eq!(config.http.listen.port(), 9123);
    assert_eq!(config.http.operator_key, "from-env");

    unsafe {
        std::env::set_var("VAANI_HTTP__LISTEN", "not an address");
    }
    let errors = Config::load(&path).unwrap_err();
    assert!(
        errors
            .to_string()
            .starts_with("http.listen: invalid socket address"),
        "{errors}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
