//! What agents do: connect, claim, write, take notes, transfer, resolve. Every action on a
//! conversation is checked against who holds it.

use std::sync::Arc;

use super::{message, status, ConversationError, Core};
use crate::accounts::Account;
use crate::clock::now_ms;
use crate::cluster::Signal;
use crate::escalation::{Reason, ReasonKind};
use crate::fanout::{AgentSeat, Outbox};
use crate::ids::{AgentId, ConversationId};
use crate::protocol::agent::{AgentPresence, AgentServerFrame, AssignedBy, Unassigned};
use crate::protocol::context::ContextPacket;
use crate::protocol::customer::{Sender, ServerFrame, State, StatusFrame};
use crate::protocol::{encode, to_json};
use crate::queue::{Holding, Presence, StaffGuard};
use crate::store::{Appended, NewEvent};

/// The agents' side of conversations; clone it freely.
#[derive(Clone)]
pub struct Desk {
    core: Arc<Core>,
}

/// An agent socket's presence at the desk: counted online, and receiving its frames, until
/// dropped.
pub struct Attendance {
    _staff: StaffGuard,
    _seat: AgentSeat,
}

impl Desk {
    pub(super) fn from_core(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Conversations waiting in the queue now.
    pub fn queue_length(&self) -> usize {
        self.core.queue.snapshot(0).1
    }

    /// Registers an agent's socket and queues `ready` and the queue on it. Call
    /// [`Desk::dispatch`] afterwards: someone is here to take conversations now.
    pub fn connect(&self, account: Account, outbox: &Outbox) -> Attendance {
        let core = &self.core;
        let seat = core.fanout.seat_agent(&account.id, outbox.clone());
        let staff = core.queue.connect(account.clone());
        let status = core.queue.presence(&account.id);
        outbox.push(encode(&AgentServerFrame::Ready {
            agent: account,
            status,
        }));
        outbox.push(encode(&core.queue_snapshot()));
        Attendance {
            _staff: staff,
            _seat: seat,
        }
    }

    /// Assigns what can be assigned automatically and tells everyone.
    pub async fn dispatch(&self) -> Result<(), ConversationError> {
        self.core.dispatch().await
    }

    /// Sets an agent's presence; coming online may bring assignments.
    pub async fn set_presence(
        &self,
        agent: &AgentId,
        status: Presence,
    ) -> Result<(), ConversationError> {
        let status = match status {
            Presence::Offline => Presence::Away,
            other => other,
        };
        self.core.queue.set_presence(agent, status);
        if status == Presence::Online {
            self.core.dispatch().await?;
        }
        Ok(())
    }

    /// The agents connected now.
    pub fn connected(&self) -> Vec<AgentPresence> {
        self.core
            .queue
            .connected()
            .into_iter()
            .map(AgentPresence::from)
            .collect()
    }

    /// The context packet of a conversation.
    pub async fn context(&self, id: &ConversationId) -> Result<ContextPacket, ConversationError> {
        self.core.context(id).await
    }

    /// An agent claims a queued conversation. Of several agents claiming at once, one wins.
    pub async fn claim(
        &self,
        agent: &Account,
        id: &ConversationId,
    ) -> Result<(), ConversationError> {
        let core = &self.core;
        let entry = core
            .queue
            .claim(id, agent, now_ms())
            .map_err(ConversationError::Claim)?;
        let won = core.store_claim(&entry, agent).await;
        if !matches!(won, Ok(true)) {
            if won.is_err() {
                core.queue.claim_lost(id);
            }
            core.tell_queue_changes();
            return Err(won.err().unwrap_or(ConversationError::Claim(
                crate::queue::ClaimError::AlreadyClaimed,
            )));
        }
        let assigned = core.assigned(&entry, agent, AssignedBy::Claim, None).await;
        core.tell_queue_changes();
        core.tell_positions();
        assigned
    }

    /// The holding agent's conversation, or `NotOwner`.
    fn held(&self, agent: &Account, id: &ConversationId) -> Result<(), ConversationError> {
        match self.core.queue.holder_id(id) {
            Some(holder) if holder == agent.id => Ok(()),
            _ => Err(ConversationError::NotOwner),
        }
    }

    fn holding(&self, agent: &Account, id: &ConversationId) -> Result<Holding, ConversationError> {
        match self.core.queue.holding(id) {
            Some(h) if h.agent.id == agent.id => Ok(h),
            _ => Err(ConversationError::NotOwner),
        }
    }

    /// The agent holding the conversation writes to the customer. Returns the message's `seq`;
    /// a message sent again with the same `client_id` (and `seen`, [`crate::store::NewEvent::seen`])
    /// is stored once.
    pub async fn message(
        &self,
        agent: &Account,
        id: &ConversationId,
        text: &str,
        client_id: Option<&str>,
        seen: Option<i64>,
    ) -> Result<i64, ConversationError> {
        self.held(agent, id)?;
        let core = &self.core;
        let _guard = core.lock(id).await;
        let mut frame = message(Sender::Agent, text);
        frame.author = Some(agent.name.clone());
        frame.client_id = client_id.map(String::from);
        // The hand-off's first reply is recorded in the message's own commit.
        let responds_to = core
            .queue
            .holding(id)
            .filter(|h| !h.responded)
            .map(|h| h.entry.handoff_id);
        let seq = match core
            .append_message(id, frame, None, responds_to, seen)
            .await?
        {
            Appended::New { seq, .. } => seq,
            // Sent again after a reconnect: stored already, and in the transcript the console
            // reloads.
            Appended::Duplicate { seq } => return Ok(seq),
        };
        core.queue.agent_replied(id);
        Ok(seq)
    }

    /// A private note on a conversation the agent holds: stored and shown to the agent's
    /// consoles, never to the customer.
    pub async fn note(
        &self,
        agent: &Account,
        id: &ConversationId,
        text: &str,
    ) -> Result<(), ConversationError> {
        self.held(agent, id)?;
        let now = now_ms();
        self.core
            .store
            .insert_note(id, &agent.id, &agent.name, text, now)
            .await?;
        let frame = AgentServerFrame::Note {
            conversation_id: id.clone(),
            agent: agent.name.clone(),
            text: text.to_owned(),
            at: now,
        };
        self.core.to_agent(&agent.id, &frame);
        Ok(())
    }

    /// The holder is (or stopped) typing: shown to the customer.
    pub fn typing(
        &self,
        agent: &Account,
        id: &ConversationId,
        on: bool,
    ) -> Result<(), ConversationError> {
        self.held(agent, id)?;
        let frame = ServerFrame::Typing {
            from: Sender::Agent,
            on,
        };
        self.core.fanout.to_customers(id, encode(&frame));
        Ok(())
    }

    /// Hands the conversation to another agent (at once) or team (through the queue), with an
    /// optional note for whoever takes it.
    pub async fn transfer(
        &self,
        agent: &Account,
        id: &ConversationId,
        to_agent: Option<&AgentId>,
        to_team: Option<&str>,
        note: Option<String>,
    ) -> Result<(), ConversationError> {
        let holding = self.holding(agent, id)?;
        let core = &self.core;
        let note = note.filter(|n| !n.trim().is_empty());
        if let Some(note) = &note {
            core.store
                .insert_note(id, &agent.id, &agent.name, note, now_ms())
                .await?;
        }
        let mut entry = holding.entry;
        entry.reasons.push(transfer_reason(agent, note.as_deref()));
        if let Some(to) = to_agent {
            let target = core
                .queue
                .hand_over(id, to, now_ms())
                .ok_or(ConversationError::UnknownAgent)?;
            core.tell_nodes(|| Signal::Taken {
                entry: entry.clone(),
                agent: target.clone(),
            });
            self.unassigned(&agent.id, id, Unassigned::Transferred);
            return core
                .assigned(&entry, &target, AssignedBy::Transfer, note)
                .await;
        }
        if let Some(team) = to_team {
            entry.team = team.to_owned();
        }
        core.queue.release(id);
        self.unassigned(&agent.id, id, Unassigned::Transferred);
        core.requeue(entry).await?;
        core.dispatch().await
    }

    fn unassigned(&self, agent: &AgentId, id: &ConversationId, reason: Unassigned) {
        let frame = AgentServerFrame::Unassigned {
            conversation_id: id.clone(),
            reason,
        };
        self.core.to_agent(agent, &frame);
    }

    /// The holder closes the conversation: the customer sees `resolved` and a rating request.
    pub async fn resolve(
        &self,
        agent: &Account,
        id: &ConversationId,
    ) -> Result<(), ConversationError> {
        let holding = self.holding(agent, id)?;
        let core = &self.core;
        {
            let _guard = core.lock(id).await;
            core.finish_resolve(id, holding.entry.handoff_id).await?;
            core.queue.release(id);
            core.fanout.set_holder(id, None);
            core.tell_nodes(|| Signal::Left {
                conversation: id.clone(),
            });
        }
        self.unassigned(&agent.id, id, Unassigned::Resolved);
        core.dispatch().await
    }

    /// Hands what another node did to this node: its frames to this node's sockets, its queue
    /// changes to [`Desk::apply`]. A conversation's frames are delivered under the conversation's
    /// lock, as this node's own are, so none reaches a socket between its seat and its `welcome`
    /// (a customer resuming here would otherwise see a frame before being welcomed).
    pub async fn deliver(&self, signal: Signal) -> Result<(), ConversationError> {
        let core = &self.core;
        let conversation = match &signal {
            Signal::Conversation { conversation, .. }
            | Signal::Customers { conversation, .. }
            | Signal::Holder { conversation, .. } => Some(conversation.clone()),
            _ => None,
        };
        if let Signal::Conversation {
            conversation,
            frame,
            ..
        } = &signal
        {
            core.heard_elsewhere(conversation, frame);
        }
        let queue_change = match conversation {
            Some(id) => {
                let _guard = core.lock(&id).await;
                core.fanout.deliver(signal)
            }
            None => core.fanout.deliver(signal),
        };
        match queue_change {
            Some(change) => self.apply(change).await,
            None => Ok(()),
        }
    }

    /// Applies what another node did to the queue (see [`crate::cluster`]): this node's copy
    /// changes, its consoles see the queue change, and its agents may be assigned what joined.
    /// Signals for sockets are the fan-out's ([`crate::fanout::Fanout::deliver`]).
    pub async fn apply(&self, signal: Signal) -> Result<(), ConversationError> {
        let core = &self.core;
        match signal {
            Signal::Queued { entry } => {
                core.queue.queued_elsewhere(entry);
                return core.dispatch().await;
            }
            Signal::Taken { entry, agent } => core.queue.taken_elsewhere(entry, agent, now_ms()),
            Signal::Left { conversation } => core.queue.left_elsewhere(&conversation),
            Signal::Staff {
                node,
                agents,
                customers,
            } => {
                core.queue
                    .staff_elsewhere(node, agents, customers, now_ms());
                return Ok(());
            }
            Signal::Pick {
                conversation,
                seq,
                question,
                passage,
                quote_from,
            } => {
                // Encoded off the signal loop: other nodes' frames never wait on it.
                core.bot.learn_in_background(crate::bot::Press {
                    conversation: conversation.to_string(),
                    offer_seq: seq,
                    question,
                    passage,
                    quote_from,
                });
                return Ok(());
            }
            Signal::Unpick { conversation, seq } => {
                let picks = core.bot.picks();
                picks.forget(conversation.as_ref(), seq, picks.ticket());
                return Ok(());
            }
            _ => return Ok(()),
        }
        core.tell_queue_changes();
        core.tell_positions();
        Ok(())
    }

    /// Several nodes, the link back after being lost: reads this node's copy of the queue again
    /// from the store.
    pub async fn resync(&self) -> Result<(), ConversationError> {
        self.core.resync().await
    }

    /// Runs the timers that came due (see `timers`); with several nodes, only while this node
    /// holds the timer lease.
    pub async fn tick(&self) -> Result<(), ConversationError> {
        self.core.tick().await
    }

    /// This node's id among several (its name on the Redis bus, and in the timer lease), or
    /// `None` for a node on its own.
    pub fn node(&self) -> Option<&str> {
        self.core.cluster.as_ref().map(|bus| bus.node())
    }

    /// Gives the timer lease up (a node stopping), so another node takes over at once.
    pub async fn release_timers(&self) -> Result<(), ConversationError> {
        self.core.release_timers().await
    }

    /// After a restart, puts the queue and the agents' conversations back. Returns `(queued,
    /// held)`. Resolutions a crash interrupted (in a version that resolved in several
    /// statements) are finished first.
    pub async fn restore(&self) -> Result<(usize, usize), ConversationError> {
        let core = &self.core;
        for id in core.store.stranded_resolutions().await? {
            let id = ConversationId::from(id);
            let Some(handoff) = core.store.handoffs_of(&id).await?.pop() else {
                continue;
            };
            let _guard = core.lock(&id).await;
            core.finish_resolve(&id, handoff.id).await?;
            tracing::warn!(conversation = %id, "an interrupted resolve was finished");
        }
        core.restore().await
    }
}

impl Core {
    /// Stores a resolution in one transaction (hand-off, state, the `resolved` status and the
    /// rating request) and shows the two frames; the caller holds the conversation's lock.
    async fn finish_resolve(
        &self,
        id: &ConversationId,
        handoff: i64,
    ) -> Result<(), ConversationError> {
        let resolved = status(State::Resolved);
        let status_body = move |seq| {
            to_json(&ServerFrame::Status(StatusFrame {
                seq,
                ..resolved.clone()
            }))
        };
        let text =
            "How did we do? Rate this conversation from 1 to 5, and tell us more if you like.";
        let csat = move |seq| {
            to_json(&ServerFrame::CsatRequest {
                seq,
                text: text.to_owned(),
            })
        };
        let events = [
            NewEvent {
                sender: Sender::System.as_str(),
                client_id: None,
                seen: None,
                text: None,
                state: None,
                responds_to: None,
                beside: Vec::new(),
                body: Box::new(status_body),
            },
            NewEvent {
                sender: Sender::System.as_str(),
                client_id: None,
                seen: None,
                text: None,
                state: None,
                responds_to: None,
                beside: Vec::new(),
                body: Box::new(csat),
            },
        ];
        // The holder still sees these two frames: it is released only after them.
        for appended in self.store.resolve(id, handoff, &events, now_ms()).await? {
            if let Appended::New { frame, seq, .. } = appended {
                self.publish(id, &frame, Some(seq), None);
            }
        }
        Ok(())
    }
}

fn transfer_reason(agent: &Account, note: Option<&str>) -> Reason {
    Reason {
        kind: ReasonKind::Transfer,
        detail: match note {
            Some(n) => format!("transferred by {}: {n}", agent.name),
            None => format!("transferred by {}", agent.name),
        },
        value: None,
        threshold: None,
    }
}
