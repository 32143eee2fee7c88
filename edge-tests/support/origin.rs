//! A real hyper origin for the tests: answers each request with whatever the test's handler says (status, headers,
//! body, delays, a body cut short), and records every request that reaches it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type OriginBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// A request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the origin answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
    /// Wait this long before the response head.
    pub delay: Duration,
}

/// The body of a reply.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    Bytes(Bytes),
    /// Announce `declared` bytes with Content-Length, send `sent`, then fail the stream.
    CutShort {
        declared: usize,
        sent: Bytes,
    },
    /// `count` chunks of `chunk` bytes each (byte value = chunk index), streamed.
    Chunks {
        chunk: usize,
        count: usize,
    },
    /// Like `Chunks`, with a pause of `every` before each chunk (a slowly sent body).
    Paced {
        chunk: usize,
        count: usize,
        every: Duration,
    },
    /// No answer: the connection is closed once the reply's delay has passed.
    Reset,
}

impl Reply {
    /// 200 with `body` and the given headers.
    pub fn ok(body: impl Into<Bytes>, headers: &[(&'static str, &str)]) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            body: ReplyBody::Bytes(body.into()),
            delay: Duration::ZERO,
        }
    }

    /// A reply with only a status and headers.
    pub fn status(status: u16, headers: &[(&'static str, &str)]) -> Reply {
        let mut reply = Reply::ok(Bytes::new(), headers);
        reply.status = StatusCode::from_u16(status).expect("valid status");
        reply
    }

    /// The same reply after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A running test origin.
pub struct TestOrigin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    concurrency: Arc<Concurrency>,
}

/// Requests the origin is working on (from arrival until the response body is sent or dropped), and the most ever.
#[derive(Debug, Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
    /// Requests between arrival and the response head, and the most of those at once.
    heads_now: AtomicUsize,
    peak: AtomicUsize,
}

/// One request counted in [`Concurrency`] while it lives.
struct Working(Arc<Concurrency>);

impl Working {
    fn start(concurrency: &Arc<Concurrency>) -> Working {
        let now = concurrency.now.fetch_add(1, Ordering::SeqCst) + 1;
        concurrency.max.fetch_max(now, Ordering::SeqCst);
        Working(concurrency.clone())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body that keeps its request counted while it lives; framing (length) unchanged.
struct CountedBody {
    inner: OriginBody,
    _working: Working,
}

impl hyper::body::Body for CountedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl TestOrigin {
    /// Starts an origin whose `handler` gets each request and how many requests came before it.
    pub async fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> TestOrigin {
        TestOrigin::start_with(None, handler).await
    }

    /// An origin serving HTTPS (HTTP/1.1 or h2 by ALPN) with `tls`.
    pub async fn start_tls(
        tls: tokio_rustls::TlsAcceptor,
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> TestOrigin {
        TestOrigin::start_with(Some(tls), handler).await
    }

    async fn start_with(
        tls: Option<tokio_rustls::TlsAcceptor>,
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> TestOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = seen.clone();
        let concurrency = Arc::new(Concurrency::default());
        let counted = concurrency.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (handler, recorded, tls) = (handler.clone(), recorded.clone(), tls.clone());
                let counted = counted.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        answer(request, handler.clone(), recorded.clone(), Working::start(&counted))
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else { return };
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        TestOrigin { addr, seen, concurrency }
    }

    /// The most requests the origin was ever working on at once.
    pub fn max_concurrent(&self) -> usize {
        self.concurrency.max.load(Ordering::SeqCst)
    }

    /// The origin's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("origin log").clone()
    }

    /// How many requests reached the origin.
    pub fn hits(&self) -> usize {
        self.seen.lock().expect("origin log").len()
    }

    /// The most requests the origin was answering at once (from arrival to the response head).
    pub fn peak_concurrency(&self) -> usize {
        self.concurrency.peak.load(Ordering::SeqCst)
    }
}

async fn answer(
    request: Request<Incoming>,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Seen>>>,
    working: Working,
) -> Result<Response<OriginBody>, BoxError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let path_and_query = parts.uri.path_and_query().map(|pq| pq.to_string()).unwrap_or_default();
    let seen = Seen { method: parts.method, path_and_query, headers: parts.headers, body };
    let index = {
        let mut log = recorded.lock().expect("origin log");
        log.push(seen.clone());
        log.len() - 1
    };
    let reply = handler(&seen, index);
    let concurrency = &working.0;
    let heads = concurrency.heads_now.fetch_add(1, Ordering::SeqCst) + 1;
    concurrency.peak.fetch_max(heads, Ordering::SeqCst);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    concurrency.heads_now.fetch_sub(1, Ordering::SeqCst);
    let declared = match &reply.body {
        ReplyBody::CutShort { declared, .. } => Some(*declared),
        _ => None,
    };
    let body: OriginBody = match reply.body {
        ReplyBody::Bytes(bytes) => http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed(),
        ReplyBody::CutShort { sent, .. } => {
            let frames = stream::iter(vec![
                Ok(Frame::data(sent)),
                Err::<Frame<Bytes>, BoxError>("origin cut the body short".into()),
            ]);
            BodyExt::boxed(StreamBody::new(frames.then(|item| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                item
            })))
        }
        ReplyBody::Chunks { chunk, count } => {
            let frames =
                stream::iter(0..count).map(move |i| Ok::<_, BoxError>(Frame::data(Bytes::from(vec![i as u8; chunk]))));
            BodyExt::boxed(StreamBody::new(frames))
        }
        ReplyBody::Paced { chunk, count, every } => {
            let frames = stream::iter(0..count).then(move |i| async move {
                tokio::time::sleep(every).await;
                Ok::<_, BoxError>(Frame::data(Bytes::from(vec![i as u8; chunk])))
            });
            BodyExt::boxed(StreamBody::new(frames))
        }
        ReplyBody::Reset => return Err("the test origin closes the connection without an answer".into()),
    };
    // The request counts as in progress until its body has been sent (or dropped).
    let body: OriginBody = BodyExt::boxed(CountedBody { inner: body, _working: working });
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().append(name, HeaderValue::from_str(&value).expect("header value"));
    }
    if let Some(declared) = declared {
        response.headers_mut().insert("content-length", HeaderValue::from(declared));
    }
    Ok(response)
}
