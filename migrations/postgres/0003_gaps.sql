-- Postgres dialect of ../0003_gaps.sql (the same statements).
-- The editors' gaps report. A question the bot looked up but did not answer, because the escalation
-- policy handed the conversation to a person instead (no confident passage again, out of scope
-- again, the same article asked for again), is kept as a bot turn with `handed_off`. Such a turn has
-- no bot message, so its `seq` is the customer's question's. The report reads by time.

ALTER TABLE bot_turns ADD COLUMN handed_off BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX bot_turns_created ON bot_turns (created_at);
