//! `server.max_header_size`, kept exactly, and 414 (URI Too Long) when the request line is what does not fit.
//!
//! hyper stops reading a request head once its buffer holds `max_buf_size` bytes and answers 431 (Request Header
//! Fields Too Large), but one read may fill its buffer well past that size, so a head up to about twice the limit
//! could still be read whole and accepted. And its 431 is the same whatever part of the head is too long, where
//! RFC 9112 §3 asks for 414 when it is the request-target.
//!
//! This module counts the bytes of each HTTP/1 request head as they are read, and limits a read so that no more
//! than the limit of one head reaches hyper: a head that does not fit then fills hyper's buffer without ending,
//! and hyper answers 431. When the first line had not ended either, the status line of that answer is written as
//! a 414 one (the rest of it, an empty body and the end of the connection, is kept).
//!
//! A head's first byte is known at the start of a connection and after a bodiless HTTP/1 request has begun (what
//! follows is the next head); a head ends when its request begins. After a request with a body the next head is
//! not watched, as the body's end cannot be told from here: there the limit is hyper's own. The bytes of a
//! pipelined head that were read with the request before it are not counted, so such a head is watched from
//! somewhere inside it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

/// The status line hyper writes when a request head does not fit its buffer.
const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n";

/// What is written in its place when the request line did not fit.
const STATUS_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n";

/// Where the watch of a connection's request heads stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Reading a request head: this many bytes of it so far, and whether its first line has ended.
    Reading { read: usize, line_ended: bool },
    /// No request head is being watched (its request began, or where the next one starts is not known).
    Unwatched,
    /// A request line reached the limit: hyper's coming 431 status line is to be written as a 414 one.
    UriTooLong,
    /// This many bytes of the 414 status line are written.
    Rewriting(usize),
    /// The 414 status line is written; the rest of hyper's answer passes as it is.
    Rewritten,
}

/// The request-head watch of one client connection.
#[derive(Debug)]
pub struct HeadLimit {
    /// `server.max_header_size`, at least hyper's smallest buffer.
    limit: usize,
    head: Head,
}

impl HeadLimit {
    /// The watch of a new connection, whose first byte starts a request head.
    pub fn new(limit: usize) -> HeadLimit {
        HeadLimit { limit, head: Head::Reading { read: 0, line_ended: false } }
    }

    /// A request began: its head has ended, and the next byte read starts another head if `next_is_head`.
    pub fn request_began(&mut self, next_is_head: bool) {
        if matches!(self.head, Head::Reading { .. } | Head::Unwatched) {
            self.head = if next_is_head { Head::Reading { read: 0, line_ended: false } } else { Head::Unwatched };
        }
    }

    /// How many bytes the next read may take without passing the limit of the head being read; `None` when no
    /// head is watched.
    pub fn room(&self) -> Option<usize> {
        match self.head {
            Head::Reading { read, .. } => Some(self.limit.saturating_sub(read)),
            Head::UriTooLong => Some(0),
            Head::Unwatched | Head::Rewriting(_) | Head::Rewritten => None,
        }
    }

    /// `bytes` were read from the client.
    pub fn read(&mut self, bytes: &[u8]) {
        if let Head::Reading { read, line_ended } = self.head {
            // A read that ends a line (most often a whole head) has seen a line end: no need to look for one.
            let line_ended = line_ended || bytes.last() == Some(&b'\n') || bytes.contains(&b'\n');
            let read = read + bytes.len();
            self.head = match read >= self.limit {
                false => Head::Reading { read, line_ended },
                // The head fills hyper's buffer: hyper answers 431 unless it ended right at the limit.
                true if line_ended => Head::Unwatched,
                true => Head::UriTooLong,
            };
        }
    }

    /// Whether writes must go through [`HeadLimit::poll_write`].
    pub fn rewrites(&self) -> bool {
        matches!(self.head, Head::UriTooLong | Head::Rewriting(_))
    }

    /// Writes `buf` to `inner`, with hyper's 431 status line written as a 414 one: the bytes before that line
    /// pass first, then the 414 line is written in the 431 line's place (reported as the 431 line's length).
    pub fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        mut inner: Pin<&mut S>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let at = match self.head {
            Head::Rewriting(_) => Some(0),
            Head::UriTooLong => buf.windows(HYPER_431.len()).position(|window| window == HYPER_431),
            Head::Reading { .. } | Head::Unwatched | Head::Rewritten => None,
        };
        match at {
            None => inner.poll_write(cx, buf),
            Some(at) if at > 0 => inner.poll_write(cx, &buf[..at]),
            Some(_) => loop {
                let written = match self.head {
                    Head::Rewriting(written) => written,
                    _ => 0,
                };
                let more = ready!(inner.as_mut().poll_write(cx, &STATUS_414[written..]))?;
                if more == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                if written + more == STATUS_414.len() {
                    self.head = Head::Rewritten;
                    return Poll::Ready(Ok(HYPER_431.len()));
                }
                self.head = Head::Rewriting(written + more);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const LIMIT: usize = 100;

    fn watch_after(reads: &[&[u8]]) -> HeadLimit {
        let mut watch = HeadLimit::new(LIMIT);
        for bytes in reads {
            watch.read(bytes);
        }
        watch
    }

    #[test]
    fn a_request_line_that_reaches_the_limit_without_an_end_is_too_long() {
        let long = [b'a'; LIMIT / 2];
        assert!(!watch_after(&[b"GET /", &long]).rewrites());
        assert!(watch_after(&[b"GET /", &long, &long]).rewrites());
    }

    #[test]
    fn long_header_fields_after_a_short_request_line_are_not_its_business() {
        let long = [b'a'; LIMIT * 2];
        assert!(!watch_after(&[b"GET / HTTP/1.1\r\nx-big: ", &long]).rewrites());
        assert!(!watch_after(&[b"GET / HT", b"TP/1.1\r\n", &long]).rewrites());
    }

    #[test]
    fn reads_are_held_to_the_room_left_in_the_head_and_only_watched_heads_are_limited() {
        let mut watch = watch_after(&[b"GET / HTTP/1.1\r\n", &[b'a'; 30]]);
        assert_eq!(watch.room(), Some(LIMIT - 46));
        watch.request_began(true);
        assert_eq!(watch.room(), Some(LIMIT), "a bodiless request: the next head starts");
        watch.read(b"POST / HTTP/1.1\r\ncontent-length: 200\r\n\r\n");
        watch.request_began(false);
        assert_eq!(watch.room(), None, "a body is not a head");
        watch.read(&[b'a'; LIMIT * 2]);
        assert!(!watch.rewrites());
        watch.request_began(true);
        watch.read(&[b'a'; LIMIT * 2]);
        assert!(watch.rewrites());
        assert_eq!(watch.room(), Some(0));
    }

    /// What the client reads when `writes` go through `watch` to a pipe that takes `capacity` bytes at a time.
    async fn written(watch: &mut HeadLimit, capacity: usize, writes: &[&[u8]]) -> String {
        let (mut client, mut server) = tokio::io::duplex(capacity);
        let reader = tokio::spawn(async move {
            let mut out = String::new();
            client.read_to_string(&mut out).await.map(|_| out)
        });
        for buf in writes {
            let mut rest = *buf;
            while !rest.is_empty() {
                let n =
                    std::future::poll_fn(|cx| watch.poll_write(Pin::new(&mut server), cx, rest)).await.expect("write");
                rest = &rest[n..];
            }
        }
        drop(server);
        reader.await.expect("reader").expect("read")
    }

    #[tokio::test]
    async fn the_431_status_line_is_written_as_414_and_what_comes_before_and_after_passes() {
        let mut watch = watch_after(&[&[b'a'; LIMIT]]);
        let before = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".as_slice();
        let answer = [before, HYPER_431, b"content-length: 0\r\n\r\n"].concat();
        let expected =
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(written(&mut watch, 4096, &[&answer]).await, expected);
        assert!(!watch.rewrites());
        // A pipe that takes 5 bytes at a time: the 414 line is written in pieces.
        let mut watch = watch_after(&[&[b'a'; LIMIT]]);
        assert_eq!(written(&mut watch, 5, &[before, &answer[before.len()..]]).await, expected);
    }

    #[tokio::test]
    async fn without_a_long_request_line_a_431_passes_as_it_is() {
        let mut watch = watch_after(&[b"GET / HTTP/1.1\r\n"]);
        assert!(!watch.rewrites());
        let answer = [HYPER_431, b"\r\n"].concat();
        assert_eq!(written(&mut watch, 4096, &[&answer]).await, "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
    }
}
