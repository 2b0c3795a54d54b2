//! The per-request context a tool can take as a parameter: request id,
//! cancellation, progress and logging back to the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::protocol::{LogLevel, RequestId};

/// What a tool gets to talk back to the client while it runs.
///
/// Cheap to clone. Progress and log calls never fail: when the client did
/// not ask for progress, or the connection is gone, they do nothing.
#[derive(Clone, Debug)]
pub struct RequestContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    request_id: RequestId,
    progress_token: Option<Box<RawValue>>,
    cancellation: CancellationToken,
    session: SessionHandle,
}

/// The part of a connection's state a context needs: where notifications
/// go and the minimum log level the client asked for.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Serialized JSON-RPC notifications, written by the connection in order.
    pub notifications: mpsc::Sender<String>,
    /// The `logging/setLevel` threshold, shared by all calls of a session.
    pub min_log_level: Arc<AtomicU8>,
}

impl SessionHandle {
    pub fn new(notifications: mpsc::Sender<String>) -> Self {
        SessionHandle { notifications, min_log_level: Arc::new(AtomicU8::new(LogLevel::Info as u8)) }
    }

    pub fn set_min_log_level(&self, level: LogLevel) {
        self.min_log_level.store(level as u8, Ordering::Relaxed);
    }
}

impl RequestContext {
    pub fn new(
        request_id: RequestId,
        progress_token: Option<Box<RawValue>>,
        cancellation: CancellationToken,
        session: SessionHandle,
    ) -> Self {
        RequestContext { inner: Arc::new(ContextInner { request_id, progress_token, cancellation, session }) }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.inner.request_id
    }

    /// True once the client sent `notifications/cancelled` for this request
    /// or the connection dropped.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }

    /// Completes when the call is cancelled; `select!` on it around work
    /// that should stop early. (The runtime also drops a cancelled call's
    /// future, so code after an `.await` never runs once cancelled.)
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.inner.cancellation.cancelled()
    }

    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.cancellation
    }

    /// Sends `notifications/progress` if the client sent a `progressToken`.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.inner.progress_token else { return };
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Params<'a> {
            progress_token: &'a RawValue,
            progress: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            total: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        let params = Params { progress_token: token, progress, total, message };
        self.notify("notifications/progress", &params).await;
    }

    /// Sends `notifications/message` if `level` is at or above the level the
    /// client set with `logging/setLevel` (default `info`).
    pub async fn log(&self, level: LogLevel, logger: Option<&str>, data: impl Serialize) {
        if (level as u8) < self.inner.session.min_log_level.load(Ordering::Relaxed) {
            return;
        }
        #[derive(Serialize)]
        struct Params<'a, D> {
            level: LogLevel,
            #[serde(skip_serializing_if = "Option::is_none")]
            logger: Option<&'a str>,
            data: D,
        }
        self.notify("notifications/message", &Params { level, logger, data }).await;
    }

    pub async fn info(&self, data: impl Serialize) {
        self.log(LogLevel::Info, None, data).await
    }

    pub async fn debug(&self, data: impl Serialize) {
        self.log(LogLevel::Debug, None, data).await
    }

    pub async fn warning(&self, data: impl Serialize) {
        self.log(LogLevel::Warning, None, data).await
    }

    pub async fn error(&self, data: impl Serialize) {
        self.log(LogLevel::Error, None, data).await
    }

    async fn notify(&self, method: &str, params: &impl Serialize) {
        #[derive(Serialize)]
        struct Notification<'a, P> {
            jsonrpc: &'static str,
            method: &'a str,
            params: P,
        }
        let Ok(text) = serde_json::to_string(&Notification { jsonrpc: "2.0", method, params }) else { return };
        // A closed channel means the connection is gone: nothing to tell.
        let _ = self.inner.session.notifications.send(text).await;
    }
}
