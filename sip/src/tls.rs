//! TLS settings for SIP over TLS (RFC 3261 §26.2), with rustls and the `ring` provider:
//!
//! * the listener's side: a PEM certificate chain and private key turned into a server
//!   configuration ([`load_server_config`]);
//! * the side of calls we place over TLS: trust roots from a PEM CA file (no system roots:
//!   servers may run offline, and a trunk's CA is configured, not assumed) turned into a client
//!   configuration ([`load_client_config`]), and [`OutboundTls`], which pairs it with the name
//!   the trunk's certificate must carry (sent as SNI too).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

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
    /// The CA file for outbound TLS could not be read or is not valid PEM.
    #[error("TLS CA file {}: {source}", path.display())]
    CaFile {
        /// The CA file.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file is PEM but holds no `CERTIFICATE` section.
    #[error("TLS CA file {}: no CERTIFICATE in the file", path.display())]
    NoCaCertificate {
        /// The CA file.
        path: PathBuf,
    },
    /// rustls refused a certificate of the CA file as a trust root, or the client
    /// configuration.
    #[error("TLS CA file {}: {source}", path.display())]
    CaRejected {
        /// The CA file.
        path: PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
    /// The name to verify the peer's certificate against is neither a DNS name nor an IP
    /// address.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
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

/// A client configuration that trusts exactly `roots`: TLS 1.2 and 1.3 with the `ring`
/// provider, no client certificate.
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Load the trust roots of a PEM CA file (one or more `CERTIFICATE` sections: a trunk
/// provider's CA, or a bundle) and build a client configuration; every error names the file.
pub fn load_client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let ca_error = |source| TlsConfigError::CaFile {
        path: ca.to_path_buf(),
        source,
    };
    let roots = CertificateDer::pem_file_iter(ca)
        .map_err(ca_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(ca_error)?;
    if roots.is_empty() {
        return Err(TlsConfigError::NoCaCertificate {
            path: ca.to_path_buf(),
        });
    }
    client_config(roots).map_err(|source| TlsConfigError::CaRejected {
        path: ca.to_path_buf(),
        source,
    })
}

/// How the driver opens a TLS connection for a call it places: the client configuration
/// (trust roots) and the name the peer's certificate must carry, which also goes out as SNI
/// (for a DNS name; IP addresses are verified but not sent).
#[derive(Clone)]
pub struct OutboundTls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl OutboundTls {
    /// Settings for a peer named `server_name` (a DNS name such as `example.pstn.twilio.com`,
    /// or an IP address) trusted through `config`.
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<Self, TlsConfigError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsConfigError::InvalidServerName(server_name.to_owned()))?;
        Ok(Self {
            config,
            server_name,
        })
    }

    /// The client configuration (trust roots).
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// The name the peer's certificate is verified against.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

impl fmt::Debug for OutboundTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for OutboundTls {
    /// The same configuration object and the same name.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for OutboundTls {}
