//! What every test needs: a real origin, a real edgecache node in front of it, and a client.

pub mod cluster;
pub mod hinting_origin;
pub mod origin;
pub mod processes;
pub mod purge_nodes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use edgecache::app::{self, NodeHandle};
use edgecache::config::Config;

pub use origin::{Reply, ReplyBody, TestOrigin};

/// Where [`free_port`] picks from: below Linux's ephemeral range (32768–60999), so that no `bind(":0")` of another
/// test and no outgoing connection can take a port between the moment it is picked and the moment a child process
/// binds it.
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port for a node that binds it later (a child process, or a config written before the node starts): free
/// now, never handed out twice by this process, and outside the range the OS assigns to `bind(":0")`.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PICKED_PORTS.end - PICKED_PORTS.start;
    let offset = (std::process::id() % u32::from(span)) as u16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port left in {PICKED_PORTS:?}");
        let port = PICKED_PORTS.start + (offset + n) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until the node whose admin listener is on `admin_port` answers `/readyz` (at most 10 s).
pub async fn wait_ready(admin_port: u16) {
    let http = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http.get(format!("http://127.0.0.1:{admin_port}/readyz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "node did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node started in this process, in front of `origin`.
pub struct TestNode {
    pub handle: NodeHandle,
}

impl TestNode {
    /// A standalone node on 127.0.0.1 (ports chosen by the OS) with `tweak` applied to its config.
    pub async fn start(origin: &TestOrigin, tweak: impl FnOnce(&mut Config)) -> TestNode {
        let origin_url = origin.url().parse().expect("origin url");
        let mut config = Config::standalone("test-edge", SocketAddr::from(([127, 0, 0, 1], 0)), origin_url);
        config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.origin.connect_timeout = Duration::from_secs(1);
        config.origin.response_timeout = Duration::from_secs(5);
        tweak(&mut config);
        TestNode { handle: app::start(config).await.expect("node starts") }
    }

    /// `http://addr` of the node's first plain listener, followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.handle.http_addrs[0], path)
    }

    /// `http://addr` of the admin listener, followed by `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.handle.admin_addr.expect("admin listener"), path)
    }
}

/// An HTTP/1.1 client that neither follows redirects nor decompresses, with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The node's `Cache-Status` entry of a response (the last one), or "" if none.
pub fn cache_status(response: &reqwest::Response) -> String {
    let value = response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or_default();
    value.rsplit(", ").next().unwrap_or_default().to_string()
}

/// The value of a response header as text, or "".
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}
