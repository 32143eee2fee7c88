//! Shared helpers of the conformance tests: one origin answering with the headers under test, one node, and a
//! probe that sends a request with given headers and keeps what the test asserts on.

use std::time::{Duration, SystemTime};

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client};

/// What a client saw.
pub struct Probe {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    /// This node's `Cache-Status` entry.
    pub cache: String,
}

impl Probe {
    /// A response header as text, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    /// `Age` as a number (panics if absent or invalid).
    pub fn age(&self) -> u64 {
        self.header("age").parse().unwrap_or_else(|_| panic!("Age missing or invalid: {:?}", self.header("age")))
    }

    /// Whether this node answered from cache without going upstream.
    pub fn is_hit(&self) -> bool {
        self.cache.starts_with("test-edge; hit")
    }
}

/// An origin answering every request with `reply(request index)`, and a node in front of it.
pub async fn setup(
    reply: impl Fn(&crate::support::origin::Seen, usize) -> Reply + Send + Sync + 'static,
) -> (TestOrigin, TestNode) {
    let origin = TestOrigin::start(reply).await;
    let node = TestNode::start(&origin, |_| {}).await;
    (origin, node)
}

/// An origin that always answers 200 `body` with `headers`.
pub async fn fixed(headers: &[(&'static str, &str)]) -> (TestOrigin, TestNode) {
    let headers: Vec<(&'static str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    setup(move |_, n| {
        let pairs: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Reply::ok(format!("body {n}"), &pairs)
    })
    .await
}

/// GET `path` with `headers`.
pub async fn get(node: &TestNode, path: &str, headers: &[(&str, &str)]) -> Probe {
    request(node, reqwest::Method::GET, path, headers).await
}

/// Any method.
pub async fn request(node: &TestNode, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Probe {
    let mut builder = client().request(method, node.url(path));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = builder.send().await.expect("request");
    let cache = cache_status(&response);
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Probe { status, headers, body, cache }
}

/// An HTTP-date `offset` seconds from now, IMF-fixdate.
pub fn date(offset: i64) -> String {
    let now = SystemTime::now();
    let t = if offset >= 0 {
        now + Duration::from_secs(offset as u64)
    } else {
        now - Duration::from_secs((-offset) as u64)
    };
    httpdate::fmt_http_date(t)
}

/// The same instant in the obsolete RFC 850 format: `Sunday, 06-Nov-94 08:49:37 GMT`.
pub fn rfc850(imf: &str) -> String {
    let (day, month, year, time) = parts(imf);
    format!("{}, {day}-{month}-{} {time} GMT", long_weekday(&imf[..3]), &year[2..])
}

/// The same instant in asctime format: `Sun Nov  6 08:49:37 1994`.
pub fn asctime(imf: &str) -> String {
    let (day, month, year, time) = parts(imf);
    format!("{} {month} {:>2} {time} {year}", &imf[..3], day.trim_start_matches('0'))
}

fn parts(imf: &str) -> (&str, &str, &str, &str) {
    let fields: Vec<&str> = imf.split_whitespace().collect();
    (fields[1], fields[2], fields[3], fields[4])
}

fn long_weekday(short: &str) -> &'static str {
    match short {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    }
}

/// Waits until a response with `max-age=1` is stale.
pub async fn until_stale() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}
