//! Response bodies of the data plane: whole bytes (hits, errors) or the upstream's stream, optionally recorded
//! so that a complete, intact body can be stored once its last byte has passed to the client.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::fetched_body::FetchedBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::cache::EncodedVariants;
use crate::coalesce::SharedBodyReader;
use crate::compress::CodedBody;
use crate::throttle::OriginPermit;

/// Errors of a streamed body, boxed as hyper expects.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Called with the complete body once the stream has ended cleanly and its length is right.
pub type OnComplete = Box<dyn FnOnce(Bytes) + Send>;

/// The body of every response edgecache sends to a client.
pub enum ProxyBody {
    /// Whole bytes in memory (an error page, a range cut from a stored body); `None` once sent.
    Full(Option<Bytes>),
    /// A stored object's body (`None` once sent, or for `HEAD`), with the object's encoded variants, which the
    /// encode step serves from and adds to.
    Stored(Option<Bytes>, EncodedVariants),
    /// The upstream's body, passed through as it arrives. Boxed, like `Coded`: the two large variants would
    /// otherwise make every body (and every response moved through the pipeline, hits too) as large as they are.
    Stream(Box<RecordingBody>),
    /// A coalesced fetch's body, read as it streams in (shared with the other requests waiting on that fetch).
    Shared(SharedBodyReader),
    /// One of the above, encoded or decoded on its way to the client (the encode step).
    Coded(Box<CodedBody>),
}

impl ProxyBody {
    /// A body of whole bytes.
    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        let bytes = bytes.into();
        ProxyBody::Full(if bytes.is_empty() { None } else { Some(bytes) })
    }

    /// A stored object's body (`None`: no body, for `HEAD`), carrying the object's encoded variants.
    pub fn stored(body: Option<Bytes>, variants: EncodedVariants) -> ProxyBody {
        ProxyBody::Stored(body.filter(|b| !b.is_empty()), variants)
    }

    /// The encoded variants of the stored object this body is, if it is one.
    pub fn stored_variants(&self) -> Option<&EncodedVariants> {
        match self {
            ProxyBody::Stored(_, variants) => Some(variants),
            _ => None,
        }
    }

    /// No body.
    pub fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }

    /// The upstream's body, passed through without recording.
    pub fn stream(inner: FetchedBody) -> ProxyBody {
        ProxyBody::Stream(Box::new(RecordingBody { inner, recorder: None, permit: None }))
    }

    /// The upstream's body, recorded up to `limit` bytes; `on_complete` gets it if it ends cleanly with
    /// `expected_len` bytes (when the upstream announced a length).
    pub fn recorded(inner: FetchedBody, limit: u64, expected_len: Option<u64>, on_complete: OnComplete) -> ProxyBody {
        let recorder = Recorder { buf: BytesMut::new(), limit, expected_len, on_complete: Some(on_complete) };
        // An empty body (204, a 302 without content) is never polled by hyper: it is complete already.
        if inner.is_end_stream() {
            recorder.finish();
            return ProxyBody::Stream(Box::new(RecordingBody { inner, recorder: None, permit: None }));
        }
        ProxyBody::Stream(Box::new(RecordingBody { inner, recorder: Some(recorder), permit: None }))
    }

    /// Keeps `permit` (a place in the origin budget) until the upstream's body has ended or is dropped.
    pub fn holding(self, permit: OriginPermit) -> ProxyBody {
        match self {
            ProxyBody::Stream(mut stream) if !stream.inner.is_end_stream() => {
                stream.permit = Some(permit);
                ProxyBody::Stream(stream)
            }
            whole => whole,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) | ProxyBody::Stored(bytes, _) => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            ProxyBody::Stream(stream) => Pin::new(stream).poll_frame(cx),
            ProxyBody::Shared(reader) => Pin::new(reader).poll_frame(cx),
            ProxyBody::Coded(coded) => Pin::new(coded).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) | ProxyBody::Stored(bytes, _) => bytes.is_none(),
            ProxyBody::Stream(stream) => stream.is_end_stream(),
            ProxyBody::Shared(reader) => reader.is_end_stream(),
            ProxyBody::Coded(coded) => coded.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(bytes)) | ProxyBody::Stored(Some(bytes), _) => {
                SizeHint::with_exact(bytes.len() as u64)
            }
            ProxyBody::Full(None) | ProxyBody::Stored(None, _) => SizeHint::with_exact(0),
            ProxyBody::Stream(stream) => stream.inner.size_hint(),
            ProxyBody::Shared(reader) => reader.size_hint(),
            ProxyBody::Coded(coded) => coded.size_hint(),
        }
    }
}

/// The upstream's body with an optional recorder. Dropping it early (the client left) stores nothing.
pub struct RecordingBody {
    inner: FetchedBody,
    recorder: Option<Recorder>,
    /// The origin budget's place this body's request holds, released at the end of the body.
    permit: Option<OriginPermit>,
}

struct Recorder {
    buf: BytesMut,
    limit: u64,
    expected_len: Option<u64>,
    on_complete: Option<OnComplete>,
}

impl Recorder {
    /// Keeps a chunk; returns false when the body outgrew the limit (the recording is then abandoned).
    fn record(&mut self, chunk: &Bytes) -> bool {
        if self.buf.len() as u64 + chunk.len() as u64 > self.limit {
            return false;
        }
        if self.buf.is_empty()
            && let Some(expected) = self.expected_len.filter(|&n| n <= self.limit)
        {
            self.buf.reserve(expected as usize);
        }
        self.buf.extend_from_slice(chunk);
        true
    }

    fn finish(mut self) {
        let complete = self.expected_len.is_none_or(|n| n == self.buf.len() as u64);
        if let (true, Some(on_complete)) = (complete, self.on_complete.take()) {
            on_complete(self.buf.freeze());
        }
    }
}

impl Body for RecordingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let (Some(recorder), Some(data)) = (this.recorder.as_mut(), frame.data_ref())
                    && !recorder.record(data)
                {
                    this.recorder = None;
                }
                // hyper stops polling once a body of known length has been sent, so finish on the last frame.
                if this.inner.is_end_stream() {
                    this.permit = None;
                    if let Some(recorder) = this.recorder.take() {
                        recorder.finish();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                // A body that failed mid-stream is never stored.
                this.recorder = None;
                this.permit = None;
                Poll::Ready(Some(Err(Box::new(error))))
            }
            None => {
                this.permit = None;
                if let Some(recorder) = this.recorder.take() {
                    recorder.finish();
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // While recording, report the end only through poll_frame, so the recorder always sees it.
        self.recorder.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn a_body_is_no_larger_than_a_stored_one() {
        // Every answer's body is moved several times on its way through the pipeline: the large variants are
        // boxed, so that a hit's body (a stored one) sets the size.
        let stored = std::mem::size_of::<(Option<bytes::Bytes>, crate::cache::EncodedVariants)>();
        assert!(std::mem::size_of::<super::ProxyBody>() <= stored + 8, "{}", std::mem::size_of::<super::ProxyBody>());
    }
}
