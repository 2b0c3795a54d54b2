//! The log queue between the facade and the worker, with one contract and
//! two backends: a Redis stream with a consumer group (production, shared by
//! any number of facades and workers) and an SQLite file (the default, one
//! machine).
//!
//! The contract, which `tests/queue_contract.rs` runs against both:
//! - `push` is atomic per call: every entry is stored, or none and an error.
//! - An entry leaves the queue only when a worker acknowledges it (after
//!   Dewey stored it) or moves it to the dead letters. Claimed entries are
//!   leased to their consumer; a consumer that dies stops renewing, and once
//!   the lease has passed another consumer's `claim` takes them over.
//! - The bound: after a push, if the queue holds more than `max_queue_size`
//!   entries, the oldest entries that no consumer ever claimed are deleted in
//!   the same atomic step and counted as `dropped`. Claimed entries (leased,
//!   or handed back) are never dropped by the bound: a worker may be
//!   delivering them at that moment, so dropping them could count an entry
//!   as both dropped and delivered. The queue can therefore exceed the bound
//!   by what consumers hold (at most BATCH_SIZE x WORKER_CONCURRENCY each).
//! - Counters (accepted, delivered, dropped, dead-lettered) change in the
//!   same atomic step as the entries they count, so they are exact, and
//!   `depth == accepted - delivered - dropped - dead_lettered` at all times.

pub mod embedded;
pub mod redis;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, QueueConfig};
use crate::entry::Level;

/// An entry handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue's id: a stream id (`1700000000000-0`) or a row number.
    pub id: String,
    /// The entry as pushed (the JSON Dewey takes).
    pub payload: String,
}

/// What a push did. Concurrent pushes may share one atomic write; the
/// figures are that write's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Entries the bound deleted to make room (the oldest never claimed).
    pub dropped: u64,
    /// Entries in the queue after the push.
    pub depth: u64,
}

/// The counters and sizes the stats tool reports, shared by every facade
/// and worker on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueCounts {
    /// Entries in the queue now (claimed or not).
    pub depth: u64,
    /// Of those, entries claimed by a worker and not yet acknowledged.
    pub pending: u64,
    /// Entries pushed since the queue was created.
    pub accepted: u64,
    /// Entries acknowledged after Dewey stored them.
    pub delivered: u64,
    /// Entries deleted by the MAX_QUEUE_SIZE bound, never delivered.
    pub dropped: u64,
    /// Entries Dewey refused as invalid, moved to the dead letters.
    pub dead_lettered: u64,
    /// Dead letters kept now (the oldest beyond DEAD_LETTER_MAX go).
    pub dead_letters: u64,
    /// Dead letters removed to keep DEAD_LETTER_MAX.
    pub dead_letters_trimmed: u64,
    /// Entries below their component's level, not queued (as reported by
    /// facades; each facade adds its count about twice a second).
    pub filtered: u64,
    /// The last delivery failure any worker reported, and when (RFC 3339).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// When a worker last had a batch acknowledged.
    pub last_delivery_at: Option<String>,
}

/// An entry Dewey refused, kept for a person to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeadLetter {
    /// The entry as it was queued.
    pub entry: serde_json::Value,
    /// Dewey's reason.
    pub error: String,
    /// When it was set aside (RFC 3339).
    pub failed_at: String,
}

/// The queue could not be used. Redis down, a file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// A handle on the configured queue. Cheap to clone.
#[derive(Clone)]
pub enum Queue {
    Redis(redis::RedisQueue),
    Embedded(embedded::EmbeddedQueue),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queue::Redis(_) => "Queue::Redis",
            Queue::Embedded(_) => "Queue::Embedded",
        })
    }
}

/// Delegates a method to whichever backend this is.
macro_rules! each {
    ($self:expr, $q:ident => $body:expr) => {
        match $self {
            Queue::Redis($q) => $body,
            Queue::Embedded($q) => $body,
        }
    };
}

impl Queue {
    /// Opens the queue `config` names. Redis mode does not need Redis to be
    /// up: it connects on first use and again after every failure.
    pub fn open(config: &Config) -> Result<Queue, QueueError> {
        match &config.queue {
            QueueConfig::Redis { url, name } => Ok(Queue::Redis(redis::RedisQueue::open(url, name, config)?)),
            QueueConfig::Embedded { dir } => Ok(Queue::Embedded(embedded::EmbeddedQueue::open(dir, config)?)),
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Queue::Redis(_))
    }

    /// Stores `payloads` atomically, then applies the bound.
    pub async fn push(&self, payloads: Vec<String>) -> Result<Pushed, QueueError> {
        each!(self, q => q.push(payloads).await)
    }

    /// Up to `max` entries for `consumer`: first entries whose lease ran out
    /// (a dead consumer's), then new ones, waiting up to `wait` for the first.
    pub async fn claim(&self, consumer: &Consumer, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        each!(self, q => q.claim(consumer, max, wait).await)
    }

    /// Extends the lease on those of `ids` that `consumer` still holds;
    /// returns how many. One whose lease ran out and that another consumer
    /// claimed stays with that consumer, and one acknowledged is no one's.
    pub async fn renew(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        each!(self, q => q.renew(consumer, ids).await)
    }

    /// Hands those of `ids` that `consumer` still holds back, so any
    /// consumer can claim them at once; returns how many.
    pub async fn release(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        each!(self, q => q.release(consumer, ids).await)
    }

    /// Removes delivered entries; returns how many were still in the queue
    /// (an entry another consumer already acknowledged counts once).
    pub async fn ack(&self, ids: &[String]) -> Result<u64, QueueError> {
        each!(self, q => q.ack(ids).await)
    }

    /// Moves one entry to the dead letters with Dewey's reason.
    pub async fn dead_letter(&self, delivery: &Delivery, error: &str) -> Result<(), QueueError> {
        each!(self, q => q.dead_letter(delivery, error).await)
    }

    /// The newest `limit` dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        each!(self, q => q.dead_letters(limit).await)
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        each!(self, q => q.counts().await)
    }

    /// Adds to the shared `filtered` counter.
    pub async fn add_filtered(&self, n: u64) -> Result<(), QueueError> {
        each!(self, q => q.add_filtered(n).await)
    }

    /// Records a worker's delivery failure (`Some`) or success (`None`).
    pub async fn record_delivery(&self, error: Option<&str>) -> Result<(), QueueError> {
        each!(self, q => q.record_delivery(error).await)
    }

    pub async fn set_level(&self, component: &str, level: Level) -> Result<(), QueueError> {
        each!(self, q => q.set_level(component, level).await)
    }

    pub async fn levels(&self) -> Result<HashMap<String, Level>, QueueError> {
        each!(self, q => q.levels().await)
    }

    /// A consumer named `name` (the worker's WORKER_NAME, plus a lane number).
    pub fn consumer(&self, name: &str) -> Consumer {
        Consumer { name: name.to_owned(), blocking: each!(self, q => q.blocking_link()) }
    }
}

/// One consumer of the queue. In Redis mode it owns the connection its
/// blocking reads wait on, so they never hold up anyone else's commands.
pub struct Consumer {
    pub name: String,
    blocking: Option<redis::BlockingLink>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Now, as the queue's timestamps write it.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The JSON a dead letter is kept as: the entry (as JSON when it is JSON,
/// else as the text it was), Dewey's reason, and when.
pub(crate) fn dead_letter_record(payload: &str, error: &str) -> String {
    let entry = serde_json::from_str(payload).unwrap_or_else(|_| serde_json::Value::String(payload.to_owned()));
    serde_json::to_string(&DeadLetter { entry, error: error.to_owned(), failed_at: now_rfc3339() })
        .expect("a dead letter serializes")
}
