//! The body of a coalesced fetch: an append-only list of chunks that the leader's fetch writes as the origin sends
//! them, and that every reader (the leader's client and each waiter) reads from its own position (read-while-write).
//! A reader that starts late gets every chunk so far at once, then the rest as it comes; a reader with nothing new
//! to read sleeps until the writer appends, finishes or fails.
//!
//! A body that turns out too large to store switches to streaming only ([`SharedBody::stream_only`]): chunks every
//! reader has read are released, and the writer waits ([`SharedBody::room`]) while the slowest reader is more than
//! a window behind, so a body of any size passes through in bounded memory at the pace of its readers.

use std::collections::{HashMap, VecDeque};
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
    /// The chunks still held; the first one is chunk number `base`.
    chunks: VecDeque<Bytes>,
    /// How many chunks were released from the front (streaming only).
    base: usize,
    /// Bytes of the chunks still held.
    held: u64,
    /// Bytes written in all.
    len: u64,
    /// Streaming only: chunks every reader has read are released.
    stream_only: bool,
    /// The next chunk number of each live reader, by reader id.
    positions: HashMap<u64, usize>,
    end: Option<End>,
    /// The waker of each reader waiting for more, by reader id.
    waiting: HashMap<u64, Waker>,
    next_reader: u64,
}

/// One body, written once by the fetch and read by any number of readers.
#[derive(Default)]
pub struct SharedBody {
    state: Mutex<State>,
    /// Signalled when readers advance or leave (the writer may be waiting for room).
    advanced: tokio::sync::Notify,
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
            state.held += chunk.len() as u64;
            state.chunks.push_back(chunk);
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

    /// From now on, chunks every reader has read are released (the body will not be stored or shared further).
    pub fn stream_only(&self) {
        let mut state = self.state();
        state.stream_only = true;
        state.release_read();
    }

    /// Waits until the slowest reader is at most `window` bytes behind the writer. False when no reader is left
    /// (nobody needs the rest of the body).
    pub async fn room(&self, window: u64) -> bool {
        loop {
            // Created before the check: a reader advancing in between still wakes it.
            let advanced = self.advanced.notified();
            {
                let state = self.state();
                if state.positions.is_empty() {
                    return false;
                }
                if state.held <= window {
                    return true;
                }
            }
            advanced.await;
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.state().len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunks written so far followed by `last` (not written yet), as one buffer: a copy, unless there is
    /// only one chunk in all.
    pub fn concat_with(&self, last: Option<&Bytes>) -> Bytes {
        let state = self.state();
        match (state.chunks.len(), state.chunks.front(), last) {
            (0, _, Some(last)) => return last.clone(),
            (1, Some(single), None) => return single.clone(),
            _ => {}
        }
        let len = state.len as usize + last.map_or(0, Bytes::len);
        let mut whole = BytesMut::with_capacity(len);
        state.chunks.iter().chain(last).for_each(|chunk| whole.extend_from_slice(chunk));
        whole.freeze()
    }

    /// A reader from the first byte. `expected_len` (the announced `Content-Length`) is its size hint.
    pub fn reader(self: &Arc<Self>, expected_len: Option<u64>) -> SharedBodyReader {
        let id = {
            let mut state = self.state();
            state.next_reader += 1;
            let (id, first) = (state.next_reader, state.base);
            state.positions.insert(id, first);
            id
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
        let held_index = this.next.saturating_sub(state.base);
        if let Some(chunk) = state.chunks.get(held_index) {
            let chunk = chunk.clone();
            this.next += 1;
            state.positions.insert(this.id, this.next);
            if state.stream_only && state.release_read() {
                drop(state);
                this.body.advanced.notify_waiters();
            }
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
        state.end == Some(End::Complete) && self.next >= state.base + state.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        match self.expected_len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl State {
    /// Releases the chunks every live reader has read; true if any were.
    fn release_read(&mut self) -> bool {
        let slowest = self.positions.values().copied().min().unwrap_or(self.base + self.chunks.len());
        let mut released = false;
        while self.base < slowest {
            let Some(chunk) = self.chunks.pop_front() else { break };
            self.held -= chunk.len() as u64;
            self.base += 1;
            released = true;
        }
        released
    }
}

impl Drop for SharedBodyReader {
    fn drop(&mut self) {
        {
            let mut state = self.body.state();
            state.waiting.remove(&self.id);
            state.positions.remove(&self.id);
            if state.stream_only {
                state.release_read();
            }
        }
        self.body.advanced.notify_waiters();
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
        assert_eq!(body.concat_with(None), "abcdef");
        assert_eq!(body.concat_with(Some(&Bytes::from_static(b"gh"))), "abcdefgh");
        let single = SharedBody::new();
        assert_eq!(single.concat_with(Some(&Bytes::from_static(b"gh"))), "gh", "the last chunk alone");
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
    async fn streaming_only_releases_what_every_reader_has_read_and_holds_the_writer_back() {
        let body = SharedBody::new();
        let mut fast = body.reader(None);
        let mut slow = body.reader(None);
        body.stream_only();
        body.push(Bytes::from(vec![1u8; 100]));
        body.push(Bytes::from(vec![2u8; 100]));
        assert!(body.room(200).await, "within the window");
        fast.frame().await.expect("frame").expect("ok");
        fast.frame().await.expect("frame").expect("ok");
        assert_eq!(body.state().held, 200, "the slow reader has read nothing yet");
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(20), body.room(100)).await;
        assert!(blocked.is_err(), "the writer waits for the slow reader");
        slow.frame().await.expect("frame").expect("ok");
        assert_eq!(body.state().held, 100, "the first chunk was released");
        assert!(body.room(100).await);
        drop((fast, slow));
        assert!(!body.room(100).await, "no reader left");
        assert_eq!(body.state().held, 0);
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
