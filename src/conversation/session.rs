//! Sessions: a customer socket's `hello`, resuming with everything missed, and the conversation
//! stored only when it first matters.
//!
//! A `hello` stores nothing: the widget gets a session token and a conversation id (derived from
//! the token) at once, and the conversation is written to the store with the customer's first
//! real act (a message, asking for a person, leaving an email). So an idle widget, or a flood of
//! `hello`s, costs a socket and no rows (a verified customer's device joining their conversation
//! costs one, and a conversation keeps at most `store::identity::SESSION_TOKENS_KEPT`). A token
//! the server issued but never stored is accepted again (same id), so every tab of a fresh
//! conversation shares it.

use std::net::IpAddr;

use super::{ConversationError, Conversations, Core};
use crate::accounts::token;
use crate::clock::now_ms;
use crate::fanout::{CustomerSeat, Outbox};
use crate::ids::ConversationId;
use crate::protocol::customer::{ServerFrame, State, Visitor};
use crate::protocol::{encode, StoredFrame, PROTOCOL_VERSION};

/// What a `hello` says.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    /// The session token from an earlier `welcome`, to resume.
    pub session: Option<String>,
    /// The highest sequence number the widget has seen.
    pub last_seq: Option<i64>,
    /// What the widget knows of the customer.
    pub visitor: Visitor,
    /// The customer's verified identity (`id:…` or `email:…`, checked by the caller against the
    /// operator's signature); `None` for an unverified visitor.
    pub customer: Option<String>,
    /// The operator's id of the customer, when verified.
    pub user_id: Option<String>,
    /// `customer` comes from a signature that has expired, accepted only because `session` held
    /// this open conversation of theirs ([`Conversations::open_conversation_of_session`]): it is
    /// resumed if it still is, and nothing else is verified (not the customer's conversation on
    /// another device, not a new one: those are the unverified visitor's).
    pub lapsed: Option<ConversationId>,
}

/// A customer socket's place in its conversation; leaves the conversation's audience when
/// dropped.
pub struct Session {
    id: ConversationId,
    token_hash: String,
    visitor: Visitor,
    customer: Option<String>,
    origin: IpAddr,
    stored: bool,
    seat: CustomerSeat,
}

impl Session {
    /// The conversation.
    pub fn conversation(&self) -> &ConversationId {
        &self.id
    }

    /// This socket's id (its own messages are not echoed to it).
    pub fn socket(&self) -> u64 {
        self.seat.socket()
    }

    /// The client address the customer came from.
    pub fn origin(&self) -> IpAddr {
        self.origin
    }

    /// Whether the conversation is in the store yet.
    pub fn is_stored(&self) -> bool {
        self.stored
    }

    /// The customer's name, as the widget gave it.
    pub(super) fn customer_name(&self) -> Option<&str> {
        self.visitor.name.as_deref()
    }
}

/// What tells a derived conversation id from other uses of a session token.
const ID_PURPOSE: &str = "frontdesk conversation id";

/// Whether `id` is the conversation a customer's session `token` opened and has not stored yet
/// (it is stored with its first message).
pub fn opens_unstored(token: &str, id: &str) -> bool {
    token::is_well_formed(token) && derived_id(token).as_str() == id
}

/// The conversation id of a session token: fixed, so every tab of a conversation not stored yet
/// agrees on it; and telling nothing about the token.
fn derived_id(token: &str) -> ConversationId {
    let bytes = token::derive(ID_PURPOSE, token);
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(id)
        .into_uuid()
        .to_string()
        .into()
}

impl Conversations {
    /// The conversation the session `token` (a widget's, from its `welcome`) holds, when it is
    /// still open (not resolved) and its verified customer is `customer` (`id:…` / `email:…`):
    /// a page left open past its signature's expiry may go on with it, and with nothing else.
    pub async fn open_conversation_of_session(
        &self,
        token: Option<&str>,
        customer: &str,
    ) -> Result<Option<ConversationId>, ConversationError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let store = &self.core.store;
        let Some(row) = store.conversation_by_session(&token::hash(token)).await? else {
            return Ok(None);
        };
        let owner = store.customer_of(&row.id).await?;
        let held = row.state != "resolved" && owner.as_deref() == Some(customer);
        Ok(held.then(|| ConversationId::from(row.id)))
    }

    /// Joins a socket to the conversation of `hello.session` (or a new one) and queues its
    /// `welcome` with every frame after `hello.last_seq`. Joining, reading what was missed and
    /// queueing `welcome` happen under the conversation's lock, so each frame reaches the socket
    /// exactly once: in `missed`, or live after `welcome`.
    pub async fn open(
        &self,
        hello: Hello,
        origin: IpAddr,
        outbox: &Outbox,
    ) -> Result<Session, ConversationError> {
        let core = &self.core;
        let mut visitor = hello.visitor.truncated();
        visitor.verified = hello.customer.is_some();
        if visitor.verified {
            visitor.user_id = hello.user_id.map(|u| u.trim().chars().take(200).collect());
        }
        let customer = hello.customer;
        let lapsed = hello.lapsed;
        let last_seq = hello.last_seq.unwrap_or(0).max(0);
        // A verified customer has one history on every device: the conversation they have open
        // (one that was resolved is linked to the next as a previous conversation instead).
        if let Some(key) = customer.as_ref().filter(|_| lapsed.is_none()) {
            if let Some(latest) = core.store.open_conversation_of(key).await? {
                let id = ConversationId::from(latest);
                let own = match hello.session.as_deref() {
                    Some(t) => core.store.conversation_by_session(&token::hash(t)).await?,
                    None => None,
                };
                let resumed = own.is_some_and(|row| *row.id == *id);
                // The device keeps a token of this conversation; one that joins it from another
                // (or from none) gets its own, recorded, so that it resumes next time too.
                let token = match hello.session {
                    Some(token) if resumed => token,
                    _ => {
                        let token = token::new_token();
                        core.store
                            .add_session_token(&id, &token::hash(&token), now_ms())
                            .await?;
                        token
                    }
                };
                let _guard = core.lock(&id).await;
                let seat = core.fanout.seat_customer(&id, outbox.clone());
                let session = Session {
                    id,
                    token_hash: token::hash(&token),
                    visitor,
                    customer,
                    origin,
                    stored: true,
                    seat,
                };
                // Another device's conversation: everything, from the start.
                let from = if resumed { last_seq } else { 0 };
                return core
                    .welcome_verified(session, &token, from, resumed, outbox)
                    .await;
            }
        }
        if let Some(token) = hello.session.as_deref().filter(|t| !t.is_empty()) {
            let token_hash = token::hash(token);
            let known = core.store.conversation_by_session(&token_hash).await?;
            let id = match known {
                // A verified customer's conversation is resumed only by that customer: not by a
                // browser the customer signed out of (whoever uses it next, signed in as someone
                // else or not at all), which starts a conversation of its own.
                // A lapsed signature's conversation must still be the one checked, and open.
                Some(row)
                    if lapsed
                        .as_ref()
                        .is_some_and(|l| **l != *row.id || row.state == "resolved") =>
                {
                    None
                }
                Some(row) => match core.store.customer_of(&row.id).await? {
                    Some(owner) if customer.as_deref() != Some(owner.as_str()) => None,
                    _ => Some(ConversationId::from(row.id)),
                },
                // Issued by this server (or shaped like it) and never stored: the same
                // conversation, still empty. A widget that saw frames must have a stored one.
                None if lapsed.is_none() && token::is_well_formed(token) && last_seq == 0 => {
                    Some(derived_id(token))
                }
                None => None,
            };
            if let Some(id) = id {
                let _guard = core.lock(&id).await;
                let seat = core.fanout.seat_customer(&id, outbox.clone());
                let session = Session {
                    id,
                    token_hash,
                    visitor,
                    customer,
                    origin,
                    stored: false,
                    seat,
                };
                return core.welcome(session, token, last_seq, outbox).await;
            }
        }
        // A lapsed signature resumes only the conversation its session holds; without it (gone
        // meanwhile) the conversation is a new, unverified one.
        let (customer, visitor) = match lapsed.is_some() {
            true => (
                None,
                Visitor {
                    verified: false,
                    user_id: None,
                    ..visitor
                },
            ),
            false => (customer, visitor),
        };
        let token = token::new_token();
        let id = derived_id(&token);
        let seat = core.fanout.seat_customer(&id, outbox.clone());
        let session = Session {
            id,
            token_hash: token::hash(&token),
            visitor,
            customer,
            origin,
            stored: false,
            seat,
        };
        let welcome = ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            session: token,
            conversation_id: session.id.clone(),
            resumed: false,
            state: State::Bot,
            last_seq: 0,
            missed: Vec::new(),
        };
        outbox.push(encode(&welcome));
        outbox.start_at(0);
        Ok(session)
    }

    /// Stores the session's conversation if it is not yet, counting it against the client
    /// address's budget of new conversations.
    pub(super) async fn ensure_stored(
        &self,
        session: &mut Session,
    ) -> Result<(), ConversationError> {
        if session.stored {
            return Ok(());
        }
        let core = &self.core;
        let _guard = core.lock(&session.id).await;
        if !core.store.conversation_exists(&session.id).await? {
            let now = now_ms();
            core.admission
                .new_conversation(session.origin, now)
                .map_err(|refused| ConversationError::TooManyConversations {
                    retry_after: refused.retry_after(),
                })?;
            core.within_shared_budget(session.origin).await?;
            let visitor = serde_json::to_string(&session.visitor).unwrap_or_else(|_| "{}".into());
            core.store
                .create_conversation(&session.id, &session.token_hash, &visitor, now)
                .await?;
            if let Some(key) = &session.customer {
                core.store.set_customer(&session.id, key).await?;
            }
        }
        session.stored = true;
        Ok(())
    }
}

impl Core {
    /// Queues `welcome` for a verified customer's latest conversation, reached by identity
    /// rather than by this device's session token (the caller holds its lock and has seated the
    /// socket); `resumed` is false when it is not the conversation this device had, so the
    /// widget redraws it from the frames in `missed`.
    async fn welcome_verified(
        &self,
        session: Session,
        token: &str,
        last_seq: i64,
        resumed: bool,
        outbox: &Outbox,
    ) -> Result<Session, ConversationError> {
        let row = self.store.conversation_by_id(&session.id).await?;
        let missed = self.store.events_after(&session.id, last_seq).await?;
        let (state, stored_seq) = row
            .map(|r| (State::parse(&r.state), r.last_seq))
            .unwrap_or((State::Bot, 0));
        queue_welcome(outbox, token, &session, resumed, state, missed, stored_seq);
        Ok(session)
    }

    /// Queues `welcome` for a session whose conversation may be stored (the caller holds its
    /// lock and has seated the socket).
    async fn welcome(
        &self,
        mut session: Session,
        token: &str,
        last_seq: i64,
        outbox: &Outbox,
    ) -> Result<Session, ConversationError> {
        let row = self
            .store
            .conversation_by_session(&session.token_hash)
            .await?;
        let (state, stored_seq, missed) = match row {
            Some(row) => {
                session.stored = true;
                let missed = self.store.events_after(&session.id, last_seq).await?;
                (State::parse(&row.state), row.last_seq, missed)
            }
            None => (State::Bot, 0, Vec::new()),
        };
        queue_welcome(outbox, token, &session, true, state, missed, stored_seq);
        Ok(session)
    }
}

/// Queues the `welcome` with the first page of `missed` (the conversation's last `seq` as read:
/// `stored_seq`); after a page that is not the last the socket closes for the client to resume.
fn queue_welcome(
    outbox: &Outbox,
    token: &str,
    session: &Session,
    resumed: bool,
    state: State,
    missed: Vec<std::sync::Arc<str>>,
    stored_seq: i64,
) {
    let page = Page::of(missed, stored_seq);
    let welcome = ServerFrame::Welcome {
        protocol: PROTOCOL_VERSION,
        session: token.to_owned(),
        conversation_id: session.id.clone(),
        resumed,
        state,
        last_seq: page.last_seq,
        missed: page.frames.into_iter().map(StoredFrame).collect(),
    };
    outbox.push(encode(&welcome));
    if page.more {
        outbox.close_to_resume();
    }
    outbox.start_at(page.last_seq);
}

/// The most bytes of missed frames one welcome carries. A customer who missed more (a phone
/// that slept through a long chat, or an agent's flood) gets them in pages: the welcome carries
/// the first, the socket closes with `reconnect` once it is written, and the client resumes
/// from the last frame it got. One unbounded welcome was measured at 21.7 MB in the chaos run,
/// over what clients take in one WebSocket message. A quarter MiB takes 13 s at 20 KB/s (a phone
/// on a poor mobile network); a page of 1 MiB needed 70 KB/s to arrive within the widget's 15 s,
/// and a slower phone dropped each welcome before it came and resumed it again forever (the
/// widget now also gives a welcome that did not come in time twice as long on the next try).
const WELCOME_PAGE_BYTES: usize = 1 << 18;

/// What one welcome gives a socket.
struct Page {
    /// The missed frames it carries, in order: as many as fit in [`WELCOME_PAGE_BYTES`], and
    /// always the first.
    frames: Vec<std::sync::Arc<str>>,
    /// The highest `seq` it gives: the conversation's last as read (or the last frame's, if
    /// another node stored more meanwhile: its publish may still arrive), or the page's last
    /// frame when more follow.
    last_seq: i64,
    /// Frames were left for the next page.
    more: bool,
}

impl Page {
    fn of(mut missed: Vec<std::sync::Arc<str>>, read: i64) -> Self {
        let mut bytes = 0;
        let fit = missed
            .iter()
            .position(|f| {
                bytes += f.len();
                bytes > WELCOME_PAGE_BYTES
            })
            .map_or(missed.len(), |over| over.max(1));
        let more = fit < missed.len();
        missed.truncate(fit);
        let last = missed
            .last()
            .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
            .and_then(|f| f["seq"].as_i64());
        let last_seq = match last {
            Some(seq) if more => seq,
            Some(seq) => seq.max(read),
            None => read,
        };
        Self {
            frames: missed,
            last_seq,
            more,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn frame(seq: i64, bytes: usize) -> Arc<str> {
        let text = "x".repeat(bytes);
        format!(r#"{{"type":"message","seq":{seq},"text":"{text}"}}"#).into()
    }

    #[test]
    fn missed_frames_that_fit_come_in_one_welcome_up_to_the_last_stored() {
        let page = Page::of(vec![frame(3, 10), frame(4, 10)], 5);
        assert_eq!((page.frames.len(), page.last_seq, page.more), (2, 5, false));
        // Another node stored more meanwhile: the welcome gives what it carries.
        let page = Page::of(vec![frame(3, 10), frame(4, 10)], 2);
        assert_eq!((page.last_seq, page.more), (4, false));
        let page = Page::of(Vec::new(), 7);
        assert_eq!((page.frames.len(), page.last_seq, page.more), (0, 7, false));
    }

    #[test]
    fn more_than_a_page_is_cut_after_the_frames_that_fit_and_says_how_far_it_goes() {
        let half = WELCOME_PAGE_BYTES / 2;
        let page = Page::of(vec![frame(1, half), frame(2, half), frame(3, 10)], 3);
        assert_eq!((page.frames.len(), page.last_seq, page.more), (1, 1, true));
        // A frame bigger than a page still comes, alone.
        let page = Page::of(vec![frame(1, 2 * WELCOME_PAGE_BYTES), frame(2, 10)], 2);
        assert_eq!((page.frames.len(), page.last_seq, page.more), (1, 1, true));
    }
}
