//! SSE streams that outlive their HTTP response: every event a session
//! sends on a stream is kept (the most recent [`RETAINED_EVENTS`]) so that
//! a client whose connection dropped can resume with `Last-Event-ID`.
//!
//! Event ids are `<stream>-<seq>`: unique within a session, and they name
//! the stream to resume. Every stream of a session (each POST that streams,
//! each GET) gets the next number. Each stream starts with a priming event
//! (an id and empty data) so the client holds an id to resume from before
//! anything else arrives.
//!
//! The SSE framing is written here rather than with axum's `Sse`, which
//! cannot send the empty `data:` field a priming event needs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior};

/// Events a stream keeps for resumption; older ones are forgotten.
pub(crate) const RETAINED_EVENTS: usize = 256;

/// How far a live reader may fall behind before the call writing the stream
/// waits for it (backpressure: the tool's `notify` then waits too, as on
/// WebSocket). Half the retained events, so a reader that drops and resumes
/// at once still finds everything it missed.
pub(crate) const MAX_READER_LAG: u64 = (RETAINED_EVENTS / 2) as u64;

/// What the client is told to wait before reconnecting (SSE `retry`).
pub(crate) const RETRY_MS: u64 = 1000;

/// Events of all streams of one server that no reader ever got: written
/// while no reader was attached and forgotten (past [`RETAINED_EVENTS`])
/// before one resumed. Shown in `/healthz` as `droppedEvents`.
#[derive(Default)]
pub(crate) struct DroppedEvents {
    count: AtomicU64,
    warned: AtomicBool,
}

impl DroppedEvents {
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                retained = RETAINED_EVENTS,
                "an SSE stream with no reader went past its retained events: the oldest were dropped unread \
                 (counted in /healthz droppedEvents; logged once)"
            );
        }
    }
}

/// One SSE stream's events, shared by whoever writes them (a call, the
/// session route) and whoever reads them (the HTTP response, or a resumed one).
pub(crate) struct EventLog {
    stream: u32,
    inner: Mutex<LogInner>,
    dropped: Arc<DroppedEvents>,
}

struct LogInner {
    /// `(seq, data)`, oldest first.
    events: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
    /// No more events will come (the call ended, the session closed).
    ended: Option<Instant>,
    /// A reader has seen the last event of an ended stream.
    delivered: bool,
    /// Where the stream was cut for its readers at the time
    /// ([`EventLog::break_readers`]), in sequence numbers.
    breaks: Vec<u64>,
    readers: Vec<Waker>,
    /// Readers alive (responses streaming this log).
    attached: usize,
    /// The furthest any reader got: events from here on nobody has read.
    furthest: u64,
    /// The writer waiting for a reader to catch up ([`EventLog::poll_room`]).
    writer: Option<Waker>,
}

impl EventLog {
    /// A stream with its priming event; events it drops unread count in `dropped`.
    pub(crate) fn new(stream: u32, dropped: Arc<DroppedEvents>) -> Arc<EventLog> {
        let log = Arc::new(EventLog {
            stream,
            inner: Mutex::new(LogInner {
                events: VecDeque::new(),
                next_seq: 0,
                ended: None,
                delivered: false,
                breaks: Vec::new(),
                readers: Vec::new(),
                attached: 0,
                furthest: 0,
                writer: None,
            }),
            dropped,
        });
        log.push(String::new());
        log
    }

    pub(crate) fn stream(&self) -> u32 {
        self.stream
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn push(&self, data: String) {
        let mut inner = self.lock();
        if inner.ended.is_some() {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.events.push_back((seq, data.into()));
        if inner.events.len() > RETAINED_EVENTS
            && let Some((forgotten, _)) = inner.events.pop_front()
            && forgotten >= inner.furthest
        {
            self.dropped.add(1);
        }
        for reader in inner.readers.drain(..) {
            reader.wake();
        }
    }

    /// Ready when the writer may push: no reader is attached (events are
    /// kept for one to resume), or the furthest reader is fewer than
    /// [`MAX_READER_LAG`] events behind, or the stream ended. Otherwise the
    /// writer is woken when a reader catches up or leaves.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.attached == 0 || inner.ended.is_some() || inner.next_seq - inner.furthest < MAX_READER_LAG {
            return Poll::Ready(());
        }
        inner.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// No more events: readers end once they have read what is there.
    pub(crate) fn end(&self) {
        let mut inner = self.lock();
        if inner.ended.is_none() {
            inner.ended = Some(Instant::now());
        }
        if let Some(writer) = inner.writer.take() {
            writer.wake();
        }
        for reader in inner.readers.drain(..) {
            reader.wake();
        }
    }

    /// Ends the responses reading this stream now, after what they were
    /// sent so far; the stream itself goes on for readers that resume.
    pub(crate) fn break_readers(&self) {
        let mut inner = self.lock();
        let cut = inner.next_seq;
        inner.breaks.push(cut);
        for reader in inner.readers.drain(..) {
            reader.wake();
        }
    }

    /// A GET stream resumed: it takes events again.
    pub(crate) fn reopen(&self) {
        let mut inner = self.lock();
        inner.ended = None;
        inner.delivered = false;
    }

    /// When the stream ended, and whether a reader got all of it since.
    pub(crate) fn ended(&self) -> Option<(Instant, bool)> {
        let inner = self.lock();
        inner.ended.map(|at| (at, inner.delivered))
    }

    /// Reads from the start.
    pub(crate) fn reader(self: &Arc<Self>) -> LogReader {
        let mut inner = self.lock();
        inner.attached += 1;
        LogReader { log: self.clone(), next: 0, breaks_seen: inner.breaks.len() }
    }

    /// Reads after the event with sequence `after`; `None` if this stream
    /// has not sent that event (a `Last-Event-ID` this server never issued).
    pub(crate) fn reader_after(self: &Arc<Self>, after: u64) -> Option<LogReader> {
        let mut inner = self.lock();
        if after >= inner.next_seq {
            return None;
        }
        // `after < next_seq`, so this cannot overflow.
        let next = after.checked_add(1)?;
        inner.attached += 1;
        Some(LogReader { log: self.clone(), next, breaks_seen: inner.breaks.len() })
    }

    fn poll_event(&self, next: &mut u64, breaks_seen: usize, cx: &mut Context<'_>) -> Poll<Option<(u64, Arc<str>)>> {
        let mut inner = self.lock();
        // Cut after this reader started: it ends where the cut is.
        if let Some(&cut) = inner.breaks.get(breaks_seen)
            && *next >= cut
        {
            return Poll::Ready(None);
        }
        let oldest = inner.events.front().map_or(inner.next_seq, |(seq, _)| *seq);
        // Events older than what is retained are gone; resume from the oldest kept.
        let index = next.saturating_sub(oldest) as usize;
        if let Some((seq, data)) = inner.events.get(index) {
            let event = (*seq, data.clone());
            *next = seq + 1;
            if *next > inner.furthest {
                inner.furthest = *next;
                if inner.next_seq - inner.furthest < MAX_READER_LAG
                    && let Some(writer) = inner.writer.take()
                {
                    writer.wake();
                }
            }
            return Poll::Ready(Some(event));
        }
        if inner.ended.is_some() {
            inner.delivered = true;
            return Poll::Ready(None);
        }
        if !inner.readers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.readers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// An event id as this server writes it.
pub(crate) fn event_id(stream: u32, seq: u64) -> String {
    format!("{stream}-{seq}")
}

/// `(stream, seq)` from a `Last-Event-ID` this server could have issued.
pub(crate) fn parse_event_id(id: &str) -> Option<(u32, u64)> {
    let (stream, seq) = id.trim().split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

/// One SSE event: `id` (if any), the data one `data:` line per line, and,
/// for a priming event (empty data), how long to wait before reconnecting.
pub(crate) fn frame(id: Option<(u32, u64)>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 40);
    if let Some((stream, seq)) = id {
        out.push_str("id: ");
        out.push_str(&event_id(stream, seq));
        out.push('\n');
    }
    if data.is_empty() {
        out.push_str(&format!("retry: {RETRY_MS}\n"));
    }
    // JSON from this server has no raw line breaks; split anyway, as SSE requires.
    for line in data.split(['\n', '\r']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// A reader of one [`EventLog`], as an SSE event stream.
pub(crate) struct LogReader {
    log: Arc<EventLog>,
    next: u64,
    breaks_seen: usize,
}

impl Drop for LogReader {
    fn drop(&mut self) {
        let mut inner = self.log.lock();
        inner.attached -= 1;
        if let Some(writer) = inner.writer.take() {
            writer.wake();
        }
    }
}

impl LogReader {
    pub(crate) fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    pub(crate) fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u64, Arc<str>)>> {
        self.log.poll_event(&mut self.next, self.breaks_seen, cx)
    }
}

impl Stream for LogReader {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        let stream = this.log.stream;
        this.poll_next_message(cx).map(|event| event.map(|(seq, data)| frame(Some((stream, seq)), &data)))
    }
}

/// An SSE response body: the events of `events`, with a comment line every
/// `keepalive` of silence so that proxies and clients keep the stream open.
pub(crate) struct SseBody<S> {
    events: S,
    keepalive: Option<Interval>,
}

impl<S: Stream<Item = Bytes> + Unpin> Stream for SseBody<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(event) = Pin::new(&mut self.events).poll_next(cx) {
            if let Some(keepalive) = &mut self.keepalive {
                keepalive.reset();
            }
            return Poll::Ready(event.map(Ok));
        }
        if let Some(keepalive) = &mut self.keepalive
            && keepalive.poll_tick(cx).is_ready()
        {
            return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
        }
        Poll::Pending
    }
}

/// A `200 text/event-stream` response streaming `events`.
pub(crate) fn response<S>(events: S, keepalive: Option<Duration>) -> Response
where
    S: Stream<Item = Bytes> + Unpin + Send + 'static,
{
    let keepalive = keepalive.map(|period| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let body = Body::from_stream(SseBody { events, keepalive });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn texts(log: &Arc<EventLog>, after: Option<u64>) -> Vec<(u64, String)> {
        let mut reader = match after {
            None => log.reader(),
            Some(seq) => log.reader_after(seq).expect("an event the stream sent"),
        };
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some((seq, data))) = reader.poll_next_message(&mut cx) {
            out.push((seq, data.to_string()));
        }
        out
    }

    fn log(stream: u32) -> Arc<EventLog> {
        EventLog::new(stream, Arc::default())
    }

    #[test]
    fn a_writer_waits_for_a_reader_that_fell_behind_and_goes_on_when_it_reads() {
        let log = log(1);
        let mut cx = Context::from_waker(Waker::noop());
        let mut reader = log.reader();
        // The priming event is the first unread one.
        for i in 1..MAX_READER_LAG {
            assert!(log.poll_room(&mut cx).is_ready(), "event {i}: not behind yet");
            log.push(i.to_string());
        }
        assert!(log.poll_room(&mut cx).is_pending(), "the reader is {MAX_READER_LAG} events behind");
        assert!(reader.poll_next_message(&mut cx).is_ready());
        assert!(log.poll_room(&mut cx).is_ready(), "it read one: room for one more");
        log.push("x".into());
        assert!(log.poll_room(&mut cx).is_pending());
        drop(reader);
        assert!(log.poll_room(&mut cx).is_ready(), "no reader: events are kept for a resume");
        assert_eq!(log.dropped.count(), 0, "nothing was lost");
    }

    #[test]
    fn events_forgotten_before_any_reader_got_them_are_counted() {
        let log = log(1);
        let mut cx = Context::from_waker(Waker::noop());
        let mut reader = log.reader();
        assert!(reader.poll_next_message(&mut cx).is_ready(), "the priming event");
        drop(reader);
        // The priming event was read; 300 more come with nobody reading, and
        // the oldest 300 - RETAINED_EVENTS of them are forgotten unread.
        for i in 0..300 {
            log.push(i.to_string());
        }
        assert_eq!(log.dropped.count(), 300 - RETAINED_EVENTS as u64);
    }

    #[test]
    fn a_stream_starts_with_its_priming_event_and_resumes_after_an_id() {
        let log = log(3);
        log.push("a".into());
        log.push("b".into());
        assert_eq!(texts(&log, None), [(0, String::new()), (1, "a".into()), (2, "b".into())]);
        assert_eq!(texts(&log, Some(1)), [(2, "b".to_owned())]);
        assert_eq!(parse_event_id(&event_id(3, 2)), Some((3, 2)));
        assert_eq!(parse_event_id("x-1"), None);
    }

    #[test]
    fn an_event_the_stream_never_sent_cannot_be_resumed_after() {
        let log = log(1);
        log.push("a".into());
        assert!(log.reader_after(1).is_some());
        assert!(log.reader_after(2).is_none(), "not sent yet");
        assert!(log.reader_after(u64::MAX).is_none(), "the largest sequence: no overflow, no replay");
    }

    #[test]
    fn only_the_most_recent_events_are_kept() {
        let log = log(1);
        for i in 0..RETAINED_EVENTS + 10 {
            log.push(i.to_string());
        }
        let replay = texts(&log, Some(0));
        assert_eq!(replay.len(), RETAINED_EVENTS);
        assert_eq!(replay.last().map(|(seq, _)| *seq), Some((RETAINED_EVENTS + 10) as u64));
    }

    #[tokio::test]
    async fn a_break_ends_current_readers_and_a_resumed_reader_goes_on() {
        let log = log(1);
        let mut first = log.reader();
        assert!(first.next().await.is_some(), "priming event");
        log.push("a".into());
        log.break_readers();
        log.push("b".into());
        assert!(first.next().await.is_some(), "what was sent before the break");
        assert!(first.next().await.is_none(), "then it ends");
        let resumed = log.reader_after(1).unwrap();
        log.end();
        let rest: Vec<_> = resumed.collect().await;
        assert_eq!(rest.len(), 1, "b, sent after the break");
    }

    #[tokio::test]
    async fn a_reader_ends_when_the_stream_ends() {
        let log = log(1);
        let mut reader = log.reader();
        assert!(reader.next().await.is_some(), "priming event");
        log.push("x".into());
        log.end();
        assert!(reader.next().await.is_some());
        assert!(reader.next().await.is_none());
        assert_eq!(log.ended().map(|(_, delivered)| delivered), Some(true));
    }
}
