//! Test helpers: certificates made with rcgen in a temporary folder, a loopback TLS echo server
//! built on [`TlsTerminator`], and a tokio-rustls client. Everything stays on 127.0.0.1 and
//! every network wait is bounded by [`IO_TIMEOUT`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::TlsTerminator;
use super::names::Reader;
use crate::config::model::TlsCertConfig;

/// Longest any single connect, handshake, read or write may take in a test.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A temporary folder that certificates and keys are written into.
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
}

/// One generated certificate: its files and its leaf DER, to compare with what a server sent.
pub(crate) struct TestCert {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) der: CertificateDer<'static>,
}

impl TestCert {
    /// The `[[server.tls]]` entry for this certificate.
    pub(crate) fn config(&self) -> TlsCertConfig {
        TlsCertConfig { cert: self.cert.clone(), key: self.key.clone() }
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write fixture file");
        path
    }

    /// A self-signed ECDSA P-256 certificate for `names`, key as PKCS#8; files `<stem>.crt/.key`.
    pub(crate) fn self_signed(&self, stem: &str, names: &[&str]) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("key");
        self.issue(stem, names, &key, key.serialize_pem())
    }

    /// Like [`Self::self_signed`], but the key file is SEC1 (`EC PRIVATE KEY`).
    pub(crate) fn self_signed_sec1(&self, stem: &str, names: &[&str]) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("key");
        let sec1 = inner_private_key(&key.serialize_der());
        self.issue(stem, names, &key, pem("EC PRIVATE KEY", &sec1))
    }

    /// A self-signed RSA-2048 certificate whose key file is PKCS#1 (`RSA PRIVATE KEY`).
    pub(crate) fn self_signed_pkcs1_rsa(&self, stem: &str, names: &[&str]) -> TestCert {
        let key = rcgen::KeyPair::from_pem(RSA_TEST_KEY_PKCS8).expect("RSA test key");
        let pkcs1 = inner_private_key(&key.serialize_der());
        self.issue(stem, names, &key, pem("RSA PRIVATE KEY", &pkcs1))
    }

    fn issue(&self, stem: &str, names: &[&str], key: &rcgen::KeyPair, key_pem: String) -> TestCert {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let cert = params.self_signed(key).expect("self-signed");
        TestCert {
            cert: self.write(&format!("{stem}.crt"), &cert.pem()),
            key: self.write(&format!("{stem}.key"), &key_pem),
            der: cert.der().clone(),
        }
    }
}

/// The privateKey OCTET STRING of a PKCS#8 PrivateKeyInfo: PKCS#1 for RSA, SEC1 for EC.
fn inner_private_key(pkcs8: &[u8]) -> Vec<u8> {
    let info = Reader::new(pkcs8).expect(0x30, "pkcs8").expect("PrivateKeyInfo");
    let mut fields = Reader::new(info);
    fields.expect(0x02, "version").expect("version");
    fields.expect(0x30, "algorithm").expect("algorithm");
    fields.expect(0x04, "privateKey").expect("privateKey").to_vec()
}

/// PEM-encodes `der` under `label`.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A TLS echo server on 127.0.0.1; stops accepting when dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) terminator: TlsTerminator,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an echo server serving `certs`; each accepted connection echoes until EOF.
pub(crate) async fn spawn_server(certs: &[TlsCertConfig]) -> TestServer {
    let terminator = TlsTerminator::load(certs).expect("load certs");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = terminator.acceptor();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                while let Ok(Ok(n @ 1..)) = tokio::time::timeout(IO_TIMEOUT, tls.read(&mut buf)).await {
                    if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    TestServer { addr, terminator, task }
}

/// A client config trusting exactly `trusted`, offering `alpn`, with resumption off so that
/// every connection performs a full handshake and sees the server's current certificate.
pub(crate) fn client_config(trusted: &[&TestCert], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.der.clone()).expect("trust test cert");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Connects to `addr` and handshakes with SNI `sni` (bounded by [`IO_TIMEOUT`]).
pub(crate) async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(sni.to_owned()).map_err(std::io::Error::other)?;
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(name, tcp).await
    };
    tokio::time::timeout(IO_TIMEOUT, attempt).await.map_err(std::io::Error::other)?
}

/// The leaf certificate the server presented on `stream`.
pub(crate) fn served_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = stream.get_ref().1.peer_certificates().expect("peer certs");
    certs.first().expect("leaf").clone().into_owned()
}

/// Writes `msg` and reads back the echo, bounded by [`IO_TIMEOUT`].
pub(crate) async fn echo(stream: &mut TlsStream<TcpStream>, msg: &[u8]) -> Vec<u8> {
    let round_trip = async {
        stream.write_all(msg).await?;
        stream.flush().await?;
        let mut back = vec![0u8; msg.len()];
        stream.read_exact(&mut back).await?;
        std::io::Result::Ok(back)
    };
    tokio::time::timeout(IO_TIMEOUT, round_trip).await.expect("echo timed out").expect("echo failed")
}

/// A client config that accepts any server certificate (signatures are still checked), so a
/// test can see which certificate a server picks for a name it holds no certificate for.
/// `sni: false` sends no server name at all.
pub(crate) fn accept_any_config(sni: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    config.enable_sni = sni;
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Test-only verifier: trusts every certificate, but verifies the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An RSA-2048 key made with `openssl genpkey` solely for these tests (rcgen's ring backend
/// cannot generate RSA keys). It protects nothing.
const RSA_TEST_KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCy0Ab1uINqy2pn
6der4FnolXyLhwS+P6y/cu2/2cCuDpyXXKvXA/6NoOJTQD7xd/qtHwi7uC2D27Mw
T9X3iu8KhwhMSGoYCE6jOBMkjlTR/TRXZwrkT/SM6orhvJ/NjYdblTCZYow5msTc
WacPyoXuVcDc1FWeD3n4JOt1IE1JiMqeS/0PXs976HY7nO11sxeJJwbzmJej+6Tg
C4p4QYDT6IRbBRGgacday1vgfF1T3isDQM1qx9fydSr6SIWJ7T6fYRFzybTwsi3O
ou7iqkTC6Hemv3gbsBeLIH1I2fQ1A3cpCLmV3yRnV5LFRZDIioGVrtounofRbfdy
drTvc9C1AgMBAAECggEAAkThP4HxNMGIAJwuTE7c/TZxEwPcE7AS/7Ipk7AVZUVg
skR2CI3TOkCyz22VFgFm879kYAGrrDBuOF/dM5Z9quOPRqWlmQIyM0PdXv0wm/er
j+S0xCY0XtKhcV9iI9yk/X5w99qmXtP8QiU8UjqsC+otm2/G6AaKFZsBqjtNV8W2
l93aTIt3WTlRut5CLmaiNwqrv0PSlcexnD7uV+vN470zpLPnem1lbneU0q6tageD
Qhz5FbUkD8HBt6IhScOVztQDcJYcE/WqWnUV8l9k74JnF/d9hp+kNi1Pc+qOhYAX
+MB+OSkpttpYNrdTV7Ri7ORU11BQx+gyXZaZ/ZgjUQKBgQDYniRdxMAJVd0KK46m
1nBr8o+Ninc2q7Ch68bioVLRJtf5Q3uqP0KYVvrWgQnm9NCZpsD01LmBzAvGoGXR
IZhS8huyq9leFp2TjLjGTc288TTfTc7m+aYMu9SBtwqWWUO5hl9AnbbTFrwmHl0e
nJ0b5WH0Y+IMHcL7AyOcw2B28QKBgQDTUlo1Z79x6INnJfDLfEScG9jXU2yet51y
1VGmoM24vCmopaBiPbb7V5uN1XbLJdzVkNx5kyf/+SG4IXaul2qxusjosvUNKoTl
mlJ9XbuKghExm6KYXbKImG26BLYv1FNi1xAoPveBfki37CGOJhf5V6LJSlvdeqz6
4FuuQzVeBQKBgQDOZCdMPImom2oHJac+qXTmNW+3saWSrpWWQdr21jTdWQBQ3I54
kNu34LARL1Oq/bm/nJWe8QxrcmoJ74vzben/pfTkET8DmdK74kmvkDQmAUCaPz2S
72zaFyEMEsYAqL6Rh0k8fMjUaYYNX8Ljxt8e1Di3rW+UkcrUdZI57CH+UQKBgBzV
SbWruDVkkjlKtfYtuHbMXePTYCivyO3YKVHg8vDXy59VKfL9lK/qnjDWBWVmfyEs
qMh1yallZrJm7niX9FjXsX3+nOz09jkVu1ebqHEXmhz4rVC4yBlXIvGUnv8bq1z7
FxtGrCKhBm8B6vooPHErAe0RFkO770ozvo6iYO+5AoGAQtyOOU6eMfKqr5ijsFOS
9z5oeL6DTvwxySLGYPhDD9LiI4VfaqdwanwBPsc4BvpOXCQzS1kHfUetn9QMfVRz
DtlICIkFN8mMhQcn2/xafLEgOtBJ1NCX1IMNe4pYTQzX9Cj8Rvi8wkPvaH1WAIbK
/ZS8iMbghhFp0sNX1e4B3U8=
-----END PRIVATE KEY-----
";
