//! The body of a coalesced fetch: an append-only list of chunks that the leader's fetch writes as the origin sends
//! them, and that every reader (the leader's client and each waiter) reads from its own position (read-while-write).
//! A reader that starts late gets every chunk so far at once, then the rest as it comes; a reader with nothing new
//! to read sleeps until the writer appends, finishes or fails.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// Errors of a shared body, boxed as hyper expects.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The origin's body failed before its end: readers end with this error (the client's connection is then aborted,
/// never ended as if the body were complete).
#[derive(Debug, thiserror::Error)]
#[error("the origin's body failed mid-stream")]
pub struct BodyAborted;

/// How the writer ended the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    Failed,
}

#[derive(Default)]
struct State {
    chunks: Vec<Bytes>,
    len: u64,
    end: Option<End>,
    /// The waker of each reader waiting for more, by reader id.
    waiting: HashMap<u64, Waker>,
    next_reader: u64,
}

/// One body, written once by the fetch and read by any number of readers.
#[derive(Default)]
pub struct SharedBody {
    state: Mutex<State>,
}

impl SharedBody {
    /// An empty body that is still being written.
    pub fn new() -> Arc<SharedBody> {
        Arc::new(SharedBody::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the list half-written: take it as it is.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a chunk and wakes every waiting reader.
    pub fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let wakers = {
            let mut state = self.state();
            state.len += chunk.len() as u64;
            state.chunks.push(chunk);
            std::mem::take(&mut state.waiting)
        };
        wakers.into_values().for_each(Waker::wake);
    }

    /// Ends the body cleanly: readers end once they have read every chunk.
    pub fn finish(&self) {
        self.end(End::Complete);
    }

    /// Ends the body with an error: readers fail once they have read every chunk so far.
    pub fn fail(&self) {
        self.end(End::Failed);
    }

    fn end(&self, end: End) {
        let wakers = {
            let mut state = self.state();
            state.end.get_or_insert(end);
            std::mem::take(&mut state.waiting)
        };
        wakers.into_values().for_each(Waker::wake);
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.state().len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body as one buffer (a copy of the chunks written so far).
    pub fn concat(&self) -> Bytes {
        let state = self.state();
        if let [single] = state.chunks.as_slice() {
            return single.clone();
        }
        let mut whole = BytesMut::with_capacity(state.len as usize);
        state.chunks.iter().for_each(|chunk| whole.extend_from_slice(chunk));
        whole.freeze()
    }

    /// A reader from the first byte. `expected_len` (the announced `Content-Length`) is its size hint.
    pub fn reader(self: &Arc<Self>, expected_len: Option<u64>) -> SharedBodyReader {
        let id = {
            let mut state = self.state();
            state.next_reader += 1;
            state.next_reader
        };
        SharedBodyReader { body: self.clone(), id, next: 0, expected_len, done: false }
    }
}

/// One reader of a [`SharedBody`], at its own position.
pub struct SharedBodyReader {
    body: Arc<SharedBody>,
    id: u64,
    /// Index of the next chunk to read.
    next: usize,
    expected_len: Option<u64>,
    done: bool,
}

impl Body for SharedBodyReader {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut state = this.body.state();
        if let Some(chunk) = state.chunks.get(this.next) {
            let chunk = chunk.clone();
            this.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match state.end {
            Some(End::Complete) => {
                this.done = true;
                Poll::Ready(None)
            }
            Some(End::Failed) => {
                this.done = true;
                Poll::Ready(Some(Err(Box::new(BodyAborted))))
            }
            None => {
                // Registered under the same lock the writer takes to append: no wake-up can be missed.
                state.waiting.insert(this.id, cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let state = self.body.state();
        state.end == Some(End::Complete) && self.next >= state.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        match self.expected_len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for SharedBodyReader {
    fn drop(&mut self) {
        self.body.state().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_late_reader_gets_everything_so_far_then_the_rest() {
        let body = SharedBody::new();
        let mut early = body.reader(None);
        body.push(Bytes::from_static(b"ab"));
        let first = early.frame().await.expect("frame").expect("ok").into_data().expect("data");
        assert_eq!(first, "ab");
        body.push(Bytes::from_static(b"cd"));
        let late = body.reader(None);
        let writer = body.clone();
        let finish = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            writer.push(Bytes::from_static(b"ef"));
            writer.finish();
        });
        let late_all = late.collect().await.expect("late body").to_bytes();
        let early_rest = early.collect().await.expect("early body").to_bytes();
        finish.await.expect("writer");
        assert_eq!(late_all, "abcdef");
        assert_eq!(early_rest, "cdef");
        assert_eq!(body.concat(), "abcdef");
    }

    #[tokio::test]
    async fn a_failed_body_ends_every_reader_with_an_error() {
        let body = SharedBody::new();
        let reader = body.reader(Some(10));
        body.push(Bytes::from_static(b"abc"));
        body.fail();
        assert!(reader.collect().await.is_err());
    }

    #[tokio::test]
    async fn a_dropped_reader_leaves_no_waker_behind() {
        let body = SharedBody::new();
        let mut reader = body.reader(None);
        let pending = tokio::time::timeout(std::time::Duration::from_millis(10), reader.frame()).await;
        assert!(pending.is_err(), "nothing to read yet");
        assert_eq!(body.state().waiting.len(), 1);
        drop(reader);
        assert!(body.state().waiting.is_empty());
    }
}
