//! The TLS client configuration every cloud client in this crate uses.

use std::sync::Arc;

use rustls_platform_verifier::BuilderVerifierExt;

/// A rustls client configuration with the `ring` provider and the platform's root
/// certificates (no process-wide default provider is installed). Other vaani HTTP clients
/// (plugin egress) use it too, so every outbound TLS connection is set up the same way.
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}
