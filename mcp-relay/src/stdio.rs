//! The client side: newline-delimited JSON on stdin and stdout.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::relay::Event;

/// Reads stdin line by line into `events`; `ClientClosed` at end of input.
pub fn spawn_reader(events: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line).await {
                Ok(0) => break,
                Ok(_) => {
                    let event = match String::from_utf8(std::mem::take(&mut line)) {
                        Ok(text) => Event::Client(text),
                        Err(_) => Event::ClientNotUtf8,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "reading stdin failed");
                    break;
                }
            }
        }
        let _ = events.send(Event::ClientClosed);
    });
}

/// Writes each message as one line on stdout, flushing whenever nothing else
/// is waiting. Ends when every sender is gone, after writing what was queued.
pub fn spawn_writer(events: mpsc::UnboundedSender<Event>) -> (mpsc::UnboundedSender<String>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        let mut stdout = BufWriter::new(tokio::io::stdout());
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 64).await > 0 {
            let mut result = Ok(());
            for message in batch.drain(..) {
                result = async {
                    stdout.write_all(message.as_bytes()).await?;
                    stdout.write_all(b"\n").await
                }
                .await;
                if result.is_err() {
                    break;
                }
            }
            if let Err(e) = result.and(stdout.flush().await) {
                // The client is gone: nothing more to relay.
                tracing::info!(cause = %e, "stdout closed; stopping");
                let _ = events.send(Event::ClientClosed);
                return;
            }
        }
    });
    (tx, task)
}
