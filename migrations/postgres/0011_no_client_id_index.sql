-- Twin of the SQLite migration that drops the index of client ids. Postgres keeps an index of
-- them, to look a re-send up in the whole conversation, but no longer a unique one: its appends
-- take the conversation's row first (`append_in!`), so two nodes cannot both store one message,
-- and a SQLite store copied here (`frontdesk store migrate`) may hold a message twice (a client
-- that sent a wrong `seen`, or a re-send after more than `RESEND_WINDOW` newer frames) and must
-- still copy.
DROP INDEX IF EXISTS events_client_id;
CREATE INDEX events_client_id ON events (conversation_id, client_id) WHERE client_id IS NOT NULL;
