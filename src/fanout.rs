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
//!
//! A customer socket gets a conversation's sequenced frames in order, each once: from its
//! `welcome` on, its outbox knows the highest `seq` it was given ([`Outbox::start_at`]) and drops
//! a frame at or below it (another node's publish of a frame that was in `missed` already can
//! arrive late). A frame that skips ahead (another node's earlier frame still on its way) waits
//! for the ones before it; if they do not come within [`GAP_WAIT`], the socket closes with 4004
//! `reconnect` and the widget resumes from the store. On one node frames never skip ahead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{mpsc, Notify};

use crate::cluster::{Bus, Signal};
use crate::ids::{AgentId, ConversationId};
use crate::protocol::{CloseCode, Outbound};

/// How long a sequenced frame that skipped ahead waits for the ones before it (another node's
/// publish on its way) before the socket is closed to resume from the store.
pub const GAP_WAIT: Duration = Duration::from_millis(1_000);

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
    /// The conversation's sequence on this socket (customer sockets, from their welcome on).
    order: Mutex<Order>,
}

/// Where a socket is in its conversation's sequence.
#[derive(Default)]
struct Order {
    /// The highest `seq` the socket was given (`None`: not counting, every frame passes).
    given: Option<i64>,
    /// Frames that skipped ahead, by `seq`, until the ones before them come (`None`: the socket
    /// had that frame another way, e.g. its own message, acknowledged).
    waiting: BTreeMap<i64, Option<Outbound>>,
}

/// What [`Outbox::close_to_resume`] queues: never a frame (every frame is a JSON object).
const RESUME_MARKER: &str = "";

/// Whether `frame` is the marker of [`Outbox::close_to_resume`]: write nothing after it, close
/// with `reconnect`.
pub fn is_resume_marker(frame: &str) -> bool {
    frame == RESUME_MARKER
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
        order: Mutex::default(),
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

    /// Queues a marker after the frames queued so far: the socket writes those, then closes
    /// with `reconnect`, and the client resumes from the last frame it got. For a welcome that
    /// carries only the first page of what the client missed.
    pub fn close_to_resume(&self) {
        self.push(Outbound::from(RESUME_MARKER));
    }

    /// This socket's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// From now on the socket gets its conversation's sequenced frames in order, each once:
    /// it was given every frame up to `seq` (its welcome's `last_seq`).
    pub fn start_at(&self, seq: i64) {
        let mut order = self.order();
        order.given = Some(seq);
        order.waiting.retain(|s, _| *s > seq);
        self.flush(&mut order);
    }

    /// Queues the sequenced frame `seq` (`None`: the socket has it already, as its own
    /// message's `ack`): at once if it is the next, never if the socket has it, after the ones
    /// before it otherwise (see [`GAP_WAIT`]).
    fn push_seq(&self, seq: i64, frame: Option<Outbound>) {
        let mut order = self.order();
        let Some(given) = order.given else {
            if let Some(frame) = frame {
                self.push(frame);
            }
            return;
        };
        if seq <= given {
            return;
        }
        order.waiting.insert(seq, frame);
        self.queue_waiting(&mut order);
    }

    /// Queues the `ack` of this socket's own message `seq` in the conversation's order: at once
    /// if the socket was given every frame before it, else in the message's place once those
    /// came (a frame another node stored just before may still be on its way). A client counts
    /// the `ack`'s `seq` as seen, so one that overtook an earlier frame would make it resume
    /// past that frame. A re-send's `ack` whose message is on its way itself gives way to it.
    pub fn push_ack(&self, seq: i64, ack: Outbound) {
        let mut order = self.order();
        match order.given {
            Some(given) if seq > given => {
                order.waiting.entry(seq).or_insert(None).get_or_insert(ack);
                self.queue_waiting(&mut order);
            }
            _ => _ = self.push(ack),
        }
    }

    /// Queues what waits in `order` and comes next; watches a gap that opened, and closes the
    /// socket when too much waits behind one.
    fn queue_waiting(&self, order: &mut Order) {
        let gap = self.flush(order);
        if gap && order.waiting.len() == 1 {
            self.watch_gap(order.given);
        }
        if order.waiting.len() > self.0.tx.max_capacity() {
            self.unlink();
        }
    }

    /// Queues the waiting frames that come next; true if some still wait behind a gap.
    fn flush(&self, order: &mut Order) -> bool {
        let Some(mut given) = order.given else {
            return false;
        };
        while let Some(frame) = order.waiting.remove(&(given + 1)) {
            given += 1;
            if let Some(frame) = frame {
                self.push(frame);
            }
        }
        order.given = Some(given);
        !order.waiting.is_empty()
    }

    /// Closes the socket with `reconnect` if the sequence is still stuck at `given` after
    /// [`GAP_WAIT`] (the frames before a waiting one never came: the widget resumes them).
    fn watch_gap(&self, given: Option<i64>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.unlink();
        };
        let outbox = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(GAP_WAIT).await;
            let stuck = {
                let order = outbox.order();
                order.given == given && !order.waiting.is_empty()
            };
            if stuck {
                tracing::warn!(
                    socket = outbox.id(),
                    "a frame from another node did not come in time: the socket resumes from the store"
                );
                outbox.unlink();
            }
        });
    }

    fn order(&self) -> std::sync::MutexGuard<'_, Order> {
        self.0.order.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Sends a frame (the stored frame `seq`, or one not stored) to the conversation's customer
    /// sockets (all but `except`, whose own message it is) and, wrapped by `as_event`, to the
    /// agent who holds it.
    pub fn to_conversation(
        &self,
        conversation: &ConversationId,
        frame: &Outbound,
        seq: Option<i64>,
        except: Option<u64>,
        as_event: impl FnOnce() -> Outbound,
    ) {
        match &self.bus {
            None => self.to_conversation_here(conversation, frame, seq, except, as_event),
            Some(bus) => {
                let event = as_event();
                self.to_conversation_here(conversation, frame, seq, except, || event.clone());
                bus.publish(Signal::Conversation {
                    conversation: conversation.clone(),
                    frame: frame.to_string(),
                    event: event.to_string(),
                    seq,
                });
            }
        }
    }

    fn to_conversation_here(
        &self,
        conversation: &ConversationId,
        frame: &Outbound,
        seq: Option<i64>,
        except: Option<u64>,
        as_event: impl FnOnce() -> Outbound,
    ) {
        let holder = {
            let Some(audience) = self.inner.conversations.get(conversation) else {
                return;
            };
            for outbox in &audience.customers {
                let own = Some(outbox.id()) == except;
                match seq {
                    Some(seq) => outbox.push_seq(seq, (!own).then(|| frame.clone())),
                    None if !own => _ = outbox.push(frame.clone()),
                    None => {}
                }
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
                seq,
            } => {
                self.to_conversation_here(&conversation, &frame.into(), seq, None, || event.into())
            }
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
            fanout.to_conversation(&c, &Outbound::from(format!("{i}")), None, None, || {
                "".into()
            });
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

    /// Every frame queued now, as text.
    fn queued(inbox: &mut Inbox) -> Vec<String> {
        std::iter::from_fn(|| inbox.try_recv().map(|f| f.to_string())).collect()
    }

    #[tokio::test]
    async fn a_customer_socket_gets_each_seq_once_and_in_order_whatever_order_they_come_in() {
        let fanout = Fanout::default();
        let c = ConversationId::from("c");
        let (tab, mut tab_in) = outbox(16);
        let (own, mut own_in) = outbox(16);
        let _t = fanout.seat_customer(&c, tab.clone());
        let _o = fanout.seat_customer(&c, own.clone());
        // Before its welcome a socket is not counting: frames pass as they come.
        fanout.to_conversation(&c, &"typing".into(), None, None, || "".into());
        assert_eq!(queued(&mut tab_in), ["typing"]);
        // Welcomed with everything up to 3 (in `missed`).
        tab.start_at(3);
        own.start_at(3);
        let send = |seq: i64, except: Option<u64>| {
            let frame = Outbound::from(format!("f{seq}"));
            fanout.to_conversation(&c, &frame, Some(seq), except, || "".into());
        };
        send(3, None); // a late publish of a frame that was in `missed`
        send(5, None); // skipped ahead: waits for 4
        assert!(queued(&mut tab_in).is_empty());
        send(4, Some(own.id())); // the other tab's own message: it has its ack
        send(5, None); // again: had it
        send(6, None);
        assert_eq!(queued(&mut tab_in), ["f4", "f5", "f6"]);
        assert_eq!(queued(&mut own_in), ["typing", "f5", "f6"]);
        assert!(!tab_in.has_overflowed() && !own_in.has_overflowed());
    }

    /// Several nodes: an agent's frame 4 stored on another node just before the customer's own
    /// message 5 is still on its way when message 5's `ack` is ready. The `ack` waits for it: a
    /// client that saw seq 5 first would resume after 5 and never get 4.
    #[tokio::test]
    async fn an_ack_waits_for_the_frames_before_its_message() {
        let fanout = Fanout::default();
        let c = ConversationId::from("c");
        let (own, mut own_in) = outbox(16);
        let _o = fanout.seat_customer(&c, own.clone());
        own.start_at(3);
        fanout.to_conversation(&c, &"f5".into(), Some(5), Some(own.id()), || "".into());
        own.push_ack(5, "ack5".into());
        assert!(queued(&mut own_in).is_empty(), "the ack overtook frame 4");
        fanout.to_conversation(&c, &"f4".into(), Some(4), None, || "".into());
        assert_eq!(queued(&mut own_in), ["f4", "ack5"]);
        // With nothing missing it goes at once; so does a re-send's ack of a frame it had.
        fanout.to_conversation(&c, &"f6".into(), Some(6), Some(own.id()), || "".into());
        own.push_ack(6, "ack6".into());
        own.push_ack(5, "ack5 again".into());
        assert_eq!(queued(&mut own_in), ["ack6", "ack5 again"]);
        // A re-send's ack ahead of its own message from another node: the message, once.
        own.push_ack(8, "ack8".into());
        fanout.to_conversation(&c, &"f8".into(), Some(8), None, || "".into());
        fanout.to_conversation(&c, &"f7".into(), Some(7), None, || "".into());
        assert_eq!(queued(&mut own_in), ["f7", "f8"]);
    }

    #[tokio::test]
    async fn a_frame_that_never_comes_closes_the_socket_to_resume_from_the_store() {
        let fanout = Fanout::default();
        let c = ConversationId::from("c");
        let (tab, mut tab_in) = outbox(16);
        let _t = fanout.seat_customer(&c, tab.clone());
        tab.start_at(0);
        fanout.to_conversation(&c, &"f2".into(), Some(2), None, || "".into());
        assert!(queued(&mut tab_in).is_empty());
        tokio::time::timeout(GAP_WAIT * 3, tab_in.alarm().rung())
            .await
            .expect("the socket is told to close");
        assert_eq!(tab_in.alarm().close_code(), CloseCode::Reconnect);
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
        fanout.to_conversation(&c, &"f".into(), None, None, || "event f".into());
        assert_eq!(&*tab_in.recv().await.unwrap(), "f");
        assert_eq!(&*console_in.recv().await.unwrap(), "event f");
        assert!(fanout.customer_connected(&c));
        drop(seat);
        assert!(!fanout.customer_connected(&c));
        fanout.set_holder(&c, None);
        assert!(fanout.inner.conversations.is_empty());
    }
}
