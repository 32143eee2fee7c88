//! A real two-tier CDN on 127.0.0.1: an edge pop of three nodes under a shield pop of two, one counting origin.
//! Every node's ports are bound before the topology is written; in-process nodes start on those very listeners
//! (`app::start_on`), and a node run as a child process (the `edgecache` binary, so that a test can SIGKILL it)
//! gets ports that were free a moment before.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgecache::app::{self, NodeHandle};
use edgecache::cluster::{Member, Ring};
use edgecache::config::Config;

use super::{TestOrigin, client};

/// The site every cluster test asks for (sent as `Host`), so that all edges share one cache key per path.
pub const HOST: &str = "cdn.test";

/// A GET of `path` on `node` for host [`HOST`].
pub fn get(http: &reqwest::Client, node: &ClusterNode, path: &str) -> reqwest::RequestBuilder {
    http.get(node.url(path)).header("host", HOST)
}

/// The shared secret of the test clusters.
pub const SECRET: &str = "test-cluster-secret";

/// How a node of the cluster runs.
enum Runner {
    InProcess(Box<NodeHandle>),
    Child(Child),
    /// Listed in the topology, never started (its port is closed).
    Absent,
}

/// One node of a test cluster.
pub struct ClusterNode {
    pub id: String,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    runner: Runner,
    /// The node's config file and tweak, to start it again.
    config: (String, fn(&mut Config)),
    _dir: Option<tempfile::TempDir>,
}

impl ClusterNode {
    /// `http://addr` of the node's data plane, followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// `http://addr` of the node's admin listener, followed by `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// Kills a child node with SIGKILL (no drain), or stops an in-process node at once.
    pub async fn kill(&mut self) {
        match std::mem::replace(&mut self.runner, Runner::Absent) {
            Runner::Child(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Runner::InProcess(handle) => {
                handle.begin_shutdown();
                handle.wait().await;
            }
            Runner::Absent => {}
        }
    }

    /// Starts a stopped node again in this process, on the same ports.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.runner = in_process(&self.config.0, Vec::new(), self.config.1).await;
        wait_ready(self).await;
    }

    /// The sum of a metric's series whose label text contains every one of `labels` (`upstream="parent"`).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = client().get(self.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Runner::Child(child) = &mut self.runner {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How a test cluster is made.
pub struct ClusterSpec {
    pub edges: usize,
    pub shields: usize,
    /// Edge indexes run as child processes.
    pub child_edges: Vec<usize>,
    /// Shield indexes run as child processes.
    pub child_shields: Vec<usize>,
    /// Shield nodes are listed but never started.
    pub shields_absent: bool,
    /// Extra `[cluster]` lines for every node (`parent_fallback = "error"`).
    pub cluster_toml: String,
    /// Applied to the config of every in-process node.
    pub tweak: fn(&mut Config),
}

impl Default for ClusterSpec {
    fn default() -> ClusterSpec {
        ClusterSpec {
            edges: 3,
            shields: 2,
            child_edges: Vec::new(),
            child_shields: Vec::new(),
            shields_absent: false,
            cluster_toml: String::new(),
            tweak: |_| {},
        }
    }
}

/// A running test cluster.
pub struct TestCluster {
    pub edges: Vec<ClusterNode>,
    pub shields: Vec<ClusterNode>,
}

struct Ports {
    http: SocketAddr,
    admin: SocketAddr,
    listeners: Vec<TcpListener>,
}

fn bind_ports(pre_bound: bool) -> Ports {
    if !pre_bound {
        // A child binds its own ports: picked where no other test's `bind(":0")` can take them meanwhile.
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        return Ports { http: at(super::free_port()), admin: at(super::free_port()), listeners: Vec::new() };
    }
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind");
    let (http, admin) = (bind(), bind());
    let addrs = (http.local_addr().expect("addr"), admin.local_addr().expect("addr"));
    Ports { http: addrs.0, admin: addrs.1, listeners: vec![http, admin] }
}

impl TestCluster {
    /// Three edges under two shields (or as `spec` says), in front of `origin`; returns once every node is ready.
    pub async fn start(origin: &TestOrigin, spec: ClusterSpec) -> TestCluster {
        TestCluster::start_before(&origin.url(), spec).await
    }

    /// The same, in front of the origin at `origin_url`.
    pub async fn start_before(origin_url: &str, spec: ClusterSpec) -> TestCluster {
        let edge_ids: Vec<String> = (1..=spec.edges).map(|i| format!("edge-{i}")).collect();
        let shield_ids: Vec<String> = (1..=spec.shields).map(|i| format!("shield-{i}")).collect();
        let mut edge_ports: Vec<Ports> = (0..spec.edges).map(|i| bind_ports(!spec.child_edges.contains(&i))).collect();
        let mut shield_ports: Vec<Ports> =
            (0..spec.shields).map(|i| bind_ports(!spec.shields_absent && !spec.child_shields.contains(&i))).collect();
        let list = |ids: &[String], ports: &[Ports]| {
            ids.iter()
                .zip(ports)
                .map(|(id, p)| format!("{{ id = \"{id}\", url = \"http://{}\" }}", p.http))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let topology = format!(
            "[[pops]]\nname = \"edge\"\nparent = \"shield\"\nnodes = [{}]\n\n[[pops]]\nname = \"shield\"\nnodes = [{}]\n",
            list(&edge_ids, &edge_ports),
            list(&shield_ids, &shield_ports)
        );
        let file = |id: &str, ports: &Ports| {
            format!(
                "[node]\nid = \"{id}\"\n[server]\nlisten = [\"{}\"]\n[origin]\nurl = \"{}\"\nconnect_timeout = \"3s\"\n\
                 response_timeout = \"10s\"\n[cluster]\nsecret = \"{SECRET}\"\nprobe_interval = \"250ms\"\n{}\n\
                 [admin]\nlisten = \"{}\"\n\n{topology}",
                ports.http, origin_url, spec.cluster_toml, ports.admin
            )
        };
        let mut shields = Vec::new();
        for (i, (id, ports)) in shield_ids.iter().zip(shield_ports.iter_mut()).enumerate() {
            let text = file(id, ports);
            let (runner, dir) = if spec.shields_absent {
                (Runner::Absent, None)
            } else if spec.child_shields.contains(&i) {
                let (child, dir) = child(&text);
                (Runner::Child(child), Some(dir))
            } else {
                (in_process(&text, std::mem::take(&mut ports.listeners), spec.tweak).await, None)
            };
            let config = (text, spec.tweak);
            shields.push(ClusterNode {
                id: id.clone(),
                http: ports.http,
                admin: ports.admin,
                runner,
                config,
                _dir: dir,
            });
        }
        let mut edges = Vec::new();
        for (i, (id, ports)) in edge_ids.iter().zip(edge_ports.iter_mut()).enumerate() {
            let text = file(id, ports);
            let (runner, dir) = if spec.child_edges.contains(&i) {
                let text = text.clone();
                let (child, dir) = child(&text);
                (Runner::Child(child), Some(dir))
            } else {
                (in_process(&text.clone(), std::mem::take(&mut ports.listeners), spec.tweak).await, None)
            };
            let config = (text, spec.tweak);
            edges.push(ClusterNode { id: id.clone(), http: ports.http, admin: ports.admin, runner, config, _dir: dir });
        }
        let cluster = TestCluster { edges, shields };
        for node in cluster.edges.iter().chain(&cluster.shields) {
            if !matches!(node.runner, Runner::Absent) {
                wait_ready(node).await;
            }
        }
        cluster
    }

    /// The index of the edge that owns `path` on host [`HOST`].
    pub fn edge_owner(&self, path: &str) -> usize {
        owner_of(&self.edges, path)
    }

    /// The index of the shield that owns `path` on host [`HOST`] while all shields are up.
    pub fn shield_owner(&self, path: &str) -> usize {
        owner_of(&self.shields, path)
    }
}

/// The index of the node of `pop` that owns `path` on host [`HOST`] while all are up.
fn owner_of(pop: &[ClusterNode], path: &str) -> usize {
    let key = format!("http://{HOST}{path}");
    let ring = Ring::new(pop.iter().map(|n| Member::new(&n.id, n.url("").parse().expect("url"))).collect());
    let owner = ring.owner(edgecache::cluster::ring::key_hash(&key)).expect("owner");
    pop.iter().position(|n| *n.id == *owner.id).expect("a node of the pop")
}

async fn in_process(text: &str, listeners: Vec<TcpListener>, tweak: fn(&mut Config)) -> Runner {
    let mut config = edgecache::config::parse(text, "cluster.toml", std::path::Path::new(".")).expect("valid config");
    tweak(&mut config);
    Runner::InProcess(Box::new(app::start_on(config, listeners).await.expect("node starts")))
}

fn child(text: &str) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edgecache.toml");
    std::fs::write(&path, text).expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_edgecache"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn edgecache");
    (child, dir)
}

async fn wait_ready(node: &ClusterNode) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client().get(node.admin_url("/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} did not become ready", node.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
