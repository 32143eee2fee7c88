//! Loading one `[[server.tls]]` entry: a PEM certificate chain and its PEM private key.
//!
//! The chain file holds the leaf first, then any intermediates, as `CERTIFICATE` sections. The key
//! file holds one private key as PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
//! (`EC PRIVATE KEY`); other sections (such as `EC PARAMETERS`) are skipped. The key is parsed by
//! the crypto provider and checked against the leaf's public key before anything is served.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{Error as RustlsError, InconsistentKeys};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use super::names;

/// One certificate ready to serve, with the DNS names it answers for.
#[derive(Debug, Clone)]
pub(crate) struct LoadedCert {
    /// The chain and signing key handed to rustls.
    pub(crate) key: Arc<CertifiedKey>,
    /// Lower-cased subjectAltName DNS names of the leaf, wildcards included.
    pub(crate) names: Vec<String>,
}

/// Loads and checks one certificate chain and its key.
pub(crate) fn load_cert(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<LoadedCert, TlsError> {
    let chain = read_cert_chain(cert_path)?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate { path: cert_path.to_owned() })?;
    let names = names::dns_names(leaf)
        .map_err(|e| TlsError::MalformedCertificate { path: cert_path.to_owned(), reason: e.0 })?;
    let key = read_private_key(key_path)?;

    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() }
        }
        // `keys_match` parses the leaf; a leaf rustls cannot parse is the certificate's fault.
        RustlsError::InvalidCertificate(_) => {
            TlsError::MalformedCertificate { path: cert_path.to_owned(), reason: "rejected by the X.509 parser" }
        }
        other => TlsError::InvalidPrivateKey { path: key_path.to_owned(), source: other },
    })?;
    Ok(LoadedCert { key: Arc::new(certified), names })
}

/// Reads every `CERTIFICATE` section of a PEM file, in file order. Errors if there are none.
pub(crate) fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_owned(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey { path: path.to_owned() }),
        Err(source) => Err(TlsError::Pem { path: path.to_owned(), source }),
    }
}

/// Reads a whole file, naming it in the error.
fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testutil::{self, Fixture};

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    #[test]
    fn loads_chain_key_and_names() {
        let fx = Fixture::new();
        let entry = fx.self_signed("ok", &["a.test", "*.wild.test"]);
        let loaded = load_cert(&entry.cert, &entry.key, &provider()).expect("load");
        assert_eq!(loaded.names, vec!["a.test", "*.wild.test"]);
        assert_eq!(loaded.key.cert.len(), 1);
    }

    #[test]
    fn missing_file_names_the_path() {
        let fx = Fixture::new();
        let entry = fx.self_signed("ok", &["a.test"]);
        let missing = fx.path("nope.pem");
        let err = load_cert(&missing, &entry.key, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::Io { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&missing.display().to_string()));
    }

    #[test]
    fn file_without_certificate_is_reported() {
        let fx = Fixture::new();
        let entry = fx.self_signed("ok", &["a.test"]);
        let empty = fx.write("empty.pem", "just some text\n");
        let err = load_cert(&empty, &entry.key, &provider()).expect_err("must fail");
        assert_eq!(err.to_string(), format!("{}: no certificate found", empty.display()));
        // A key file given as the certificate has no CERTIFICATE section either.
        let err = load_cert(&entry.key, &entry.key, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    }

    #[test]
    fn broken_pem_and_missing_key_are_reported() {
        let fx = Fixture::new();
        let entry = fx.self_signed("ok", &["a.test"]);
        let broken = fx.write("broken.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n(no end line)\n");
        let err = load_cert(&broken, &entry.key, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.pem: invalid PEM"), "{err}");

        let err = load_cert(&entry.cert, &entry.cert, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    }

    #[test]
    fn key_of_another_certificate_is_a_mismatch() {
        let fx = Fixture::new();
        let a = fx.self_signed("a", &["a.test"]);
        let b = fx.self_signed("b", &["b.test"]);
        let err = load_cert(&a.cert, &b.key, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("key does not match certificate"), "{err}");
    }

    #[test]
    fn sec1_and_pkcs1_keys_load() {
        let fx = Fixture::new();
        let ec = fx.self_signed_sec1("ec", &["ec.test"]);
        assert!(std::fs::read_to_string(&ec.key).expect("read").starts_with("-----BEGIN EC PRIVATE KEY-----"));
        load_cert(&ec.cert, &ec.key, &provider()).expect("SEC1 key");

        let rsa = fx.self_signed_pkcs1_rsa("rsa", &["rsa.test"]);
        assert!(std::fs::read_to_string(&rsa.key).expect("read").starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        load_cert(&rsa.cert, &rsa.key, &provider()).expect("PKCS#1 key");
    }

    #[test]
    fn corrupt_key_bytes_are_an_invalid_key() {
        let fx = Fixture::new();
        let entry = fx.self_signed("ok", &["a.test"]);
        let bad = fx.write("bad.key", &testutil::pem("PRIVATE KEY", b"definitely not a pkcs8 structure"));
        let err = load_cert(&entry.cert, &bad, &provider()).expect_err("must fail");
        assert!(matches!(err, TlsError::InvalidPrivateKey { .. }), "{err:?}");
        assert!(err.to_string().contains("bad.key: unusable private key"));
    }
}
