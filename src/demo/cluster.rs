//! The demo's two-tier cluster on 127.0.0.1: an edge pop of two nodes (`demo-edge-1`, `demo-edge-2`) under a
//! shield pop of one (`demo-shield-1`), in front of the sample origin, all in this process. Every listener is bound
//! first (the preferred ports when free), so the topology can name them before any node starts.

use std::net::{SocketAddr, TcpListener};

use http::Uri;

use crate::app::{self, NodeHandle, StartError};
use crate::cluster::ring::key_hash;
use crate::cluster::{Member, Ring};
use crate::config::{Config, PopConfig, PopNodeConfig};

/// One running node of the demo.
pub struct DemoNode {
    pub id: &'static str,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub handle: NodeHandle,
}

fn listener_near(preferred: u16) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], preferred));
    TcpListener::bind(addr)
        .or_else(|_| TcpListener::bind(("127.0.0.1", 0)))
        .map_err(|source| StartError::Bind { addr, source })
}

fn url(addr: SocketAddr) -> Result<Uri, StartError> {
    format!("http://{addr}").parse().map_err(|_| StartError::NoOrigin)
}

/// Starts the three nodes; the edges come first in the answer, then the shield.
pub async fn start(origin: Uri) -> Result<Vec<DemoNode>, StartError> {
    let plan = [
        ("demo-edge-1", "edge", 8080, 9901),
        ("demo-edge-2", "edge", 8081, 9902),
        ("demo-shield-1", "shield", 8181, 9911),
    ];
    let mut bound = Vec::new();
    for (id, pop, http, admin) in plan {
        let (http, admin) = (listener_near(http)?, listener_near(admin)?);
        let addrs = (
            http.local_addr().map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 0).into(), source })?,
            admin.local_addr().map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 0).into(), source })?,
        );
        bound.push((id, pop, addrs, vec![http, admin]));
    }
    let members = |pop: &str| -> Result<Vec<PopNodeConfig>, StartError> {
        bound
            .iter()
            .filter(|b| b.1 == pop)
            .map(|b| Ok(PopNodeConfig { id: b.0.to_string(), url: url(b.2.0)? }))
            .collect()
    };
    let pops = vec![
        PopConfig { name: "edge".into(), parent: Some("shield".into()), nodes: members("edge")? },
        PopConfig { name: "shield".into(), parent: None, nodes: members("shield")? },
    ];
    let mut nodes = Vec::new();
    for (id, pop, (http, admin), listeners) in bound {
        let mut config = Config::standalone(id, http, origin.clone());
        config.node.pop = Some(pop.to_string());
        config.admin.listen = Some(admin);
        config.pops = pops.clone();
        config.cluster.secret = Some("demo-secret".to_string());
        config.admin.token = Some(DEMO_TOKEN.to_string());
        config.purge.allow = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
        let handle = app::start_on(config, listeners).await?;
        nodes.push(DemoNode { id, http, admin, handle });
    }
    Ok(nodes)
}

/// The demo's admin token (`POST /purge`, `PURGE`).
pub const DEMO_TOKEN: &str = "demo-token";

/// The first `/static/NAME.css` requested at `edge` (by its address as `Host`) that `owner` owns.
pub fn path_owned_by(nodes: &[DemoNode], edge: &DemoNode, owner: &str) -> String {
    let ring = Ring::new(
        nodes
            .iter()
            .filter(|n| n.id.starts_with("demo-edge"))
            .filter_map(|n| Some(Member::new(n.id, url(n.http).ok()?)))
            .collect(),
    );
    ('a'..='z')
        .map(|c| format!("/static/{c}.css"))
        .find(|path| ring.owner(key_hash(&format!("http://{}{path}", edge.http))).is_some_and(|m| &*m.id == owner))
        .unwrap_or_else(|| "/static/a.css".to_string())
}
