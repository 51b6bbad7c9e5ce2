-- A re-sent message is found without an index of client ids: the client sends, with each message,
-- the last sequence number it had seen when it first sent it, and the writer looks for an earlier
-- copy among the conversation's frames after that number only, by the events' primary key (and
-- among its last 1,000 at most: `store::RESEND_WINDOW`). The index cost a page written to the
-- log per stored message, the largest part of what storing one costs (docs/BENCHMARKS.md).
DROP INDEX IF EXISTS events_client_id;
