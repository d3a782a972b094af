//! Waiting for a call's request before anything else is spent on it.
//!
//! Every method of Patchbay, and health's, takes one request message (unary and
//! server-streaming calls alike), and tonic waits for the end of the request stream
//! before it runs the handler. So a call has "arrived" once its body has ended (or sent
//! its trailers) after one message: only then does it take a place. A second message
//! is refused here (a call of these methods carries one). Reflection's stream is the one
//! bidirectional call: it has arrived with its first message. The frames read are
//! handed on untouched ([`Arrived`]), so tonic decodes, decompresses and size-checks
//! them as it would have.
//!
//! A message whose prefix declares more than the message limit is handed on at once:
//! tonic refuses it (OUT_OF_RANGE) without reading it. While a request is still
//! arriving, its bytes count against its party's budget ([`ReadBudgets`]: a workspace's,
//! the gateway's, or the one health and reflection share), so that calls trickling in
//! large messages cannot hold unbounded memory, nor one party's starve another's; a
//! request that arrives whole in one read never counts.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The gRPC length-prefixed message header: a compression flag and a big-endian length.
const PREFIX: usize = 5;

/// Bytes of requests still arriving that one party may hold: a workspace, the gateway,
/// or all of health's and reflection's callers together.
#[derive(Debug)]
pub struct ReadBudget {
    limit: usize,
    held: AtomicUsize,
}

impl ReadBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
        })
    }
}

/// Above this many parties with a budget, those holding nothing are dropped.
const TIDY_ABOVE: usize = 4096;

/// A budget per verified party (its workspace; the gateway under the empty name), so
/// that one tenant trickling large requests in holds only its own.
#[derive(Debug)]
pub struct ReadBudgets {
    each: usize,
    parties: std::sync::Mutex<std::collections::HashMap<String, Arc<ReadBudget>>>,
}

impl ReadBudgets {
    pub fn new(each: usize) -> Self {
        Self {
            each,
            parties: Default::default(),
        }
    }

    pub fn of(&self, party: &str) -> Arc<ReadBudget> {
        let mut parties = crate::locks::lock(&self.parties);
        if let Some(budget) = parties.get(party) {
            return budget.clone();
        }
        if parties.len() > TIDY_ABOVE {
            parties.retain(|_, b| Arc::strong_count(b) > 1 || b.held.load(Ordering::Acquire) > 0);
        }
        parties
            .entry(party.to_owned())
            .or_insert_with(|| ReadBudget::new(self.each))
            .clone()
    }
}

/// What is held of the budget by one read, given back when it ends.
struct Held<'a> {
    budget: &'a ReadBudget,
    bytes: usize,
}

impl Held<'_> {
    fn add(&mut self, bytes: usize) -> bool {
        let before = self.budget.held.fetch_add(bytes, Ordering::AcqRel);
        self.bytes += bytes;
        before.saturating_add(bytes) <= self.budget.limit
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Why no request was handed on.
#[derive(Debug)]
pub enum NotArrived {
    /// Requests still arriving already hold the server's budget.
    OverBudget,
    /// A second message followed the first, on a method that takes one.
    MoreThanOneMessage,
}

/// What a call must send before it has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Its one message and the end of its body (unary and server-streaming calls).
    End,
    /// Its first message (a bidirectional stream).
    FirstMessage,
}

/// Reads `body` until the request has arrived (see [`Until`]; or its body failed, or
/// its prefix declared more than `max_message` bytes), and gives back a body replaying
/// what was read.
pub async fn request<B>(
    body: B,
    until: Until,
    max_message: usize,
    budget: &ReadBudget,
) -> Result<Arrived<B>, NotArrived>
where
    B: Body<Data = Bytes>,
{
    let mut rest = Box::pin(body);
    let mut read = VecDeque::new();
    let mut prefix = Vec::with_capacity(PREFIX);
    let mut data = 0usize;
    let mut held = Held { budget, bytes: 0 };
    let mut failed = None;
    let mut ended = rest.is_end_stream();
    while !ended {
        match (message_in(&prefix, data, max_message), until) {
            (Message::Oversized, _) | (Message::In | Message::Beyond, Until::FirstMessage) => {
                break;
            }
            (Message::Beyond, Until::End) => return Err(NotArrived::MoreThanOneMessage),
            (Message::In | Message::Incomplete, _) => {}
        }
        match std::future::poll_fn(|cx| rest.as_mut().poll_frame(cx)).await {
            None => ended = true,
            Some(Err(err)) => {
                failed = Some(err);
                ended = true;
            }
            Some(Ok(frame)) => {
                let Some(chunk) = frame.data_ref() else {
                    // Trailers end the request.
                    read.push_back(frame);
                    break;
                };
                let missing = PREFIX - prefix.len();
                prefix.extend_from_slice(&chunk[..chunk.len().min(missing)]);
                data = data.saturating_add(chunk.len());
                read.push_back(frame);
                // Waiting on: bytes held until the body ends count against the budget.
                if !rest.is_end_stream() && !held.add(data - held.bytes) {
                    return Err(NotArrived::OverBudget);
                }
            }
        }
    }
    if until == Until::End && message_in(&prefix, data, max_message) == Message::Beyond {
        return Err(NotArrived::MoreThanOneMessage);
    }
    Ok(Arrived {
        read,
        failed,
        rest: (!ended).then_some(rest),
    })
}

/// How far the first message is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Message {
    Incomplete,
    /// It declares more than the limit.
    Oversized,
    /// All of it, and nothing after.
    In,
    /// All of it, and bytes of another after it.
    Beyond,
}

fn message_in(prefix: &[u8], data: usize, max_message: usize) -> Message {
    let Ok(header) = <[u8; PREFIX]>::try_from(prefix) else {
        return Message::Incomplete;
    };
    let declared = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if declared > max_message {
        return Message::Oversized;
    }
    match data.cmp(&(PREFIX + declared)) {
        std::cmp::Ordering::Less => Message::Incomplete,
        std::cmp::Ordering::Equal => Message::In,
        std::cmp::Ordering::Greater => Message::Beyond,
    }
}

/// The request body as the client sent it: the frames read while waiting, then the rest.
pub struct Arrived<B: Body> {
    read: VecDeque<Frame<Bytes>>,
    failed: Option<B::Error>,
    rest: Option<Pin<Box<B>>>,
}

impl<B: Body<Data = Bytes>> Body for Arrived<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(err) = this.failed.take() {
            return Poll::Ready(Some(Err(err)));
        }
        match this.rest.as_mut() {
            Some(rest) => rest.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty()
            && self.failed.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Nothing of `Arrived` is pinned structurally (the rest of the body is boxed, and an
/// error is only ever moved out), so it is `Unpin` whatever `B` is.
impl<B: Body> Unpin for Arrived<B> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of the given chunks, as a client would send them.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|c| Ok(Frame::data(c))))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn body(chunks: &[&[u8]]) -> Chunks {
        Chunks(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect())
    }

    async fn replayed<B: Body<Data = Bytes>>(mut arrived: Arrived<B>) -> Vec<u8>
    where
        B::Error: std::fmt::Debug,
    {
        let mut all = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| Pin::new(&mut arrived).poll_frame(cx)).await
        {
            if let Ok(data) = frame.expect("frame").into_data() {
                all.extend_from_slice(&data);
            }
        }
        all
    }

    #[tokio::test]
    async fn a_message_in_pieces_is_replayed_whole() {
        let budget = ReadBudget::new(1024);
        let pieces: [&[u8]; 4] = [&[0, 0], &[0, 0, 3], b"ab", b"c"];
        let arrived = request(body(&pieces), Until::End, 1024, &budget)
            .await
            .expect("arrived");
        assert_eq!(replayed(arrived).await, b"\0\0\0\0\x03abc");
        assert_eq!(budget.held.load(Ordering::Acquire), 0, "given back");
    }

    #[tokio::test]
    async fn an_oversized_declaration_is_handed_on_unread() {
        let budget = ReadBudget::new(1024);
        let pieces: [&[u8]; 2] = [&[0, 0, 1, 0, 0], b"never read"];
        let mut arrived = request(body(&pieces), Until::End, 1024, &budget)
            .await
            .expect("handed on");
        assert_eq!(arrived.read.len(), 1, "only the prefix was read");
        assert!(arrived.rest.take().is_some());
    }

    #[tokio::test]
    async fn incomplete_messages_over_the_budget_are_refused() {
        let budget = ReadBudget::new(8);
        let pieces: [&[u8]; 3] = [&[0, 0, 0, 0, 20], b"0123456789", b"0123456789"];
        assert!(matches!(
            request(body(&pieces), Until::End, 1024, &budget).await,
            Err(NotArrived::OverBudget)
        ));
        assert_eq!(budget.held.load(Ordering::Acquire), 0, "given back");
        // The same message arriving in one piece never waits, so never counts.
        let whole = [&b"\0\0\0\0\x140123456789012345678\x39"[..]];
        assert!(
            request(body(&whole), Until::End, 1024, &budget)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_second_message_is_refused_and_a_stream_needs_only_its_first() {
        let budget = ReadBudget::new(1024);
        let two: [&[u8]; 2] = [b"\0\0\0\0\x01a", b"\0\0\0\0\x01b"];
        assert!(matches!(
            request(body(&two), Until::End, 1024, &budget).await,
            Err(NotArrived::MoreThanOneMessage)
        ));
        let mut arrived = request(body(&two), Until::FirstMessage, 1024, &budget)
            .await
            .expect("a bidirectional stream has arrived with its first message");
        assert_eq!(arrived.read.len(), 1);
        // Two messages of a stream in one frame are the stream's, not a refusal.
        let together = [&b"\0\0\0\0\x01a\0\0\0\0\x01b"[..]];
        assert!(
            request(body(&together), Until::FirstMessage, 1024, &budget)
                .await
                .is_ok()
        );
        assert!(
            arrived.rest.take().is_some(),
            "the rest is left to the service"
        );
    }

    #[tokio::test]
    async fn an_empty_body_has_arrived() {
        let budget = ReadBudget::new(8);
        let arrived = request(body(&[]), Until::End, 1024, &budget)
            .await
            .expect("ended");
        assert!(replayed(arrived).await.is_empty());
    }
}
