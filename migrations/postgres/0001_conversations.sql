-- Postgres dialect of ../0001_conversations.sql (the same schema; REAL confidences are DOUBLE
-- PRECISION here, as SQLite's REAL is a double).
-- Conversations, the sequenced log of frames each customer sees, and feedback on answers.

CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY,
    session_hash       TEXT NOT NULL UNIQUE,
    state              TEXT NOT NULL DEFAULT 'bot',
    visitor            TEXT NOT NULL DEFAULT '{}',
    last_seq           BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- Every frame of a conversation that carries a sequence number, in order. `body` is the frame as
-- JSON, replayed as is to a customer who reconnects.
CREATE TABLE events (
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    seq                BIGINT NOT NULL,
    sender             TEXT NOT NULL,
    client_id          TEXT,
    text               TEXT,
    body               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX events_client_id ON events (conversation_id, client_id) WHERE client_id IS NOT NULL;

-- What the bot did with each customer question: for reports of what it could not answer.
CREATE TABLE bot_turns (
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    seq                BIGINT NOT NULL,
    question           TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    confidence         DOUBLE PRECISION NOT NULL,
    article            TEXT,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE feedback (
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    seq                BIGINT NOT NULL,
    helpful            BOOLEAN NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
