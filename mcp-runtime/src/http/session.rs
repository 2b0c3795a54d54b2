//! Streamable HTTP sessions: the table keyed by `Mcp-Session-Id`, each
//! session's protocol state behind a lock, its in-flight cap, its SSE
//! streams kept for resumption, and the sweeper that closes idle sessions.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::sse::{DroppedEvents, EventLog};
use crate::dispatch::Session;

/// Ended streams a session keeps for resumption at most this long.
const ENDED_STREAM_TTL: Duration = Duration::from_secs(60);
/// Streams a session keeps at most; the oldest ended ones go first.
const MAX_STREAMS: usize = 64;

/// One Streamable HTTP session.
pub(crate) struct HttpSession {
    pub(crate) id: Arc<str>,
    /// The protocol version `initialize` settled on; requests must not name another.
    pub(crate) version: &'static str,
    engine: Mutex<Session>,
    /// One permit per call allowed to run at once.
    pub(crate) permits: Arc<Semaphore>,
    streams: Mutex<Streams>,
    /// A request came since the sweeper last looked (no clock read per request).
    active: AtomicBool,
    /// Millis since the table's epoch when the sweeper last saw the session active.
    last_seen: AtomicU64,
    /// The table's use count at this session's latest request: the order
    /// in which sessions were last used, for eviction at the limit.
    last_used: AtomicU64,
    /// SSE responses open on this session; a session with one is not idle.
    open_streams: AtomicUsize,
    /// Fires when the session ends (DELETE, idle timeout, shutdown).
    pub(crate) closed: CancellationToken,
}

struct Streams {
    next: u32,
    /// The server's count of events dropped unread.
    dropped: Arc<DroppedEvents>,
    logs: HashMap<u32, Arc<EventLog>>,
    /// Which of `logs` were GET streams (the session's own notifications).
    get_logs: HashSet<u32>,
    /// The session's own notifications (outside calls), taken by the GET
    /// stream while one is open.
    route: Option<mpsc::Receiver<String>>,
    get_open: bool,
}

impl Streams {
    fn new_log(&mut self) -> Arc<EventLog> {
        self.next += 1;
        let log = EventLog::new(self.next, self.dropped.clone());
        if self.logs.len() >= MAX_STREAMS {
            let oldest_ended =
                self.logs.iter().filter_map(|(n, l)| l.ended().map(|(at, _)| (at, *n))).min().map(|(_, n)| n);
            if let Some(n) = oldest_ended {
                self.logs.remove(&n);
                self.get_logs.remove(&n);
            }
        }
        self.logs.insert(log.stream(), log.clone());
        log
    }
}

impl HttpSession {
    pub(crate) fn engine(&self) -> MutexGuard<'_, Session> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn streams(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new stream for a POST that streams its call's messages.
    pub(crate) fn open_stream(&self) -> Arc<EventLog> {
        self.streams().new_log()
    }

    /// The stream an event id names, if it is still kept.
    pub(crate) fn stream(&self, number: u32) -> Option<Arc<EventLog>> {
        self.streams().logs.get(&number).cloned()
    }

    /// Opens the session's GET stream, or resumes an earlier one (`resume`):
    /// its log and the route of the session's own notifications. `None` if
    /// a GET stream is open already.
    pub(crate) fn attach_get(
        &self,
        resume: Option<Arc<EventLog>>,
    ) -> Option<(Arc<EventLog>, Option<mpsc::Receiver<String>>)> {
        let mut streams = self.streams();
        if streams.get_open {
            return None;
        }
        streams.get_open = true;
        let log = match resume {
            Some(log) => {
                log.reopen();
                log
            }
            None => {
                let log = streams.new_log();
                streams.get_logs.insert(log.stream());
                log
            }
        };
        Some((log, streams.route.take()))
    }

    /// The GET stream's response is gone; its log stays resumable for a while.
    pub(crate) fn detach_get(&self, log: &Arc<EventLog>, route: Option<mpsc::Receiver<String>>) {
        log.end();
        let mut streams = self.streams();
        streams.get_open = false;
        if route.is_some() {
            streams.route = route;
        }
    }

    pub(crate) fn is_get_stream(&self, log: &EventLog) -> bool {
        self.streams().get_logs.contains(&log.stream())
    }

    pub(crate) fn touch(&self) {
        self.active.store(true, Ordering::Relaxed);
    }

    /// Counts an open SSE response for the idle rule; dropping the guard uncounts it.
    pub(crate) fn stream_guard(self: &Arc<Self>) -> StreamGuard {
        self.open_streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }

    /// Ends the session: its calls are cancelled and its streams end.
    fn close(&self) {
        self.closed.cancel();
        self.engine().end();
        for log in self.streams().logs.values() {
            log.end();
        }
    }

    /// No running call and no open stream: nothing is lost if it ends now
    /// but the client's session id.
    fn is_quiet(&self, max_in_flight: usize) -> bool {
        self.open_streams.load(Ordering::Acquire) == 0 && self.permits.available_permits() == max_in_flight
    }

    fn prune_streams(&self) {
        let mut streams = self.streams();
        let Streams { logs, get_logs, .. } = &mut *streams;
        logs.retain(|n, log| {
            let keep = match log.ended() {
                None => true,
                // A GET stream can be resumed until it expires, even when read to its end.
                Some((at, delivered)) => (!delivered || get_logs.contains(n)) && at.elapsed() < ENDED_STREAM_TTL,
            };
            if !keep {
                get_logs.remove(n);
            }
            keep
        });
    }
}

/// Keeps a session from counting as idle while an SSE response is open.
pub(crate) struct StreamGuard(Arc<HttpSession>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a session could not be created.
pub(crate) enum Refused {
    Full(usize),
}

/// All Streamable HTTP sessions of one server.
pub(crate) struct SessionTable {
    sessions: Mutex<HashMap<Arc<str>, Arc<HttpSession>>>,
    epoch: Instant,
    max_sessions: usize,
    max_in_flight: usize,
    idle_timeout: Duration,
    expired: AtomicU64,
    /// Sessions closed to make room for a new one at the limit.
    evicted: AtomicU64,
    eviction_logged: AtomicBool,
    /// Requests to sessions so far: orders them by last use (no clock read).
    uses: AtomicU64,
    dropped_events: Arc<DroppedEvents>,
}

impl SessionTable {
    pub(crate) fn new(max_sessions: usize, max_in_flight: usize, idle_timeout: Duration) -> SessionTable {
        SessionTable {
            sessions: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            max_sessions,
            max_in_flight,
            idle_timeout,
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            eviction_logged: AtomicBool::new(false),
            uses: AtomicU64::new(0),
            dropped_events: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<HttpSession>>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Registers a session `initialize` just opened and returns it. At the
    /// limit, the quiet session (no running call, no open stream) idle the
    /// longest makes room; if every session is busy, `Refused::Full`.
    pub(crate) fn create(&self, mut session: Session, version: &'static str) -> Result<Arc<HttpSession>, Refused> {
        let route = session.take_notifications();
        let mut sessions = self.lock();
        let mut evicted = None;
        if sessions.len() >= self.max_sessions {
            let oldest = sessions
                .values()
                .filter(|s| s.is_quiet(self.max_in_flight))
                .min_by_key(|s| s.last_used.load(Ordering::Relaxed))
                .map(|s| s.id.clone());
            let Some(oldest) = oldest else { return Err(Refused::Full(self.max_sessions)) };
            evicted = sessions.remove(&oldest);
        }
        let id = new_session_id();
        let session = Arc::new(HttpSession {
            id: id.clone(),
            version,
            engine: Mutex::new(session),
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
            streams: Mutex::new(Streams {
                next: 0,
                dropped: self.dropped_events.clone(),
                logs: HashMap::new(),
                get_logs: HashSet::new(),
                route: Some(route),
                get_open: false,
            }),
            active: AtomicBool::new(false),
            last_seen: AtomicU64::new(self.now_ms()),
            last_used: AtomicU64::new(self.uses.fetch_add(1, Ordering::Relaxed)),
            open_streams: AtomicUsize::new(0),
            closed: CancellationToken::new(),
        });
        sessions.insert(id, session.clone());
        drop(sessions);
        if let Some(old) = evicted {
            old.close();
            let count = self.evicted.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.eviction_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_sessions = self.max_sessions,
                    "at the Streamable HTTP session limit: closing the session idle the longest for each new one \
                     (counted in /healthz evictedSessions; logged once)"
                );
            }
            tracing::debug!(session = %old.id, evicted = count, "evicted an idle session to make room");
        }
        Ok(session)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        let session = self.lock().get(id).cloned()?;
        session.touch();
        session.last_used.store(self.uses.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(session)
    }

    /// Ends a session (DELETE); false if there was none by that id.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let removed = self.lock().remove(id);
        match removed {
            Some(session) => {
                session.close();
                true
            }
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Sessions closed for being idle since the server started.
    pub(crate) fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// SSE events dropped unread (no reader, past the retained events) since the server started.
    pub(crate) fn dropped_events(&self) -> u64 {
        self.dropped_events.count()
    }

    /// Sessions closed to make room for new ones since the server started.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Closes sessions idle for longer than the timeout (no request, no open
    /// stream, no running call) and forgets ended streams nobody resumed.
    pub(crate) fn sweep(&self) {
        let now = self.now_ms();
        let idle_ms = self.idle_timeout.as_millis() as u64;
        let mut expired = Vec::new();
        {
            let mut sessions = self.lock();
            sessions.retain(|_, session| {
                let busy = session.open_streams.load(Ordering::Acquire) > 0
                    || session.permits.available_permits() < self.max_in_flight;
                if busy || session.active.swap(false, Ordering::Relaxed) {
                    session.last_seen.store(now, Ordering::Relaxed);
                    return true;
                }
                let idle = now.saturating_sub(session.last_seen.load(Ordering::Relaxed)) >= idle_ms;
                if idle {
                    expired.push(session.clone());
                }
                !idle
            });
        }
        for session in &expired {
            tracing::info!(session = %session.id, "closing a Streamable HTTP session idle for {:?}", self.idle_timeout);
            session.close();
        }
        self.expired.fetch_add(expired.len() as u64, Ordering::Relaxed);
        for session in self.lock().values() {
            session.prune_streams();
        }
    }

    /// Ends every session (the server is stopping).
    pub(crate) fn close_all(&self) {
        let sessions: Vec<_> = self.lock().drain().map(|(_, s)| s).collect();
        for session in sessions {
            session.close();
        }
    }

    /// Cancels the calls of every session (the shutdown grace is over).
    pub(crate) fn cancel_all_calls(&self) {
        let sessions: Vec<_> = self.lock().values().cloned().collect();
        for session in sessions {
            session.engine().cancel_all();
        }
    }

    /// Calls running in all sessions.
    pub(crate) fn running_calls(&self) -> usize {
        self.lock().values().map(|s| self.max_in_flight - s.permits.available_permits()).sum()
    }
}

/// 128 random bits as 32 hex digits: visible ASCII, unguessable.
fn new_session_id() -> Arc<str> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(32);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id.into()
}
