//! What every test needs: a real origin, a real edgecache node in front of it, and a client.

pub mod cluster;
pub mod origin;
pub mod processes;
pub mod purge_nodes;

use std::net::SocketAddr;
use std::time::Duration;

use edgecache::app::{self, NodeHandle};
use edgecache::config::Config;

pub use origin::{Reply, ReplyBody, TestOrigin};

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
