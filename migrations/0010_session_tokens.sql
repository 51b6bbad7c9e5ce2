-- More session tokens for one conversation: a verified customer (identity.secret) reaches their
-- open conversation from any device, and each device that joins it gets a token of its own. The
-- token is recorded here so that the device resumes the conversation on its next connection
-- (and may read its transcript) like the device that started it, whose token is
-- `conversations.session_hash`.
CREATE TABLE session_tokens (
    token_hash      TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    -- Unix ms.
    created_at      BIGINT NOT NULL
);
-- A conversation keeps its newest few (`Store::add_session_token`).
CREATE INDEX session_tokens_conversation ON session_tokens (conversation_id, created_at);
