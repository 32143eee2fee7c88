//! Checks of single values and sections: defaults, units, addresses, URLs, paths, limits.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

#[test]
fn a_minimal_file_gets_every_default() {
    let c = ok(ORIGIN);
    let d = Config::standalone(
        "test-host",
        SocketAddr::from(([127, 0, 0, 1], 8080)),
        "http://127.0.0.1:9000".parse().expect("uri"),
    );
    assert_eq!(c.node.id, "test-host", "node.id defaults to the host name");
    assert_eq!(c.node.pop, None);
    assert_eq!(c.server.listen, d.server.listen);
    assert!(c.server.tls_listen.is_empty() && c.server.tls.is_empty());
    assert_eq!(c.server.max_header_size, 64 * 1024);
    assert_eq!(c.server.max_headers, 100);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.origin.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.origin.response_timeout, Duration::from_secs(30));
    assert_eq!(c.origin.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(c.origin.pool_max_idle_per_host, 256);
    assert_eq!(c.origin.ca_file, None);
    assert_eq!((c.cache.memory, c.cache.max_object_size), (d.cache.memory, d.cache.max_object_size));
    assert_eq!(c.cache.lock_timeout, Duration::from_secs(5));
    assert!(c.pops.is_empty());
    assert_eq!(c.cluster.secret, None);
    assert_eq!(c.cluster.parent_fallback, ParentFallback::Origin);
    assert_eq!(c.compression.algorithms, ["br", "gzip"]);
    assert_eq!(c.compression.min_size, 1024);
    assert!(c.throttle.client_rate.is_none() && c.throttle.origin_max_inflight.is_none());
    assert_eq!(c.admin.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9901))));
    assert_eq!(c.admin.token, None);
}

#[test]
fn node_id_falls_back_to_edgecache_without_a_usable_host_name() {
    for hostname in [None, Some("bad host/name".to_string())] {
        let env = Env { admin_token: None, hostname };
        let c = parse_with_env(ORIGIN, "t.toml", Path::new("/"), &env).map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.node.id), Ok("edgecache".to_string()));
    }
    one_err(&format!("{ORIGIN}[node]\nid = \"a b\"\n"), "t.toml:4: node.id: invalid name \"a b\"");
}

#[test]
fn sizes_and_durations_are_read() {
    let c = ok(&format!(
        "{ORIGIN}connect_timeout = \"250ms\"\nresponse_timeout = \"5m\"\n[cache]\nmemory = \"2GiB\"\nmax_object_size = 1048576\nlock_timeout = \"750ms\"\n"
    ));
    assert_eq!(c.cache.lock_timeout, Duration::from_millis(750));
    assert_eq!(c.origin.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.origin.response_timeout, Duration::from_secs(300));
    assert_eq!(c.cache.memory, 2 << 30);
    assert_eq!(c.cache.max_object_size, 1 << 20);
}

#[test]
fn timeouts_must_be_positive_durations() {
    one_err(
        &format!("{ORIGIN}[server]\nidle_timeout = \"0s\"\n"),
        "t.toml:4: server.idle_timeout: must be greater than 0",
    );
    one_err(
        &format!("{ORIGIN}[server]\ndrain_timeout = 30\n"),
        "t.toml:4: server.drain_timeout: invalid type: integer",
    );
    one_err(&format!("{ORIGIN}pool_idle_timeout = \"90\"\n"), "t.toml:3: origin.pool_idle_timeout: invalid duration");
}

#[test]
fn cache_sizes_are_positive_and_consistent() {
    one_err(&format!("{ORIGIN}[cache]\nmemory = 0\n"), "t.toml:4: cache.memory: must be greater than 0");
    one_err(
        &format!("{ORIGIN}[cache]\nmax_object_size = \"0B\"\n"),
        "t.toml:4: cache.max_object_size: must be greater than 0",
    );
    one_err(&format!("{ORIGIN}[cache]\nmemory = -5\n"), "t.toml:4: cache.memory: a size cannot be negative");
    one_err(
        &format!("{ORIGIN}[cache]\nmemory = \"1MiB\"\nmax_object_size = \"2MiB\"\n"),
        "t.toml:5: cache.max_object_size: 2MiB exceeds cache.memory (1MiB)",
    );
    one_err(
        &format!("{ORIGIN}[cache]\nmemory = \"8MiB\"\n"),
        "t.toml:4: cache.memory: 8MiB is less than cache.max_object_size",
    );
    let c = ok(&format!("{ORIGIN}[cache]\nmemory = \"8MiB\"\nmax_object_size = \"8MiB\"\n"));
    assert_eq!(c.cache.max_object_size, c.cache.memory);
}

#[test]
fn server_limits() {
    one_err(
        &format!("{ORIGIN}[server]\nmax_header_size = \"4KiB\"\n"),
        "t.toml:4: server.max_header_size: must be at least 8KiB",
    );
    one_err(&format!("{ORIGIN}[server]\nmax_headers = 0\n"), "t.toml:4: server.max_headers: must be greater than 0");
    let c = ok(&format!("{ORIGIN}[server]\nmax_header_size = \"16KiB\"\nmax_headers = 50\n"));
    assert_eq!((c.server.max_header_size, c.server.max_headers), (16 * 1024, 50));
}

#[test]
fn listen_addresses_are_socket_addresses_used_once() {
    let c = ok(&format!("{ORIGIN}[server]\nlisten = [\"0.0.0.0:80\", \"[::1]:8080\"]\n"));
    assert_eq!(c.server.listen.len(), 2);
    assert!(c.server.listen[1].is_ipv6());
    one_err(&format!("{ORIGIN}[server]\nlisten = [\"localhost:80\"]\n"), "t.toml:4: server.listen[0]: invalid address");
    one_err(
        &format!("{ORIGIN}[server]\nlisten = [\"127.0.0.1:80\", \"127.0.0.1:80\"]\n"),
        "t.toml:4: server.listen[1]: 127.0.0.1:80 is already used by server.listen[0]",
    );
    one_err(
        &format!("{ORIGIN}[admin]\nlisten = \"127.0.0.1:8080\"\n"),
        "t.toml:4: admin.listen: 127.0.0.1:8080 is already used by server.listen (by default)",
    );
    one_err(&format!("{ORIGIN}[server]\nlisten = []\n"), "t.toml:4: server.listen: no listener");
}

#[test]
fn admin_listener_can_be_off() {
    assert_eq!(ok(&format!("{ORIGIN}[admin]\nlisten = \"off\"\n")).admin.listen, None);
    one_err(&format!("{ORIGIN}[admin]\nlisten = \"9901\"\n"), "t.toml:4: admin.listen: invalid address");
}

#[test]
fn admin_token_file_wins_env_fills_in() {
    let with_env = |text: &str| {
        let env = Env { admin_token: Some("from-env".to_string()), hostname: None };
        parse_with_env(text, "t.toml", Path::new("/"), &env).map(|c| c.admin.token).map_err(|e| e.to_string())
    };
    assert_eq!(with_env(ORIGIN), Ok(Some("from-env".to_string())));
    assert_eq!(with_env(&format!("{ORIGIN}[admin]\ntoken = \"from-file\"\n")), Ok(Some("from-file".to_string())));
    assert_eq!(ok(ORIGIN).admin.token, None);
    one_err(&format!("{ORIGIN}[admin]\ntoken = \"\"\n"), "t.toml:4: admin.token: must not be empty");
}

#[test]
fn origin_url_is_an_absolute_http_or_https_base_url() {
    let c = ok("[origin]\nurl = \"https://origin.example.com:8443\"\n");
    assert_eq!(c.origin.url.as_ref().and_then(|u| u.scheme_str()), Some("https"));
    for bad in [
        "/relative",
        "example.com",
        "ftp://example.com",
        "http://example.com/base",
        "http://example.com/?q=1",
        "http://u:p@example.com",
        "http://",
    ] {
        one_err(&format!("[origin]\nurl = \"{bad}\"\n"), "t.toml:2: origin.url: invalid URL");
    }
}

#[test]
fn tls_needs_certificates_that_exist_relative_to_the_config() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("certs"))?;
    std::fs::write(dir.path().join("certs/a.pem"), "pem")?;
    std::fs::write(dir.path().join("certs/a.key"), "key")?;
    let tls =
        "[server]\ntls_listen = [\"127.0.0.1:8443\"]\n[[server.tls]]\ncert = \"certs/a.pem\"\nkey = \"certs/a.key\"\n";
    let c = parse_in(&format!("{ORIGIN}{tls}"), dir.path()).map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(c.server.tls[0].cert, dir.path().join("certs/a.pem"));
    assert_eq!(c.server.tls[0].key, dir.path().join("certs/a.key"));

    let missing = format!("{ORIGIN}{}", tls.replace("a.key", "missing.key"));
    let Err(errors) = parse_in(&missing, dir.path()) else { panic!("a missing key file must be an error") };
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!((errors.0[0].line, errors.0[0].key.as_str()), (7, "server.tls[0].key"));
    assert!(errors.0[0].reason.contains(&dir.path().join("certs/missing.key").display().to_string()), "{errors}");
    assert!(errors.0[0].reason.contains("does not exist"), "{errors}");

    let no_key = format!("{ORIGIN}[[server.tls]]\ncert = \"certs/a.pem\"\n");
    let Err(errors) = parse_in(&no_key, dir.path()) else { panic!("a tls entry without key must be an error") };
    assert_eq!(errors.to_string(), "t.toml:3: server.tls[0].key: required");

    one_err(&format!("{ORIGIN}[server]\ntls_listen = [\"127.0.0.1:8443\"]\n"), "t.toml:4: server.tls: at least one");
    Ok(())
}

#[test]
fn ca_file_is_resolved_and_must_exist() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ca.pem"), "pem")?;
    let c = parse_in(&format!("{ORIGIN}ca_file = \"ca.pem\"\n"), dir.path())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(c.origin.ca_file, Some(dir.path().join("ca.pem")));
    let Err(errors) = parse_in(&format!("{ORIGIN}ca_file = \".\"\n"), dir.path()) else {
        panic!("a folder is not a CA file")
    };
    assert!(
        errors.to_string().starts_with("t.toml:3: origin.ca_file: ") && errors.to_string().contains("is not a file"),
        "{errors}"
    );
    Ok(())
}

#[test]
fn compression_algorithms_are_known_and_unique() {
    assert_eq!(
        ok(&format!("{ORIGIN}[compression]\nalgorithms = [\"zstd\", \"br\"]\n")).compression.algorithms,
        ["zstd", "br"]
    );
    assert!(ok(&format!("{ORIGIN}[compression]\nalgorithms = []\nmin_size = 0\n")).compression.algorithms.is_empty());
    let errors = errs(&format!("{ORIGIN}[compression]\nalgorithms = [\"gzip\", \"deflate\", \"gzip\"]\n"));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:4: compression.algorithms[1]: \"deflate\" is not one of"), "{}", errors[0]);
    assert!(errors[1].starts_with("t.toml:4: compression.algorithms[2]: \"gzip\" is listed twice"), "{}", errors[1]);
}

#[test]
fn compression_types_and_levels() {
    let c = ok(ORIGIN).compression;
    assert_eq!((c.gzip_level, c.brotli_level, c.zstd_level), (6, 5, 3));
    assert!(c.types.iter().any(|t| t == "text/*"));
    let c = ok(&format!(
        "{ORIGIN}[compression]\ntypes = [\"text/html\", \"+json\"]\ngzip_level = 9\nbrotli_level = 0\nzstd_level = 19\n"
    ))
    .compression;
    assert_eq!(c.types, ["text/html", "+json"]);
    assert_eq!((c.gzip_level, c.brotli_level, c.zstd_level), (9, 0, 19));
    let errors = errs(&format!("{ORIGIN}[compression]\ntypes = [\"text\"]\nbrotli_level = 12\ngzip_level = 0\n"));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("t.toml:4: compression.types[0]: expected"), "{}", errors[0]);
    assert!(errors.iter().any(|e| e.starts_with("t.toml:5: compression.brotli_level: must be between 0 and 11")));
    assert!(errors.iter().any(|e| e.starts_with("t.toml:6: compression.gzip_level: must be")), "{errors:#?}");
}

#[test]
fn throttle_queue_timeout_exemption_and_trusted_proxies() {
    let c = ok(ORIGIN);
    assert_eq!(c.throttle.origin_queue_timeout, std::time::Duration::from_secs(2));
    assert!(!c.throttle.exempt_hits && c.throttle.trusted_proxies.is_empty());
    let c = ok(&format!(
        "{ORIGIN}[throttle]\norigin_queue_timeout = \"250ms\"\nexempt_hits = true\n\
         trusted_proxies = [\"10.1.2.3/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n"
    ));
    assert_eq!(c.throttle.origin_queue_timeout, std::time::Duration::from_millis(250));
    assert!(c.throttle.exempt_hits);
    let nets: Vec<String> = c.throttle.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
    one_err(
        &format!("{ORIGIN}[throttle]\ntrusted_proxies = [\"10.0.0.0/8\", \"not-a-net\"]\n"),
        "t.toml:4: throttle.trusted_proxies[1]: invalid network \"not-a-net\"",
    );
    one_err(
        &format!("{ORIGIN}[throttle]\norigin_queue_timeout = \"0s\"\n"),
        "t.toml:4: throttle.origin_queue_timeout: must be greater than 0",
    );
}

#[test]
fn throttle_limits_are_positive_and_bursts_need_rates() {
    let c = ok(&format!("{ORIGIN}[throttle]\nclient_rate = 100\nclient_burst = 200\norigin_max_inflight = 64\n"));
    assert_eq!((c.throttle.client_rate, c.throttle.client_burst), (Some(100), Some(200)));
    assert_eq!((c.throttle.origin_rate, c.throttle.origin_max_inflight), (None, Some(64)));
    one_err(
        &format!("{ORIGIN}[throttle]\nclient_rate = 0\n"),
        "t.toml:4: throttle.client_rate: must be greater than 0",
    );
    one_err(
        &format!("{ORIGIN}[throttle]\norigin_rate = -1\n"),
        "t.toml:4: throttle.origin_rate: must be greater than 0",
    );
    one_err(
        &format!("{ORIGIN}[throttle]\norigin_max_inflight = 5000000000\n"),
        "t.toml:4: throttle.origin_max_inflight: must be between",
    );
    let errors = errs(&format!("{ORIGIN}[throttle]\nclient_burst = 10\norigin_burst = 10\n"));
    assert_eq!(
        errors,
        [
            "t.toml:4: throttle.client_burst: needs throttle.client_rate",
            "t.toml:5: throttle.origin_burst: needs throttle.origin_rate"
        ]
    );
}

#[test]
fn cluster_values() {
    one_err(
        &format!("{ORIGIN}[cluster]\nparent_fallback = \"retry\"\n"),
        "t.toml:4: cluster.parent_fallback: \"retry\" is not one of",
    );
    one_err(&format!("{ORIGIN}[cluster]\nsecret = \"\"\n"), "t.toml:4: cluster.secret: must not be empty");
    assert_eq!(
        ok(&format!("{ORIGIN}[cluster]\nparent_fallback = \"error\"\n")).cluster.parent_fallback,
        ParentFallback::Error
    );
}

#[test]
fn purge_keys_have_defaults_and_are_checked() {
    let c = ok(ORIGIN);
    assert!(c.purge.allow.is_empty(), "PURGE is allowed from nobody by default");
    assert_eq!(c.purge.fanout_timeout, Duration::from_secs(2));
    assert_eq!(c.purge.sync_interval, Duration::from_secs(5));
    assert_eq!((c.purge.log_max_entries, c.purge.tag_index_max), (100_000, 1_000_000));
    assert_eq!(c.purge.log_max_age, Duration::from_secs(24 * 3600));
    let c = ok(&format!(
        "{ORIGIN}[purge]\nallow = [\"127.0.0.1/32\", \"::1\"]\nfanout_timeout = \"500ms\"\nlog_max_entries = 10\n"
    ));
    let nets: Vec<String> = c.purge.allow.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["127.0.0.1/32", "::1/128"]);
    assert_eq!((c.purge.fanout_timeout, c.purge.log_max_entries), (Duration::from_millis(500), 10));
    one_err(
        &format!("{ORIGIN}[purge]\nallow = [\"everyone\"]\n"),
        "t.toml:4: purge.allow[0]: invalid network \"everyone\"",
    );
    one_err(&format!("{ORIGIN}[purge]\ntag_index_max = 0\n"), "t.toml:4: purge.tag_index_max: must be greater than 0");
    one_err(&format!("{ORIGIN}[purge]\nfanout = \"1s\"\n"), "t.toml:4: purge.fanout: unknown key");
}
