//! A raw HTTP/1.1 origin that answers every request with a `103 Early Hints` first (hyper's server cannot send
//! one), then, once the test releases it, a cacheable `200`; and a raw client read that waits for a given text.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The interim every answer starts with.
pub const HINTS: &str = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nX-Hint: 1\r\n\r\n";
/// The final answer, sent once released.
pub const FINAL: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n\r\nok";

/// The origin; each final answer waits for one [`HintingOrigin::release`] (at most 5 s).
pub struct HintingOrigin {
    pub url: String,
    released: Arc<Semaphore>,
}

impl HintingOrigin {
    pub async fn start() -> HintingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let released = Arc::new(Semaphore::new(0));
        let permits = released.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_each_request(stream, permits.clone()));
            }
        });
        HintingOrigin { url, released }
    }

    /// Lets one more final answer go.
    pub fn release(&self) {
        self.released.add_permits(1);
    }
}

async fn answer_each_request(mut stream: TcpStream, released: Arc<Semaphore>) {
    let mut buf = vec![0u8; 8192];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        if n == 0 || !String::from_utf8_lossy(&buf[..n]).contains("\r\n\r\n") {
            return;
        }
        let _ = stream.write_all(HINTS.as_bytes()).await;
        if let Ok(Ok(permit)) = tokio::time::timeout(Duration::from_secs(5), released.acquire()).await {
            permit.forget();
        }
        let _ = stream.write_all(FINAL.as_bytes()).await;
    }
}

/// Reads from `stream` into `text` until it holds `wanted` (each read at most 5 s).
pub async fn read_until(stream: &mut TcpStream, text: &mut String, wanted: &str) {
    let mut buf = [0u8; 4096];
    while !text.contains(wanted) {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        match read.expect("in time").expect("read") {
            0 => panic!("closed before {wanted:?}: {text}"),
            n => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}
