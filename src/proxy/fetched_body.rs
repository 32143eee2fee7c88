//! The body of an upstream's response as this node reads it: hyper's stream, possibly with its first frame read
//! already. A response from a parent node is held until its first body frame has arrived (or a short wait has
//! passed), so that a parent that dies between its response head and its body is a failed attempt the next
//! parent node can take, not a body cut short at the client.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::upstream::UpstreamError;

/// An upstream's response body.
pub struct FetchedBody {
    /// A frame read before the response was handed on (see [`first_frame_read`]).
    first: Option<Frame<Bytes>>,
    rest: Incoming,
}

impl From<Incoming> for FetchedBody {
    fn from(rest: Incoming) -> FetchedBody {
        FetchedBody { first: None, rest }
    }
}

/// Waits, at most `wait`, for the first frame of the response's body. A body that fails before it is a broken
/// attempt (nothing of it reached anyone); one still silent after `wait` (an event stream, a slow generator) is
/// handed on as it is, streaming.
pub async fn first_frame_read(
    response: Response<FetchedBody>,
    wait: Duration,
) -> Result<Response<FetchedBody>, UpstreamError> {
    let (head, mut body) = response.into_parts();
    if body.rest.is_end_stream() {
        return Ok(Response::from_parts(head, body));
    }
    match tokio::time::timeout(wait, body.rest.frame()).await {
        Ok(Some(Err(error))) => {
            return Err(UpstreamError::Broken(format!("body failed before its first byte: {error}")));
        }
        Ok(Some(Ok(frame))) => body.first = Some(frame),
        // Ended without a frame, or still silent: the stream is handed on as it is.
        Ok(None) | Err(_) => {}
    }
    Ok(Response::from_parts(head, body))
}

impl Body for FetchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let held = self.first.as_ref().and_then(Frame::data_ref).map_or(0, |data| data.len() as u64);
        if held == 0 {
            return rest;
        }
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + held);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}
