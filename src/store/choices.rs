//! The choices the bot offered ("Which of these is it?") and what customers picked: what makes a
//! choice button answer deterministically (the options offered are checked here) and what editors
//! read in the gaps report. Same rules as the rest of the store: `$N` placeholders, portable SQL.

use super::{Arg, Columns, RowWrite, Store, StoreError};

/// One option of a choice message, as offered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OfferedOption {
    /// The passage (`path#anchor`, the path alone for an introduction).
    pub passage: String,
    /// What its button said.
    pub label: String,
    /// Where the offered line was quoted from in the passage's text ([`crate::kb::Passage`]'s
    /// `quote_from`: the piece of a long section that matched), so the answer to the click
    /// quotes the same place. 0: from the start (also for choices stored before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quote_from: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A choice message as stored, with what was picked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChoiceRow {
    /// The conversation.
    pub conversation_id: String,
    /// The bot message that offered the options.
    pub seq: i64,
    /// What the customer had asked.
    pub question: String,
    /// The options, in the order offered.
    pub options: Vec<OfferedOption>,
    /// Whether a button was pressed.
    pub answered: bool,
    /// The passage picked last (`None` with `answered`: "None of these").
    pub picked: Option<String>,
    /// When the options were offered, in Unix milliseconds.
    pub at: i64,
}

impl Store {
    /// Records that the bot message `seq` offered `options` for `question`.
    pub async fn record_choices_offered(
        &self,
        conversation: &str,
        seq: i64,
        question: &str,
        options: &[OfferedOption],
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_alone(Self::choices_row(conversation, seq, question, options, now))
            .await
    }

    /// The row [`Store::record_choices_offered`] writes, to store beside the bot's message.
    pub fn choices_row(
        conversation: &str,
        seq: i64,
        question: &str,
        options: &[OfferedOption],
        now: i64,
    ) -> RowWrite {
        let options = serde_json::to_string(options).unwrap_or_else(|_| "[]".into());
        RowWrite {
            sql: "INSERT INTO choices (conversation_id, seq, question, options, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (conversation_id, seq) DO NOTHING",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Int(seq),
                Arg::Text(super::nul_free(question).into_owned()),
                Arg::Text(options),
                Arg::Int(now),
            ],
            returns_id: false,
        }
    }

    /// The choice message at `seq` of the conversation, if the bot offered choices there.
    pub async fn choices_offered(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Option<ChoiceRow>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT conversation_id, seq, question, options, picked, picked_at, created_at
                 FROM choices WHERE conversation_id = $1 AND seq = $2",
            )
            .bind(conversation)
            .bind(seq)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(choice_row))
        })
    }

    /// Records that the customer pressed the button for `picked` (`None`: "None of these") under
    /// the choice message `seq`; the last press counts.
    pub async fn record_choice_picked(
        &self,
        conversation: &str,
        seq: i64,
        picked: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query(
                "UPDATE choices SET picked = $3, picked_at = $4, picks = picks + 1
                 WHERE conversation_id = $1 AND seq = $2",
            )
            .bind(conversation)
            .bind(seq)
            .bind(picked)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The most recent `limit` presses, newest first, with `at` the time of the press (what the
    /// bot learns from at start-up).
    pub async fn presses(&self, limit: i64) -> Result<Vec<ChoiceRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT conversation_id, seq, question, options, picked, picked_at, picked_at AS created_at
                 FROM choices WHERE picked_at IS NOT NULL
                 ORDER BY picked_at DESC, seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(choice_row).collect())
        })
    }

    /// The most recent `limit` answers customers said did not help: `(conversation, seq of the
    /// answer, question, when the verdict was given)`, newest first.
    pub async fn unhelpful_answers(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, i64, String, i64)>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT t.conversation_id, t.seq, t.question, f.created_at
                 FROM feedback f JOIN bot_turns t
                   ON t.conversation_id = f.conversation_id AND t.seq = f.seq
                 WHERE f.helpful = FALSE AND t.outcome = 'answered'
                 ORDER BY f.created_at DESC, t.seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.text("conversation_id"), r.int("seq"), r.text("question"), r.int("created_at")))
                .collect())
        })
    }

    /// Choice messages sent at or after `since` (Unix ms), newest first, at most `limit`.
    pub async fn choices_since(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ChoiceRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT conversation_id, seq, question, options, picked, picked_at, created_at
                 FROM choices WHERE created_at >= $1
                 ORDER BY created_at DESC, seq DESC LIMIT $2",
            )
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(choice_row).collect())
        })
    }
}

fn choice_row(r: &impl Columns) -> ChoiceRow {
    ChoiceRow {
        conversation_id: r.text("conversation_id"),
        seq: r.int("seq"),
        question: r.text("question"),
        options: serde_json::from_str(&r.text("options")).unwrap_or_default(),
        answered: r.opt_int("picked_at").is_some(),
        picked: r.opt_text("picked"),
        at: r.int("created_at"),
    }
}
