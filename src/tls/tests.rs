//! End-to-end tests of [`TlsTerminator`]: real handshakes over 127.0.0.1 against its acceptor,
//! checking which certificate each SNI name gets, ALPN, and hot reload (good and broken).

use super::testutil::{Fixture, TestCert, accept_any_config, client_config, connect, echo, served_leaf, spawn_server};
use super::{TlsError, TlsTerminator};

const H2: &[u8] = b"h2";
const H1: &[u8] = b"http/1.1";

/// Three certificates: `a.test` (the default), `b.test` and `*.wild.test`.
fn three(fx: &Fixture) -> (TestCert, TestCert, TestCert) {
    (fx.self_signed("a", &["a.test"]), fx.self_signed("b", &["b.test"]), fx.self_signed("wild", &["*.wild.test"]))
}

#[tokio::test]
async fn sni_picks_the_matching_certificate_and_alpn_prefers_h2() {
    let fx = Fixture::new();
    let (a, b, wild) = three(&fx);
    let server = spawn_server(&[a.config(), b.config(), wild.config()]).await;
    let client = client_config(&[&a, &b, &wild], &[H2, H1]);

    for (sni, expected) in [("a.test", &a), ("b.test", &b), ("x.wild.test", &wild), ("B.TEST", &b)] {
        let mut conn =
            connect(server.addr, client.clone(), sni).await.unwrap_or_else(|e| panic!("handshake for {sni}: {e}"));
        assert!(served_leaf(&conn) == expected.der, "wrong cert for {sni}");
        assert_eq!(conn.get_ref().1.alpn_protocol(), Some(H2), "ALPN for {sni}");
        assert_eq!(echo(&mut conn, sni.as_bytes()).await, sni.as_bytes());
    }
}

#[tokio::test]
async fn alpn_falls_back_to_http1_or_none() {
    let fx = Fixture::new();
    let (a, _, _) = three(&fx);
    let server = spawn_server(&[a.config()]).await;

    let conn = connect(server.addr, client_config(&[&a], &[H1]), "a.test").await.expect("handshake");
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(H1));

    let conn = connect(server.addr, client_config(&[&a], &[]), "a.test").await.expect("handshake");
    assert_eq!(conn.get_ref().1.alpn_protocol(), None);

    // A client offering only protocols we do not speak is refused, not silently downgraded.
    let refused = connect(server.addr, client_config(&[&a], &[b"spdy/3"]), "a.test").await;
    assert!(refused.is_err(), "handshake with unknown ALPN succeeded");
}

#[tokio::test]
async fn unknown_name_or_no_sni_gets_the_first_certificate() {
    let fx = Fixture::new();
    let (a, b, wild) = three(&fx);
    // `b` first this time, so the default is not simply "the a.test cert".
    let server = spawn_server(&[b.config(), a.config(), wild.config()]).await;

    for sni in ["unknown.test", "wild.test", "x.y.wild.test"] {
        let conn = connect(server.addr, accept_any_config(true), sni).await.expect("handshake");
        assert!(served_leaf(&conn) == b.der, "{sni} did not get the default");
    }
    let conn = connect(server.addr, accept_any_config(false), "ignored.test").await.expect("handshake without SNI");
    assert!(served_leaf(&conn) == b.der, "no SNI did not get the default");
    // Sanity check that the permissive client does see SNI selection.
    let conn = connect(server.addr, accept_any_config(true), "a.test").await.expect("handshake");
    assert!(served_leaf(&conn) == a.der);
}

#[tokio::test]
async fn reload_serves_new_certs_to_new_handshakes_and_keeps_open_connections() {
    let fx = Fixture::new();
    let (a_old, b, _) = three(&fx);
    let server = spawn_server(&[a_old.config(), b.config()]).await;

    let mut before =
        connect(server.addr, client_config(&[&a_old], &[H2]), "a.test").await.expect("handshake before reload");
    assert_eq!(echo(&mut before, b"ping").await, b"ping");

    // Same paths, new contents: what an operator's renewal job does before sending SIGHUP.
    let a_new = fx.self_signed("a", &["a.test"]);
    assert!(a_new.der != a_old.der);
    let c = fx.self_signed("c", &["c.test"]);
    let count = server.terminator.reload(&[a_new.config(), b.config(), c.config()]).expect("reload");
    assert_eq!(count, 3);

    let trust_all = client_config(&[&a_old, &a_new, &b, &c], &[H2]);
    let after = connect(server.addr, trust_all.clone(), "a.test").await.expect("handshake after reload");
    assert!(served_leaf(&after) == a_new.der, "new handshake got the old cert");
    let conn_c = connect(server.addr, trust_all, "c.test").await.expect("newly added name");
    assert!(served_leaf(&conn_c) == c.der);

    // The connection made before the reload still carries traffic, on its old certificate.
    assert_eq!(echo(&mut before, b"still here").await, b"still here");
    assert!(served_leaf(&before) == a_old.der);

    // Acceptors handed out after the reload share the same, reloaded certificates.
    let _later = server.terminator.acceptor();
}

#[tokio::test]
async fn failed_reload_changes_nothing_and_names_the_file() {
    let fx = Fixture::new();
    let (a, b, _) = three(&fx);
    let server = spawn_server(&[a.config(), b.config()]).await;
    let client = client_config(&[&a, &b], &[H2]);

    // A valid first entry and a broken second one: the first must not be swapped in alone.
    let a_new = fx.self_signed("a-new", &["a.test"]);
    let broken = fx.write("b-broken.crt", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    let mut b_broken = b.config();
    b_broken.cert = broken.clone();
    let err = server.terminator.reload(&[a_new.config(), b_broken]).expect_err("broken file must fail the reload");
    assert!(err.to_string().starts_with(&broken.display().to_string()), "error does not name the file: {err}");

    let mut mismatched = a.config();
    mismatched.key = b.key.clone();
    let err = server.terminator.reload(&[mismatched]).expect_err("mismatch must fail the reload");
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");

    let err = server.terminator.reload(&[]).expect_err("empty must fail");
    assert!(matches!(err, TlsError::NoCertificates), "{err:?}");

    for (sni, expected) in [("a.test", &a), ("b.test", &b)] {
        let conn = connect(server.addr, client.clone(), sni).await.expect("handshake after failed reloads");
        assert!(served_leaf(&conn) == expected.der, "{sni} changed");
    }
}

#[tokio::test]
async fn rsa_pkcs1_and_ec_sec1_keys_serve_handshakes() {
    let fx = Fixture::new();
    let rsa = fx.self_signed_pkcs1_rsa("rsa", &["rsa.test"]);
    let ec = fx.self_signed_sec1("ec", &["ec.test"]);
    let server = spawn_server(&[rsa.config(), ec.config()]).await;
    let client = client_config(&[&rsa, &ec], &[H2, H1]);
    for (sni, expected) in [("rsa.test", &rsa), ("ec.test", &ec)] {
        let mut conn =
            connect(server.addr, client.clone(), sni).await.unwrap_or_else(|e| panic!("handshake for {sni}: {e}"));
        assert!(served_leaf(&conn) == expected.der, "wrong cert for {sni}");
        assert_eq!(echo(&mut conn, b"x").await, b"x");
    }
}

#[test]
fn load_rejects_empty_and_broken_configs() {
    let err = TlsTerminator::load(&[]).expect_err("empty");
    assert_eq!(err.to_string(), "no TLS certificates configured");

    let fx = Fixture::new();
    let a = fx.self_signed("a", &["a.test"]);
    let mut missing_key = a.config();
    missing_key.key = fx.path("gone.key");
    let err = TlsTerminator::load(&[a.config(), missing_key]).expect_err("missing key");
    assert!(err.to_string().contains("gone.key"), "{err}");
}
