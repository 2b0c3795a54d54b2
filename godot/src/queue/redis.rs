//! The queue as a Redis stream read through one consumer group.
//!
//! - The stream `LOG_QUEUE_NAME` holds one entry per log (field `e`, the
//!   JSON). Workers read it in the group [`GROUP`] with XREADGROUP, which
//!   leaves each entry in the group's pending list (PEL) until XACK: a worker
//!   killed mid-batch loses nothing, and XAUTOCLAIM hands its entries to
//!   another worker once they have been idle for the lease (WORKER_LEASE_MS).
//!   A live worker renews its lease (XCLAIM to itself resets the idle time),
//!   only on entries it still holds: one whose lease ran out and another
//!   worker took over stays with that worker.
//! - Acknowledging also deletes the entry (XACK + XDEL in one script), so the
//!   stream's length is exactly what is still to deliver: pending plus never
//!   claimed.
//! - The bound runs inside the push script, atomically with the XADD: it
//!   deletes the oldest entries after the group's `last-delivered-id`, which
//!   no consumer has ever been handed, and counts exactly those. XTRIM would
//!   cut from the head, where the pending entries are: it could not tell
//!   which of them a worker was about to deliver anyway.
//! - `LOG_QUEUE_NAME:stats` (a hash) holds the counters, changed by the same
//!   scripts as the entries; `LOG_QUEUE_NAME:dead` (a list, newest first)
//!   the dead letters; `logger_config:levels` (a hash, the seeds' key) the
//!   level per component.
//!
//! Every command fails fast while Redis is down (one connection attempt,
//! 1 s connect timeout) and the next command tries again, so the facade
//! answers at once and both sides resume by themselves when Redis is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::{Consumer, DeadLetter, Delivery, Pushed, QueueCounts, QueueError, now_rfc3339};
use crate::config::{Config, redact};
use crate::entry::Level;

/// The consumer group every worker reads in.
pub const GROUP: &str = "godot-workers";
/// The seeds' hash of levels per component.
pub const LEVELS_KEY: &str = "logger_config:levels";
/// Ids per XACK/XDEL/XCLAIM call, well under Lua's argument stack.
const IDS_PER_CALL: usize = 1000;

/// KEYS: stream, stats. ARGV: max length, group, entries...
/// Returns {dropped, length after}.
const PUSH: &str = r#"
local stream, stats, max, group = KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2]
for i = 3, #ARGV do
  redis.call('XADD', stream, '*', 'e', ARGV[i])
end
redis.call('HINCRBY', stats, 'accepted', #ARGV - 2)
local len = redis.call('XLEN', stream)
local dropped = 0
if len > max then
  -- Entries after the group's last-delivered id were never handed to a
  -- consumer; without the group yet, none was.
  local first = '-'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
    end
    if name == group then first = '(' .. last end
  end
  local excess = len - max
  while excess > 0 do
    local victims = redis.call('XRANGE', stream, first, '+', 'COUNT', math.min(excess, 1000))
    if #victims == 0 then break end
    local ids = {}
    for k, v in ipairs(victims) do ids[k] = v[1] end
    dropped = dropped + redis.call('XDEL', stream, unpack(ids))
    excess = excess - #victims
    first = '(' .. ids[#ids]
  end
  if dropped > 0 then redis.call('HINCRBY', stats, 'dropped', dropped) end
end
return {dropped, len - dropped}
"#;

/// KEYS: stream. ARGV: group, consumer, idle ms ('' for none), ids...
/// Re-claims, to `consumer`, those of `ids` it still holds, resetting their
/// idle time (the lease) or, with `idle`, setting it (a hand-back). An id
/// another consumer took over with XAUTOCLAIM after this one's lease ran
/// out is left with that consumer: a plain XCLAIM with min-idle 0 would
/// take it back, and the two would deliver it both. Returns how many it held.
const RECLAIM: &str = r#"
local stream, group, consumer, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local claim = {'XCLAIM', stream, group, consumer, 0}
for i = 4, #ARGV do
  local p = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if #p == 1 then claim[#claim + 1] = ARGV[i] end
end
local held = #claim - 5
if held == 0 then return 0 end
if idle ~= '' then
  claim[#claim + 1] = 'IDLE'
  claim[#claim + 1] = idle
end
claim[#claim + 1] = 'JUSTID'
redis.call(unpack(claim))
return held
"#;

/// KEYS: stream, stats. ARGV: group, now, ids... Returns how many were
/// still pending (so an entry two workers delivered counts once).
const ACK: &str = r#"
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
redis.call('XDEL', KEYS[1], unpack(ARGV, 3))
if n > 0 then
  redis.call('HINCRBY', KEYS[2], 'delivered', n)
  redis.call('HSET', KEYS[2], 'last_delivery_at', ARGV[2])
end
return n
"#;

/// KEYS: stream, stats, dead. ARGV: group, id, record, max dead letters.
const DEAD_LETTER: &str = r#"
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if n == 1 then
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'dead_lettered', 1)
  local max = tonumber(ARGV[4])
  local over = redis.call('LLEN', KEYS[3]) - max
  if over > 0 then
    redis.call('LTRIM', KEYS[3], 0, max - 1)
    redis.call('HINCRBY', KEYS[2], 'dead_letters_trimmed', over)
  end
end
return n
"#;

/// KEYS: stream, stats, dead. ARGV: group. Returns {length, pending, dead letters, stats...}.
const COUNTS: &str = r#"
local len = redis.call('XLEN', KEYS[1])
local pending = 0
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) == 'table' and groups.err == nil then
  for _, g in ipairs(groups) do
    local name, p
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'pending' then p = g[j + 1] end
    end
    if name == ARGV[1] then pending = p end
  end
end
return {len, pending, redis.call('LLEN', KEYS[3]), redis.call('HGETALL', KEYS[2])}
"#;

/// The Redis queue. Cheap to clone.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// Shown in errors: the URL without its password.
    shown: String,
    conn: ConnectionManager,
    stream: String,
    stats: String,
    dead: String,
    max_len: u64,
    dead_max: u64,
    lease: Duration,
    push: Script,
    ack: Script,
    dead_letter: Script,
    counts: Script,
    reclaim: Script,
}

/// A consumer's own connection for blocking reads.
pub struct BlockingLink {
    conn: ConnectionManager,
    group_ready: AtomicBool,
    /// Its own pending entries are read once, at the first claim, so a worker
    /// restarted under the same WORKER_NAME resumes them at once.
    resumed: AtomicBool,
    /// Where this consumer's next XAUTOCLAIM scan starts: the cursor the
    /// last one returned. Each scan looks at a bounded part of the pending
    /// list (Redis: at most ten times COUNT entries); from `0-0` every time,
    /// a dead worker's entries behind a long head of live leases would never
    /// be reached. Back to `0-0` when a scan reaches the end.
    autoclaim_from: std::sync::Mutex<String>,
}

/// Fails fast while Redis is down: one attempt per command, and the next
/// command tries again. `response` bounds a command's wait for its answer.
fn manager(client: &redis::Client, response: Duration) -> Result<ConnectionManager, redis::RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

impl RedisQueue {
    pub fn open(url: &str, name: &str, config: &Config) -> Result<RedisQueue, QueueError> {
        let shown = redact(url);
        let client =
            redis::Client::open(url).map_err(|e| QueueError(format!("REDIS_URL {shown} is not usable: {e}")))?;
        let conn =
            manager(&client, Duration::from_secs(5)).map_err(|e| QueueError(format!("Redis at {shown}: {e}")))?;
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                client,
                shown,
                conn,
                stream: name.to_owned(),
                stats: format!("{name}:stats"),
                dead: format!("{name}:dead"),
                max_len: config.max_queue_size,
                dead_max: config.dead_letter_max,
                lease: config.worker.lease,
                push: Script::new(PUSH),
                ack: Script::new(ACK),
                dead_letter: Script::new(DEAD_LETTER),
                counts: Script::new(COUNTS),
                reclaim: Script::new(RECLAIM),
            }),
        })
    }

    fn error(&self, e: redis::RedisError) -> QueueError {
        let what = if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
            "is unreachable"
        } else {
            "failed"
        };
        QueueError(format!("the log queue (Redis at {}) {what}: {e}", self.inner.shown))
    }

    pub(super) fn blocking_link(&self) -> Option<BlockingLink> {
        // A blocking read waits at most about a second (see `claim`).
        let conn = manager(&self.inner.client, Duration::from_secs(10)).ok()?;
        Some(BlockingLink {
            conn,
            group_ready: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            autoclaim_from: std::sync::Mutex::new("0-0".to_owned()),
        })
    }

    pub async fn push(&self, payloads: Vec<String>) -> Result<Pushed, QueueError> {
        if payloads.is_empty() {
            return Ok(Pushed::default());
        }
        let i = &self.inner;
        let mut call = i.push.key(&i.stream);
        call.key(&i.stats).arg(i.max_len).arg(GROUP).arg(&payloads);
        let (dropped, depth): (u64, u64) = call.invoke_async(&mut i.conn.clone()).await.map_err(|e| self.error(e))?;
        Ok(Pushed { dropped, depth })
    }

    fn link<'a>(&self, consumer: &'a Consumer) -> &'a BlockingLink {
        consumer.blocking.as_ref().expect("a Redis consumer has its own connection")
    }

    async fn ensure_group(&self, link: &BlockingLink) -> Result<(), QueueError> {
        if link.group_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        // From id 0: a group created after entries were queued still gets them all.
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.inner.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut link.conn.clone())
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(self.error(e)),
        }
        link.group_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub async fn claim(&self, consumer: &Consumer, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let link = self.link(consumer);
        self.ensure_group(link).await?;
        match self.claim_once(consumer, link, max, wait).await {
            // The stream or group vanished (Redis restarted without its
            // data, or someone deleted the key): create it again.
            Err(e) if e.code() == Some("NOGROUP") => {
                link.group_ready.store(false, Ordering::Relaxed);
                self.ensure_group(link).await?;
                self.claim_once(consumer, link, max, wait).await.map_err(|e| self.error(e))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    async fn claim_once(
        &self,
        consumer: &Consumer,
        link: &BlockingLink,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, redis::RedisError> {
        let i = &self.inner;
        let mut conn = link.conn.clone();
        let mut out = Vec::new();
        if !link.resumed.load(Ordering::Relaxed) {
            let own: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&consumer.name)
                .arg("COUNT")
                .arg(max)
                .arg("STREAMS")
                .arg(&i.stream)
                .arg("0")
                .query_async(&mut conn)
                .await?;
            link.resumed.store(true, Ordering::Relaxed);
            out.extend(read_reply_entries(own));
        }
        if out.len() < max {
            let from = link.autoclaim_from.lock().expect("the cursor lock is never poisoned").clone();
            let stale: Value = redis::cmd("XAUTOCLAIM")
                .arg(&i.stream)
                .arg(GROUP)
                .arg(&consumer.name)
                .arg(i.lease.as_millis() as u64)
                .arg(&from)
                .arg("COUNT")
                .arg(max - out.len())
                .query_async(&mut conn)
                .await?;
            // [next cursor, entries, deleted ids].
            if let Value::Array(mut parts) = stale
                && parts.len() >= 2
            {
                out.extend(entry_list(parts.swap_remove(1)));
                let next = redis::from_redis_value_ref(&parts[0]).unwrap_or_else(|_| "0-0".to_owned());
                *link.autoclaim_from.lock().expect("the cursor lock is never poisoned") = next;
            }
        }
        if out.len() < max {
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP").arg(GROUP).arg(&consumer.name).arg("COUNT").arg(max - out.len());
            // BLOCK 0 would wait forever: only block for a positive wait,
            // and only when nothing was claimed above.
            let block_ms = wait.as_millis() as u64;
            if out.is_empty() && block_ms > 0 {
                read.arg("BLOCK").arg(block_ms.min(5_000));
            }
            let fresh: Value = read.arg("STREAMS").arg(&i.stream).arg(">").query_async(&mut conn).await?;
            out.extend(read_reply_entries(fresh));
        }
        Ok(out)
    }

    /// Re-claims what `consumer` still holds of `ids` (the [`RECLAIM`]
    /// script): resets the lease or, with `idle`, sets the idle time so
    /// anyone may take them now. Returns how many it held.
    async fn reclaim(&self, consumer: &Consumer, ids: &[String], idle: Option<Duration>) -> Result<u64, QueueError> {
        let i = &self.inner;
        let mut conn = self.link(consumer).conn.clone();
        let idle = idle.map_or(String::new(), |idle| idle.as_millis().to_string());
        let mut held = 0;
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut call = i.reclaim.key(&i.stream);
            call.arg(GROUP).arg(&consumer.name).arg(&idle).arg(chunk);
            let n: u64 = call.invoke_async(&mut conn).await.map_err(|e| self.error(e))?;
            held += n;
        }
        Ok(held)
    }

    pub async fn renew(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        self.reclaim(consumer, ids, None).await
    }

    pub async fn release(&self, consumer: &Consumer, ids: &[String]) -> Result<u64, QueueError> {
        self.reclaim(consumer, ids, Some(self.inner.lease)).await
    }

    pub async fn ack(&self, ids: &[String]) -> Result<u64, QueueError> {
        let i = &self.inner;
        let mut acked = 0;
        let now = now_rfc3339();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut call = i.ack.key(&i.stream);
            call.key(&i.stats).arg(GROUP).arg(&now).arg(chunk);
            let n: u64 = call.invoke_async(&mut i.conn.clone()).await.map_err(|e| self.error(e))?;
            acked += n;
        }
        Ok(acked)
    }

    pub async fn dead_letter(&self, delivery: &Delivery, error: &str) -> Result<(), QueueError> {
        let i = &self.inner;
        let record = super::dead_letter_record(&delivery.payload, error);
        let mut call = i.dead_letter.key(&i.stream);
        call.key(&i.stats).key(&i.dead).arg(GROUP).arg(&delivery.id).arg(record).arg(i.dead_max);
        let _: u64 = call.invoke_async(&mut i.conn.clone()).await.map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let i = &self.inner;
        let records: Vec<String> = redis::cmd("LRANGE")
            .arg(&i.dead)
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut i.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(records.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let i = &self.inner;
        let mut call = i.counts.key(&i.stream);
        call.key(&i.stats).key(&i.dead).arg(GROUP);
        let (depth, pending, dead_letters, stats): (u64, u64, u64, HashMap<String, String>) =
            call.invoke_async(&mut i.conn.clone()).await.map_err(|e| self.error(e))?;
        let n = |k: &str| stats.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueCounts {
            depth,
            pending,
            accepted: n("accepted"),
            delivered: n("delivered"),
            dropped: n("dropped"),
            dead_lettered: n("dead_lettered"),
            dead_letters,
            dead_letters_trimmed: n("dead_letters_trimmed"),
            filtered: n("filtered"),
            last_error: stats.get("last_error").cloned(),
            last_error_at: stats.get("last_error_at").cloned(),
            last_delivery_at: stats.get("last_delivery_at").cloned(),
        })
    }

    pub async fn add_filtered(&self, n: u64) -> Result<(), QueueError> {
        let i = &self.inner;
        let _: i64 = redis::cmd("HINCRBY")
            .arg(&i.stats)
            .arg("filtered")
            .arg(n)
            .query_async(&mut i.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn record_delivery(&self, error: Option<&str>) -> Result<(), QueueError> {
        let Some(error) = error else { return Ok(()) };
        let i = &self.inner;
        let _: i64 = redis::cmd("HSET")
            .arg(&i.stats)
            .arg("last_error")
            .arg(error)
            .arg("last_error_at")
            .arg(now_rfc3339())
            .query_async(&mut i.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn set_level(&self, component: &str, level: Level) -> Result<(), QueueError> {
        let i = &self.inner;
        let _: i64 = redis::cmd("HSET")
            .arg(LEVELS_KEY)
            .arg(component)
            .arg(level.as_str())
            .query_async(&mut i.conn.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn levels(&self) -> Result<HashMap<String, Level>, QueueError> {
        let i = &self.inner;
        let raw: HashMap<String, String> =
            redis::cmd("HGETALL").arg(LEVELS_KEY).query_async(&mut i.conn.clone()).await.map_err(|e| self.error(e))?;
        // A value another program wrote that is no level is ignored, not fatal.
        Ok(raw.into_iter().filter_map(|(c, l)| Some((c, l.parse().ok()?))).collect())
    }
}

/// The entries of an XREADGROUP reply: `[[stream, entries]]`, or nil when
/// the wait ran out.
fn read_reply_entries(reply: Value) -> Vec<Delivery> {
    let Value::Array(streams) = reply else { return Vec::new() };
    streams
        .into_iter()
        .flat_map(|stream| match stream {
            Value::Array(mut pair) if pair.len() == 2 => entry_list(pair.pop().expect("two items")),
            _ => Vec::new(),
        })
        .collect()
}

/// `[[id, [field, value, ...]], ...]` as deliveries. An entry whose fields
/// are nil was deleted after it was claimed and is skipped (Redis drops it
/// from the pending list itself). An entry without the `e` field, written by
/// some other program, is delivered with its fields as the payload: not
/// being a log entry, it ends among the dead letters instead of being
/// claimed again forever.
fn entry_list(entries: Value) -> Vec<Delivery> {
    let Value::Array(entries) = entries else { return Vec::new() };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(mut parts) = entry else { return None };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id: String = redis::from_redis_value(parts.pop()?).ok()?;
            let Value::Array(fields) = fields else { return None };
            let mut payload = None;
            let mut shown = Vec::new();
            for pair in fields.chunks(2) {
                let key: Option<String> = redis::from_redis_value_ref(&pair[0]).ok();
                let value: Option<String> = pair.get(1).and_then(|v| redis::from_redis_value_ref(v).ok());
                if key.as_deref() == Some("e") {
                    payload = value.clone();
                }
                shown.push(format!("{}={}", key.unwrap_or_default(), value.unwrap_or_default()));
            }
            let payload = payload.unwrap_or_else(|| format!("stream entry without an `e` field: {}", shown.join(" ")));
            Some(Delivery { id, payload })
        })
        .collect()
}
