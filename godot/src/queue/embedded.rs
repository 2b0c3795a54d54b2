//! The queue as an SQLite file (`GODOT_DATA_DIR/queue.sqlite3`), for one
//! machine with no Redis: the same contract as the Redis stream.
//!
//! - `entries` holds one row per log in arrival order (`seq`). Claiming sets
//!   `owner` and `lease_until` and counts `deliveries`; acknowledging deletes
//!   the row. A row whose lease has passed is claimable again, which is how a
//!   killed worker's batch reaches the next worker (or the same one,
//!   restarted).
//! - The bound deletes the oldest rows with `deliveries = 0` (never handed
//!   to a worker) in the push's own transaction and counts them.
//! - `counters` holds `depth` and the counters, changed in the transaction
//!   that changes the rows they count; `dead_letters`, `levels` and `notes`
//!   (the last worker error) complete it.
//!
//! One thread owns the connection and runs every operation; consecutive
//! pushes share one transaction (one disk flush for many `logger_log`
//! calls). WAL with `synchronous=FULL`: a push is answered once it is on
//! disk, so neither a crash of the process nor of the machine loses it.
//! Several processes may open the same file (`godot serve` and `godot
//! worker` apart); SQLite's locking serialises them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Notify, oneshot};

use super::{Consumer, DeadLetter, Delivery, Pushed, QueueCounts, QueueError, dead_letter_record, now_rfc3339};
use crate::config::Config;
use crate::entry::Level;

/// The file inside GODOT_DATA_DIR.
pub const FILE_NAME: &str = "queue.sqlite3";
/// How often a waiting claim looks for rows another process added (within
/// one process, a push wakes it at once).
const POLL: Duration = Duration::from_millis(50);
/// Pushes merged into one transaction at most.
const MAX_PUSHES_PER_TRANSACTION: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until INTEGER
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS levels (component TEXT PRIMARY KEY, level TEXT NOT NULL) WITHOUT ROWID;
";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Request {
    Push(Vec<String>, oneshot::Sender<Result<Pushed, QueueError>>),
    Run(Job),
}

/// The embedded queue. Cheap to clone; the thread stops with the last clone.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

struct Inner {
    requests: std::sync::Mutex<std_mpsc::Sender<Request>>,
    /// Woken by every push of this process.
    pushed: Notify,
    path: PathBuf,
    lease: Duration,
}

impl EmbeddedQueue {
    /// Opens (creating if needed) `dir/queue.sqlite3`.
    pub fn open(dir: &Path, config: &Config) -> Result<EmbeddedQueue, QueueError> {
        let path = dir.join(FILE_NAME);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            QueueError(format!("the embedded queue {} {what}: {e}", path.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot be created", &e))?;
        let conn = Connection::open(&path).map_err(|e| fail("cannot be opened", &e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| fail("cannot be configured", &e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| fail("cannot use WAL", &e))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| fail("cannot be configured", &e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail("cannot be set up", &e))?;
        // `depth` is derived once from the rows, then kept in step with them.
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('depth', (SELECT COUNT(*) FROM entries))
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [],
        )
        .map_err(|e| fail("cannot be read", &e))?;
        let (tx, rx) = std_mpsc::channel();
        let limits = Limits { max_len: config.max_queue_size, dead_max: config.dead_letter_max };
        std::thread::Builder::new()
            .name("godot-queue".into())
            .spawn(move || serve(conn, rx, limits))
            .map_err(|e| fail("thread cannot start", &e))?;
        Ok(EmbeddedQueue {
            inner: Arc::new(Inner {
                requests: std::sync::Mutex::new(tx),
                pushed: Notify::new(),
                path,
                lease: config.worker.lease,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn blocking_link(&self) -> Option<super::redis::BlockingLink> {
        None
    }

    fn send(&self, request: Request) -> Result<(), QueueError> {
        let sender = self.inner.requests.lock().expect("the sender lock is never poisoned");
        sender.send(request).map_err(|_| self.gone())
    }

    fn gone(&self) -> QueueError {
        QueueError(format!("the embedded queue {} stopped", self.inner.path.display()))
    }

    /// Runs `job` on the queue's thread and returns its result.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Run(Box::new(move |conn| {
            let _ = tx.send(job(conn));
        })))?;
        let path = self.inner.path.display().to_string();
        rx.await.map_err(|_| self.gone())?.map_err(|e| QueueError(format!("the embedded queue {path} failed: {e}")))
    }

    pub async fn push(&self, payloads: Vec<String>) -> Result<Pushed, QueueError> {
        if payloads.is_empty() {
            return Ok(Pushed::default());
        }
        let (tx, rx) = oneshot::channel();
        self.send(Request::Push(payloads, tx))?;
        let pushed = rx.await.map_err(|_| self.gone())??;
        self.inner.pushed.notify_waiters();
        Ok(pushed)
    }

    pub async fn claim(&self, consumer: &Consumer, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a push in between still wakes us.
            let pushed = self.inner.pushed.notified();
            let owner = consumer.name.clone();
            let lease = self.inner.lease.as_millis() as i64;
            let claimed = self
                .run(move |conn| {
                    let now = now_ms();
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let mut rows: Vec<(i64, String)> = tx
                        .prepare_cached(
                            "UPDATE entries SET deliveries = deliveries + 1, owner = ?1, lease_until = ?2
                             WHERE seq IN (SELECT seq FROM entries WHERE lease_until IS NULL OR lease_until < ?3
                                           ORDER BY seq LIMIT ?4)
                             RETURNING seq, payload",
                        )?
                        .query_map(params![owner, now + lease, now, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    tx.commit()?;
                    rows.sort_unstable_by_key(|(seq, _)| *seq);
                    Ok(rows)
                })
                .await?;
            if !claimed.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(claimed
                    .into_iter()
                    .map(|(seq, payload)| Delivery { id: seq.to_string(), payload })
                    .collect());
            }
            let nap = POLL.min(deadline - tokio::time::Instant::now());
            let _ = tokio::time::timeout(nap, pushed).await;
        }
    }

    pub async fn renew(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        let seqs = seqs(ids);
        let owner = consumer.name.clone();
        let lease = self.inner.lease.as_millis() as i64;
        self.run(move |conn| {
            let until = now_ms() + lease;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut held = 0;
            {
                let mut update =
                    tx.prepare_cached("UPDATE entries SET lease_until = ?1 WHERE seq = ?2 AND owner = ?3")?;
                for seq in seqs {
                    held += update.execute(params![until, seq, owner])? as u64;
                }
            }
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    pub async fn release(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        let seqs = seqs(ids);
        let owner = consumer.name.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut held = 0;
            {
                let mut update = tx.prepare_cached(
                    "UPDATE entries SET owner = NULL, lease_until = NULL WHERE seq = ?1 AND owner = ?2",
                )?;
                for seq in seqs {
                    held += update.execute(params![seq, owner])? as u64;
                }
            }
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    pub async fn ack(&self, ids: &[String]) -> Result<u64, QueueError> {
        let seqs = seqs(ids);
        let now = now_rfc3339();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut deleted = 0u64;
            {
                let mut delete = tx.prepare_cached("DELETE FROM entries WHERE seq = ?1")?;
                for seq in seqs {
                    deleted += delete.execute([seq])? as u64;
                }
            }
            if deleted > 0 {
                add(&tx, "delivered", deleted as i64)?;
                add(&tx, "depth", -(deleted as i64))?;
                note(&tx, "last_delivery_at", &now)?;
            }
            tx.commit()?;
            Ok(deleted)
        })
        .await
    }

    pub async fn dead_letter(&self, delivery: &Delivery, error: &str) -> Result<(), QueueError> {
        let seq: i64 = delivery.id.parse().unwrap_or(-1);
        let record = dead_letter_record(&delivery.payload, error);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if tx.execute("DELETE FROM entries WHERE seq = ?1", [seq])? == 1 {
                tx.execute("INSERT INTO dead_letters (record) VALUES (?1)", [record])?;
                add(&tx, "dead_lettered", 1)?;
                add(&tx, "depth", -1)?;
                let max = counter(&tx, "dead_letter_max")?;
                let trimmed = tx
                    .execute("DELETE FROM dead_letters WHERE seq <= (SELECT MAX(seq) FROM dead_letters) - ?1", [max])?;
                if trimmed > 0 {
                    add(&tx, "dead_letters_trimmed", trimmed as i64)?;
                }
            }
            tx.commit()
        })
        .await
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let records: Vec<String> = self
            .run(move |conn| {
                conn.prepare_cached("SELECT record FROM dead_letters ORDER BY seq DESC LIMIT ?1")?
                    .query_map([limit as i64], |r| r.get(0))?
                    .collect()
            })
            .await?;
        Ok(records.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.run(|conn| {
            let tx = conn.transaction()?;
            let counters: HashMap<String, i64> = tx
                .prepare_cached("SELECT name, value FROM counters")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let notes: HashMap<String, String> = tx
                .prepare_cached("SELECT name, value FROM notes")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let pending: i64 = tx.query_row("SELECT COUNT(*) FROM entries WHERE deliveries > 0", [], |r| r.get(0))?;
            let dead_letters: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
            let n = |k: &str| counters.get(k).copied().unwrap_or(0).max(0) as u64;
            Ok(QueueCounts {
                depth: n("depth"),
                pending: pending as u64,
                accepted: n("accepted"),
                delivered: n("delivered"),
                dropped: n("dropped"),
                dead_lettered: n("dead_lettered"),
                dead_letters: dead_letters as u64,
                dead_letters_trimmed: n("dead_letters_trimmed"),
                filtered: n("filtered"),
                last_error: notes.get("last_error").cloned(),
                last_error_at: notes.get("last_error_at").cloned(),
                last_delivery_at: notes.get("last_delivery_at").cloned(),
            })
        })
        .await
    }

    pub async fn add_filtered(&self, n: u64) -> Result<(), QueueError> {
        self.run(move |conn| add(conn, "filtered", n as i64)).await
    }

    pub async fn record_delivery(&self, error: Option<&str>) -> Result<(), QueueError> {
        let Some(error) = error.map(str::to_owned) else { return Ok(()) };
        let now = now_rfc3339();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            note(&tx, "last_error", &error)?;
            note(&tx, "last_error_at", &now)?;
            tx.commit()
        })
        .await
    }

    pub async fn set_level(&self, component: &str, level: Level) -> Result<(), QueueError> {
        let component = component.to_owned();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO levels (component, level) VALUES (?1, ?2)
                 ON CONFLICT (component) DO UPDATE SET level = excluded.level",
                params![component, level.as_str()],
            )
            .map(drop)
        })
        .await
    }

    pub async fn levels(&self) -> Result<HashMap<String, Level>, QueueError> {
        let raw: Vec<(String, String)> = self
            .run(|conn| {
                conn.prepare_cached("SELECT component, level FROM levels")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .await?;
        Ok(raw.into_iter().filter_map(|(c, l)| Some((c, l.parse().ok()?))).collect())
    }
}

#[derive(Clone, Copy)]
struct Limits {
    max_len: u64,
    dead_max: u64,
}

/// The queue's thread: runs requests in order, merging consecutive pushes
/// into one transaction.
fn serve(mut conn: Connection, requests: std_mpsc::Receiver<Request>, limits: Limits) {
    // The dead-letter bound lives in the file so every process's
    // dead_letter transaction applies the same one.
    let _ = conn.execute(
        "INSERT INTO counters (name, value) VALUES ('dead_letter_max', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [limits.dead_max as i64],
    );
    let mut next = requests.recv().ok();
    while let Some(request) = next.take() {
        match request {
            Request::Run(job) => job(&mut conn),
            Request::Push(payloads, reply) => {
                let mut batch = vec![(payloads, reply)];
                while batch.len() < MAX_PUSHES_PER_TRANSACTION {
                    match requests.try_recv() {
                        Ok(Request::Push(payloads, reply)) => batch.push((payloads, reply)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let all: Vec<&String> = batch.iter().flat_map(|(p, _)| p).collect();
                match push_all(&mut conn, &all, limits.max_len) {
                    Ok((dropped, depth)) => {
                        // One transaction stored them all: each caller hears
                        // what it did as a whole.
                        for (_, reply) in batch {
                            let _ = reply.send(Ok(Pushed { dropped, depth }));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch {
                            let _ = reply.send(Err(QueueError(format!("the embedded queue failed: {e}"))));
                        }
                    }
                }
            }
        }
        if next.is_none() {
            next = requests.recv().ok();
        }
    }
}

fn push_all(conn: &mut Connection, payloads: &[&String], max_len: u64) -> rusqlite::Result<(u64, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO entries (payload) VALUES (?1)")?;
        for payload in payloads {
            insert.execute([payload])?;
        }
    }
    let n = payloads.len() as i64;
    add(&tx, "accepted", n)?;
    add(&tx, "depth", n)?;
    let depth = counter(&tx, "depth")?;
    let mut dropped = 0u64;
    if depth > max_len as i64 {
        dropped = tx.execute(
            "DELETE FROM entries WHERE seq IN (SELECT seq FROM entries WHERE deliveries = 0 ORDER BY seq LIMIT ?1)",
            [depth - max_len as i64],
        )? as u64;
        if dropped > 0 {
            add(&tx, "dropped", dropped as i64)?;
            add(&tx, "depth", -(dropped as i64))?;
        }
    }
    tx.commit()?;
    Ok((dropped, depth as u64 - dropped))
}

fn add(conn: &Connection, name: &str, by: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = value + ?2",
    )?
    .execute(params![name, by])
    .map(drop)
}

fn counter(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM counters WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(0))
}

fn note(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO notes (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![name, value])
    .map(drop)
}

fn seqs(ids: &[String]) -> Vec<i64> {
    ids.iter().filter_map(|id| id.parse().ok()).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
