//! Moving a conversation between the bot, the queue and agents: escalation into the queue,
//! assignment (claim, automatic, transfer), back to the queue; and telling agents and customers
//! about the queue.

use std::net::IpAddr;

use super::{message, status, ConversationError, Core};
use crate::accounts::Account;
use crate::bot::QuickReply;
use crate::clock::now_ms;
use crate::cluster::Signal;
use crate::escalation::Decision;
use crate::ids::ConversationId;
use crate::protocol::agent::{AgentServerFrame, AssignedBy, QueueEntry};
use crate::protocol::customer::{Sender, ServerFrame, State, StatusFrame};
use crate::protocol::encode;
use crate::queue::{preview, Unavailable, Waiting};

/// Who asks for a hand-off, and so from which states it may happen.
#[derive(Debug, Clone, Copy)]
pub(super) enum Asker {
    /// The customer (`request_human`): from the bot, or from a resolved chat (they want a person
    /// again).
    Customer,
    /// The bot's own judgement of a turn (or a verdict) that began at this time (Unix ms): only
    /// while the bot has owned the conversation all along since then. A turn still working when
    /// the chat went to a person (and perhaps was resolved) must not hand it over again.
    BotSince(i64),
}

impl Core {
    /// Hands a conversation the bot owns to the queue, for the reasons in `decision`. The customer
    /// sees `status{queued, position, eta}` and a system message (with the offer to leave an email
    /// when nobody can take it now); agents see the queue change, and the least-loaded available
    /// agent of the team is assigned when automatic assignment is on. Refused when the queue is
    /// full (overall, or for the customer's address); then nothing changes. Nothing happens either
    /// when the conversation is not in a state `asker` may hand over from (checked under the
    /// conversation's lock, so nothing changes owner between the check and the hand-off).
    pub(super) async fn escalate(
        &self,
        id: &ConversationId,
        decision: Decision,
        customer: Option<&str>,
        origin: Option<IpAddr>,
        asker: Asker,
    ) -> Result<(), ConversationError> {
        {
            let _guard = self.lock(id).await;
            if !self.may_hand_over(id, asker).await? {
                tracing::debug!(conversation = %id, ?asker, "no hand-off: the conversation changed owner meanwhile");
                return Ok(());
            }
            let now = now_ms();
            let team = decision
                .team
                .clone()
                .unwrap_or_else(|| self.queue.settings().default_team.clone());
            let last = self.store.customer_texts(id).await?.pop();
            let entry = Waiting {
                conversation_id: id.clone(),
                handoff_id: 0,
                team: team.clone(),
                priority: decision.priority,
                reasons: decision.reasons.clone(),
                escalated_at: now,
                customer: customer.map(String::from),
                preview: last.map(|(_, t)| preview(&t)).unwrap_or_default(),
                origin,
                declined: Default::default(),
                alerts: 0,
                shown_position: 0,
                customer_away_since: None,
            };
            self.enqueue_recorded(entry, &decision).await?;
            // The `queued` status frame sets the state (one commit for both).
            let available = self.queue.available(&team, now);
            self.announce_queued(id, available.is_ok()).await?;
            let (text, quick) = match available {
                Ok(()) => ("I've passed your conversation to our team. A person will reply here; you don't need to repeat anything.", Vec::new()),
                Err(Unavailable::OutsideHours) => ("Our team is outside its working hours right now. Leave your email and we'll answer you there, or keep this chat open and a person will reply when they are back.", vec![leave_email_reply()]),
                Err(Unavailable::NoAgentOnline) => ("Nobody from our team is online right now. Leave your email and we'll answer you there, or keep this chat open and a person will reply as soon as someone is back.", vec![leave_email_reply()]),
            };
            let mut note = message(Sender::System, text);
            note.quick_replies = quick;
            self.append_message(id, note, None, None, None).await?;
            for reason in &decision.reasons {
                let kind = serde_json::to_value(reason.kind).unwrap_or_default();
                let kind = kind.as_str().unwrap_or("other");
                self.metrics.escalations.with_label_values(&[kind]).inc();
            }
            tracing::info!(conversation = %id, team, reasons = ?decision.reasons, "escalated");
        }
        self.dispatch().await
    }

    /// Whether `asker` may hand the conversation over now (the caller holds its lock).
    async fn may_hand_over(
        &self,
        id: &ConversationId,
        asker: Asker,
    ) -> Result<bool, ConversationError> {
        let state = self.state(id).await?;
        Ok(match asker {
            Asker::Customer => matches!(state, State::Bot | State::Resolved),
            // Back with the bot, but after a hand-off that began since: not the owner it was.
            Asker::BotSince(since) => {
                state == State::Bot
                    && self
                        .store
                        .handoffs_of(id)
                        .await?
                        .last()
                        .is_none_or(|h| h.escalated_at < since)
            }
        })
    }

    /// Records the hand-off and puts the entry in the queue, within its bounds. The bounds are
    /// checked before anything is stored; if the queue filled up meanwhile, the record is closed
    /// as abandoned and the hand-off refused.
    async fn enqueue_recorded(
        &self,
        mut entry: Waiting,
        decision: &Decision,
    ) -> Result<(), ConversationError> {
        let id = entry.conversation_id.clone();
        self.queue
            .check_room(entry.origin)
            .map_err(ConversationError::QueueFull)?;
        let reasons = serde_json::to_value(&decision.reasons).unwrap_or_default();
        entry.handoff_id = self
            .store
            .create_handoff(
                &id,
                &reasons,
                Some(&entry.team),
                decision.priority,
                entry.escalated_at,
            )
            .await?;
        let handoff_id = entry.handoff_id;
        let told = self.cluster.is_some().then(|| entry.clone());
        if let Err(full) = self.queue.enqueue(entry) {
            self.store.handoff_abandoned(handoff_id, now_ms()).await?;
            return Err(ConversationError::QueueFull(full));
        }
        if let Some(entry) = told {
            self.tell_nodes(|| Signal::Queued { entry });
        }
        Ok(())
    }

    /// Tells the customer of a queued conversation its place (a sequenced `status`).
    async fn announce_queued(
        &self,
        id: &ConversationId,
        agents_available: bool,
    ) -> Result<i64, ConversationError> {
        let (position, eta) = self.queue.position(id).unzip();
        self.queue.position_shown(id, position.unwrap_or(0));
        self.append_status(
            id,
            StatusFrame {
                queue_position: position,
                eta_seconds: eta,
                agents_available: Some(agents_available),
                ..status(State::Queued)
            },
        )
        .await
    }

    /// Assigns what can be assigned automatically, then tells agents what changed in the queue
    /// and customers their new place in it.
    pub(super) async fn dispatch(&self) -> Result<(), ConversationError> {
        let mut failed = Ok(());
        for (entry, agent) in self.queue.dispatch(now_ms()) {
            match self.store_claim(&entry, &agent).await {
                Ok(true) => {}
                Ok(false) => continue, // an agent on another node took it
                Err(e) => {
                    self.queue.claim_lost(&entry.conversation_id);
                    failed = Err(e);
                    continue;
                }
            }
            if let Err(e) = self.assigned(&entry, &agent, AssignedBy::Auto, None).await {
                tracing::error!(conversation = %entry.conversation_id, "announcing an assignment: {e}");
                failed = Err(e);
            }
        }
        self.tell_queue_changes();
        self.tell_positions();
        failed
    }

    /// Records and announces that `agent` now holds the conversation of `entry`: the agent's
    /// console gets the context packet first, then the frames that follow.
    pub(super) async fn assigned(
        &self,
        entry: &Waiting,
        agent: &Account,
        by: AssignedBy,
        note: Option<String>,
    ) -> Result<(), ConversationError> {
        let id = &entry.conversation_id;
        let now = now_ms();
        {
            let _guard = self.lock(id).await;
            self.store
                .handoff_taken(
                    id,
                    entry.handoff_id,
                    &agent.id,
                    Some(&entry.team),
                    entry.priority,
                    now,
                )
                .await?;
            self.fanout.set_holder(id, Some(agent.id.clone()));
            let context = Box::new(self.context(id).await?);
            let frame = AgentServerFrame::Assigned {
                conversation_id: id.clone(),
                by,
                note,
                context,
            };
            self.to_agent(&agent.id, &frame);
            // The status frame names the agent: the widget shows "Sam joined the chat" from it.
            let joined = StatusFrame {
                agent: Some(agent.name.clone()),
                ..status(State::Agent)
            };
            self.append_status(id, joined).await?;
        }
        let waited = (now - entry.escalated_at).max(0) as f64 / 1000.0;
        self.metrics.queue_wait_seconds.observe(waited);
        tracing::info!(conversation = %id, agent = %agent.email, ?by, "assigned");
        Ok(())
    }

    /// Puts a conversation a person had back in the queue (whatever its bounds) and tells the
    /// customer.
    pub(super) async fn requeue(&self, entry: Waiting) -> Result<(), ConversationError> {
        let id = entry.conversation_id.clone();
        let _guard = self.lock(&id).await;
        let now = now_ms();
        self.store
            .handoff_assigned(
                entry.handoff_id,
                None,
                Some(&entry.team),
                entry.priority,
                now,
            )
            .await?;
        let team = entry.team.clone();
        self.fanout.set_holder(&id, None);
        self.tell_nodes(|| Signal::Queued {
            entry: entry.clone(),
        });
        self.queue.put_back(entry);
        // The `queued` status frame sets the state (one commit for both).
        let available = self.queue.available(&team, now).is_ok();
        self.announce_queued(&id, available).await?;
        Ok(())
    }

    /// Sends every connected agent what changed in the queue since the last time (in the order
    /// it changed: sent under the desk's lock, which sending never waits on).
    pub(super) fn tell_queue_changes(&self) {
        let now = now_ms();
        self.queue.tell_changes(|changes| {
            let frame = AgentServerFrame::QueueChanged {
                upserted: changes
                    .upserted
                    .iter()
                    .map(|(position, w)| QueueEntry::new(*position, w, now))
                    .collect(),
                removed: changes.removed.clone(),
                total: changes.total,
            };
            // Each node tells its own consoles, from its own copy of the queue.
            self.fanout.to_all_agents_here(encode(&frame));
        });
    }

    /// Tells each waiting customer whose place moved their new place (not sequenced).
    pub(super) fn tell_positions(&self) {
        for (id, queue_position, eta_seconds) in self.queue.position_updates() {
            let frame = ServerFrame::Queue {
                queue_position,
                eta_seconds,
            };
            self.fanout.to_customers_here(&id, encode(&frame));
        }
    }

    /// The queue as a console sees it when it connects.
    pub(super) fn queue_snapshot(&self) -> AgentServerFrame {
        let now = now_ms();
        let (entries, total) = self.queue.snapshot(self.queue_snapshot_entries);
        AgentServerFrame::Queue {
            entries: entries
                .iter()
                .map(|(position, w)| QueueEntry::new(*position, w, now))
                .collect(),
            total,
        }
    }
}

fn leave_email_reply() -> QuickReply {
    QuickReply {
        label: "Leave my email".into(),
        action: "leave_email".into(),
        text: None,
        choice: None,
    }
}
