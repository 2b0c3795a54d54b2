//! What the facade's tools share: the queue, the intake, the levels per
//! component, and the link to Dewey.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::config::Config;
use crate::dewey_link::DeweyLink;
use crate::entry::Level;
use crate::intake::Intake;
use crate::queue::Queue;

/// How often each facade re-reads the levels (so a `logger_set_level` on
/// any facade holds everywhere within a second) and reports its filtered count.
pub const LEVEL_REFRESH: Duration = Duration::from_millis(500);
/// How long a proxied call may wait for Dewey's answer.
const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// The facade's shared state. Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct Facade(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub queue: Queue,
    pub intake: Intake,
    pub dewey: DeweyLink,
    pub description: String,
    pub max_queue_size: u64,
    levels: RwLock<HashMap<String, Level>>,
    /// Bumped by every `set_level` here, so that a refresh whose read of the
    /// shared levels began before it does not put the old level back.
    level_changes: AtomicU64,
    /// Filtered since the last report to the queue's shared counter.
    filtered: AtomicU64,
}

impl std::ops::Deref for Facade {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Facade {
    /// The facade over `queue`. Starts the intake and the level refresh on
    /// the current runtime; both stop when the last clone is dropped.
    pub fn start(queue: Queue, config: &Config) -> Facade {
        let facade = Facade(Arc::new(Inner {
            intake: Intake::start(queue.clone()),
            queue,
            dewey: DeweyLink::new(&config.dewey_url, "godot-facade", PROXY_TIMEOUT),
            description: config.queue_description(),
            max_queue_size: config.max_queue_size,
            levels: RwLock::new(HashMap::new()),
            level_changes: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
        }));
        tokio::spawn(refresh(Arc::downgrade(&facade.0)));
        facade
    }

    /// The level set for `component`, if any (TRACE, everything, when none).
    pub fn level_of(&self, component: &str) -> Option<Level> {
        self.levels.read().expect("the level lock is never poisoned").get(component).copied()
    }

    /// Whether an entry at `level` from `component` is queued; counts it when not.
    pub fn admits(&self, component: &str, level: Level) -> Result<(), Level> {
        match self.level_of(component) {
            Some(min) if level < min => {
                self.filtered.fetch_add(1, Ordering::Relaxed);
                Err(min)
            }
            _ => Ok(()),
        }
    }

    /// Stores the level centrally and applies it here at once.
    pub async fn set_level(&self, component: &str, level: Level) -> Result<(), String> {
        self.queue.set_level(component, level).await.map_err(|e| e.0)?;
        let mut levels = self.levels.write().expect("the level lock is never poisoned");
        levels.insert(component.to_owned(), level);
        self.level_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn levels(&self) -> HashMap<String, Level> {
        self.levels.read().expect("the level lock is never poisoned").clone()
    }

    /// Filtered entries not yet added to the shared counter.
    pub fn unreported_filtered(&self) -> u64 {
        self.filtered.load(Ordering::Relaxed)
    }
}

/// Re-reads the levels and reports the filtered count, twice a second,
/// until the facade is dropped. While the queue is unreachable the last
/// levels stay in force and the count waits.
async fn refresh(facade: Weak<Inner>) {
    let mut tick = tokio::time::interval(LEVEL_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(facade) = facade.upgrade() else { return };
        let changes = facade.level_changes.load(Ordering::Relaxed);
        if let Ok(levels) = facade.queue.levels().await {
            let mut current = facade.levels.write().expect("the level lock is never poisoned");
            // A level set here while the read was under way is newer than
            // what was read: keep it, and take the shared ones next tick.
            if facade.level_changes.load(Ordering::Relaxed) == changes {
                *current = levels;
            }
        }
        let filtered = facade.filtered.swap(0, Ordering::Relaxed);
        if filtered > 0 && facade.queue.add_filtered(filtered).await.is_err() {
            facade.filtered.fetch_add(filtered, Ordering::Relaxed);
        }
    }
}
