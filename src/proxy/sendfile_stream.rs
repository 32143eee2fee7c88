//! A plain client connection that sends bodies kept in the node's memory file ([`BodyPages`]) with `sendfile`.
//!
//! hyper writes a response as a vectored write of its head and the body's `Bytes` as they are (HTTP/1.1), or of
//! frame headers and slices of the body (h2c). When one of those slices lies in the memory file, the slices
//! before it go out with one `sendmsg(MSG_MORE)` and the slice itself with `sendfile`, so the kernel queues the
//! file's pages by reference instead of copying the body; anything after it is left for hyper's next write (a
//! write may always be partial). Writes with no such slice are the stream's own `writev`.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::cache::BodyPages;

/// A TCP stream whose vectored writes send slices of `pages` by reference.
pub struct SendfileStream {
    stream: TcpStream,
    pages: Arc<BodyPages>,
}

impl SendfileStream {
    pub fn new(stream: TcpStream, pages: Arc<BodyPages>) -> SendfileStream {
        SendfileStream { stream, pages }
    }

    /// One attempt at writing `bufs`, where `bufs[paged]` (at `offset` in the file) is the first slice in it.
    fn send(&self, bufs: &[IoSlice<'_>], paged: usize, offset: u64) -> io::Result<usize> {
        let socket = self.stream.as_fd();
        let before: usize = bufs[..paged].iter().map(|buf| buf.len()).sum();
        let mut written = 0;
        if before > 0 {
            let flags = SendFlags::MORE | SendFlags::NOSIGNAL;
            written = rustix::net::sendmsg(socket, &bufs[..paged], &mut SendAncillaryBuffer::default(), flags)?;
            if written < before {
                return Ok(written);
            }
        }
        let mut file_offset = offset;
        match rustix::fs::sendfile(socket, self.pages.file(), Some(&mut file_offset), bufs[paged].len()) {
            Ok(sent) => Ok(written + sent),
            // What went before is sent: report it; the error comes back on the next write.
            Err(_) if written > 0 => Ok(written),
            Err(errno) => Err(errno.into()),
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let paged = bufs.iter().enumerate().find_map(|(index, buf)| {
            let offset = if buf.is_empty() { None } else { this.pages.offset_of(buf) };
            offset.map(|offset| (index, offset))
        });
        let Some((index, offset)) = paged else {
            return Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        };
        loop {
            ready!(this.stream.poll_write_ready(cx))?;
            // `try_io` clears the socket's readiness when the attempt would block, so the next poll waits.
            match this.stream.try_io(Interest::WRITABLE, || this.send(bufs, index, offset)) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair(pages: Arc<BodyPages>) -> (SendfileStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (SendfileStream::new(server, pages), client)
    }

    fn body(len: usize) -> Bytes {
        (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
    }

    /// Writes `bufs` in full the way hyper does: vectored writes, advancing past what each one took.
    async fn write_all_vectored(stream: &mut SendfileStream, mut parts: Vec<Bytes>) {
        while !parts.is_empty() {
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|part| IoSlice::new(part)).collect();
            let mut n = stream.write_vectored(&slices).await.expect("write");
            assert!(n > 0);
            while n > 0 {
                if n >= parts[0].len() {
                    n -= parts[0].len();
                    parts.remove(0);
                } else {
                    let rest = parts[0].slice(n..);
                    parts[0] = rest;
                    n = 0;
                }
            }
        }
        stream.flush().await.expect("flush");
    }

    #[tokio::test]
    async fn a_head_a_paged_body_and_a_tail_arrive_whole_and_in_order() {
        let pages = BodyPages::new(16 << 20).expect("memfd");
        // 8 MiB: more than the socket takes at once, so sends are partial and wait for room.
        let paged = pages.adopt(&body(8 << 20)).expect("adopted");
        let (mut server, mut client) = pair(pages.clone()).await;
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\ncontent-length: 8388608\r\n\r\n");
        let tail = Bytes::from_static(b"tail");
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            client.read_to_end(&mut received).await.expect("read");
            received
        });
        write_all_vectored(&mut server, vec![head.clone(), paged.clone(), tail.clone()]).await;
        server.shutdown().await.expect("shutdown");
        drop(server);
        let received = reader.await.expect("reader");
        let mut expected = head.to_vec();
        expected.extend_from_slice(&paged);
        expected.extend_from_slice(&tail);
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "the bytes differ");
    }

    #[tokio::test]
    async fn a_paged_slice_from_the_middle_of_a_body_is_sent_from_its_own_offset() {
        let pages = BodyPages::new(1 << 20).expect("memfd");
        let paged = pages.adopt(&body(100_000)).expect("adopted");
        let (mut server, mut client) = pair(pages).await;
        let middle = paged.slice(30_000..70_000);
        write_all_vectored(&mut server, vec![middle.clone()]).await;
        drop(server);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.expect("read");
        assert!(received == middle[..], "the bytes differ");
    }
}
