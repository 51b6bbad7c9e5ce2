//! The WebSocket upgrade, done here rather than by axum's extractor so the socket's bytes pass
//! through a [`Gate`]: until the client has introduced itself (`hello`, or an accepted `auth`),
//! no frame nor message may be larger than `limits.max_frame_bytes_before_greeting`, and a larger
//! one ends the socket before its payload is read (close 1009 with the reason). After the greeting
//! the socket's normal limit holds. So an unauthenticated client can make the server hold only a
//! small buffer, however many sockets it opens.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// A server-side WebSocket whose reads pass through a [`Gate`].
pub(super) type Socket = WebSocketStream<Gate<TokioIo<hyper::upgrade::Upgraded>>>;

/// A request to upgrade to a WebSocket (HTTP/1.1), checked as RFC 6455 asks.
pub(super) struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let refuse = |message: &str| {
            let body = serde_json::json!({ "code": "not_a_websocket", "message": message });
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        };
        if parts.method != Method::GET
            || !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(refuse(
                "this address is a WebSocket: connect with a WebSocket client (GET with Upgrade: websocket)",
            ));
        }
        if !has_token(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(refuse("only WebSocket version 13 is spoken here"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| refuse("the Sec-WebSocket-Key header is missing"))?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `callback` on the socket once the client has it.
    /// `gate` is the largest frame or message accepted before the client's greeting
    /// ([`Gate::open`] lifts it); `config` holds the limits after.
    pub(super) fn on_upgrade<C, F>(
        self,
        config: WebSocketConfig,
        gate: usize,
        callback: C,
    ) -> Response
    where
        C: FnOnce(Socket) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => return tracing::debug!("a WebSocket upgrade failed: {e}"),
            };
            let io = Gate::new(TokioIo::new(upgraded), gate);
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            callback(socket).await
        });
        let accept = derive_accept_key(self.key.as_bytes());
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .expect("a valid response")
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The error a closed [`Gate`] reads: a frame or message above the limit before the greeting.
#[derive(Debug, thiserror::Error)]
#[error("a frame of {size} bytes before hello/auth; the limit until then is {limit} bytes")]
pub(super) struct TooLargeBeforeGreeting {
    size: u64,
    limit: usize,
}

impl TooLargeBeforeGreeting {
    /// The gate's refusal, if that is what `e` is.
    pub(super) fn find(e: &tokio_tungstenite::tungstenite::Error) -> Option<&Self> {
        match e {
            tokio_tungstenite::tungstenite::Error::Io(io) => {
                io.get_ref().and_then(|inner| inner.downcast_ref::<Self>())
            }
            _ => None,
        }
    }
}

/// Reads pass through unchanged while the frame headers in them are followed: a data frame (or the
/// message its fragments add up to) above `limit` fails the read, before its payload arrives.
/// [`Gate::open`] stops the checks (the client introduced itself).
pub(super) struct Gate<T> {
    io: T,
    limit: usize,
    open: bool,
    /// The frame header being read, and how much of it is here.
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload: u64,
    /// Bytes of the current (fragmented) message so far.
    message: u64,
}

impl<T> Gate<T> {
    fn new(io: T, limit: usize) -> Self {
        Self {
            io,
            limit,
            open: false,
            header: [0; 14],
            have: 0,
            payload: 0,
            message: 0,
        }
    }

    /// Lifts the pre-greeting limit for good.
    pub(super) fn open(&mut self) {
        self.open = true;
    }

    /// Follows `bytes` through the frame structure; `Err` on a frame above the limit.
    fn follow(&mut self, mut bytes: &[u8]) -> Result<(), TooLargeBeforeGreeting> {
        while !bytes.is_empty() {
            if self.payload > 0 {
                let n = (bytes.len() as u64).min(self.payload);
                self.payload -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            let Some(needed) = self.header_length() else {
                continue;
            };
            if self.have < needed {
                continue;
            }
            let length = self.payload_length();
            let (fin, control) = (self.header[0] & 0x80 != 0, self.header[0] & 0x08 != 0);
            self.have = 0;
            self.payload = length;
            if control {
                continue;
            }
            self.message += length;
            if self.message > self.limit as u64 {
                return Err(TooLargeBeforeGreeting {
                    size: self.message,
                    limit: self.limit,
                });
            }
            if fin {
                self.message = 0;
            }
        }
        Ok(())
    }

    /// The whole header's length, once its first two bytes are here.
    fn header_length(&self) -> Option<usize> {
        if self.have < 2 {
            return None;
        }
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        Some(
            2 + mask
                + match self.header[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                },
        )
    }

    fn payload_length(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u16::from_be_bytes([self.header[2], self.header[3]]) as u64,
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            n => n as u64,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gate<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if !this.open {
            if let Err(refused) = this.follow(&buf.filled()[before..]) {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, refused)));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gate<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame header (masked) of `len` payload bytes.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=65535 => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = header(fin, opcode, len as u64);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn small_frames_pass_in_any_split_and_a_large_header_is_refused_at_once() {
        let mut gate = Gate::new((), 1000);
        let mut stream = frame(true, 1, 100);
        stream.extend(frame(true, 9, 20)); // a ping
        stream.extend(frame(true, 1, 1000));
        for chunk in stream.chunks(7) {
            gate.follow(chunk).expect("small frames pass");
        }
        // Only the header of a large frame is needed to refuse it.
        let refused = gate.follow(&header(true, 1, 1 << 20)).unwrap_err();
        assert_eq!(refused.size, 1 << 20);
    }

    #[test]
    fn fragments_count_as_one_message() {
        let mut gate = Gate::new((), 1000);
        gate.follow(&frame(false, 1, 600)).unwrap();
        gate.follow(&frame(true, 9, 10))
            .expect("a control frame between fragments");
        assert!(gate.follow(&frame(true, 0, 600)).is_err());
        let mut next = Gate::new((), 1000);
        next.follow(&frame(true, 1, 600)).unwrap();
        next.follow(&frame(true, 1, 600))
            .expect("each whole message counts alone");
    }
}
