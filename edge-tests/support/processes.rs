//! Real processes for the tests that need a whole deployment: the `edgecache` binary as nodes of a topology (and as
//! the sample origin), and a real Prometheus scraping them. Every child is killed when its handle is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::free_port;

/// A child process, killed on drop.
pub struct Running {
    child: Child,
}

impl Running {
    /// Starts `program` with `args`, its output discarded (or written to `log`, when given).
    pub fn spawn(name: &str, program: &Path, args: &[&str], log: Option<&Path>) -> Running {
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("log file");
                (Stdio::from(file.try_clone().expect("log file")), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({}): {e}", program.display()));
        Running { child }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `edgecache` binary under test.
pub fn edgecache_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_edgecache"))
}

/// Where `program` is on `PATH`, if it is.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// One node of a test topology.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub pop: String,
    pub port: u16,
    pub admin_port: u16,
    /// Extra TOML appended to the node's config (e.g. a `[throttle]` table).
    pub extra: String,
}

/// A two-tier topology: `edges` in pop "edge" with parent pop "shield" of `shields`, over a sample origin.
#[derive(Debug, Clone)]
pub struct Topology {
    pub edges: Vec<NodeSpec>,
    pub shields: Vec<NodeSpec>,
    pub origin_port: u16,
    pub token: String,
}

impl Topology {
    /// Ports chosen, nothing started.
    pub fn new(edges: usize, shields: usize) -> Topology {
        let spec = |pop: &str, i: usize| NodeSpec {
            id: format!("{pop}-{i}"),
            pop: pop.to_string(),
            port: free_port(),
            admin_port: free_port(),
            extra: String::new(),
        };
        Topology {
            edges: (1..=edges).map(|i| spec("edge", i)).collect(),
            shields: (1..=shields).map(|i| spec("shield", i)).collect(),
            origin_port: free_port(),
            token: "observe-test-token".to_string(),
        }
    }

    /// Every node, edges first.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeSpec> {
        self.edges.iter().chain(self.shields.iter())
    }

    /// The config file of `node`. Edges name the first shield as their `origin.url`: the data plane fetches from
    /// there while it ignores `[[pops]]`, and it is the fallback once it routes by them.
    pub fn config(&self, node: &NodeSpec) -> String {
        let list = |nodes: &[NodeSpec]| {
            let entries: Vec<String> = nodes
                .iter()
                .map(|n| format!("{{ id = \"{}\", url = \"http://127.0.0.1:{}\" }}", n.id, n.port))
                .collect();
            entries.join(", ")
        };
        let upstream = if node.pop == "edge" { self.shields[0].port } else { self.origin_port };
        format!(
            "[node]\nid = \"{id}\"\npop = \"{pop}\"\n\n[server]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
             [origin]\nurl = \"http://127.0.0.1:{upstream}\"\n\n[cluster]\nsecret = \"observe-test-secret\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{token}\"\n\n{extra}\n\n\
             [[pops]]\nname = \"edge\"\nparent = \"shield\"\nnodes = [{edges}]\n\n\
             [[pops]]\nname = \"shield\"\nnodes = [{shields}]\n",
            id = node.id,
            pop = node.pop,
            port = node.port,
            admin = node.admin_port,
            token = self.token,
            extra = node.extra,
            edges = list(&self.edges),
            shields = list(&self.shields),
        )
    }

    /// Starts the sample origin and every node (configs written to `dir`), and waits until all are ready.
    pub async fn start(&self, dir: &Path) -> Vec<Running> {
        let bin = edgecache_bin();
        let origin_listen = format!("127.0.0.1:{}", self.origin_port);
        let mut running = vec![Running::spawn("origin", &bin, &["origin", "--listen", &origin_listen], None)];
        for node in self.nodes() {
            let path = dir.join(format!("{}.toml", node.id));
            std::fs::write(&path, self.config(node)).expect("write config");
            let log = dir.join(format!("{}.log", node.id));
            let config = path.to_str().expect("utf-8 path");
            running.push(Running::spawn(&node.id, &bin, &["--config", config], Some(&log)));
        }
        let http = super::client();
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in self.nodes() {
            let url = format!("http://127.0.0.1:{}/readyz", node.admin_port);
            while !http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                let log = std::fs::read_to_string(dir.join(format!("{}.log", node.id))).unwrap_or_default();
                assert!(Instant::now() < deadline, "{} did not become ready:\n{log}", node.id);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        running
    }
}

/// A real Prometheus scraping `targets` every second and evaluating `rule_files` every second.
pub struct Prometheus {
    pub url: String,
    _process: Running,
}

impl Prometheus {
    /// Starts `prometheus` (from `PATH`) with its data in `dir`; waits until it is ready.
    pub async fn start(binary: &Path, dir: &Path, targets: &[String], rule_files: &[PathBuf]) -> Prometheus {
        let port = free_port();
        let quoted: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rules: Vec<String> = rule_files.iter().map(|p| format!("  - \"{}\"", p.display())).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n{}\nscrape_configs:\n  - job_name: edgecache\n    static_configs:\n      - targets: [{}]\n",
            rules.join("\n"),
            quoted.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let data = dir.join("prometheus-data");
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = dir.join("prometheus.log");
        let mut process = Running::spawn("prometheus", binary, &args, Some(&log));
        let url = format!("http://127.0.0.1:{port}");
        let http = super::client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http.get(format!("{url}/-/ready")).send().await.is_ok_and(|r| r.status().is_success()) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(process.alive(), "prometheus exited:\n{log}");
            assert!(Instant::now() < deadline, "prometheus did not become ready:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Prometheus { url, _process: process }
    }

    /// Runs an instant query; the `data` object of the answer, or why it failed.
    pub async fn query(&self, query: &str) -> Result<serde_json::Value, String> {
        let url = url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])
            .map_err(|e| e.to_string())?;
        let response = super::client().get(url).send().await.map_err(|e| e.to_string())?;
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"].clone())
    }

    /// `GET /api/v1/<path>`, the `data` object of the answer.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let response = super::client().get(format!("{}/api/v1/{path}", self.url)).send().await.expect("api");
        let body: serde_json::Value = serde_json::from_str(&response.text().await.expect("text")).expect("json");
        body["data"].clone()
    }
}
