//! What comes due with time: conversations nobody picked up (priority raised, agents alerted),
//! agents who stopped replying or stayed disconnected (their conversations back to the queue),
//! customers who left the queue; and putting the desk back after a restart.
//!
//! With several nodes the timers run once per cluster: on the node that holds the store's lease
//! [`TIMER_LEASE`], renewed at every tick. Every node's copy of the queue is complete, so the
//! holder times every entry; when it dies, the next node to tick after the lease expired takes
//! it and fires what came due meanwhile, once. What the holder decides reaches the others as
//! usual (a raised priority as the entry queued again, a take-back, an abandon).

use std::sync::atomic::Ordering;

use super::{message, status, ConversationError, Core};
use crate::accounts;
use crate::clock::now_ms;
use crate::cluster::Signal;
use crate::escalation::Reason;
use crate::ids::ConversationId;
use crate::protocol::agent::{AgentServerFrame, Unassigned};
use crate::protocol::customer::{Sender, State};
use crate::protocol::encode;
use crate::queue::{preview, Holding, Waiting, PICKUPS_KEPT};

/// The store's lease of the node that runs a cluster's timers.
pub const TIMER_LEASE: &str = "desk-timers";

impl Core {
    /// Runs the timers that came due (with several nodes, only on the holder of the lease).
    pub(super) async fn tick(&self) -> Result<(), ConversationError> {
        let now = now_ms();
        self.admission.forget_idle(now);
        if !self.holds_timer_lease(now).await? {
            return Ok(());
        }
        let due = self.queue.due(now, |c| self.fanout.customer_connected(c));
        for (id, waited) in &due.unpicked {
            let frame = AgentServerFrame::Alert {
                conversation_id: id.clone(),
                message: format!(
                    "waiting for {waited} s and nobody has picked it up; its priority was raised"
                ),
                waiting_seconds: *waited,
            };
            self.fanout.to_all_agents(encode(&frame));
            // The other nodes' copies take the raised priority (and the alerts sent, should one
            // of them run the timers next).
            if let Some(entry) = self.queue.waiting(id) {
                self.tell_nodes(|| Signal::Queued { entry });
            }
        }
        let mut failed = Ok(());
        for id in &due.unanswered {
            if let Err(e) = self.take_back(id, Unassigned::NoReply).await {
                failed = Err(e);
            }
        }
        for id in &due.deserted {
            if let Err(e) = self.take_back(id, Unassigned::Disconnected).await {
                failed = Err(e);
            }
        }
        for id in &due.abandoned {
            if let Err(e) = self.abandon(id).await {
                failed = Err(e);
            }
        }
        if !due.is_empty() {
            self.tell_queue_changes();
            self.dispatch().await?;
        }
        failed
    }

    /// Whether this node runs the timers now: always on its own; with several nodes, while it
    /// holds the lease (taken or renewed here).
    async fn holds_timer_lease(&self, now: i64) -> Result<bool, ConversationError> {
        let Some(bus) = &self.cluster else {
            return Ok(true);
        };
        let held = self
            .store
            .take_lease(TIMER_LEASE, bus.node(), now, self.timer_lease_ms)
            .await?;
        if self.runs_timers.swap(held, Ordering::AcqRel) != held {
            if held {
                tracing::info!(node = %bus.node(), "this node runs the desk's timers now");
            } else {
                tracing::info!(node = %bus.node(), "another node runs the desk's timers now");
            }
        }
        Ok(held)
    }

    /// Gives the timer lease up, if this node holds it.
    pub(super) async fn release_timers(&self) -> Result<(), ConversationError> {
        if let Some(bus) = &self.cluster {
            if self.runs_timers.swap(false, Ordering::AcqRel) {
                self.store.release_lease(TIMER_LEASE, bus.node()).await?;
            }
        }
        Ok(())
    }

    /// Another node stored a message of the conversation: this node's copy follows it (the
    /// reply timer, the queue's preview), as it would for a message written here.
    pub(super) fn heard_elsewhere(&self, id: &ConversationId, frame: &str) {
        #[derive(serde::Deserialize)]
        struct Peek {
            #[serde(rename = "type")]
            kind: String,
            from: Option<String>,
            #[serde(default)]
            text: String,
        }
        let Ok(peek) = serde_json::from_str::<Peek>(frame) else {
            return;
        };
        if peek.kind != "message" {
            return;
        }
        match peek.from.as_deref() {
            Some(from) if from == Sender::Customer.as_str() => {
                self.queue.customer_wrote(id, &peek.text, now_ms());
                self.tell_queue_changes();
            }
            Some(from) if from == Sender::Agent.as_str() => {
                self.queue.agent_replied(id);
            }
            _ => {}
        }
    }

    /// Takes a conversation back from its holder into the queue. One who did not reply is not
    /// assigned it again automatically.
    async fn take_back(
        &self,
        id: &ConversationId,
        why: Unassigned,
    ) -> Result<(), ConversationError> {
        let Some(holding) = self.queue.release(id) else {
            return Ok(());
        };
        tracing::info!(conversation = %id, agent = %holding.agent.email, ?why, "back to the queue");
        let frame = AgentServerFrame::Unassigned {
            conversation_id: id.clone(),
            reason: why,
        };
        self.to_agent(&holding.agent.id, &frame);
        let mut entry = holding.entry;
        if why == Unassigned::NoReply {
            entry.declined.insert(holding.agent.id.clone());
        }
        self.requeue(entry).await
    }

    /// A queued conversation whose customer has been gone too long leaves the queue and goes back
    /// to the bot; the customer reads why when they return.
    async fn abandon(&self, id: &ConversationId) -> Result<(), ConversationError> {
        let Some(entry) = self.queue.abandon(id) else {
            return Ok(());
        };
        let _guard = self.lock(id).await;
        let now = now_ms();
        self.store.handoff_abandoned(entry.handoff_id, now).await?;
        self.tell_nodes(|| Signal::Left {
            conversation: id.clone(),
        });
        // The status frame sets the state too.
        self.append_status(id, status(State::Bot)).await?;
        let text = "Nobody could take this conversation while you were away, so I'm back. Ask for a person again whenever you like.";
        self.append_message(id, message(Sender::System, text), None, None, None)
            .await?;
        tracing::info!(conversation = %id, "left the queue: the customer is gone");
        Ok(())
    }

    /// After a restart, puts every conversation that was waiting for a person back in the queue
    /// and every one an agent held back with that agent (a held conversation whose agent account
    /// is gone waits in the queue again). Returns `(queued, held)`.
    pub(super) async fn restore(&self) -> Result<(usize, usize), ConversationError> {
        let now = now_ms();
        let (queued, held) = self.open_in_store(true, now).await?;
        let counts = (queued.len(), held.len());
        let pickups = self.store.recent_pickup_ms(PICKUPS_KEPT as i64).await?;
        self.queue.restore(queued, held, pickups, now);
        Ok(counts)
    }

    /// Several nodes, after the link to the others was lost and is back: this node's copy of
    /// the queue is read again from the store (what changed meanwhile was never told).
    pub(super) async fn resync(&self) -> Result<(), ConversationError> {
        let now = now_ms();
        let (queued, held) = self.open_in_store(false, now).await?;
        self.queue.replace(queued, held, now);
        self.tell_queue_changes();
        self.tell_positions();
        Ok(())
    }

    /// The conversations waiting for a person and those an agent holds, as the store has them.
    /// With `repair`, a conversation whose state says otherwise is set to `queued`.
    async fn open_in_store(
        &self,
        repair: bool,
        now: i64,
    ) -> Result<(Vec<Waiting>, Vec<Holding>), ConversationError> {
        let store = &self.store;
        let default_team = &self.queue.settings().default_team;
        let (mut queued, mut held) = (Vec::new(), Vec::new());
        for (h, state) in store.open_handoffs().await? {
            let id = ConversationId::from(h.conversation_id);
            let reasons: Vec<Reason> = serde_json::from_value(h.reasons).unwrap_or_default();
            let customer = store
                .conversation_summary(&id)
                .await?
                .and_then(|c| c.visitor["name"].as_str().map(String::from));
            let last = store.customer_texts(&id).await?.pop();
            let entry = Waiting {
                conversation_id: id.clone(),
                handoff_id: h.id,
                team: h.team.unwrap_or_else(|| default_team.clone()),
                priority: h.priority,
                reasons,
                escalated_at: h.escalated_at,
                customer,
                preview: last.map(|(_, t)| preview(&t)).unwrap_or_default(),
                origin: None,
                declined: Default::default(),
                alerts: 0,
                shown_position: 0,
                customer_away_since: None,
            };
            let agent = match &h.agent_id {
                Some(agent) if state == State::Agent.as_str() => {
                    accounts::find(store, &agent.as_str().into())
                        .await
                        .unwrap_or(None)
                }
                _ => None,
            };
            match agent {
                Some(agent) => {
                    self.fanout.set_holder(&id, Some(agent.id.clone()));
                    held.push(Holding {
                        agent,
                        assigned_at: now,
                        awaiting_reply_since: Some(now),
                        responded: h.first_response_at.is_some(),
                        entry,
                    })
                }
                None => {
                    if repair && state != State::Queued.as_str() {
                        store.set_state(&id, State::Queued.as_str(), now).await?;
                    }
                    queued.push(entry)
                }
            }
        }
        Ok((queued, held))
    }
}
