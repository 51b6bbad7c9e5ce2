//! What the customer and agent WebSockets share: one task per socket that writes what arrives in
//! its outbox, reads the client's frames and hands each to a handler task, pings a silent client,
//! and closes the socket when the client says nothing in time or falls behind.
//!
//! A frame is handled in a task of its own, so a client that reads slowly (a write that waits)
//! never holds up the handling of its frames, nor any lock the handling takes; the next frame is
//! read only once the handler gives itself back, so a client's frames are taken in order (the
//! agent's handler gives itself back as soon as a frame is handed to its conversation's lane:
//! `http::lanes`). An idle socket is one small task: the buffers are sized by the caller.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::upgrade::{Socket as WebSocket, TooLargeBeforeGreeting};

use crate::fanout::{is_resume_marker, Alarm, Inbox};
use crate::protocol::CloseCode;
use crate::settings::LimitSettings;

/// A socket's frame handler: owned by the handling task while it works.
pub(super) trait Handler: Send + Sized + 'static {
    /// Handles one text frame; gives the handler back when done.
    fn on_text(self, text: String) -> Pin<Box<dyn Future<Output = Self> + Send>>;
    /// Answers a binary frame (this protocol has none).
    fn on_binary(&mut self);
    /// Whether the client has introduced itself (`hello`, or `auth`).
    fn greeted(&self) -> bool;
}

/// The socket's deadlines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// To introduce itself.
    pub hello: Duration,
    /// Of silence before a ping.
    pub ping: Duration,
    /// Of silence before the socket is closed.
    pub idle: Duration,
}

impl Timing {
    pub(super) fn from(limits: &LimitSettings) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.05, 86_400.0));
        Self {
            hello: secs(limits.hello_timeout_seconds),
            ping: secs(limits.ping_interval_seconds),
            idle: secs(
                limits
                    .idle_timeout_seconds
                    .max(limits.ping_interval_seconds),
            ),
        }
    }
}

/// Serves a socket until the client leaves, its outbox overflows, or a deadline passes.
pub(super) async fn run<H: Handler>(socket: WebSocket, inbox: Inbox, handler: H, timing: Timing) {
    run_until(socket, inbox, handler, timing, std::future::pending()).await
}

/// As [`run`], and closes the socket with the code `stop` resolves to (an agent's token was
/// revoked or expired).
pub(super) async fn run_until<H: Handler>(
    mut socket: WebSocket,
    mut inbox: Inbox,
    handler: H,
    timing: Timing,
    stop: impl Future<Output = CloseCode>,
) {
    tokio::pin!(stop);
    let mut watch = Watch::new(handler.greeted());
    if watch.greeted {
        socket.get_mut().open();
    }
    let mut idle: Option<H> = Some(handler);
    let mut busy: Option<JoinHandle<H>> = None;
    let alarm = inbox.alarm();
    let close = loop {
        tokio::select! {
            biased;
            _ = alarm.rung() => break Some(Close::Code(alarm.close_code())),
            code = &mut stop => break Some(Close::Code(code)),
            frame = inbox.recv() => {
                let Some(frame) = frame else { break None };
                if let Err(close) = write(&mut socket, &mut inbox, &alarm, frame, timing.idle).await {
                    break close.map(Close::Code);
                }
            }
            done = join(&mut busy), if busy.is_some() => {
                busy = None;
                let Some(h) = done else { break Some(Close::Code(CloseCode::InternalError)) };
                if h.greeted() && !watch.greeted {
                    // The pre-greeting size limit is lifted: the socket's own limits hold.
                    socket.get_mut().open();
                }
                watch.greeted = h.greeted();
                idle = Some(h);
            }
            incoming = socket.next(), if idle.is_some() => {
                watch.heard();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        busy = idle.take().map(|h| tokio::spawn(h.on_text(text.to_string())));
                    }
                    Some(Ok(Message::Binary(_))) => idle.iter_mut().for_each(|h| h.on_binary()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(e)) => break too_large(&e),
                    Some(Ok(Message::Close(_))) | None => break None,
                }
            }
            _ = sleep_until(watch.deadline(&timing)), if idle.is_some() => {
                if let Err(close) = watch.expired() {
                    break Some(Close::Code(close));
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some(close) = close {
        let frame = match close {
            Close::Code(code) => CloseFrame {
                code: WsCloseCode::from(code.code()),
                reason: code.reason().into(),
            },
            Close::TooLarge(reason) => CloseFrame {
                code: WsCloseCode::Size,
                reason: reason.into(),
            },
        };
        let closing = socket.send(Message::Close(Some(frame)));
        let _ = timeout(Duration::from_secs(1), closing).await;
    }
    // A frame still being handled finishes on its own (its effects on the conversation
    // complete); what it sends this socket goes nowhere.
}

/// Why the server closes a socket.
enum Close {
    /// One of the protocol's codes.
    Code(CloseCode),
    /// A frame or message above the limit (1009), and what the limit is.
    TooLarge(String),
}

/// A read that failed because a frame was too large closes with 1009 and the limit (the client
/// learns what to change); any other failure is a broken connection, closed without a word.
fn too_large(e: &WsError) -> Option<Close> {
    if let Some(refused) = TooLargeBeforeGreeting::find(e) {
        return Some(Close::TooLarge(refused.to_string()));
    }
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { max_size, .. }) => Some(Close::TooLarge(
            format!("frames are limited to {max_size} bytes"),
        )),
        _ => None,
    }
}

/// The socket's deadlines: to say hello, to be pinged, to be closed as idle.
struct Watch {
    opened: Instant,
    heard: Instant,
    pinged: bool,
    greeted: bool,
}

impl Watch {
    fn new(greeted: bool) -> Self {
        let now = Instant::now();
        Self {
            opened: now,
            heard: now,
            pinged: false,
            greeted,
        }
    }

    /// The client said something (a frame, a pong).
    fn heard(&mut self) {
        self.heard = Instant::now();
        self.pinged = false;
    }

    fn deadline(&self, timing: &Timing) -> Instant {
        if !self.greeted {
            self.opened + timing.hello
        } else if !self.pinged {
            self.heard + timing.ping
        } else {
            self.heard + timing.idle
        }
    }

    /// The deadline passed: ping the client (`Ok`), or close the socket.
    fn expired(&mut self) -> Result<(), CloseCode> {
        if !self.greeted {
            Err(CloseCode::HelloTimeout)
        } else if !self.pinged {
            self.pinged = true;
            Ok(())
        } else {
            Err(CloseCode::IdleTimeout)
        }
    }
}

/// Waits for the handling task; `None` if it panicked.
async fn join<H>(busy: &mut Option<JoinHandle<H>>) -> Option<H> {
    let task = busy.as_mut()?;
    match task.await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::error!("handling a frame failed: {e}");
            None
        }
    }
}

/// Writes `frame` and whatever else is queued, then flushes; gives up (closing the socket) if
/// the outbox overflows meanwhile or the client reads nothing for the idle timeout.
async fn write(
    socket: &mut WebSocket,
    inbox: &mut Inbox,
    alarm: &Alarm,
    frame: crate::protocol::Outbound,
    idle: Duration,
) -> Result<(), Option<CloseCode>> {
    let writing = async {
        // A page of a resume was queued: what came before it is written, then the socket
        // closes so the client resumes for the next page.
        let mut resume = is_resume_marker(&frame);
        if !resume {
            socket.feed(Message::Text(frame.as_ref().into())).await?;
        }
        // Frames queued before an overflow are older than the one refused: writing them keeps
        // the order; nothing newer is queued once the outbox overflowed.
        while !resume {
            let Some(next) = inbox.try_recv() else { break };
            resume = is_resume_marker(&next);
            if !resume {
                socket.feed(Message::Text(next.as_ref().into())).await?;
            }
        }
        socket.flush().await.map(|()| resume)
    };
    tokio::select! {
        biased;
        done = writing => match done {
            Ok(false) => Ok(()),
            Ok(true) => Err(Some(CloseCode::Reconnect)),
            Err(_) => Err(None),
        },
        _ = alarm.rung() => Err(Some(alarm.close_code())),
        _ = tokio::time::sleep(idle) => Err(Some(CloseCode::IdleTimeout)),
    }
}
