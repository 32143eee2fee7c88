//! Streaming transcoders over a response body: decode the origin's coding, encode ours, or both, chunk by chunk
//! with async-compression (a whole body is never held to be compressed). The output can be recorded, up to a
//! limit, so that the encoded variant is stored once its last byte has gone to the client.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use async_compression::Level;
use async_compression::tokio::bufread::{
    BrotliDecoder, BrotliEncoder, GzipDecoder, GzipEncoder, ZstdDecoder, ZstdEncoder,
};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, TryStreamExt};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use prometheus::IntCounter;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};
use tokio_util::io::{ReaderStream, StreamReader};

use super::coding::Coding;

/// Errors of a transcoded body, boxed as hyper expects.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Size of the chunks the encoder's output is read in.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// Compression levels per coding (`compression.gzip_level`, `brotli_level`, `zstd_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub gzip: i32,
    pub brotli: i32,
    pub zstd: i32,
}

impl Levels {
    fn of(&self, coding: Coding) -> Level {
        Level::Precise(match coding {
            Coding::Br => self.brotli,
            Coding::Gzip => self.gzip,
            Coding::Zstd => self.zstd,
        })
    }
}

/// What to do to a body: decode `from` (the origin's coding), then encode `to` at `levels`.
#[derive(Debug, Clone, Copy)]
pub struct Transcode {
    pub from: Option<Coding>,
    pub to: Option<Coding>,
    pub levels: Levels,
}

/// Counters of `edgecache_compressed_bytes_total{encoding=to}`: `bytes_in` fed to the encoder, `bytes_out` it
/// produced.
#[derive(Clone)]
pub struct Meter {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

/// Called with the whole output and the number of input bytes read, once the body ended cleanly.
pub type OnComplete = Box<dyn FnOnce(Bytes, u64) + Send>;

type Reader = Box<dyn AsyncBufRead + Send + Unpin>;

/// A response body run through a [`Transcode`].
pub struct CodedBody {
    output: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>,
    meter: Option<Meter>,
    raw_in: Arc<AtomicU64>,
    record: Option<(BytesMut, u64, OnComplete)>,
    done: bool,
}

impl CodedBody {
    /// Transcodes `inner`. With `meter`, counts the encoder's input and output; with `record`, keeps the output up
    /// to `limit` bytes and hands it to the callback at the end.
    pub fn new<B>(inner: B, transcode: Transcode, meter: Option<Meter>, record: Option<(u64, OnComplete)>) -> CodedBody
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let raw_in = Arc::new(AtomicU64::new(0));
        let input = BodyDataStream::new(inner).map_err(|e| io::Error::other(e.into()));
        let mut reader: Reader =
            Box::new(Counted { inner: StreamReader::new(input), total: raw_in.clone(), counter: None });
        if let Some(from) = transcode.from {
            reader = match from {
                Coding::Br => Box::new(BufReader::new(BrotliDecoder::new(reader))),
                Coding::Gzip => {
                    let mut decoder = GzipDecoder::new(reader);
                    decoder.multiple_members(true);
                    Box::new(BufReader::new(decoder))
                }
                Coding::Zstd => Box::new(BufReader::new(ZstdDecoder::new(reader))),
            };
        }
        let output: Box<dyn AsyncRead + Send + Unpin> = match transcode.to {
            None => reader,
            Some(to) => {
                let counter = meter.as_ref().map(|m| m.bytes_in.clone());
                let fed = Counted { inner: reader, total: Arc::new(AtomicU64::new(0)), counter };
                let level = transcode.levels.of(to);
                match to {
                    Coding::Br => Box::new(BrotliEncoder::with_quality(fed, level)),
                    Coding::Gzip => Box::new(GzipEncoder::with_quality(fed, level)),
                    Coding::Zstd => Box::new(ZstdEncoder::with_quality(fed, level)),
                }
            }
        };
        CodedBody {
            output: Box::pin(ReaderStream::with_capacity(output, OUTPUT_CHUNK)),
            meter,
            raw_in,
            record: record.map(|(limit, on_complete)| (BytesMut::new(), limit, on_complete)),
            done: false,
        }
    }
}

impl Body for CodedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.output.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                if let Some(meter) = &this.meter {
                    meter.bytes_out.inc_by(chunk.len() as u64);
                }
                if let Some((buf, limit, _)) = &mut this.record {
                    if (buf.len() + chunk.len()) as u64 > *limit {
                        this.record = None;
                    } else {
                        buf.extend_from_slice(&chunk);
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(error)) => {
                // A body that failed (upstream reset, corrupt coding) is never stored.
                this.done = true;
                this.record = None;
                Poll::Ready(Some(Err(Box::new(error))))
            }
            None => {
                this.done = true;
                if let Some((buf, _, on_complete)) = this.record.take() {
                    on_complete(buf.freeze(), this.raw_in.load(Ordering::Relaxed));
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A reader that counts the bytes consumed from it.
struct Counted<R> {
    inner: R,
    total: Arc<AtomicU64>,
    counter: Option<IntCounter>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.count(buf.filled().len() - before);
        result
    }
}

impl<R: AsyncBufRead + Unpin> AsyncBufRead for Counted<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.count(amt);
        Pin::new(&mut this.inner).consume(amt);
    }
}

impl<R> Counted<R> {
    fn count(&self, n: usize) {
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(counter) = &self.counter {
            counter.inc_by(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::io::Read;

    const LEVELS: Levels = Levels { gzip: 6, brotli: 4, zstd: 3 };

    fn text() -> Bytes {
        Bytes::from((0..2000).map(|i| format!("<p>line {i} of a compressible page</p>\n")).collect::<String>())
    }

    async fn run(input: Bytes, from: Option<Coding>, to: Option<Coding>) -> (Bytes, Option<(Bytes, u64)>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let record: OnComplete = Box::new(move |bytes, raw| {
            let _ = tx.send((bytes, raw));
        });
        let body =
            CodedBody::new(Full::new(input), Transcode { from, to, levels: LEVELS }, None, Some((1 << 24, record)));
        let out = body.collect().await.expect("body").to_bytes();
        (out, rx.try_recv().ok())
    }

    #[tokio::test]
    async fn gzip_round_trip_and_recording() {
        let (gz, recorded) = run(text(), None, Some(Coding::Gzip)).await;
        assert!(gz.len() < text().len() / 5);
        let (bytes, raw) = recorded.expect("recorded");
        assert_eq!((bytes.clone(), raw), (gz.clone(), text().len() as u64));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).expect("gunzip");
        assert_eq!(plain, text());
        let (decoded, _) = run(gz, Some(Coding::Gzip), None).await;
        assert_eq!(decoded, text());
    }

    #[tokio::test]
    async fn brotli_and_zstd_round_trip_and_transcode() {
        let (br, _) = run(text(), None, Some(Coding::Br)).await;
        let (back, _) = run(br.clone(), Some(Coding::Br), None).await;
        assert_eq!(back, text());
        let (zst, _) = run(br, Some(Coding::Br), Some(Coding::Zstd)).await;
        let (back, _) = run(zst, Some(Coding::Zstd), None).await;
        assert_eq!(back, text());
    }
}
