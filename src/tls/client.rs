//! The rustls client configuration for talking to an `https://` origin.
//!
//! Trust is the Mozilla root set from `webpki-roots` plus, when `[origin] ca_file` is set, every
//! certificate in that PEM bundle (for origins behind a private CA).
//!
//! ALPN is *not* set here, on purpose: hyper-rustls 0.27's
//! `HttpsConnectorBuilder::with_tls_config` panics if `alpn_protocols` is non-empty, and
//! writes it itself from the protocols enabled on the builder. Calling
//! `.enable_http1().enable_http2()` (or `.enable_all_versions()`) yields `h2` then `http/1.1`:
//!
//! ```no_run
//! # fn main() -> Result<(), edgecache::tls::TlsError> {
//! let tls = edgecache::tls::origin_client_config(None)?;
//! let connector = hyper_rustls::HttpsConnectorBuilder::new()
//!     .with_tls_config(tls)
//!     .https_or_http()
//!     .enable_http1()
//!     .enable_http2()
//!     .build();
//! # let _ = connector;
//! # Ok(())
//! # }
//! ```
//!
//! Anyone using the config without hyper-rustls should set
//! `alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()]` (see [`super::ALPN_PROTOCOLS`]).

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use super::TlsError;
use super::certs::read_cert_chain;

/// Builds the client config for origin connections: webpki roots plus the CAs in `ca_file`.
///
/// The returned config has empty ALPN so it can go straight into hyper-rustls'
/// `HttpsConnectorBuilder::with_tls_config`; see the module docs.
///
/// # Errors
/// The CA file cannot be read, is not PEM, holds no certificate, or holds a certificate the
/// root store rejects; every such error names the file.
pub fn origin_client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        for ca in read_cert_chain(path)? {
            roots.add(ca).map_err(|source| TlsError::InvalidCaCertificate { path: path.to_owned(), source })?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(super::provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testutil::{self, Fixture};

    #[test]
    fn without_ca_file_trusts_webpki_roots_only_and_leaves_alpn_empty() {
        let config = origin_client_config(None).expect("config");
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn hyper_rustls_accepts_the_config_and_sets_alpn() {
        // `with_tls_config` asserts that ALPN is empty; this would panic otherwise.
        let fx = Fixture::new();
        let ca = fx.self_signed("ca", &["origin.test"]);
        let config = origin_client_config(Some(&ca.cert)).expect("config");
        let _connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
    }

    #[tokio::test]
    async fn ca_file_makes_a_private_origin_trusted() {
        let fx = Fixture::new();
        let origin = fx.self_signed("origin", &["origin.test"]);
        let server = testutil::spawn_server(&[origin.config()]).await;

        let mut trusting = origin_client_config(Some(&origin.cert)).expect("config");
        trusting.alpn_protocols = crate::tls::ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        let conn = testutil::connect(server.addr, Arc::new(trusting), "origin.test")
            .await
            .expect("handshake with the private CA trusted");
        assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

        let default_roots = origin_client_config(None).expect("config");
        let server = testutil::spawn_server(&[origin.config()]).await;
        let err = testutil::connect(server.addr, Arc::new(default_roots), "origin.test")
            .await
            .expect_err("a self-signed origin must not be trusted by webpki roots alone");
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[test]
    fn bad_ca_files_name_the_file() {
        let fx = Fixture::new();
        let missing = fx.path("missing-ca.pem");
        let err = origin_client_config(Some(&missing)).expect_err("must fail");
        assert!(err.to_string().starts_with(&missing.display().to_string()));

        let empty = fx.write("empty-ca.pem", "");
        let err = origin_client_config(Some(&empty)).expect_err("must fail");
        assert_eq!(err.to_string(), format!("{}: no certificate found", empty.display()));

        let junk = fx.write("junk-ca.pem", &testutil::pem("CERTIFICATE", b"junk"));
        let err = origin_client_config(Some(&junk)).expect_err("must fail");
        assert!(matches!(err, TlsError::InvalidCaCertificate { .. }), "{err:?}");
    }
}
