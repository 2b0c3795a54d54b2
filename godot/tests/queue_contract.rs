//! The queue contract (see `godot::queue`), run against both backends: the
//! embedded SQLite file and a real redis-server started for the test.

use std::time::Duration;

use godot::config::Config;
use godot::queue::{Delivery, Queue};
use godot::{Level, LogEntry};

#[derive(Clone, Copy)]
enum Kind {
    Embedded,
    Redis,
}

/// A queue of either kind, and what keeps it alive.
struct Backend {
    queue: Queue,
    _redis: Option<mcp_tests::TestRedis>,
    _dir: tempfile::TempDir,
}

const LEASE: Duration = Duration::from_millis(400);

async fn open(kind: Kind, max_queue_size: u64) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let (base, redis) = match kind {
        Kind::Embedded => (Config::embedded(dir.path()), None),
        Kind::Redis => {
            let redis = tokio::task::spawn_blocking(mcp_tests::TestRedis::start).await.unwrap();
            (Config::redis(redis.url(), "contract"), Some(redis))
        }
    };
    let mut config = base;
    config.max_queue_size = max_queue_size;
    config.dead_letter_max = 3;
    config.worker.lease = LEASE;
    Backend { queue: Queue::open(&config).unwrap(), _redis: redis, _dir: dir }
}

fn entries(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| LogEntry::new("contract".into(), Level::Info, format!("m{i}"), None, None).unwrap().to_json())
        .collect()
}

fn messages(batch: &[Delivery]) -> Vec<String> {
    batch
        .iter()
        .map(|d| serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["message"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(batch: &[Delivery]) -> Vec<String> {
    batch.iter().map(|d| d.id.clone()).collect()
}

/// depth == accepted - delivered - dropped - dead_lettered, always.
async fn assert_balanced(queue: &Queue) {
    let c = queue.counts().await.unwrap();
    assert_eq!(c.depth, c.accepted - c.delivered - c.dropped - c.dead_lettered, "{c:?}");
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Embedded).await })*
        }
        mod on_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Redis).await })*
        }
    };
}

contract!(
    entries_leave_in_order_and_only_when_acknowledged,
    a_lapsed_lease_passes_the_batch_on_and_renewal_keeps_it,
    a_lapsed_holder_can_neither_renew_nor_hand_back_what_another_took_over,
    a_dead_holders_entries_are_found_behind_a_long_head_of_live_leases,
    released_entries_are_claimable_at_once,
    the_bound_drops_the_oldest_unclaimed_and_counts_them_exactly,
    claimed_entries_are_never_dropped_by_the_bound,
    an_entry_delivered_twice_counts_once,
    dead_letters_are_kept_newest_first_and_bounded,
    levels_are_stored_centrally,
);

async fn entries_leave_in_order_and_only_when_acknowledged(kind: Kind) {
    let b = open(kind, 1000).await;
    let q = &b.queue;
    let a = q.consumer("a");
    assert!(q.claim(&a, 10, Duration::ZERO).await.unwrap().is_empty(), "an empty queue hands out nothing");
    let pushed = q.push(entries(0, 10)).await.unwrap();
    assert_eq!((pushed.dropped, pushed.depth), (0, 10));
    let first = q.claim(&a, 4, Duration::from_secs(1)).await.unwrap();
    assert_eq!(messages(&first), ["m0", "m1", "m2", "m3"]);
    let second = q.claim(&a, 4, Duration::ZERO).await.unwrap();
    assert_eq!(messages(&second), ["m4", "m5", "m6", "m7"], "claimed entries are not handed out again");
    assert_eq!(q.ack(&ids(&first)).await.unwrap(), 4);
    let c = q.counts().await.unwrap();
    assert_eq!((c.accepted, c.delivered, c.depth, c.pending), (10, 4, 6, 4));
    assert!(c.last_delivery_at.is_some());
    assert_balanced(q).await;
    let rest = q.claim(&a, 10, Duration::ZERO).await.unwrap();
    assert_eq!(messages(&rest), ["m8", "m9"]);
    // A claim waiting for entries wakes when they arrive.
    let waiting = {
        let q = q.clone();
        tokio::spawn(async move { q.claim(&q.consumer("b"), 10, Duration::from_secs(5)).await.unwrap() })
    };
    q.push(entries(10, 11)).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(4), waiting).await.expect("the claim woke").unwrap();
    assert_eq!(messages(&woke), ["m10"]);
}

async fn a_lapsed_lease_passes_the_batch_on_and_renewal_keeps_it(kind: Kind) {
    let b = open(kind, 1000).await;
    let q = &b.queue;
    let (dead, live, other) = (q.consumer("dead"), q.consumer("live"), q.consumer("other"));
    q.push(entries(0, 6)).await.unwrap();
    let abandoned = q.claim(&dead, 3, Duration::ZERO).await.unwrap();
    let kept = q.claim(&live, 3, Duration::ZERO).await.unwrap();
    assert_eq!(messages(&kept), ["m3", "m4", "m5"]);
    assert!(q.claim(&other, 10, Duration::ZERO).await.unwrap().is_empty(), "leased entries stay with their holder");
    // `live` renews at a third of the lease; `dead` never does.
    let started = std::time::Instant::now();
    let mut taken = Vec::new();
    while started.elapsed() < LEASE * 3 {
        q.renew(&live, &ids(&kept)).await.unwrap();
        if taken.is_empty() {
            taken = q.claim(&other, 10, Duration::ZERO).await.unwrap();
        } else {
            let more = q.claim(&q.consumer("third"), 10, Duration::ZERO).await.unwrap();
            assert!(more.is_empty() || more.iter().all(|d| taken.contains(d)), "renewed entries stay with `live`");
        }
        tokio::time::sleep(LEASE / 4).await;
    }
    assert_eq!(messages(&taken), messages(&abandoned), "the dead holder's entries, and only those, moved on");
    assert!(started.elapsed() >= LEASE, "not before the lease ran out");
    q.ack(&ids(&taken)).await.unwrap();
    q.ack(&ids(&kept)).await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.delivered, c.depth, c.pending), (6, 0, 0));
}

/// Claims for `consumer` until it gets something (a lease ran out); fails
/// after ten leases.
async fn claim_once_lapsed(q: &Queue, consumer: &godot::queue::Consumer, max: usize) -> Vec<Delivery> {
    let started = std::time::Instant::now();
    loop {
        let taken = q.claim(consumer, max, Duration::ZERO).await.unwrap();
        if !taken.is_empty() {
            return taken;
        }
        assert!(started.elapsed() < LEASE * 10, "nothing lapsed within ten leases");
        tokio::time::sleep(LEASE / 8).await;
    }
}

async fn a_lapsed_holder_can_neither_renew_nor_hand_back_what_another_took_over(kind: Kind) {
    let b = open(kind, 1000).await;
    let q = &b.queue;
    let (lapsed, taker, third) = (q.consumer("lapsed"), q.consumer("taker"), q.consumer("third"));
    q.push(entries(0, 3)).await.unwrap();
    let held = q.claim(&lapsed, 3, Duration::ZERO).await.unwrap();
    assert_eq!(q.renew(&lapsed, &ids(&held)).await.unwrap(), 3, "its own entries, renewed");
    // `lapsed` stalls past its lease; `taker` takes the batch over.
    let taken = claim_once_lapsed(q, &taker, 10).await;
    assert_eq!(messages(&taken), messages(&held));
    // `lapsed` wakes up: renewing or handing back what is no longer its own
    // must leave it with `taker`, who is delivering it.
    assert_eq!(q.renew(&lapsed, &ids(&held)).await.unwrap(), 0, "nothing of it is `lapsed`'s to renew");
    assert_eq!(q.release(&lapsed, &ids(&held)).await.unwrap(), 0, "nor to hand back");
    assert!(q.claim(&third, 10, Duration::ZERO).await.unwrap().is_empty(), "`taker` still holds the batch");
    assert_eq!(q.renew(&taker, &ids(&taken)).await.unwrap(), 3, "`taker`'s renewal holds");
    assert_eq!(q.ack(&ids(&taken)).await.unwrap(), 3);
    assert_eq!(q.renew(&taker, &ids(&taken)).await.unwrap(), 0, "acknowledged entries are no one's");
    assert_eq!(q.release(&taker, &ids(&taken)).await.unwrap(), 0);
    let c = q.counts().await.unwrap();
    assert_eq!((c.delivered, c.depth, c.pending), (3, 0, 0));
}

async fn a_dead_holders_entries_are_found_behind_a_long_head_of_live_leases(kind: Kind) {
    let b = open(kind, 1000).await;
    let q = &b.queue;
    let (live, dead, other) = (q.consumer("live"), q.consumer("dead"), q.consumer("other"));
    q.push(entries(0, 105)).await.unwrap();
    // The oldest 100 held by a live worker, the newest 5 by one that died.
    let head = q.claim(&live, 100, Duration::ZERO).await.unwrap();
    let abandoned = q.claim(&dead, 5, Duration::ZERO).await.unwrap();
    assert_eq!((head.len(), abandoned.len()), (100, 5));
    // One entry per claim: each look at the pending list is short, so only
    // a scan that goes on where the last one stopped reaches the dead ones.
    let started = std::time::Instant::now();
    let mut taken = Vec::new();
    while taken.len() < abandoned.len() {
        assert!(started.elapsed() < LEASE * 20, "only {} of the dead holder's entries found", taken.len());
        assert_eq!(q.renew(&live, &ids(&head)).await.unwrap(), 100);
        let got = q.claim(&other, 1, Duration::ZERO).await.unwrap();
        if got.is_empty() {
            tokio::time::sleep(LEASE / 8).await;
        }
        taken.extend(got);
    }
    assert_eq!(messages(&taken), messages(&abandoned), "the dead holder's entries, and only those");
    q.ack(&ids(&head)).await.unwrap();
    q.ack(&ids(&taken)).await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.delivered, c.depth, c.pending), (105, 0, 0));
}

async fn released_entries_are_claimable_at_once(kind: Kind) {
    let b = open(kind, 1000).await;
    let q = &b.queue;
    let (a, b2) = (q.consumer("a"), q.consumer("b"));
    q.push(entries(0, 3)).await.unwrap();
    let held = q.claim(&a, 3, Duration::ZERO).await.unwrap();
    q.release(&a, &ids(&held)).await.unwrap();
    let again = q.claim(&b2, 3, Duration::ZERO).await.unwrap();
    assert_eq!(messages(&again), ["m0", "m1", "m2"], "handed back entries go to the next claim, in order");
}

async fn the_bound_drops_the_oldest_unclaimed_and_counts_them_exactly(kind: Kind) {
    let b = open(kind, 10).await;
    let q = &b.queue;
    for i in 0..25 {
        q.push(entries(i, i + 1)).await.unwrap();
    }
    let pushed = q.push(entries(25, 30)).await.unwrap();
    assert_eq!((pushed.dropped, pushed.depth), (5, 10), "one push of five over the bound drops five");
    let c = q.counts().await.unwrap();
    assert_eq!((c.accepted, c.dropped, c.depth), (30, 20, 10));
    assert_balanced(q).await;
    let left = q.claim(&q.consumer("a"), 100, Duration::ZERO).await.unwrap();
    let expected: Vec<String> = (20..30).map(|i| format!("m{i}")).collect();
    assert_eq!(messages(&left), expected, "the newest ten are kept");
}

async fn claimed_entries_are_never_dropped_by_the_bound(kind: Kind) {
    let b = open(kind, 5).await;
    let q = &b.queue;
    let a = q.consumer("a");
    q.push(entries(0, 5)).await.unwrap();
    let held = q.claim(&a, 3, Duration::ZERO).await.unwrap();
    // Two unclaimed (m3, m4) and three held; ten more arrive one at a time.
    for i in 5..15 {
        q.push(entries(i, i + 1)).await.unwrap();
    }
    let c = q.counts().await.unwrap();
    assert_eq!((c.depth, c.dropped, c.pending), (5, 10, 3), "{c:?}");
    assert_eq!(q.ack(&ids(&held)).await.unwrap(), 3, "the held entries were all still there");
    let rest = q.claim(&a, 100, Duration::ZERO).await.unwrap();
    assert_eq!(messages(&rest), ["m13", "m14"]);
    q.push(entries(15, 16)).await.unwrap();
    assert_balanced(q).await;
    // Everything claimed: the bound has nothing it may drop but new entries.
    let held = q.claim(&a, 100, Duration::ZERO).await.unwrap();
    assert_eq!(held.len(), 1);
    let pushed = q.push(entries(16, 24)).await.unwrap();
    assert_eq!((pushed.depth, pushed.dropped), (5, 6), "over the bound by what is held at most");
    assert_balanced(q).await;
}

async fn an_entry_delivered_twice_counts_once(kind: Kind) {
    let b = open(kind, 100).await;
    let q = &b.queue;
    let (slow, fast) = (q.consumer("slow"), q.consumer("fast"));
    q.push(entries(0, 2)).await.unwrap();
    let first = q.claim(&slow, 2, Duration::ZERO).await.unwrap();
    let mut second = Vec::new();
    let started = std::time::Instant::now();
    while second.is_empty() && started.elapsed() < LEASE * 5 {
        tokio::time::sleep(LEASE / 4).await;
        second = q.claim(&fast, 2, Duration::ZERO).await.unwrap();
    }
    assert_eq!(messages(&second), messages(&first), "the stalled holder's lease lapsed");
    assert_eq!(q.ack(&ids(&second)).await.unwrap(), 2);
    assert_eq!(q.ack(&ids(&first)).await.unwrap(), 0, "the late acknowledgement finds nothing");
    let c = q.counts().await.unwrap();
    assert_eq!((c.delivered, c.depth), (2, 0));
}

async fn dead_letters_are_kept_newest_first_and_bounded(kind: Kind) {
    let b = open(kind, 100).await;
    let q = &b.queue;
    let a = q.consumer("a");
    q.push(entries(0, 5)).await.unwrap();
    q.push(vec!["not json at all".to_owned()]).await.unwrap();
    let batch = q.claim(&a, 10, Duration::ZERO).await.unwrap();
    for (n, d) in batch.iter().enumerate() {
        q.dead_letter(d, &format!("reason {n}")).await.unwrap();
    }
    q.dead_letter(&batch[0], "twice").await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.dead_lettered, c.dead_letters, c.dead_letters_trimmed, c.depth), (6, 3, 3, 0), "{c:?}");
    let kept = q.dead_letters(10).await.unwrap();
    let reasons: Vec<&str> = kept.iter().map(|d| d.error.as_str()).collect();
    assert_eq!(reasons, ["reason 5", "reason 4", "reason 3"]);
    assert_eq!(kept[0].entry, serde_json::json!("not json at all"), "a non-JSON entry is kept as its text");
    assert_eq!(kept[1].entry["message"], "m4");
    assert_eq!(q.dead_letters(1).await.unwrap().len(), 1);
    assert_balanced(q).await;
}

async fn levels_are_stored_centrally(kind: Kind) {
    let b = open(kind, 100).await;
    let q = &b.queue;
    assert!(q.levels().await.unwrap().is_empty());
    q.set_level("dewey", Level::Warn).await.unwrap();
    q.set_level("horace", Level::Debug).await.unwrap();
    q.set_level("dewey", Level::Error).await.unwrap();
    let levels = q.levels().await.unwrap();
    assert_eq!(levels.get("dewey"), Some(&Level::Error));
    assert_eq!(levels.get("horace"), Some(&Level::Debug));
    q.add_filtered(3).await.unwrap();
    q.record_delivery(Some("Dewey at ws://x is unreachable")).await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!(c.filtered, 3);
    assert_eq!(c.last_error.as_deref(), Some("Dewey at ws://x is unreachable"));
    assert!(c.last_error_at.is_some());
}
