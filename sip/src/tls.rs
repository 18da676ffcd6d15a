//! TLS server settings for the SIP-over-TLS listener (RFC 3261 §26.2): a PEM certificate chain
//! and private key turned into a rustls server configuration with the `ring` provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS certificate chain or key could not become a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The certificate file could not be read or is not valid PEM.
    #[error("TLS certificate {}: {source}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file is PEM but holds no `CERTIFICATE` section.
    #[error("TLS certificate {}: no CERTIFICATE in the file", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file could not be read, is not valid PEM, or holds no private key.
    #[error("TLS private key {}: {source}", path.display())]
    PrivateKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate, or an unsupported
    /// key type).
    #[error("TLS certificate {} with key {}: {source}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
}

/// A server configuration for `chain` (leaf first) and `key`: TLS 1.2 and 1.3 with the `ring`
/// provider, no client certificates asked for.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Load a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1)
/// and build a server configuration; every error names the file at fault.
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let certificate_error = |source| TlsConfigError::Certificate {
        path: cert.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(certificate_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(certificate_error)?;
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|source| TlsConfigError::PrivateKey {
            path: key.to_path_buf(),
            source,
        })?;
    server_config(chain, private_key).map_err(|source| TlsConfigError::Rejected {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}
