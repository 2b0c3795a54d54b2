//! The facade's way into the queue: concurrent `logger_log` calls share one
//! push (one Redis script, one SQLite transaction), so the queue does one
//! write per round trip instead of one per entry, and a call is answered
//! only once its entry is stored.

use tokio::sync::{mpsc, oneshot};

use crate::queue::{Pushed, Queue, QueueError};

/// Entries taken into one push at most.
const MAX_PER_PUSH: usize = 1024;
/// Calls waiting for the next push before new ones wait to join.
const WAITING: usize = 8192;

type Reply = oneshot::Sender<Result<Pushed, String>>;

/// Hands entries to the pusher task. Cheap to clone; the task ends with the last clone.
#[derive(Clone, Debug)]
pub struct Intake {
    tx: mpsc::Sender<(String, Reply)>,
}

impl Intake {
    /// Starts the pusher task on the current runtime.
    pub fn start(queue: Queue) -> Intake {
        let (tx, rx) = mpsc::channel(WAITING);
        tokio::spawn(pusher(queue, rx));
        Intake { tx }
    }

    /// Queues one entry (its JSON) and waits until the queue has stored it.
    pub async fn push(&self, payload: String) -> Result<Pushed, QueueError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || QueueError("the queue writer stopped (the server is shutting down)".into());
        self.tx.send((payload, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(QueueError)
    }
}

async fn pusher(queue: Queue, mut rx: mpsc::Receiver<(String, Reply)>) {
    let mut burst = DropBurst::default();
    let mut payloads = Vec::with_capacity(MAX_PER_PUSH);
    let mut replies = Vec::with_capacity(MAX_PER_PUSH);
    while let Some((payload, reply)) = rx.recv().await {
        payloads.push(payload);
        replies.push(reply);
        while payloads.len() < MAX_PER_PUSH {
            match rx.try_recv() {
                Ok((payload, reply)) => {
                    payloads.push(payload);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let result = queue.push(std::mem::take(&mut payloads)).await;
        match &result {
            Ok(pushed) => burst.note(pushed.dropped),
            Err(e) => {
                tracing::warn!(error = %e, entries = replies.len(), "could not queue log entries; callers get the error")
            }
        }
        for reply in replies.drain(..) {
            let _ = reply.send(result.as_ref().map(|p| *p).map_err(|e| e.0.clone()));
        }
    }
}

/// Logs a run of pushes that dropped entries once at its start and once at
/// its end (with the total), not once per push.
#[derive(Default)]
struct DropBurst {
    dropped: u64,
}

impl DropBurst {
    fn note(&mut self, dropped: u64) {
        match (self.dropped, dropped) {
            (0, 0) => {}
            (0, n) => {
                tracing::warn!(
                    dropped = n,
                    "the log queue is full (MAX_QUEUE_SIZE): dropping its oldest undelivered entries to make room; \
                     logger_stats counts them"
                );
                self.dropped = n;
            }
            (total, 0) => {
                tracing::warn!(
                    dropped = total,
                    "the log queue is below its bound again; this burst dropped {total} entries"
                );
                self.dropped = 0;
            }
            (_, n) => self.dropped += n,
        }
    }
}
