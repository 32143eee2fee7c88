//! A small in-process origin for the demo and the benchmarks: fixed bodies from memory with the caching headers an
//! origin would send. Every response says how many requests reached the origin in `x-origin-requests`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest `/bytes/N` body.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// A running sample origin.
pub struct SampleOrigin {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

impl SampleOrigin {
    /// Requests that reached the origin so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Serves the sample origin on `listener` until `shutdown`.
pub fn spawn(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<SampleOrigin> {
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let filler = Bytes::from(vec![b'x'; MAX_BYTES]);
    let counter = requests.clone();
    tokio::spawn(async move {
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok(pair) => pair, Err(_) => continue },
            };
            let _ = stream.set_nodelay(true);
            let (counter, filler, builder) = (counter.clone(), filler.clone(), builder.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    let filler = filler.clone();
                    async move { Ok::<_, Infallible>(answer(request, n, filler).await) }
                });
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(SampleOrigin { addr, requests })
}

async fn answer(request: Request<Incoming>, n: u64, filler: Bytes) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut response = match segments.as_slice() {
        ["bytes", size] => match size.parse::<usize>() {
            Ok(size) if size <= MAX_BYTES => {
                with_cc(filler.slice(..size), "public, max-age=300", "application/octet-stream")
            }
            _ => plain(StatusCode::BAD_REQUEST, "size must be at most 16777216\n"),
        },
        ["static", ..] => {
            let mut r = with_cc(Bytes::from(format!("static content of {path}\n")), "public, max-age=60", "text/plain");
            r.headers_mut().insert(header::ETAG, HeaderValue::from_static("\"v1\""));
            r
        }
        ["html", size] if size.parse::<usize>().is_ok_and(|n| n <= MAX_BYTES) => {
            let size = size.parse::<usize>().unwrap_or_default();
            let mut r = with_cc(html_of_size(size), "public, max-age=300", "text/html; charset=utf-8");
            if let Ok(etag) = HeaderValue::from_str(&format!("\"html-{size}\"")) {
                r.headers_mut().insert(header::ETAG, etag);
            }
            r
        }
        ["html", ..] => with_cc(html_page(), "public, max-age=60", "text/html; charset=utf-8"),
        ["slow", ms] => {
            let ms = ms.parse::<u64>().unwrap_or(1000).min(30_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            with_cc(Bytes::from(format!("answered after {ms} ms\n")), "public, max-age=30", "text/plain")
        }
        ["status", code] => match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(status) => {
                let mut r = with_cc(Bytes::from(format!("status {}\n", status.as_u16())), "no-store", "text/plain");
                *r.status_mut() = status;
                r
            }
            None => plain(StatusCode::BAD_REQUEST, "status must be a number from 100 to 999\n"),
        },
        ["private"] => with_cc(Bytes::from_static(b"for one user only\n"), "private, max-age=60", "text/plain"),
        ["api", ..] => with_cc(Bytes::from(format!("{{\"request\":{n}}}\n")), "no-store", "application/json"),
        ["vary"] => {
            let lang = request.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("en");
            let mut r = with_cc(Bytes::from(format!("language: {lang}\n")), "public, max-age=60", "text/plain");
            r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            r
        }
        _ => plain(
            StatusCode::OK,
            "edgecache sample origin: try /static/a.css, /bytes/1024, /html/, /html/65536, /slow/500, /private, /api/x, /vary, /status/503\n",
        ),
    };
    response.headers_mut().insert("x-origin-requests", HeaderValue::from(n));
    response
}

fn with_cc(body: Bytes, cache_control: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = with_cc(Bytes::from_static(text.as_bytes()), "no-store", "text/plain");
    *response.status_mut() = status;
    response
}

fn html_page() -> Bytes {
    let row = "<tr><td>edgecache</td><td>a caching reverse proxy</td><td>compresses well</td></tr>\n";
    Bytes::from(format!("<!doctype html><html><body><table>\n{}</table></body></html>\n", row.repeat(800)))
}

/// An HTML page of exactly `size` bytes (a table of varied rows, as compressible as a real page), for the
/// compression benchmark.
fn html_of_size(size: usize) -> Bytes {
    let mut page = String::with_capacity(size + 128);
    page.push_str("<!doctype html><html><body><table>\n");
    let mut i = 0u64;
    while page.len() < size {
        let hash = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        page.push_str(&format!(
            "<tr><td>{i}</td><td>item {hash:x}</td><td class=\"c{}\">cached at the edge</td></tr>\n",
            i % 7
        ));
        i += 1;
    }
    page.truncate(size);
    Bytes::from(page)
}
