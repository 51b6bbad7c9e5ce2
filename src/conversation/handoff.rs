//! What happens to a conversation between the bot and a person: escalation into the queue,
//! assignment (claim, automatic, transfer), the agent's messages, private notes, resolution, CSAT,
//! email capture, and the timers. The in-memory queue lives in [`crate::handoff`]; this file makes
//! the transitions, stores them, and tells the customer and the agents.
//!
//! Ownership: `bot` → `queued` → `agent` → `resolved` → `bot` (on the customer's next message).
//! Every transition happens under the conversation's lock and checks the state it starts from.

use serde_json::json;

use super::protocol::{From, MessageFrame, ServerFrame, State};
use super::{message_json, now_ms, ConversationError, Conversations};
use crate::bot::QuickReply;
use crate::escalation::{Decision, Reason, ReasonKind};
use crate::handoff::protocol::AgentServerFrame;
use crate::handoff::{preview, Owner, Waiting, PICKUPS_KEPT};
use crate::store::{AgentRow, NewEvent};

impl Conversations {
    /// Hands a conversation the bot owns to the queue, for the reasons in `decision`. The customer
    /// sees `status{queued, position, eta}` and a system message (with the offer to leave an email
    /// when nobody can take it now); agents see the queue change, and the least-loaded available
    /// agent of the team is assigned when automatic assignment is on.
    pub async fn escalate(
        &self,
        conversation: &str,
        decision: Decision,
    ) -> Result<(), ConversationError> {
        let handoff = &self.inner.handoff;
        {
            let lock = self.lock(conversation);
            let _guard = lock.lock().await;
            let state = self.state(conversation).await?;
            if !matches!(state, State::Bot | State::Resolved) {
                return Ok(());
            }
            let now = now_ms();
            let team = decision
                .team
                .clone()
                .unwrap_or_else(|| handoff.settings().default_team.clone());
            let reasons = serde_json::to_value(&decision.reasons).unwrap_or_default();
            let id = self
                .inner
                .store
                .create_handoff(conversation, &reasons, Some(&team), decision.priority, now)
                .await?;
            let entry = self
                .waiting(
                    conversation,
                    id,
                    &team,
                    decision.priority,
                    decision.reasons.clone(),
                    now,
                )
                .await?;
            handoff.enqueue(entry);
            self.inner
                .store
                .set_state(conversation, State::Queued.as_str(), now)
                .await?;
            let available = handoff.available(&team, now);
            let (position, eta) = handoff.position(conversation).unzip();
            handoff.position_shown(conversation, position.unwrap_or(0));
            self.append_status(
                conversation,
                State::Queued,
                position,
                eta,
                None,
                Some(available.is_ok()),
            )
            .await?;
            let (text, quick) = match available {
                Ok(()) => ("I've passed your conversation to our team. A person will reply here; you don't need to repeat anything.", Vec::new()),
                Err("outside_hours") => ("Our team is outside its working hours right now. Leave your email and we'll answer you there, or keep this chat open and a person will reply when they are back.", vec![leave_email_reply()]),
                Err(_) => ("Nobody from our team is online right now. Leave your email and we'll answer you there, or keep this chat open and a person will reply as soon as someone is back.", vec![leave_email_reply()]),
            };
            self.append_message(conversation, From::System, None, text, None, quick)
                .await?;
            tracing::info!(conversation, team, reasons = %reasons, "escalated");
        }
        self.dispatch().await
    }

    /// A queue entry for a conversation, with the customer's name and latest message.
    async fn waiting(
        &self,
        conversation: &str,
        handoff_id: i64,
        team: &str,
        priority: i64,
        reasons: Vec<Reason>,
        escalated_at: i64,
    ) -> Result<Waiting, ConversationError> {
        let store = &self.inner.store;
        let customer = store
            .conversation_summary(conversation)
            .await?
            .and_then(|v| v.visitor["name"].as_str().map(String::from));
        let last = store.customer_texts(conversation).await?;
        Ok(Waiting {
            conversation_id: conversation.to_owned(),
            handoff_id,
            team: team.to_owned(),
            priority,
            reasons,
            escalated_at,
            customer,
            preview: last.last().map(|(_, t)| preview(t)).unwrap_or_default(),
            declined: Default::default(),
            alerts: 0,
            shown_position: 0,
        })
    }

    /// After a restart, puts every conversation that was waiting for a person back in the queue
    /// and every one an agent held back with that agent (a held conversation whose agent account
    /// is gone waits in the queue again). Returns `(queued, held)`.
    pub async fn restore_handoffs(&self) -> Result<(usize, usize), ConversationError> {
        let store = &self.inner.store;
        let default_team = &self.inner.handoff.settings().default_team;
        let now = now_ms();
        let (mut queued, mut held) = (Vec::new(), Vec::new());
        for (h, state) in store.open_handoffs().await? {
            let reasons: Vec<Reason> = serde_json::from_value(h.reasons).unwrap_or_default();
            let team = h.team.as_deref().unwrap_or(default_team);
            let entry = self
                .waiting(
                    &h.conversation_id,
                    h.id,
                    team,
                    h.priority,
                    reasons,
                    h.escalated_at,
                )
                .await?;
            let agent = match &h.agent_id {
                Some(id) if state == State::Agent.as_str() => store.agent(id).await?,
                _ => None,
            };
            match agent {
                Some(agent) => held.push(Owner {
                    agent,
                    assigned_at: now,
                    replied: h.first_response_at.is_some(),
                    entry,
                }),
                None => {
                    if state != State::Queued.as_str() {
                        store
                            .set_state(&h.conversation_id, State::Queued.as_str(), now)
                            .await?;
                    }
                    queued.push(entry)
                }
            }
        }
        let counts = (queued.len(), held.len());
        let pickups = store.recent_pickup_ms(PICKUPS_KEPT as i64).await?;
        self.inner.handoff.restore(queued, held, pickups, now);
        Ok(counts)
    }

    /// Assigns what can be assigned automatically, then shows agents the queue and customers their
    /// place in it.
    pub async fn dispatch(&self) -> Result<(), ConversationError> {
        let now = now_ms();
        for (entry, agent) in self.inner.handoff.dispatch(now) {
            self.assigned(&entry, &agent, "auto", None).await?;
        }
        self.inner.handoff.publish_queue(now).await;
        for (conversation, position, eta) in self.inner.handoff.position_updates() {
            let frame = json!({"type": "queue", "queue_position": position, "eta_seconds": eta});
            self.send_to_customers(&conversation, frame.to_string().into())
                .await;
        }
        Ok(())
    }

    /// An agent claims a queued conversation. Of several agents claiming at once, one wins.
    pub async fn claim(
        &self,
        agent: &AgentRow,
        conversation: &str,
    ) -> Result<(), ConversationError> {
        let entry = self
            .inner
            .handoff
            .claim(conversation, agent, now_ms())
            .map_err(ConversationError::Claim)?;
        self.assigned(&entry, agent, "claim", None).await?;
        self.inner.handoff.publish_queue(now_ms()).await;
        Ok(())
    }

    /// Records and announces that `agent` now holds the conversation of `entry`.
    async fn assigned(
        &self,
        entry: &Waiting,
        agent: &AgentRow,
        by: &'static str,
        note: Option<String>,
    ) -> Result<(), ConversationError> {
        let conversation = &entry.conversation_id;
        let now = now_ms();
        {
            let lock = self.lock(conversation);
            let _guard = lock.lock().await;
            self.inner
                .store
                .handoff_assigned(
                    entry.handoff_id,
                    Some(&agent.id),
                    Some(&entry.team),
                    entry.priority,
                    now,
                )
                .await?;
            self.inner
                .store
                .set_state(conversation, State::Agent.as_str(), now)
                .await?;
            // The agent's console gets the context packet first, then the frames that follow.
            let context = self.context(conversation).await?;
            self.inner
                .handoff
                .send_to_agent(
                    &agent.id,
                    &AgentServerFrame::Assigned {
                        conversation_id: conversation.clone(),
                        by,
                        note,
                        context,
                    },
                )
                .await;
            self.append_status(
                conversation,
                State::Agent,
                None,
                None,
                Some(agent.name.clone()),
                None,
            )
            .await?;
            // The status frame names the agent: the widget shows "Sam joined the chat" from it (a
            // system message saying the same showed it twice).
        }
        tracing::info!(conversation, agent = %agent.email, by, "assigned");
        Ok(())
    }

    fn owned_by(
        &self,
        conversation: &str,
        agent: &AgentRow,
    ) -> Result<crate::handoff::Owner, ConversationError> {
        match self.inner.handoff.owner(conversation) {
            Some(o) if o.agent.id == agent.id => Ok(o),
            _ => Err(ConversationError::NotOwner),
        }
    }

    /// The agent holding the conversation writes to the customer. Returns the message's `seq`.
    pub async fn agent_message(
        &self,
        agent: &AgentRow,
        conversation: &str,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<i64, ConversationError> {
        let owner = self.owned_by(conversation, agent)?;
        let lock = self.lock(conversation);
        let _guard = lock.lock().await;
        if let Some(cid) = client_id {
            // Sent again after a reconnect: it is stored already, and the console finds it in the
            // transcript it reloads.
            let stored = self
                .inner
                .store
                .seq_of_client_id(conversation, From::Agent.as_str(), cid);
            if let Some(seq) = stored.await? {
                return Ok(seq);
            }
        }
        let seq = self
            .append_message(
                conversation,
                From::Agent,
                Some(agent.name.clone()),
                text,
                client_id,
                Vec::new(),
            )
            .await?;
        self.inner.handoff.mark_replied(conversation);
        self.inner
            .store
            .handoff_responded(owner.entry.handoff_id, now_ms())
            .await?;
        Ok(seq)
    }

    /// A private note: stored and shown to the holder and its author, never to the customer.
    pub async fn note(
        &self,
        agent: &AgentRow,
        conversation: &str,
        text: &str,
    ) -> Result<(), ConversationError> {
        if self
            .inner
            .store
            .conversation_state(conversation)
            .await?
            .is_none()
        {
            return Err(ConversationError::NotFound);
        }
        let now = now_ms();
        self.inner
            .store
            .insert_note(conversation, &agent.id, &agent.name, text, now)
            .await?;
        let frame = AgentServerFrame::Note {
            conversation_id: conversation.to_owned(),
            agent: agent.name.clone(),
            text: text.to_owned(),
            at: now,
        };
        let holder = self.inner.handoff.owner(conversation).map(|o| o.agent.id);
        if holder.as_deref() != Some(agent.id.as_str()) {
            self.inner.handoff.send_to_agent(&agent.id, &frame).await;
        }
        if let Some(holder) = holder {
            self.inner.handoff.send_to_agent(&holder, &frame).await;
        }
        Ok(())
    }

    /// The holder is (or stopped) typing: shown to the customer.
    pub async fn agent_typing(
        &self,
        agent: &AgentRow,
        conversation: &str,
        on: bool,
    ) -> Result<(), ConversationError> {
        self.owned_by(conversation, agent)?;
        let frame = ServerFrame::Typing {
            from: From::Agent,
            on,
        };
        self.send_to_customers(conversation, frame.to_json().into())
            .await;
        Ok(())
    }

    /// Hands the conversation to another agent (at once) or team (through the queue).
    pub async fn transfer(
        &self,
        agent: &AgentRow,
        conversation: &str,
        to_agent: Option<&str>,
        to_team: Option<&str>,
        note: Option<String>,
    ) -> Result<(), ConversationError> {
        let owner = self.owned_by(conversation, agent)?;
        if let Some(note) = note.as_deref().filter(|n| !n.trim().is_empty()) {
            self.inner
                .store
                .insert_note(conversation, &agent.id, &agent.name, note, now_ms())
                .await?;
        }
        if let Some(to) = to_agent {
            let target = self
                .inner
                .handoff
                .hand_over(conversation, to, now_ms())
                .ok_or(ConversationError::UnknownAgent)?;
            self.unassigned(&agent.id, conversation, "transferred")
                .await;
            let mut entry = owner.entry;
            entry.reasons.push(transfer_reason(agent, note.as_deref()));
            self.assigned(&entry, &target, "transfer", note).await?;
            return Ok(());
        }
        let team = to_team.unwrap_or(&owner.entry.team).to_owned();
        self.inner.handoff.release(conversation);
        self.unassigned(&agent.id, conversation, "transferred")
            .await;
        let mut entry = owner.entry;
        entry.team = team;
        entry.reasons.push(transfer_reason(agent, note.as_deref()));
        self.requeue(entry).await?;
        self.dispatch().await
    }

    async fn requeue(&self, entry: Waiting) -> Result<(), ConversationError> {
        let conversation = entry.conversation_id.clone();
        let lock = self.lock(&conversation);
        let _guard = lock.lock().await;
        let now = now_ms();
        self.inner
            .store
            .handoff_assigned(
                entry.handoff_id,
                None,
                Some(&entry.team),
                entry.priority,
                now,
            )
            .await?;
        let team = entry.team.clone();
        self.inner.handoff.enqueue(entry);
        self.inner
            .store
            .set_state(&conversation, State::Queued.as_str(), now)
            .await?;
        let (position, eta) = self.inner.handoff.position(&conversation).unzip();
        self.inner
            .handoff
            .position_shown(&conversation, position.unwrap_or(0));
        let available = self.inner.handoff.available(&team, now).is_ok();
        self.append_status(
            &conversation,
            State::Queued,
            position,
            eta,
            None,
            Some(available),
        )
        .await?;
        Ok(())
    }

    async fn unassigned(&self, agent: &str, conversation: &str, reason: &'static str) {
        let frame = AgentServerFrame::Unassigned {
            conversation_id: conversation.to_owned(),
            reason,
        };
        self.inner.handoff.send_to_agent(agent, &frame).await;
    }

    /// The holder closes the conversation: the customer sees `resolved` and a rating request.
    pub async fn resolve(
        &self,
        agent: &AgentRow,
        conversation: &str,
    ) -> Result<(), ConversationError> {
        let owner = self.owned_by(conversation, agent)?;
        {
            let lock = self.lock(conversation);
            let _guard = lock.lock().await;
            let now = now_ms();
            self.inner
                .store
                .handoff_resolved(owner.entry.handoff_id, now)
                .await?;
            self.inner
                .store
                .set_state(conversation, State::Resolved.as_str(), now)
                .await?;
            // The holder still sees these two frames: it is released only after them.
            self.append_status(conversation, State::Resolved, None, None, None, None)
                .await?;
            let text =
                "How did we do? Rate this conversation from 1 to 5, and tell us more if you like.";
            let csat = |seq| json!({"type": "csat_request", "seq": seq, "text": text});
            let event = NewEvent {
                sender: From::System.as_str(),
                client_id: None,
                text: None,
                body: &csat,
            };
            self.append_and_publish(conversation, event, None).await?;
            self.inner.handoff.release(conversation);
        }
        self.unassigned(&agent.id, conversation, "resolved").await;
        self.dispatch().await
    }

    /// The customer rates the conversation after it was resolved.
    pub async fn rate(
        &self,
        conversation: &str,
        score: i64,
        comment: Option<&str>,
    ) -> Result<(), ConversationError> {
        if !(1..=5).contains(&score) {
            return Err(ConversationError::BadRating);
        }
        let handoffs = self.inner.store.handoffs_of(conversation).await?;
        let Some(last) = handoffs.iter().rev().find(|h| h.resolved_at.is_some()) else {
            return Err(ConversationError::NotResolved);
        };
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        self.inner
            .store
            .handoff_rated(last.id, score, comment)
            .await?;
        if let Some(agent) = &last.agent_id {
            let frame = AgentServerFrame::Rated {
                conversation_id: conversation.to_owned(),
                score,
                comment: comment.map(String::from),
            };
            self.inner.handoff.send_to_agent(agent, &frame).await;
        }
        Ok(())
    }

    /// The customer leaves an email for follow-up: stored as an open ticket. Returns its id.
    pub async fn leave_email(
        &self,
        conversation: &str,
        email: &str,
        message: &str,
    ) -> Result<i64, ConversationError> {
        let email = email.trim();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
            });
        if !valid {
            return Err(ConversationError::BadEmail);
        }
        let team = self
            .inner
            .store
            .handoffs_of(conversation)
            .await?
            .last()
            .and_then(|h| h.team.clone());
        let id = self
            .inner
            .store
            .create_ticket(
                conversation,
                email,
                message.trim(),
                team.as_deref(),
                now_ms(),
            )
            .await?;
        tracing::info!(conversation, ticket = id, "ticket left for follow-up");
        Ok(id)
    }

    /// Runs the timers that came due: raises the priority of conversations nobody picked up (and
    /// alerts every agent), and takes conversations back from agents who did not reply in time.
    pub async fn tick(&self) -> Result<(), ConversationError> {
        let now = now_ms();
        let due = self.inner.handoff.due(now);
        for (conversation, waited) in &due.unpicked {
            let frame = AgentServerFrame::Alert {
                conversation_id: conversation.clone(),
                message: format!(
                    "waiting for {waited} s and nobody has picked it up; its priority was raised"
                ),
                waiting_seconds: *waited,
            };
            self.inner.handoff.broadcast(&frame).await;
        }
        for conversation in &due.unanswered {
            let Some(owner) = self.inner.handoff.release(conversation) else {
                continue;
            };
            tracing::info!(conversation, agent = %owner.agent.email, "no reply in time: back to the queue");
            self.unassigned(&owner.agent.id, conversation, "no_reply")
                .await;
            let mut entry = owner.entry;
            entry.declined.insert(owner.agent.id.clone());
            self.requeue(entry).await?;
        }
        if !due.unpicked.is_empty() || !due.unanswered.is_empty() {
            self.dispatch().await?;
        }
        Ok(())
    }

    pub(super) async fn append_status(
        &self,
        conversation: &str,
        state: State,
        queue_position: Option<u32>,
        eta_seconds: Option<u32>,
        agent: Option<String>,
        agents_available: Option<bool>,
    ) -> Result<i64, ConversationError> {
        let body = |seq| {
            serde_json::to_value(ServerFrame::Status {
                seq,
                state,
                queue_position,
                eta_seconds,
                agent: agent.clone(),
                agents_available,
            })
            .unwrap_or_default()
        };
        let event = NewEvent {
            sender: From::System.as_str(),
            client_id: None,
            text: None,
            body: &body,
        };
        self.append_and_publish(conversation, event, None).await
    }

    pub(super) async fn append_message(
        &self,
        conversation: &str,
        from: From,
        author: Option<String>,
        text: &str,
        client_id: Option<&str>,
        quick_replies: Vec<QuickReply>,
    ) -> Result<i64, ConversationError> {
        let body = |seq| {
            message_json(MessageFrame {
                seq,
                from,
                author: author.clone(),
                text: text.to_owned(),
                client_id: client_id.map(String::from),
                sources: Vec::new(),
                quick_replies: quick_replies.clone(),
            })
        };
        let event = NewEvent {
            sender: from.as_str(),
            client_id,
            text: Some(text),
            body: &body,
        };
        self.append_and_publish(conversation, event, None).await
    }
}

fn transfer_reason(agent: &AgentRow, note: Option<&str>) -> Reason {
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

fn leave_email_reply() -> QuickReply {
    QuickReply {
        label: "Leave my email".into(),
        action: "leave_email".into(),
        text: None,
    }
}
