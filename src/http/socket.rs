//! What the customer and agent WebSockets share: a writer task fed by a bounded channel, so a slow
//! client never blocks whoever sends to it, and a last flush when the connection ends.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::conversation::Outbound;

/// Frames waiting for a slow socket before the sender waits.
const OUTBOX: usize = 256;

/// The writing half of a socket, run by its own task.
pub(super) struct Writer(JoinHandle<()>);

/// Splits `socket` into its incoming frames, a sender for outgoing text frames, and the task
/// that writes them.
pub(super) fn split(socket: WebSocket) -> (SplitStream<WebSocket>, mpsc::Sender<Outbound>, Writer) {
    let (mut sink, stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outbound>(OUTBOX);
    let task = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink
                .send(Message::Text(text.as_ref().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    (stream, tx, Writer(task))
}

impl Writer {
    /// Once every sender is dropped: lets the writer flush what is queued (for up to 2 s), then
    /// stops it.
    pub(super) async fn finish(self) {
        let abort = self.0.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.0)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
