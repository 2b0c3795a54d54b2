//! The worker: claims batches from the queue, stores them in Dewey with
//! `dewey_store_logs_batch`, and only then acknowledges them.
//!
//! - A batch is up to BATCH_SIZE entries, or what arrived within
//!   BATCH_TIMEOUT_MS of its first entry, sent in pieces of at most
//!   [`MAX_CALL_BYTES`] so a call never exceeds Dewey's message limit.
//! - A failed send (Dewey down, a storage error, a timeout) is retried with
//!   exponential backoff and jitter, for ever: RETRY_MAX_ATTEMPTS only
//!   decides when the failure is logged as an ERROR and reported by
//!   `logger_stats`. Entries carry their ids, so a retried batch that Dewey
//!   had in fact stored is stored once.
//! - Dewey refusing a batch as invalid input names the entry
//!   (`logs[3].message`): that entry goes to the dead letters and the rest
//!   is sent again. A refusal of the input without an index splits the
//!   batch in halves until the bad entry is alone. Only a positive
//!   refusal of the input ([`refuses_input`]) sets anything aside; every
//!   other error (storage, a panic in Dewey, an internal error) is retried.
//! - While it holds a batch the worker renews its lease, so no other worker
//!   takes it over; if it dies, another takes it once the lease has passed.
//! - On shutdown it stops claiming, gives the batches in flight
//!   WORKER_SHUTDOWN_GRACE to be stored, and hands back what is left.

use std::sync::Arc;
use std::time::Duration;

use mcp_runtime::client::Backoff;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, WorkerConfig};
use crate::dewey_link::DeweyLink;
use crate::queue::{Consumer, Delivery, Queue};

/// Largest `dewey_store_logs_batch` call, in bytes of entries: half of the
/// runtime's default message limit (16 MiB), so framing never tips it over.
pub const MAX_CALL_BYTES: usize = 8 << 20;
/// How long one delivery may wait for Dewey's answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a claim waits for the first entry, so shutdown is noticed.
const CLAIM_WAIT: Duration = Duration::from_secs(1);

struct Shared {
    queue: Queue,
    config: WorkerConfig,
    dewey: DeweyLink,
    shutdown: CancellationToken,
}

/// Runs the worker until `shutdown` fires and the batches in flight are
/// stored or handed back.
pub async fn run(queue: Queue, config: Config, shutdown: CancellationToken) {
    let shared = Arc::new(Shared {
        queue,
        config: config.worker.clone(),
        dewey: DeweyLink::new(&config.dewey_url, "godot-worker", DELIVERY_TIMEOUT),
        shutdown,
    });
    tracing::info!(
        worker = %shared.config.name,
        lanes = shared.config.concurrency,
        dewey = %config.dewey_url,
        queue = %config.queue_description(),
        "worker started"
    );
    let lanes: Vec<_> = (0..shared.config.concurrency)
        .map(|n| {
            let consumer = shared.queue.consumer(&format!("{}-{n}", shared.config.name));
            tokio::spawn(lane(shared.clone(), consumer))
        })
        .collect();
    for lane in lanes {
        let _ = lane.await;
    }
    tracing::info!(worker = %shared.config.name, "worker stopped");
}

async fn lane(shared: Arc<Shared>, consumer: Consumer) {
    let mut failing: Option<Backoff> = None;
    while !shared.shutdown.is_cancelled() {
        let batch = match collect(&shared, &consumer).await {
            Ok(batch) => {
                failing = None;
                batch
            }
            Err(e) => {
                if failing.is_none() {
                    tracing::warn!(consumer = %consumer.name, error = %e, "cannot read the queue; retrying");
                }
                let pause = failing.get_or_insert_with(|| retry_schedule(&shared.config)).next_delay();
                tokio::select! {
                    _ = shared.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        if !batch.is_empty() {
            hold(&shared, &consumer, batch).await;
        }
    }
}

/// One batch: up to BATCH_SIZE entries, or what arrived within
/// BATCH_TIMEOUT_MS of the first. Claims are never abandoned half way (a
/// claim dropped after Redis answered would leave entries leased to no one
/// until the lease ends), so shutdown is noticed between claims.
async fn collect(shared: &Shared, consumer: &Consumer) -> Result<Vec<Delivery>, crate::queue::QueueError> {
    let size = shared.config.batch_size;
    let mut batch = shared.queue.claim(consumer, size, CLAIM_WAIT).await?;
    if batch.is_empty() {
        return Ok(batch);
    }
    let deadline = Instant::now() + shared.config.batch_timeout;
    while batch.len() < size && !shared.shutdown.is_cancelled() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match shared.queue.claim(consumer, size - batch.len(), left).await {
            Ok(more) if more.is_empty() => break,
            Ok(more) => batch.extend(more),
            // Deliver what is already claimed; the next claim reports the error.
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// Delivers a claimed batch while renewing its lease; on shutdown, after
/// the grace period, hands back whatever is still unacknowledged.
async fn hold(shared: &Shared, consumer: &Consumer, batch: Vec<Delivery>) {
    let ids: Vec<String> = batch.iter().map(|d| d.id.clone()).collect();
    let mut renew = tokio::time::interval(shared.config.lease / 3);
    renew.tick().await;
    let grace = async {
        shared.shutdown.cancelled().await;
        tokio::time::sleep(shared.config.shutdown_grace).await;
    };
    let deliver = deliver(shared, batch);
    tokio::pin!(grace, deliver);
    loop {
        tokio::select! {
            () = &mut deliver => return,
            _ = renew.tick() => {
                // Acknowledged ids are gone from the queue; renewing them does nothing.
                if let Err(e) = shared.queue.renew(consumer, &ids).await {
                    tracing::warn!(error = %e, "could not renew the lease on a batch; another worker may take it over");
                }
            }
            () = &mut grace => {
                tracing::warn!(entries = ids.len(), "shutdown grace over; handing the batch back to the queue");
                if let Err(e) = shared.queue.release(consumer, &ids).await {
                    tracing::warn!(error = %e, "could not hand the batch back; it returns when its lease ends");
                }
                return;
            }
        }
    }
}

/// What Dewey made of one call.
enum Outcome {
    Stored,
    /// Invalid input: the entries (or one of them) can never be stored.
    Rejected(String),
    /// Anything else: try the same call again later.
    Failed(String),
}

async fn deliver(shared: &Shared, batch: Vec<Delivery>) {
    let mut parts = split_by_size(batch);
    // A stack: a refused part comes back as smaller parts, sent next.
    parts.reverse();
    while let Some(mut part) = parts.pop() {
        let mut attempt = 0u32;
        let mut pause = retry_schedule(&shared.config);
        loop {
            match send(shared, &part).await {
                Outcome::Stored => {
                    let ids: Vec<String> = part.iter().map(|d| d.id.clone()).collect();
                    persist(shared, "acknowledge", || shared.queue.ack(&ids)).await;
                    break;
                }
                Outcome::Rejected(reason) => {
                    match named_index(&reason, part.len()) {
                        Some(bad) => {
                            let entry = part.remove(bad);
                            set_aside(shared, &entry, &reason).await;
                            if !part.is_empty() {
                                parts.push(part);
                            }
                        }
                        None if part.len() == 1 => set_aside(shared, &part[0], &reason).await,
                        None => {
                            let right = part.split_off(part.len() / 2);
                            parts.push(right);
                            parts.push(part);
                        }
                    }
                    break;
                }
                Outcome::Failed(error) => {
                    attempt += 1;
                    let max = shared.config.retry_max_attempts;
                    if attempt.is_multiple_of(max) {
                        tracing::error!(
                            entries = part.len(),
                            attempts = attempt,
                            error = %error,
                            "a batch keeps failing to reach Dewey; still retrying, nothing is dropped"
                        );
                    } else {
                        tracing::warn!(entries = part.len(), attempt, error = %error, "delivery to Dewey failed; retrying");
                    }
                    let _ = shared.queue.record_delivery(Some(&error)).await;
                    tokio::time::sleep(pause.next_delay()).await;
                }
            }
        }
    }
}

#[derive(Serialize)]
struct Batch<'a> {
    logs: Vec<&'a RawValue>,
}

async fn send(shared: &Shared, part: &[Delivery]) -> Outcome {
    let mut logs = Vec::with_capacity(part.len());
    for (i, entry) in part.iter().enumerate() {
        match serde_json::from_str::<&RawValue>(&entry.payload) {
            Ok(raw) => logs.push(raw),
            // Not even JSON: no Dewey could take it.
            Err(e) => return Outcome::Rejected(format!("`logs[{i}]` is not a JSON log entry: {e}")),
        }
    }
    let client = match shared.dewey.now().await {
        Ok(client) => client,
        Err(e) => return Outcome::Failed(e),
    };
    match client.call_tool("dewey_store_logs_batch", Batch { logs }).await {
        Ok(result) if !result.is_error => Outcome::Stored,
        Ok(result) => {
            let text = result.text();
            if refuses_input(&text) { Outcome::Rejected(text) } else { Outcome::Failed(text) }
        }
        Err(e) => Outcome::Failed(format!("Dewey at {}: {e}", shared.dewey.url())),
    }
}

async fn set_aside(shared: &Shared, entry: &Delivery, reason: &str) {
    tracing::warn!(entry = %entry.id, reason, "Dewey refused a log entry; moved to the dead letters");
    persist(shared, "set aside", || shared.queue.dead_letter(entry, reason)).await;
}

/// Retries a queue write until it succeeds or shutdown begins. Giving up
/// loses nothing: the entries stay leased and come back after the lease,
/// and Dewey stores a resent entry once.
async fn persist<T, F, Fut>(shared: &Shared, what: &str, write: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::queue::QueueError>>,
{
    let mut attempt = 0;
    let mut pause = retry_schedule(&shared.config);
    loop {
        match write().await {
            Ok(_) => return,
            Err(e) => {
                attempt += 1;
                if attempt == 1 {
                    tracing::warn!(error = %e, "could not {what} delivered entries; retrying");
                }
                if shared.shutdown.is_cancelled() && attempt >= 3 {
                    return;
                }
                tokio::time::sleep(pause.next_delay()).await;
            }
        }
    }
}

/// The batch in calls of at most [`MAX_CALL_BYTES`] (an entry larger than
/// that travels alone).
fn split_by_size(batch: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    let mut parts = vec![Vec::new()];
    let mut bytes = 0;
    for entry in batch {
        let size = entry.payload.len() + 1;
        if bytes + size > MAX_CALL_BYTES && !parts.last().expect("never empty").is_empty() {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        parts.last_mut().expect("never empty").push(entry);
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Whether an `isError` answer to `dewey_store_logs_batch` positively says
/// the input is invalid, so resending it can never succeed. Two senders
/// say so, each in its own words:
/// - Dewey's validation (`DeweyError::InvalidInput`), whose every refusal
///   of this tool starts by naming the argument: `` `logs[3].message`
///   contains a NUL character ``, `` `logs` holds 20000 entries ``;
/// - the runtime, when the arguments do not deserialize:
///   `` invalid argument `logs[3].level`: ... `` or `invalid arguments: ...`.
///
/// Anything else (`storage error: ...`, `the tool panicked: ...`, an error
/// inside the server, wording this worker does not know) is a failure to
/// retry, never a reason to discard: at worst an unknown refusal is retried
/// and reported, never a valid entry dead-lettered.
pub fn refuses_input(text: &str) -> bool {
    text.starts_with("`logs") || text.starts_with("invalid argument `logs") || text.starts_with("invalid arguments: ")
}

/// The entry a refusal names: `logs[3]` (Dewey's validation, the runtime's
/// argument errors) or `logs.3` (a path in serde's dotted form), if it is
/// one of `len`.
pub fn named_index(reason: &str, len: usize) -> Option<usize> {
    ["logs[", "logs."].iter().find_map(|prefix| {
        let start = reason.find(prefix)? + prefix.len();
        let digits: String = reason[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().filter(|i| *i < len)
    })
}

/// The pauses between retries: doubling from RETRY_INITIAL_DELAY up to
/// RETRY_MAX_DELAY, jittered (the runtime's [`Backoff`], the client's
/// reconnect schedule) so workers that failed together do not retry
/// together.
fn retry_schedule(config: &WorkerConfig) -> Backoff {
    Backoff::new(config.retry_initial_delay, config.retry_max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the ones Dewey and the runtime write (`tests/tools.rs`
    /// checks them against a real Dewey); only refusals of the input count.
    #[test]
    fn only_a_refusal_of_the_input_sets_entries_aside() {
        for invalid in [
            "`logs[6].message` contains a NUL character (U+0000), which cannot be stored; remove it or escape it",
            "`logs` holds 10001 entries; at most 10000 per call, split the batch",
            "invalid argument `logs[3].level`: unknown variant `FATAL`",
            "invalid arguments: unknown field `logs[2].extra` (`logs[2]` takes `id` and `component`)",
            "`logs[0].id` is not a UUID: \"nope\"; mint one per entry (v4 or v7)",
        ] {
            assert!(refuses_input(invalid), "{invalid}");
        }
        for failure in [
            "storage error: could not insert logs: database is locked",
            "the tool panicked: index out of bounds: the len is 3 but the index is `logs[5]`",
            "the tool panicked: a non-string panic payload",
            "no state of type godot::Storage was given to the server",
            "",
            "Dewey said something new about logs[1]",
        ] {
            assert!(!refuses_input(failure), "{failure}");
        }
    }

    #[test]
    fn refusals_name_their_entry() {
        assert_eq!(named_index("`logs[6].message` contains a NUL character", 10), Some(6));
        assert_eq!(named_index("invalid argument `logs`: logs.3.level: unknown variant", 10), Some(3));
        assert_eq!(named_index("`logs[12].message` ...", 10), None);
        assert_eq!(named_index("`logs` holds 20000 entries", 10), None);
    }

    #[test]
    fn batches_split_by_size_keep_order() {
        let entry = |n: usize, size: usize| Delivery { id: n.to_string(), payload: "x".repeat(size) };
        let parts = split_by_size(vec![entry(0, MAX_CALL_BYTES / 2), entry(1, MAX_CALL_BYTES / 2), entry(2, 10)]);
        let ids: Vec<Vec<&str>> = parts.iter().map(|p| p.iter().map(|d| d.id.as_str()).collect()).collect();
        assert_eq!(ids, vec![vec!["0"], vec!["1", "2"]]);
        assert_eq!(split_by_size(vec![entry(0, MAX_CALL_BYTES * 2)]).len(), 1);
        assert!(split_by_size(Vec::new()).is_empty());
    }
}
