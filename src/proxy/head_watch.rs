//! The slow-header and idle guard of an HTTP/1.1 client connection. With no request in flight, a connection is
//! closed once it has been quiet for `server.idle_timeout` (an idle keep-alive connection), or for
//! `server.header_read_timeout` since the first byte of a request head that is still not complete (slowloris).
//!
//! hyper can guard heads itself, but it arms a timer for every request head (an allocation, a clock read and a
//! timer insert and removal per request), and counts the wait for the next request as part of the head, so an
//! idle keep-alive connection would be closed after the header timeout instead of the idle one. This guard costs
//! two atomic additions per request, a load per read, and one timer per connection that wakes every quarter of
//! the header timeout: a connection is closed between its limit and a quarter of the header timeout more.
//! HTTP/2 connections are left to hyper's keep-alive once their first request shows them to be HTTP/2: their
//! streams come and go independently. One case gets the idle limit where the header one would be right: the start
//! of a head that arrived in the same read as the whole head before it (pipelining), since a request's start
//! clears the "head begun" mark of every byte read before it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::head_limit::HeadLimit;

/// Checks of a quiet connection before it is closed (each a quarter of the timeout apart).
const QUIET_CHECKS: u32 = 4;

/// The shortest time between two checks.
const SHORTEST_CHECK: Duration = Duration::from_millis(10);

/// One added to the requests in flight (the low half) and to the events (the high half).
const STARTED: u64 = (1 << 32) + 1;
/// One taken from the requests in flight, one added to the events: `(1 << 32) - 1`.
const ENDED: u64 = (1 << 32) - 1;
const IN_FLIGHT_MASK: u64 = (1 << 32) - 1;

/// No request has begun since the last read.
const NO_REQUEST: u8 = 0;
/// A request with a body (or an HTTP/2 one) has begun since the last read.
const REQUEST_WITH_BODY: u8 = 1;
/// A bodiless HTTP/1 request has begun since the last read.
const REQUEST_BODILESS: u8 = 2;

/// What the guard of one connection watches.
#[derive(Debug, Default)]
pub struct HeadWatch {
    /// Requests in flight (low 32 bits) and a count of requests started and ended (high 32 bits, wrapping): one
    /// word, so a request's start and end are one atomic addition each.
    requests: AtomicU64,
    /// Bytes arrived since the last request started: a request head has begun.
    head_begun: AtomicBool,
    /// The connection turned out to be HTTP/2.
    h2: AtomicBool,
    /// A request has begun since the last read: [`NO_REQUEST`], [`REQUEST_WITH_BODY`] or [`REQUEST_BODILESS`] (an
    /// HTTP/1 request without a body, so that the next byte read starts a request head).
    began: AtomicU8,
}

/// The two limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `server.header_read_timeout`: from the first byte of a request head to its end.
    pub header: Duration,
    /// `server.idle_timeout`: between requests, when no byte of the next one has come.
    pub idle: Duration,
}

impl HeadWatch {
    /// The guard of a new connection.
    pub fn new() -> Arc<HeadWatch> {
        Arc::new(HeadWatch::default())
    }

    /// A request head of `version` arrived, followed by a body unless `bodiless`: the request counts as in flight
    /// until the returned guard is dropped (with the response's body, or with the request's future if it never
    /// answers).
    pub fn request(self: &Arc<Self>, version: Version, bodiless: bool) -> InFlight {
        let h2 = version == Version::HTTP_2;
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        let began = if bodiless && !h2 { REQUEST_BODILESS } else { REQUEST_WITH_BODY };
        self.began.store(began, Ordering::Relaxed);
        self.requests.fetch_add(STARTED, Ordering::Relaxed);
        self.head_begun.store(false, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Bytes were read from the client.
    fn bytes_read(&self) {
        if !self.head_begun.load(Ordering::Relaxed) {
            self.head_begun.store(true, Ordering::Relaxed);
        }
    }

    /// Resolves when the connection must be closed (see the module doc); never for an HTTP/2 connection.
    pub async fn expired(&self, limits: Limits) {
        let check = (limits.header / QUIET_CHECKS).max(SHORTEST_CHECK);
        let mut seen = self.requests.load(Ordering::Relaxed);
        let mut begun = self.head_begun.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(check).await;
            if self.h2.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let now = self.requests.load(Ordering::Relaxed);
            let now_begun = self.head_begun.load(Ordering::Relaxed);
            if now != seen || now & IN_FLIGHT_MASK != 0 || now_begun != begun {
                // A request started or ended since the last check, one is still in flight, or a head began:
                // the quiet time counts from here.
                (seen, begun, quiet) = (now, now_begun, Duration::ZERO);
                continue;
            }
            quiet += check;
            if quiet >= if begun { limits.header } else { limits.idle } {
                return;
            }
        }
    }
}

/// A client connection whose reads tell its guard that a request head has begun, and whose request heads are held
/// to `server.max_header_size` (`head_limit.rs`).
pub struct WatchedIo<S> {
    inner: S,
    watch: Arc<HeadWatch>,
    limit: HeadLimit,
}

impl<S> WatchedIo<S> {
    /// `head_limit` is `server.max_header_size`, at least hyper's smallest buffer.
    pub fn new(inner: S, watch: Arc<HeadWatch>, head_limit: usize) -> WatchedIo<S> {
        WatchedIo { inner, watch, limit: HeadLimit::new(head_limit) }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let began = this.watch.began.load(Ordering::Relaxed);
        if began != NO_REQUEST {
            this.watch.began.store(NO_REQUEST, Ordering::Relaxed);
            this.limit.request_began(began == REQUEST_BODILESS);
        }
        let before = buf.filled().len();
        match this.limit.room() {
            Some(room) if room < buf.remaining() => {
                // Near the end of a head's room: read into a smaller buffer, then count what came in `buf`.
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                let read = limited.filled().len();
                buf.advance(read);
            }
            _ => ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?,
        }
        if buf.filled().len() > before {
            this.watch.bytes_read();
            this.limit.read(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.limit.rewrites() {
            return this.limit.poll_write(Pin::new(&mut this.inner), cx, buf);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.limit.rewrites() {
            let first = bufs.iter().find(|buf| !buf.is_empty()).map_or(&[][..], |buf| &buf[..]);
            return this.limit.poll_write(Pin::new(&mut this.inner), cx, first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request in flight on a watched connection.
#[derive(Debug)]
pub struct InFlight(Arc<HeadWatch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests.fetch_add(ENDED, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until it is dropped.
pub struct WatchedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> WatchedBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> WatchedBody<B> {
        WatchedBody { inner, _in_flight: in_flight }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for WatchedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    const LIMITS: Limits = Limits { header: Duration::from_secs(8), idle: Duration::from_secs(60) };
    /// The checks are a quarter of the header limit apart.
    const CHECK: Duration = Duration::from_secs(2);

    async fn expiry(watch: &Arc<HeadWatch>) -> Instant {
        watch.expired(LIMITS).await;
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_limit() {
        let watch = HeadWatch::new();
        let started = Instant::now();
        let waited = expiry(&watch).await - started;
        assert!(waited >= LIMITS.idle && waited <= LIMITS.idle + CHECK, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_and_not_finished_expires_after_the_header_limit_from_its_first_byte() {
        let watch = HeadWatch::new();
        let (client, server) = tokio::io::duplex(64);
        let mut server = WatchedIo::new(server, watch.clone(), 8192);
        let expired = tokio::spawn({
            let watch = watch.clone();
            async move { expiry(&watch).await }
        });
        // Idle for 30 s (under the idle limit), then the first bytes of a head, and nothing more.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let mut client = client;
        client.write_all(b"GET / HT").await.expect("write");
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).await.expect("read"), 8);
        let begun = Instant::now();
        let waited = expired.await.expect("watcher") - begun;
        assert!(waited >= LIMITS.header && waited <= LIMITS.header + 2 * CHECK, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_it_open_and_the_idle_limit_counts_from_its_end() {
        let watch = HeadWatch::new();
        let in_flight = watch.request(Version::HTTP_11, true);
        let expired = tokio::spawn({
            let watch = watch.clone();
            async move { expiry(&watch).await }
        });
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!expired.is_finished(), "a request in flight for five minutes");
        let ended = Instant::now();
        drop(in_flight);
        let quiet = expired.await.expect("watcher") - ended;
        assert!(quiet >= LIMITS.idle && quiet <= LIMITS.idle + 2 * CHECK, "{quiet:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_keep_coming_keep_it_open_and_http2_is_left_alone() {
        let watch = HeadWatch::new();
        let traffic = {
            let watch = watch.clone();
            tokio::spawn(async move {
                loop {
                    watch.bytes_read();
                    tokio::time::sleep(Duration::from_secs(7)).await;
                    drop(watch.request(Version::HTTP_11, true));
                }
            })
        };
        let expired = tokio::time::timeout(Duration::from_secs(600), watch.expired(LIMITS)).await;
        assert!(expired.is_err(), "a head every 7 s (each under the 8 s limit) for ten minutes");
        traffic.abort();
        let h2 = HeadWatch::new();
        drop(h2.request(Version::HTTP_2, true));
        assert!(tokio::time::timeout(Duration::from_secs(600), h2.expired(LIMITS)).await.is_err());
    }
}
