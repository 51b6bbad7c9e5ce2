-- Postgres dialect of ../0004_abandoned.sql (the same statements).
-- A queued conversation whose customer left (no socket for handoff.abandon_after_seconds) leaves
-- the queue; its hand-off records when, so reports can tell it from one a person resolved.
ALTER TABLE handoffs ADD COLUMN abandoned_at BIGINT;
