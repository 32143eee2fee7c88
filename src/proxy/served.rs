//! What was served, once it has been: the body a client receives, wrapped so that its bytes and its first byte are
//! seen, and at its end (or when the client leaves) the bytes counted by source and the access log line written.
//!
//! The upstream's share of a request's time is noted by [`note_upstream`] from wherever the fetch runs (a
//! coalesced leader's fetch runs in a task of its own: [`UpstreamTiming::carry`] takes the note along).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version, header};
use http_body::{Body, Frame, SizeHint};
use prometheus::IntCounter;
use tracing::Instrument;

use super::body::{BoxError, ProxyBody};
use crate::metrics::Metrics;
use crate::metrics::delivery::Source;
use crate::policy::CacheStatus;

tokio::task_local! {
    static UPSTREAM: Arc<UpstreamTiming>;
}

/// Which upstream a request went to and how long it took to answer, noted by the fetch.
#[derive(Debug, Default)]
pub struct UpstreamTiming {
    /// Microseconds until the upstream's response head, plus one (0: nothing went upstream).
    micros_plus_one: AtomicU64,
    /// Index into [`UPSTREAM_KINDS`].
    kind: AtomicU64,
}

/// The `upstream` values a fetch may note (the metric label of `edgecache_upstream_requests_total`).
pub const UPSTREAM_KINDS: [&str; 3] = ["origin", "parent", "peer"];

impl UpstreamTiming {
    /// Runs `future` with this request's timing in scope, so that fetches made inside it note their time here.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        UPSTREAM.scope(self, future).await
    }

    /// Runs `future` (a fetch spawned for the current request) with the current request's timing, if any.
    pub async fn carry<F: Future>(timing: Option<Arc<UpstreamTiming>>, future: F) -> F::Output {
        match timing {
            Some(timing) => UPSTREAM.scope(timing, future).await,
            None => future.await,
        }
    }

    /// The current request's timing, to hand to a task spawned on its behalf.
    pub fn current() -> Option<Arc<UpstreamTiming>> {
        UPSTREAM.try_with(Arc::clone).ok()
    }

    /// The upstream's kind and time to response head, if the request went upstream.
    pub fn get(&self) -> Option<(&'static str, Duration)> {
        let micros = self.micros_plus_one.load(Ordering::Relaxed).checked_sub(1)?;
        let kind = UPSTREAM_KINDS.get(self.kind.load(Ordering::Relaxed) as usize).copied().unwrap_or("origin");
        Some((kind, Duration::from_micros(micros)))
    }
}

/// Notes, for the request being served (if any), that `kind` (`origin`, `parent`, `peer`) answered after
/// `elapsed`. The last fetch of a request wins (a revalidation that refetches whole).
pub fn note_upstream(kind: &str, elapsed: Duration) {
    let _ = UPSTREAM.try_with(|timing| {
        let index = UPSTREAM_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        timing.kind.store(index as u64, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX - 1);
        timing.micros_plus_one.store(micros.saturating_add(1), Ordering::Relaxed);
    });
}

/// A request being served, as observed: when it started, its span, its upstream timing, and (when the access line
/// will be written) what the line needs from the request, taken before the pipeline consumes it.
pub struct Observed {
    started: Instant,
    client: SocketAddr,
    method: Method,
    version: Version,
    /// Host, path and query, user agent.
    access: Option<(String, String, String)>,
    info: bool,
    /// Only when the access line will be written (nothing else reads it).
    timing: Option<Arc<UpstreamTiming>>,
    span: tracing::Span,
}

impl Observed {
    /// Starts observing `request` from `client` at `node`, received at `started`; `access_log` is `log.access`.
    pub fn start<B>(
        request: &Request<B>,
        started: Instant,
        client: SocketAddr,
        node: &str,
        access_log: bool,
    ) -> Observed {
        let access = access_enabled(access_log).then(|| {
            let host = super::pipeline::request_host(request).unwrap_or("-").to_string();
            let uri = request.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_string();
            let agent = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("-");
            (host, uri, agent.to_string())
        });
        let method = request.method().clone();
        let span =
            tracing::debug_span!("request", node, client = %client, method = %method, path = request.uri().path());
        let timing = access.is_some().then(|| Arc::new(UpstreamTiming::default()));
        Observed { started, client, method, version: request.version(), access, info: access_log, timing, span }
    }

    /// Runs the pipeline's synchronous part in the request's span.
    pub fn in_span<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }

    /// Runs the pipeline's `future` in the request's span, with its upstream timing in scope (when it is kept).
    pub async fn around<F: Future>(&self, future: F) -> F::Output {
        let future = future.instrument(self.span.clone());
        match &self.timing {
            Some(timing) => timing.clone().scope(future).await,
            None => future.await,
        }
    }

    /// Records what the outcome says (freshness left at a hit) and wraps the body, which counts its bytes by
    /// source and writes the access line when it has been sent.
    pub fn finish(
        self,
        response: Response<ProxyBody>,
        status: &CacheStatus,
        node: &Arc<str>,
        metrics: &Metrics,
    ) -> Response<ServedBody> {
        if status.hit
            && !status.stale
            && status.forward.is_none()
            && let Some(ttl) = status.ttl
        {
            metrics.delivery.hit_ttl.observe(ttl.max(0) as f64);
        }
        let source = if status.hit {
            Source::Cache
        } else if status.collapsed && !status.error {
            Source::Coalesced
        } else if status.forward_status.is_some() && !status.error {
            Source::Upstream
        } else {
            Source::Generated
        };
        let record = self.access.map(|(host, uri, user_agent)| {
            Box::new(AccessRecord {
                node: node.clone(),
                client: self.client,
                method: self.method,
                version: self.version,
                host,
                uri,
                code: response.status(),
                cache: status.outcome().as_str(),
                cache_status: status.entry(node).to_string(),
                user_agent,
                upstream: self.timing.as_ref().and_then(|t| t.get()),
                info: self.info,
            })
        });
        let counter = metrics.delivery.served(source).clone();
        let started = self.started;
        // A body in memory knows its length; a stream announces it.
        let length = response
            .body()
            .size_hint()
            .exact()
            .filter(|&n| n > 0)
            .or_else(|| response.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok());
        response.map(|body| ServedBody::new(body, started, counter, record).with_length(length))
    }
}

/// One access log line, filled in by the pipeline and completed when the body ends.
pub struct AccessRecord {
    pub node: Arc<str>,
    pub client: SocketAddr,
    pub method: Method,
    pub version: Version,
    pub host: String,
    /// Path and query, as the client sent them.
    pub uri: String,
    pub code: StatusCode,
    /// The `cache_status` label: hit, miss, stale, revalidated, bypass, error.
    pub cache: &'static str,
    /// This node's `Cache-Status` entry.
    pub cache_status: String,
    pub user_agent: String,
    /// The upstream's kind and time to response head, if the request went upstream.
    pub upstream: Option<(&'static str, Duration)>,
    /// Whether the line is written at INFO (`log.access = true`) or DEBUG.
    pub info: bool,
}

/// The body a client receives: the pipeline's body, with a tap that counts what passes.
pub struct ServedBody {
    inner: ProxyBody,
    started: Instant,
    first_byte: Option<Duration>,
    bytes: u64,
    complete: bool,
    /// The `Content-Length` announced, if any: a body that sent all of it is complete even when the connection
    /// stops polling it before its end is seen.
    length: Option<u64>,
    counter: Option<IntCounter>,
    record: Option<Box<AccessRecord>>,
}

impl ServedBody {
    /// Wraps `inner`; its bytes are added to `counter` at the end, and `record` (if any) is written then.
    pub fn new(inner: ProxyBody, started: Instant, counter: IntCounter, record: Option<Box<AccessRecord>>) -> Self {
        ServedBody {
            inner,
            started,
            first_byte: None,
            bytes: 0,
            complete: false,
            length: None,
            counter: Some(counter),
            record,
        }
    }

    /// The same body, known to announce `length` bytes (its `Content-Length`).
    pub fn with_length(mut self, length: Option<u64>) -> Self {
        self.length = length;
        self
    }

    /// Wraps `inner` without counting or logging it (a peer's health probe is not traffic).
    pub fn unobserved(inner: ProxyBody) -> Self {
        ServedBody {
            inner,
            started: Instant::now(),
            first_byte: None,
            bytes: 0,
            complete: false,
            length: None,
            counter: None,
            record: None,
        }
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // The time to first byte is for the access line only: no clock read without one.
                    if this.first_byte.is_none() && this.record.is_some() {
                        this.first_byte = Some(this.started.elapsed());
                    }
                    this.bytes += data.len() as u64;
                }
                this.complete = this.inner.is_end_stream();
            }
            Poll::Ready(None) => this.complete = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ServedBody {
    fn drop(&mut self) {
        if let Some(counter) = &self.counter {
            counter.inc_by(self.bytes);
        }
        let Some(record) = self.record.take() else { return };
        let complete = self.complete || self.inner.is_end_stream() || self.length == Some(self.bytes);
        let total = self.started.elapsed();
        let ttfb = self.first_byte.unwrap_or(total);
        write_access_line(&record, total, ttfb, self.bytes, complete);
    }
}

/// Microseconds of a duration, for the log.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn write_access_line(r: &AccessRecord, total: Duration, ttfb: Duration, bytes: u64, complete: bool) {
    let upstream = r.upstream.map(|(kind, _)| kind).unwrap_or("-");
    let upstream_us = r.upstream.map(|(_, d)| micros(d));
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "access", $level,
                node = %r.node, client = %r.client, method = %r.method, host = r.host.as_str(),
                uri = r.uri.as_str(), version = ?r.version, code = r.code.as_u16(), cache = r.cache,
                cache_status = r.cache_status.as_str(), upstream, upstream_us, ttfb_us = micros(ttfb),
                total_us = micros(total), bytes, complete, user_agent = r.user_agent.as_str(), "access"
            )
        };
    }
    if r.info {
        line!(tracing::Level::INFO);
    } else {
        line!(tracing::Level::DEBUG);
    }
}

/// Whether an access line would be written at all (the log filter may leave it out).
pub fn access_enabled(info: bool) -> bool {
    if info {
        tracing::enabled!(target: "access", tracing::Level::INFO)
    } else {
        tracing::enabled!(target: "access", tracing::Level::DEBUG)
    }
}
