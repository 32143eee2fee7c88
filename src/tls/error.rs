//! [`TlsError`]: everything that can go wrong loading certificates, keys and CA bundles.
//!
//! Every variant that comes from a file names that file first, so an operator reading a failed
//! startup or a failed SIGHUP reload sees `certs/a.pem: no certificate found` and knows where to
//! look.

use std::io;
use std::path::PathBuf;

/// An error from loading TLS material; file-related variants start with the file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `[[server.tls]]` is empty, so there is no certificate to serve.
    #[error("no TLS certificates configured")]
    NoCertificates,

    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The file is not valid PEM (bad base64, a section without its END line, ...).
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem {
        /// The file that failed.
        path: PathBuf,
        /// What the PEM parser found wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },

    /// The file holds no `CERTIFICATE` PEM section.
    #[error("{}: no certificate found", path.display())]
    NoCertificate {
        /// The file that failed.
        path: PathBuf,
    },

    /// The leaf certificate's DER could not be read.
    #[error("{}: malformed certificate: {reason}", path.display())]
    MalformedCertificate {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it.
        reason: &'static str,
    },

    /// The file holds no `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` PEM section.
    #[error(
        "{}: no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM section)",
        path.display()
    )]
    NoPrivateKey {
        /// The file that failed.
        path: PathBuf,
    },

    /// The private key was found but the crypto provider cannot use it (unsupported algorithm,
    /// corrupt key material, ...).
    #[error("{}: unusable private key: {source}", path.display())]
    InvalidPrivateKey {
        /// The key file.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },

    /// The private key is valid but belongs to a different certificate.
    #[error("{}: key does not match certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// A CA certificate from an origin `ca_file` was rejected by the root store.
    #[error("{}: unusable CA certificate: {source}", path.display())]
    InvalidCaCertificate {
        /// The CA bundle.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },

    /// rustls refused to build a configuration (not tied to any one file).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}
