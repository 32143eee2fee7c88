//! Interim (1xx) responses passed on to HTTP/1.1 clients (RFC 9110 §15.2: a proxy forwards them): a `103 Early
//! Hints` or `102 Processing` an upstream sends before its final answer reaches the client as it arrives, and is
//! never part of what is stored (only the final response is).
//!
//! hyper's server writes only final responses (and its own `100 Continue`), so the interim's bytes go past it: each
//! HTTP/1.1 connection has an [`InterimLine`], a queue that [`InterimIo`] (the connection's writer) empties before
//! anything hyper writes, and whenever hyper flushes. A request that goes to the network opens the line for itself
//! ([`InterimLine::open`]) and runs in its scope ([`forwarding`]), so the upstream client's callback
//! ([`relay_to_current`], hyper's `on_informational`) finds where to queue what the upstream sent, then wakes the
//! connection's task, whose next flush writes it. The line closes when the request's final response is ready (or
//! the request is dropped): an interim of a fetch that outlives its request (a coalesced leader's) is dropped, so
//! it can never land in the next response on the connection. The next write is the final head, so the bytes queued
//! before it always go first.
//!
//! Not passed on: `100 Continue` (hyper answers a client's `Expect` itself, once the body is read), interims to
//! HTTP/1.0 clients (§15.2 forbids them) and to HTTP/2 clients (hyper's server cannot send them), interims from an
//! HTTP/2 upstream (hyper's client does not report them), and those beyond [`MAX_PER_REQUEST`] or
//! [`MAX_QUEUED_BYTES`]. A hit, answered at once, never opens the line; on every write the line costs one load.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use futures_util::task::AtomicWaker;
use http::{HeaderValue, Request, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::forward;

/// Interim responses passed on per request; an upstream that sends more is not relayed further.
pub const MAX_PER_REQUEST: u32 = 16;
/// Bytes of interim responses waiting for the client at most; what would not fit is dropped.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024;

tokio::task_local! {
    static CURRENT: InterimSink;
}

/// The interim responses waiting to be written to one HTTP/1.1 client connection.
#[derive(Debug, Default)]
pub struct InterimLine {
    /// Bytes are queued: the only thing a write reads when there is nothing to write.
    pending: AtomicBool,
    /// The connection's task, woken when bytes are queued.
    waker: AtomicWaker,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// The request that may queue interims now (0: none).
    open: u64,
    /// The last request the line was opened for.
    last: u64,
    /// Interims queued for the open request so far.
    relayed: u32,
    bytes: Vec<u8>,
}

impl InterimLine {
    /// The line of a new connection.
    pub fn new() -> Arc<InterimLine> {
        Arc::new(InterimLine::default())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the line for the connection's current request (closing it for any before).
    pub fn open(self: &Arc<Self>) -> InterimSink {
        let mut queue = self.queue();
        queue.last = queue.last.wrapping_add(1).max(1);
        queue.open = queue.last;
        queue.relayed = 0;
        InterimSink { line: self.clone(), request: queue.open }
    }
}

/// Where one request's interim responses go: its connection's line, while it is open for this request.
#[derive(Debug, Clone)]
pub struct InterimSink {
    line: Arc<InterimLine>,
    request: u64,
}

impl InterimSink {
    /// Queues `status` with `fields` (hop-by-hop fields removed, this node's `via` added) for the client, and
    /// wakes its connection. Returns whether it was queued.
    pub fn queue(&self, status: StatusCode, fields: &http::HeaderMap, via: &HeaderValue) -> bool {
        if !status.is_informational() || status == StatusCode::CONTINUE || status == StatusCode::SWITCHING_PROTOCOLS {
            return false;
        }
        {
            let mut queue = self.line.queue();
            if queue.open != self.request || queue.relayed >= MAX_PER_REQUEST {
                return false;
            }
            let mut fields = fields.clone();
            forward::strip_hop_by_hop(&mut fields);
            fields.append(header::VIA, via.clone());
            let head = encode(status, &fields);
            if queue.bytes.len() + head.len() > MAX_QUEUED_BYTES {
                return false;
            }
            queue.relayed += 1;
            queue.bytes.extend_from_slice(&head);
            self.line.pending.store(true, Ordering::Release);
        }
        self.line.waker.wake();
        true
    }

    fn close(&self) {
        let mut queue = self.line.queue();
        if queue.open == self.request {
            queue.open = 0;
        }
    }
}

/// An HTTP/1.1 interim response head.
fn encode(status: StatusCode, fields: &http::HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(64 + fields.len() * 32);
    // Writing to a `Vec` cannot fail.
    let _ = write!(head, "HTTP/1.1 {} {}\r\n", status.as_str(), status.canonical_reason().unwrap_or(""));
    for (name, value) in fields {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Runs `answer` (a request's steps that need the network) with `sink` in scope, so that its upstream fetches
/// relay their interims to it; the line closes when the answer is ready or dropped.
pub async fn forwarding<F: Future>(sink: InterimSink, answer: F) -> F::Output {
    struct Closing(InterimSink);
    impl Drop for Closing {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let closing = Closing(sink.clone());
    let mut answer = std::pin::pin!(answer);
    let registering = std::future::poll_fn(|cx| {
        closing.0.line.waker.register(cx.waker());
        answer.as_mut().poll(cx)
    });
    CURRENT.scope(sink, registering).await
}

/// The sink of the request being served, to hand to a task spawned on its behalf.
pub fn current() -> Option<InterimSink> {
    CURRENT.try_with(InterimSink::clone).ok()
}

/// Runs `future` (a fetch spawned for the current request) with the request's sink, if any, in scope.
pub async fn carry<F: Future>(sink: Option<InterimSink>, future: F) -> F::Output {
    match sink {
        Some(sink) => CURRENT.scope(sink, future).await,
        None => future.await,
    }
}

/// Has the interims `request` (to be sent upstream) gets relayed to the client of the request being served, if
/// any, with `via` added (this node's entry for the HTTP/1.1 they arrive with).
pub fn relay_to_current<B>(request: &mut Request<B>, via: &HeaderValue) {
    let Some(sink) = current() else { return };
    let via = via.clone();
    hyper::ext::on_informational(request, move |response| {
        if sink.queue(response.status(), response.headers(), &via) {
            tracing::debug!(status = %response.status(), "interim response relayed");
        }
    });
}

/// A client connection's writer that first writes what its [`InterimLine`] holds.
pub struct InterimIo<S> {
    inner: S,
    line: Arc<InterimLine>,
}

impl<S> InterimIo<S> {
    pub fn new(inner: S, line: Arc<InterimLine>) -> InterimIo<S> {
        InterimIo { inner, line }
    }
}

impl<S: AsyncWrite + Unpin> InterimIo<S> {
    /// Writes the queued interims, if any: on every write, so only the test of the flag is inlined there.
    #[inline(always)]
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.line.pending.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain_queued(cx)
    }

    #[cold]
    #[inline(never)]
    fn poll_drain_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut queue = self.line.queue();
        while !queue.bytes.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &queue.bytes))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            queue.bytes.drain(..written);
        }
        if queue.bytes.capacity() > MAX_QUEUED_BYTES / 4 {
            queue.bytes = Vec::new();
        }
        self.line.pending.store(false, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InterimIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InterimIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn early_hints() -> HeaderMap {
        let mut fields = HeaderMap::new();
        fields.insert(header::LINK, HeaderValue::from_static("</a.css>; rel=preload"));
        fields.insert(header::CONNECTION, HeaderValue::from_static("x-hop"));
        fields.insert("x-hop", HeaderValue::from_static("1"));
        fields
    }

    fn via() -> HeaderValue {
        HeaderValue::from_static("1.1 edge")
    }

    #[tokio::test]
    async fn queued_interims_are_written_before_what_follows_and_without_hop_by_hop_fields() {
        let (client, server) = tokio::io::duplex(4096);
        let line = InterimLine::new();
        let sink = line.open();
        assert!(sink.queue(StatusCode::EARLY_HINTS, &early_hints(), &via()));
        assert!(!sink.queue(StatusCode::CONTINUE, &HeaderMap::new(), &via()), "100 is hyper's to send");
        assert!(!sink.queue(StatusCode::OK, &HeaderMap::new(), &via()), "a final response is not an interim");
        let mut io = InterimIo::new(server, line);
        io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.ok();
        drop(io);
        let mut written = String::new();
        let mut client = client;
        client.read_to_string(&mut written).await.ok();
        assert_eq!(
            written,
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\nvia: 1.1 edge\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_closed_or_reopened_line_drops_the_interims_of_the_request_before() {
        let line = InterimLine::new();
        let first = line.open();
        let answered = forwarding(first.clone(), async { 1 }).await;
        assert_eq!(answered, 1);
        assert!(!first.queue(StatusCode::EARLY_HINTS, &HeaderMap::new(), &via()), "closed with its answer");
        let second = line.open();
        assert!(!first.queue(StatusCode::PROCESSING, &HeaderMap::new(), &via()), "the line is the next request's");
        assert!(second.queue(StatusCode::PROCESSING, &HeaderMap::new(), &via()));
    }

    #[test]
    fn a_request_relays_a_bounded_number_of_interims() {
        let line = InterimLine::new();
        let sink = line.open();
        let relayed =
            (0..MAX_PER_REQUEST + 4).filter(|_| sink.queue(StatusCode::PROCESSING, &HeaderMap::new(), &via()));
        assert_eq!(relayed.count(), MAX_PER_REQUEST as usize);
        let mut large = HeaderMap::new();
        large.insert("x-large", HeaderValue::from_bytes(&vec![b'a'; MAX_QUEUED_BYTES]).unwrap_or(via()));
        assert!(!line.open().queue(StatusCode::EARLY_HINTS, &large, &via()), "more than the queue holds");
    }

    #[tokio::test]
    async fn the_scope_reaches_a_request_built_inside_it_and_only_there() {
        let mut outside = Request::new(());
        relay_to_current(&mut outside, &via());
        assert!(outside.extensions().is_empty());
        let line = InterimLine::new();
        let inside = forwarding(line.open(), async {
            let mut request = Request::new(());
            relay_to_current(&mut request, &via());
            request
        })
        .await;
        assert!(!inside.extensions().is_empty(), "the upstream client's callback is set");
        let carried =
            forwarding(line.open(), async { tokio::spawn(carry(current(), async { current() })).await }).await;
        assert!(matches!(carried, Ok(Some(_))), "a spawned fetch keeps the request's sink");
    }
}
