//! Godot's settings, read once from the environment with the seeds' names.
//! Every variable and its default is listed in the crate README.

use std::path::PathBuf;
use std::time::Duration;

use dewey::log_batch::MAX_LOG_BATCH;

/// Where Dewey listens when `DEWEY_MCP_URL` is unset.
pub const DEFAULT_DEWEY_URL: &str = "ws://localhost:9020/";
/// The stream (Redis) that holds the queue when `LOG_QUEUE_NAME` is unset.
pub const DEFAULT_QUEUE_NAME: &str = "godot:logs";
/// The embedded queue's directory when `GODOT_DATA_DIR` is unset, relative
/// to the working directory (like Dewey's `./dewey-data`).
pub const DEFAULT_DATA_DIR: &str = "godot-data";

/// A setting that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Which queue backs the facade and the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueConfig {
    /// Production: a Redis stream shared by every facade and worker.
    Redis { url: String, name: String },
    /// No Redis configured: a SQLite file in `dir`.
    Embedded { dir: PathBuf },
}

/// Everything the facade and the worker read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub queue: QueueConfig,
    /// Entries the queue holds at most; beyond, the oldest undelivered go.
    pub max_queue_size: u64,
    pub dewey_url: String,
    pub worker: WorkerConfig,
    /// Dead letters kept at most; beyond, the oldest go (counted).
    pub dead_letter_max: u64,
}

/// The worker's batching, retry and lease settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub retry_initial_delay: Duration,
    pub retry_max_delay: Duration,
    /// Failed attempts after which a batch's failure is reported loudly
    /// (ERROR log, the stats tool). It is never a reason to drop the batch.
    pub retry_max_attempts: u32,
    /// How long a claimed batch stays with its worker without a renewal.
    /// A live worker renews at a third of it; a dead worker's entries go to
    /// another worker once it has passed.
    pub lease: Duration,
    /// Batches one worker process delivers at once.
    pub concurrency: usize,
    /// The consumer name in the Redis group (stable across restarts when set).
    pub name: String,
    /// How long SIGTERM waits for the batches in flight before handing them back.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch_size: 1000,
            batch_timeout: Duration::from_millis(100),
            retry_initial_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(30),
            retry_max_attempts: 5,
            lease: Duration::from_secs(30),
            concurrency: 4,
            name: default_worker_name(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Embedded queue in `dir`, defaults for everything else: for tests and
    /// programs that configure Godot in code.
    pub fn embedded(dir: impl Into<PathBuf>) -> Config {
        Config {
            queue: QueueConfig::Embedded { dir: dir.into() },
            max_queue_size: 1_000_000,
            dewey_url: DEFAULT_DEWEY_URL.to_owned(),
            worker: WorkerConfig::default(),
            dead_letter_max: 10_000,
        }
    }

    /// A Redis stream `name` on `url`, defaults for everything else.
    pub fn redis(url: impl Into<String>, name: impl Into<String>) -> Config {
        Config {
            queue: QueueConfig::Redis { url: url.into(), name: name.into() },
            ..Config::embedded(DEFAULT_DATA_DIR)
        }
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads the settings through `var` (the environment, or a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let name = var("LOG_QUEUE_NAME").unwrap_or_else(|| DEFAULT_QUEUE_NAME.to_owned());
        let queue = match (var("REDIS_URL"), var("REDIS_HOST")) {
            (Some(url), _) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
                    return Err(ConfigError(format!(
                        "REDIS_URL must be a redis:// URL such as redis://127.0.0.1:6379/, got {url:?}"
                    )));
                }
                QueueConfig::Redis { url, name }
            }
            (None, Some(host)) => {
                let port: u16 = parse(&var, "REDIS_PORT", 6379)?;
                QueueConfig::Redis { url: format!("redis://{host}:{port}/"), name }
            }
            (None, None) => {
                if var("REDIS_PORT").is_some() {
                    return Err(ConfigError("REDIS_PORT is set without REDIS_HOST; set both, or REDIS_URL".into()));
                }
                QueueConfig::Embedded { dir: var("GODOT_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into()).into() }
            }
        };
        let defaults = WorkerConfig::default();
        let worker = WorkerConfig {
            batch_size: parse(&var, "BATCH_SIZE", defaults.batch_size)?,
            batch_timeout: Duration::from_millis(parse(&var, "BATCH_TIMEOUT_MS", 100)?),
            retry_initial_delay: seconds(&var, "RETRY_INITIAL_DELAY", defaults.retry_initial_delay)?,
            retry_max_delay: seconds(&var, "RETRY_MAX_DELAY", defaults.retry_max_delay)?,
            retry_max_attempts: parse(&var, "RETRY_MAX_ATTEMPTS", defaults.retry_max_attempts)?,
            lease: Duration::from_millis(parse(&var, "WORKER_LEASE_MS", 30_000)?),
            concurrency: parse(&var, "WORKER_CONCURRENCY", defaults.concurrency)?,
            name: var("WORKER_NAME").unwrap_or(defaults.name),
            shutdown_grace: seconds(&var, "WORKER_SHUTDOWN_GRACE", defaults.shutdown_grace)?,
        };
        let config = Config {
            queue,
            max_queue_size: parse(&var, "MAX_QUEUE_SIZE", 1_000_000)?,
            dewey_url: var("DEWEY_MCP_URL").unwrap_or_else(|| DEFAULT_DEWEY_URL.to_owned()),
            worker,
            dead_letter_max: parse(&var, "DEAD_LETTER_MAX", 10_000)?,
        };
        config.check()?;
        Ok(config)
    }

    /// Refuses settings that cannot work, naming the variable.
    pub fn check(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        let fail = |m: String| Err(ConfigError(m));
        if self.max_queue_size == 0 {
            return fail("MAX_QUEUE_SIZE must be at least 1".into());
        }
        if w.batch_size == 0 || w.batch_size > MAX_LOG_BATCH {
            return fail(format!("BATCH_SIZE must be between 1 and {MAX_LOG_BATCH} (Dewey's limit per call)"));
        }
        if w.batch_timeout.is_zero() {
            return fail("BATCH_TIMEOUT_MS must be at least 1".into());
        }
        if w.retry_initial_delay.is_zero() || w.retry_initial_delay > w.retry_max_delay {
            return fail("RETRY_INITIAL_DELAY must be above 0 and at most RETRY_MAX_DELAY".into());
        }
        if w.retry_max_attempts == 0 {
            return fail("RETRY_MAX_ATTEMPTS must be at least 1".into());
        }
        if w.lease < Duration::from_millis(300) {
            return fail("WORKER_LEASE_MS must be at least 300".into());
        }
        if w.concurrency == 0 || w.concurrency > 64 {
            return fail("WORKER_CONCURRENCY must be between 1 and 64".into());
        }
        if w.name.is_empty() || w.name.len() > 200 {
            return fail("WORKER_NAME must be 1 to 200 characters".into());
        }
        if let QueueConfig::Redis { name, .. } = &self.queue
            && (name.is_empty() || name.len() > 200)
        {
            return fail("LOG_QUEUE_NAME must be 1 to 200 characters".into());
        }
        if !(self.dewey_url.starts_with("ws://") || self.dewey_url.starts_with("wss://")) {
            return fail(format!("DEWEY_MCP_URL must be a ws:// URL, got {:?}", self.dewey_url));
        }
        Ok(())
    }

    /// What the queue is, for logs and the stats tool (no credentials).
    pub fn queue_description(&self) -> String {
        match &self.queue {
            QueueConfig::Redis { url, name } => format!("Redis stream {name:?} at {}", redact(url)),
            QueueConfig::Embedded { dir } => format!("embedded SQLite queue in {}", dir.display()),
        }
    }
}

/// A Redis URL without its password, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn parse<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name} must be a non-negative whole number, got {text:?}"))),
    }
}

/// Seconds as the seeds wrote them (`RETRY_INITIAL_DELAY=0.5` works too).
fn seconds(var: &impl Fn(&str) -> Option<String>, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ConfigError(format!("{name} must be a number of seconds (0 to 86400), got {text:?}"))),
    }
}

/// Host name and process id: unique among live workers, readable in
/// XINFO CONSUMERS.
fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_redis_means_the_embedded_queue_under_the_working_directory() {
        let c = config(&[]).unwrap();
        assert_eq!(c.queue, QueueConfig::Embedded { dir: "godot-data".into() });
        assert_eq!(c.dewey_url, "ws://localhost:9020/");
        assert_eq!((c.worker.batch_size, c.max_queue_size), (1000, 1_000_000));
    }

    #[test]
    fn redis_from_the_seeds_host_and_port_or_a_url() {
        let c = config(&[("REDIS_HOST", "cache"), ("LOG_QUEUE_NAME", "q")]).unwrap();
        assert_eq!(c.queue, QueueConfig::Redis { url: "redis://cache:6379/".into(), name: "q".into() });
        let c = config(&[("REDIS_URL", "redis://:secret@r:7000/2")]).unwrap();
        assert_eq!(c.queue_description(), "Redis stream \"godot:logs\" at redis://***@r:7000/2");
    }

    #[test]
    fn bad_settings_name_the_variable() {
        for (vars, needle) in [
            (vec![("BATCH_SIZE", "0")], "BATCH_SIZE"),
            (vec![("BATCH_SIZE", "20000")], "BATCH_SIZE"),
            (vec![("MAX_QUEUE_SIZE", "lots")], "MAX_QUEUE_SIZE"),
            (vec![("RETRY_INITIAL_DELAY", "60")], "RETRY_INITIAL_DELAY"),
            (vec![("RETRY_MAX_DELAY", "-1")], "RETRY_MAX_DELAY"),
            (vec![("REDIS_URL", "localhost:6379")], "REDIS_URL"),
            (vec![("REDIS_PORT", "6379")], "REDIS_HOST"),
            (vec![("DEWEY_MCP_URL", "http://x")], "DEWEY_MCP_URL"),
        ] {
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains(needle), "{vars:?}: {err}");
        }
        assert_eq!(config(&[("RETRY_INITIAL_DELAY", "0.25")]).unwrap().worker.retry_initial_delay.as_millis(), 250);
    }
}
