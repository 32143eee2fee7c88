//! HTTPS on `server.tls_listen`: the certificate is chosen by SNI, h2 by ALPN, and SIGHUP-style reloads swap
//! certificates for new handshakes.

use std::net::SocketAddr;
use std::path::Path;

use edgecache::config::TlsCertConfig;

use crate::support::{Reply, TestNode, TestOrigin, cache_status};

/// Writes a self-signed certificate for `name` to `dir/name.pem` + `dir/name.key`; returns its PEM.
fn write_cert(dir: &Path, name: &str) -> String {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("certificate");
    let pem = certified.cert.pem();
    std::fs::write(dir.join(format!("{name}.pem")), &pem).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), certified.signing_key.serialize_pem()).expect("write key");
    pem
}

fn entry(dir: &Path, name: &str) -> TlsCertConfig {
    TlsCertConfig { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) }
}

/// A client that trusts only `pem` and sends `name` (resolved to `addr`) as SNI.
fn client_trusting(pem: &str, name: &str, addr: SocketAddr) -> reqwest::Client {
    let certificate = reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem");
    reqwest::Client::builder().no_proxy().tls_certs_only([certificate]).resolve(name, addr).build().expect("tls client")
}

#[tokio::test]
async fn certificates_are_chosen_by_sni_and_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write_cert(dir.path(), "a.test");
    let b = write_cert(dir.path(), "b.test");
    let origin = TestOrigin::start(|_, _| Reply::ok("secure", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |config| {
        config.server.tls_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        config.server.tls = vec![entry(dir.path(), "a.test"), entry(dir.path(), "b.test")];
    })
    .await;
    let addr = node.handle.https_addrs[0];
    let url = |name: &str| format!("https://{name}:{}/s", addr.port());

    let response = client_trusting(&a, "a.test", addr).get(url("a.test")).send().await.expect("a.test");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "h2 negotiated by ALPN");
    assert_eq!(response.text().await.expect("body"), "secure");
    let response = client_trusting(&a, "a.test", addr).get(url("a.test")).send().await.expect("a.test again");
    assert!(cache_status(&response).contains("hit"), "{}", cache_status(&response));
    let response = client_trusting(&b, "b.test", addr).get(url("b.test")).send().await.expect("b.test");
    assert_eq!(response.text().await.expect("body"), "secure");
    assert_eq!(origin.hits(), 2, "a.test and b.test are two cache keys");
    // b.test is served b's certificate, which a client trusting only a's rejects.
    assert!(client_trusting(&a, "b.test", addr).get(url("b.test")).send().await.is_err());

    // A new certificate for a.test, then a reload: new handshakes get it.
    let a2 = write_cert(dir.path(), "a.test");
    assert_eq!(node.handle.reload_tls().expect("reload"), 2);
    let response = client_trusting(&a2, "a.test", addr).get(url("a.test")).send().await.expect("a.test after reload");
    assert_eq!(response.status(), 200);
    assert!(client_trusting(&a, "a.test", addr).get(url("a.test")).send().await.is_err(), "old cert retired");

    // A broken file makes the reload fail and keeps the current certificates.
    std::fs::write(dir.path().join("b.test.pem"), "not a certificate").expect("break b");
    assert!(node.handle.reload_tls().is_err());
    let response = client_trusting(&b, "b.test", addr).get(url("b.test")).send().await.expect("b.test still served");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_https_origin_is_reached_through_the_pooled_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_cert(dir.path(), "localhost");
    let tls = edgecache::tls::TlsTerminator::load(&[entry(dir.path(), "localhost")]).expect("origin tls");
    let origin =
        TestOrigin::start_tls(tls.acceptor(), |_, _| Reply::ok("over tls", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |config| {
        config.origin.url = Some(format!("https://localhost:{}", origin.addr.port()).parse().expect("url"));
        config.origin.ca_file = Some(dir.path().join("localhost.pem"));
    })
    .await;
    let http = crate::support::client();
    for _ in 0..3 {
        let response = http.get(node.url("/t")).send().await.expect("get");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "over tls");
    }
    assert_eq!(origin.hits(), 1);
}
