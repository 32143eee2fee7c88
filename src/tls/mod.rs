//! TLS for the HTTPS listeners: certificates from PEM files, chosen by SNI, reloaded on SIGHUP.
//! (Placeholder API; the full module lands from its own branch.)

use std::path::Path;
use std::sync::Arc;

use crate::config::TlsCertConfig;

/// A TLS failure, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Other(String),
}

/// The certificates of the HTTPS listeners.
pub struct TlsTerminator {
    config: Arc<rustls::ServerConfig>,
}

impl TlsTerminator {
    /// Loads every certificate.
    pub fn load(_certs: &[TlsCertConfig]) -> Result<Self, TlsError> {
        Err(TlsError::Other("TLS is not built yet".into()))
    }

    /// An acceptor for new connections.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// Re-reads the certificates.
    pub fn reload(&self, _certs: &[TlsCertConfig]) -> Result<usize, TlsError> {
        Err(TlsError::Other("TLS is not built yet".into()))
    }
}

/// Client TLS settings towards an `https://` origin.
pub fn origin_client_config(_ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Other(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
