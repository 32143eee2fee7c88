//! TLS for the HTTPS listeners: certificates from PEM files, chosen by SNI, reloaded on SIGHUP.
//!
//! [`TlsTerminator`] is the handle the listener holds. It is built once from `[[server.tls]]`,
//! hands out [`tokio_rustls::TlsAcceptor`]s (ALPN `h2`, then `http/1.1`), and can [`reload`]
//! the certificates in place: the rustls `ServerConfig` never changes, only the name →
//! certificate table behind its resolver, which is swapped atomically. A failed reload changes
//! nothing. [`origin_client_config`] is the other direction: the rustls config for `https://`
//! origins.
//!
//! Files: `certs.rs` loads one chain and key, `names.rs` reads the leaf's DNS names, `sni.rs`
//! picks a certificate per handshake, `client.rs` builds the origin client config, `error.rs`
//! holds [`TlsError`].
//!
//! [`reload`]: TlsTerminator::reload

mod certs;
mod client;
mod error;
mod names;
mod sni;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use tokio_rustls::TlsAcceptor;

use crate::config::model::TlsCertConfig;

pub use client::origin_client_config;
pub use error::TlsError;

use sni::{SniMap, SniResolver};

/// ALPN protocols offered by the listeners, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider used everywhere in edgecache: aws-lc-rs, passed explicitly so nothing
/// depends on a process-wide default being installed.
fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Server-side TLS for the HTTPS listeners: SNI certificate selection plus hot reload.
///
/// Cheap to clone; clones share the same certificates, so a reload through any clone is seen by
/// acceptors from all of them.
#[derive(Debug, Clone)]
pub struct TlsTerminator {
    /// Shared with `config` as its certificate resolver; reloads go through here.
    resolver: Arc<SniResolver>,
    /// Built once; every acceptor shares it.
    config: Arc<ServerConfig>,
}

impl TlsTerminator {
    /// Loads every certificate chain and key in `certs` and builds the server configuration.
    ///
    /// Each leaf's subjectAltName DNS names (wildcards such as `*.example.com` included) are
    /// served by SNI; the first entry also answers clients that send no name or an unknown one.
    ///
    /// # Errors
    /// `certs` is empty, or any file is unreadable, not PEM, lacks a certificate or key, holds
    /// a key the provider cannot use, or a key that does not match its certificate. The error
    /// names the file.
    pub fn load(certs: &[TlsCertConfig]) -> Result<Self, TlsError> {
        let provider = provider();
        let resolver = Arc::new(SniResolver::new(load_map(certs, &provider)?));
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as _);
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(Self { resolver, config: Arc::new(config) })
    }

    /// An acceptor for one listener (or one connection); all share the same configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// The rustls server configuration behind [`acceptor`](Self::acceptor), for callers that
    /// drive rustls themselves.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// Re-reads all certificate and key files and, only if every one loads, swaps them in.
    ///
    /// New handshakes see the new certificates at once; established connections keep theirs.
    /// Returns how many certificates are now served.
    ///
    /// # Errors
    /// As for [`load`](Self::load); on error the certificates served before stay in place.
    pub fn reload(&self, certs: &[TlsCertConfig]) -> Result<usize, TlsError> {
        let map = load_map(certs, &provider())?;
        let count = map.len();
        self.resolver.replace(map);
        Ok(count)
    }
}

/// Loads all entries in order into a fresh SNI table.
fn load_map(certs: &[TlsCertConfig], provider: &CryptoProvider) -> Result<SniMap, TlsError> {
    let mut loaded = Vec::with_capacity(certs.len());
    for (i, entry) in certs.iter().enumerate() {
        let cert = certs::load_cert(&entry.cert, &entry.key, provider)?;
        if cert.names.is_empty() && i > 0 {
            tracing::warn!(
                cert = %entry.cert.display(),
                "certificate has no DNS names in subjectAltName; no SNI name selects it"
            );
        }
        loaded.push(cert);
    }
    SniMap::new(loaded).ok_or(TlsError::NoCertificates)
}
