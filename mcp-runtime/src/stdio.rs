//! stdio: one session as newline-delimited JSON-RPC on stdin and stdout.
//! Only protocol messages go to stdout (logs go to stderr). End of input,
//! or shutdown, stops reading; calls still running get the grace period to
//! finish, then the server exits.
//!
//! Like the WebSocket transport this only frames and moves messages: the
//! [`Engine`] runs the calls. Reading stops at the in-flight cap (the pipe
//! fills up, which is the backpressure); writes are flushed when nothing
//! else is ready.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::time::Sleep;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::engine::{Engine, Outgoing};
use crate::godot_log::Transport;
use crate::protocol::{self, error_code};
use crate::service::Service;

enum Event {
    Line(Option<Result<String, LinesCodecError>>),
    Outgoing(Outgoing),
    Flushed(std::io::Result<()>),
    Shutdown,
    GraceOver,
}

pub(crate) async fn serve<R, W>(service: Arc<Service>, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let config = service.config.clone();
    let max = config.max_message_size;
    let mut lines = FramedRead::new(input, LinesCodec::new_with_max_length(max));
    let mut out = BufWriter::new(output);
    let mut engine = Engine::new(service.core.clone(), config.max_in_flight, Transport::Stdio, None);
    let mut dirty = false;
    let mut draining = false;
    let mut grace: Option<Pin<Box<Sleep>>> = None;
    let mut shutdown = pin!(service.shutdown.cancelled());
    tracing::debug!("stdio session open");
    let result = loop {
        let event = poll_fn(|cx| {
            if let Poll::Ready(outgoing) = engine.poll_outgoing(cx) {
                return Poll::Ready(Event::Outgoing(outgoing));
            }
            if !draining
                && engine.accepting()
                && let Poll::Ready(line) = lines.poll_next_unpin(cx)
            {
                return Poll::Ready(Event::Line(line));
            }
            if dirty && let Poll::Ready(result) = Pin::new(&mut out).poll_flush(cx) {
                return Poll::Ready(Event::Flushed(result));
            }
            if !draining && shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            if let Some(grace) = &mut grace
                && grace.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Event::GraceOver);
            }
            Poll::Pending
        })
        .await;
        let written = match event {
            Event::Line(Some(Ok(line))) => {
                if line.trim().is_empty() {
                    continue;
                }
                match poll_fn(|cx| Poll::Ready(engine.receive(&line, cx))).await {
                    None => Ok(()),
                    Some(outgoing) => write(&mut out, &mut dirty, outgoing).await,
                }
            }
            Event::Line(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => {
                // The codec skips the rest of the line; the session goes on.
                let message = format!("invalid request: the message is over the limit of {max} bytes; it was skipped");
                let reply = protocol::error_response(None, error_code::INVALID_REQUEST, &message, None);
                write(&mut out, &mut dirty, Outgoing::Reply(reply)).await
            }
            Event::Line(Some(Err(LinesCodecError::Io(e)))) => {
                tracing::debug!(error = %e, "reading stdin failed; draining");
                start_drain(&mut draining, &mut grace, &engine, config.shutdown_grace)
            }
            Event::Line(None) => {
                tracing::debug!("stdin ended; draining");
                start_drain(&mut draining, &mut grace, &engine, config.shutdown_grace)
            }
            Event::Shutdown => start_drain(&mut draining, &mut grace, &engine, config.shutdown_grace),
            Event::Outgoing(outgoing) => write(&mut out, &mut dirty, outgoing).await,
            Event::Flushed(result) => {
                dirty = false;
                result
            }
            Event::GraceOver => {
                tracing::warn!(calls = engine.running(), "shutdown grace period over; cancelling calls in flight");
                break Ok(());
            }
        };
        if let Err(e) = written {
            // stdout is gone: nobody is left to answer.
            break Err(e);
        }
        if draining && engine.running() == 0 {
            break Ok(());
        }
    };
    engine.close();
    let flushed = out.flush().await;
    tracing::debug!("stdio session closed");
    drop(engine);
    service.flush_godot_log().await; // godot_log hook: the process exits next
    result.and(flushed)
}

fn start_drain(
    draining: &mut bool,
    grace: &mut Option<Pin<Box<Sleep>>>,
    engine: &Engine,
    period: std::time::Duration,
) -> std::io::Result<()> {
    if !*draining {
        *draining = true;
        if engine.running() > 0 {
            *grace = Some(Box::pin(tokio::time::sleep(period)));
        }
    }
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    dirty: &mut bool,
    outgoing: Outgoing,
) -> std::io::Result<()> {
    let text = match outgoing {
        Outgoing::Reply(text) | Outgoing::Notification(text) | Outgoing::Response { text, .. } => text,
        Outgoing::CallEnded => return Ok(()),
    };
    *dirty = true;
    out.write_all(text.as_bytes()).await?;
    out.write_all(b"\n").await
}
