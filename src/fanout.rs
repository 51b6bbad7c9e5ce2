//! Fan-out: who receives a conversation's frames, and each socket's outbox.
//!
//! Every socket has a bounded outbox. Senders never wait on a socket: [`Outbox::push`] either
//! queues the frame at once or, when the outbox is full, tells the socket to close (close code
//! 4001, `too_slow`) instead of dropping the frame and carrying on. The widget then reconnects and
//! resumes from its `last_seq`, so it misses nothing, and a client that stops reading slows nobody
//! else down. Pushing takes no lock but a map shard's, briefly, and is safe under any other lock.
//!
//! A conversation's audience is its customer sockets (every tab) and the agent who holds it; an
//! agent's sockets are every console they have open.
//!
//! With several nodes ([`crate::cluster`]) each send is delivered to this node's sockets at once
//! and published once on the bus; every other node delivers it to its own sockets of the same
//! audience ([`Fanout::deliver`]). The `*_here` sends are for what each node works out for itself
//! from its copy of the queue (queue changes, places in the queue): they are not published.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{mpsc, Notify};

use crate::cluster::{Bus, Signal};
use crate::ids::{AgentId, ConversationId};
use crate::protocol::{CloseCode, Outbound};

/// The sending end of one socket's outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox(Arc<Link>);

struct Link {
    id: u64,
    tx: mpsc::Sender<Outbound>,
    overflowed: AtomicBool,
    /// Closed because the node lost its link to the others (not because the client was slow).
    unlinked: AtomicBool,
    close: Notify,
}

/// Rings when a sender found the outbox full: the socket must close.
pub struct Alarm(Arc<Link>);

impl Alarm {
    /// Resolves when a sender found the outbox full (at once if one did already).
    pub async fn rung(&self) {
        if self.0.overflowed.load(Ordering::Acquire) {
            return;
        }
        self.0.close.notified().await
    }

    /// The close code to send once [`Alarm::rung`]: `too_slow`, or `reconnect` when the node lost
    /// its link to the other nodes.
    pub fn close_code(&self) -> CloseCode {
        if self.0.unlinked.load(Ordering::Acquire) {
            CloseCode::Reconnect
        } else {
            CloseCode::TooSlow
        }
    }
}

/// The socket's end of its outbox: the frames to write, and the signal to close.
pub struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    link: Arc<Link>,
}

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// A new outbox holding up to `capacity` frames, and its receiving end.
pub fn outbox(capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let link = Arc::new(Link {
        id: NEXT_SOCKET.fetch_add(1, Ordering::Relaxed),
        tx,
        overflowed: AtomicBool::new(false),
        unlinked: AtomicBool::new(false),
        close: Notify::new(),
    });
    (Outbox(link.clone()), Inbox { rx, link })
}

impl Outbox {
    /// Queues a frame without waiting. When the outbox is full the socket is told to close (it
    /// resumes after reconnecting) and `false` is returned; a closed socket also returns `false`.
    pub fn push(&self, frame: Outbound) -> bool {
        // Once a frame was refused, none after it may overtake it.
        if self.0.overflowed.load(Ordering::Acquire) {
            return false;
        }
        match self.0.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.0.overflowed.swap(true, Ordering::AcqRel) {
                    self.0.close.notify_one();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// This socket's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Tells the socket to close with `reconnect`: frames may have been missed, the client
    /// resumes from the store.
    fn unlink(&self) {
        self.0.unlinked.store(true, Ordering::Release);
        if !self.0.overflowed.swap(true, Ordering::AcqRel) {
            self.0.close.notify_one();
        }
    }
}

impl Inbox {
    /// The next frame to write; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// What tells the socket a sender found its outbox full.
    pub fn alarm(&self) -> Alarm {
        Alarm(self.link.clone())
    }

    /// Whether a sender found the outbox full.
    pub fn has_overflowed(&self) -> bool {
        self.link.overflowed.load(Ordering::Acquire)
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }
}

/// Handle to the fan-out; clone it freely.
#[derive(Clone, Default)]
pub struct Fanout {
    inner: Arc<Inner>,
    /// The other nodes, when there are any.
    bus: Option<Bus>,
}

#[derive(Default)]
struct Inner {
    conversations: DashMap<ConversationId, Audience>,
    agents: DashMap<AgentId, Vec<Outbox>>,
}

#[derive(Default)]
struct Audience {
    customers: Vec<Outbox>,
    holder: Option<AgentId>,
}

/// Keeps a customer socket in its conversation's audience; leaves it when dropped.
pub struct CustomerSeat {
    inner: Arc<Inner>,
    conversation: ConversationId,
    socket: u64,
}

/// Keeps an agent socket among the agent's sockets; leaves them when dropped.
pub struct AgentSeat {
    inner: Arc<Inner>,
    agent: AgentId,
    socket: u64,
}

impl Drop for CustomerSeat {
    fn drop(&mut self) {
        self.inner
            .conversations
            .remove_if_mut(&self.conversation, |_, audience| {
                audience.customers.retain(|o| o.id() != self.socket);
                audience.customers.is_empty() && audience.holder.is_none()
            });
    }
}

impl Drop for AgentSeat {
    fn drop(&mut self) {
        self.inner.agents.remove_if_mut(&self.agent, |_, outboxes| {
            outboxes.retain(|o| o.id() != self.socket);
            outboxes.is_empty()
        });
    }
}

impl CustomerSeat {
    /// The conversation this socket belongs to.
    pub fn conversation(&self) -> &ConversationId {
        &self.conversation
    }

    /// This socket's id (to leave it out when echoing its own messages).
    pub fn socket(&self) -> u64 {
        self.socket
    }
}

impl Fanout {
    /// A fan-out that also tells the other nodes (through `bus`) what it sends.
    pub fn linked(bus: Bus) -> Self {
        Self {
            inner: Arc::default(),
            bus: Some(bus),
        }
    }

    fn tell_nodes(&self, signal: impl FnOnce() -> Signal) {
        if let Some(bus) = &self.bus {
            bus.publish(signal());
        }
    }

    /// Adds a customer socket to a conversation's audience.
    pub fn seat_customer(&self, conversation: &ConversationId, outbox: Outbox) -> CustomerSeat {
        let socket = outbox.id();
        self.inner
            .conversations
            .entry(conversation.clone())
            .or_default()
            .customers
            .push(outbox);
        CustomerSeat {
            inner: self.inner.clone(),
            conversation: conversation.clone(),
            socket,
        }
    }

    /// Adds an agent socket.
    pub fn seat_agent(&self, agent: &AgentId, outbox: Outbox) -> AgentSeat {
        let socket = outbox.id();
        self.inner
            .agents
            .entry(agent.clone())
            .or_default()
            .push(outbox);
        AgentSeat {
            inner: self.inner.clone(),
            agent: agent.clone(),
            socket,
        }
    }

    /// Sets (or clears) the agent who sees the conversation's frames as `event`s, on every node.
    pub fn set_holder(&self, conversation: &ConversationId, holder: Option<AgentId>) {
        self.tell_nodes(|| Signal::Holder {
            conversation: conversation.clone(),
            agent: holder.clone(),
        });
        self.set_holder_here(conversation, holder);
    }

    fn set_holder_here(&self, conversation: &ConversationId, holder: Option<AgentId>) {
        match holder {
            Some(agent) => {
                self.inner
                    .conversations
                    .entry(conversation.clone())
                    .or_default()
                    .holder = Some(agent);
            }
            None => {
                self.inner
                    .conversations
                    .remove_if_mut(conversation, |_, audience| {
                        audience.holder = None;
                        audience.customers.is_empty()
                    });
            }
        }
    }

    /// Sends a frame to the conversation's customer sockets (all but `except`) and, wrapped by
    /// `as_event`, to the agent who holds it.
    pub fn to_conversation(
        &self,
        conversation: &ConversationId,
        frame: &Outbound,
        except: Option<u64>,
        as_event: impl FnOnce() -> Outbound,
    ) {
        match &self.bus {
            None => self.to_conversation_here(conversation, frame, except, as_event),
            Some(bus) => {
                let event = as_event();
                self.to_conversation_here(conversation, frame, except, || event.clone());
                bus.publish(Signal::Conversation {
                    conversation: conversation.clone(),
                    frame: frame.to_string(),
                    event: event.to_string(),
                });
            }
        }
    }

    fn to_conversation_here(
        &self,
        conversation: &ConversationId,
        frame: &Outbound,
        except: Option<u64>,
        as_event: impl FnOnce() -> Outbound,
    ) {
        let holder = {
            let Some(audience) = self.inner.conversations.get(conversation) else {
                return;
            };
            for outbox in audience.customers.iter().filter(|o| Some(o.id()) != except) {
                outbox.push(frame.clone());
            }
            audience.holder.clone()
        };
        if let Some(agent) = holder {
            self.to_agent_here(&agent, as_event());
        }
    }

    /// Sends a frame to the conversation's customer sockets only, on every node.
    pub fn to_customers(&self, conversation: &ConversationId, frame: Outbound) {
        self.tell_nodes(|| Signal::Customers {
            conversation: conversation.clone(),
            frame: frame.to_string(),
        });
        self.to_customers_here(conversation, frame);
    }

    /// Sends a frame to this node's customer sockets of the conversation.
    pub fn to_customers_here(&self, conversation: &ConversationId, frame: Outbound) {
        if let Some(audience) = self.inner.conversations.get(conversation) {
            for outbox in &audience.customers {
                outbox.push(frame.clone());
            }
        }
    }

    /// Sends a frame to every socket of one agent, on every node.
    pub fn to_agent(&self, agent: &AgentId, frame: Outbound) {
        self.tell_nodes(|| Signal::Agent {
            agent: agent.clone(),
            frame: frame.to_string(),
        });
        self.to_agent_here(agent, frame);
    }

    fn to_agent_here(&self, agent: &AgentId, frame: Outbound) {
        if let Some(outboxes) = self.inner.agents.get(agent) {
            for outbox in outboxes.iter() {
                outbox.push(frame.clone());
            }
        }
    }

    /// Sends a frame to every connected agent, on every node.
    pub fn to_all_agents(&self, frame: Outbound) {
        self.tell_nodes(|| Signal::AllAgents {
            frame: frame.to_string(),
        });
        self.to_all_agents_here(frame);
    }

    /// Sends a frame to every agent connected to this node.
    pub fn to_all_agents_here(&self, frame: Outbound) {
        for outboxes in self.inner.agents.iter() {
            for outbox in outboxes.iter() {
                outbox.push(frame.clone());
            }
        }
    }

    /// Delivers another node's send to this node's sockets. Signals about the queue are not the
    /// fan-out's: they are handed back.
    pub fn deliver(&self, signal: Signal) -> Option<Signal> {
        match signal {
            Signal::Conversation {
                conversation,
                frame,
                event,
            } => self.to_conversation_here(&conversation, &frame.into(), None, || event.into()),
            Signal::Customers {
                conversation,
                frame,
            } => self.to_customers_here(&conversation, frame.into()),
            Signal::Agent { agent, frame } => self.to_agent_here(&agent, frame.into()),
            Signal::AllAgents { frame } => self.to_all_agents_here(frame.into()),
            Signal::Holder {
                conversation,
                agent,
            } => self.set_holder_here(&conversation, agent),
            other => return Some(other),
        }
        None
    }

    /// Closes every socket of this node with `reconnect` (the link to the other nodes was lost:
    /// frames may have been missed). Clients come back and resume from the store.
    pub fn close_all(&self) {
        for audience in self.inner.conversations.iter() {
            audience.customers.iter().for_each(Outbox::unlink);
        }
        for outboxes in self.inner.agents.iter() {
            outboxes.iter().for_each(Outbox::unlink);
        }
    }

    /// Whether any customer socket of the conversation is connected to this node.
    pub fn customer_connected(&self, conversation: &ConversationId) -> bool {
        self.inner
            .conversations
            .get(conversation)
            .is_some_and(|a| !a.customers.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_outbox_asks_its_socket_to_close_and_others_are_not_held_up() {
        let fanout = Fanout::default();
        let c = ConversationId::from("c");
        let (slow, mut slow_in) = outbox(2);
        let (quick, mut quick_in) = outbox(8);
        let _s = fanout.seat_customer(&c, slow);
        let _q = fanout.seat_customer(&c, quick);
        for i in 0..3 {
            fanout.to_conversation(&c, &Outbound::from(format!("{i}")), None, || "".into());
        }
        assert!(slow_in.has_overflowed());
        tokio::time::timeout(
            std::time::Duration::from_millis(100),
            slow_in.alarm().rung(),
        )
        .await
        .expect("the slow socket is told to close");
        for i in 0..3 {
            assert_eq!(&*quick_in.recv().await.unwrap(), i.to_string());
        }
        assert!(!quick_in.has_overflowed());
        assert_eq!(&*slow_in.recv().await.unwrap(), "0");
    }

    #[tokio::test]
    async fn the_holder_gets_events_and_seats_leave_when_dropped() {
        let fanout = Fanout::default();
        let c = ConversationId::from("c");
        let (tab, mut tab_in) = outbox(4);
        let (console, mut console_in) = outbox(4);
        let seat = fanout.seat_customer(&c, tab);
        let _agent = fanout.seat_agent(&"ann".into(), console);
        fanout.set_holder(&c, Some("ann".into()));
        fanout.to_conversation(&c, &"f".into(), None, || "event f".into());
        assert_eq!(&*tab_in.recv().await.unwrap(), "f");
        assert_eq!(&*console_in.recv().await.unwrap(), "event f");
        assert!(fanout.customer_connected(&c));
        drop(seat);
        assert!(!fanout.customer_connected(&c));
        fanout.set_holder(&c, None);
        assert!(fanout.inner.conversations.is_empty());
    }
}
