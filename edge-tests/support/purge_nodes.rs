//! Nodes for the purge tests: a topology whose ports are chosen before the nodes start (so every node's config
//! names every other), in-process nodes or `edgecache` child processes, and the admin calls purge tests make.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgecache::app;
use edgecache::config::{Config, PopConfig, PopNodeConfig};

use super::TestNode;

/// The admin token every purge test node uses.
pub const TOKEN: &str = "purge-test-token";
/// The cluster secret of purge test topologies.
pub const SECRET: &str = "purge-test-secret";

pub use super::free_port;

/// One node of a planned topology.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: String,
    pub pop: String,
    pub port: u16,
}

impl Planned {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Plans `pops`: (name, node count); node ids are `{pop}-{n}` from 1.
pub fn plan(pops: &[(&str, usize)]) -> Vec<Planned> {
    pops.iter()
        .flat_map(|(pop, n)| {
            (1..=*n).map(move |i| Planned { id: format!("{pop}-{i}"), pop: pop.to_string(), port: free_port() })
        })
        .collect()
}

/// The `[[pops]]` of a plan.
pub fn pops_of(plan: &[Planned]) -> Vec<PopConfig> {
    let mut pops: Vec<PopConfig> = Vec::new();
    for node in plan {
        let entry = PopNodeConfig { id: node.id.clone(), url: node.url("").parse().expect("url") };
        match pops.iter_mut().find(|p| p.name == node.pop) {
            Some(pop) => pop.nodes.push(entry),
            None => pops.push(PopConfig { name: node.pop.clone(), parent: None, nodes: vec![entry] }),
        }
    }
    pops
}

/// The config of `node` of `plan`, fetching misses from `origin_url`.
pub fn config_of(plan: &[Planned], node: &Planned, origin_url: &str) -> Config {
    let listen = SocketAddr::from(([127, 0, 0, 1], node.port));
    let mut config = Config::standalone(&node.id, listen, origin_url.parse().expect("origin url"));
    config.node.pop = Some(node.pop.clone());
    config.pops = pops_of(plan);
    config.cluster.secret = Some(SECRET.to_string());
    config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.admin.token = Some(TOKEN.to_string());
    config.origin.connect_timeout = Duration::from_secs(1);
    config.origin.response_timeout = Duration::from_secs(5);
    config
}

/// Starts `node` of `plan` in this process.
pub async fn start(config: Config) -> TestNode {
    TestNode { handle: app::start(config).await.expect("node starts") }
}

/// `POST /purge` with the test token and `body`.
pub async fn purge(http: &reqwest::Client, node: &TestNode, body: &str) -> (u16, serde_json::Value) {
    let response = http
        .post(node.admin_url("/purge"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("purge request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("purge answer");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// The ids of the nodes a purge answer lists, with whether each confirmed.
pub fn confirmations(answer: &serde_json::Value) -> Vec<(String, bool)> {
    let nodes = answer["nodes"].as_array().cloned().unwrap_or_default();
    nodes.iter().map(|n| (n["id"].as_str().unwrap_or("").to_string(), n["ok"].as_bool().unwrap_or(false))).collect()
}

/// Waits until the wall clock is in a second after now. `Date` and `Age` are whole seconds, so an object fetched
/// in the same second as a purge is conservatively taken as older than it; tests that expect a hit after a refill
/// let that second pass first.
pub async fn next_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let left = Duration::from_millis(1_000 - u64::from(now.subsec_millis()) + 20);
    tokio::time::sleep(left).await;
}

/// The sum of the series `name` whose labels contain every one of `labels` (like `kind="url"`) in `/metrics`.
pub async fn metric(http: &reqwest::Client, node: &TestNode, name: &str, labels: &[&str]) -> f64 {
    let text = http.get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
