//! The process as an operator runs it: `edgecache --config FILE` serves until SIGTERM, then lets in-flight requests
//! finish before it exits 0.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Reply, TestOrigin, client, free_port};

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_then_exits_zero() {
    let origin = TestOrigin::start(|seen, _| {
        let reply = Reply::ok("finished", &[("cache-control", "no-store")]);
        if seen.path_and_query == "/slow" { reply.delayed(Duration::from_millis(1500)) } else { reply }
    })
    .await;
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edgecache.toml");
    let mut file = std::fs::File::create(&path).expect("config");
    write!(
        file,
        "[node]\nid = \"drain-test\"\n[server]\nlisten = [\"127.0.0.1:{port}\"]\ndrain_timeout = \"10s\"\n\
         [origin]\nurl = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        origin.url()
    )
    .expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_edgecache"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn edgecache");
    crate::support::wait_ready(admin).await;
    let http = client();

    let in_flight = tokio::spawn({
        let http = http.clone();
        async move { http.get(format!("http://127.0.0.1:{port}/slow")).send().await?.text().await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(killed.success());

    let body = in_flight.await.expect("task").expect("the in-flight request completes");
    assert_eq!(body, "finished");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "node did not exit after draining");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer listening");
}
