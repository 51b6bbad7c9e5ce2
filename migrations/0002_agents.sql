-- Human agents, their login tokens, hand-offs to the queue, private notes, what was understood of
-- each customer turn, CSAT, and tickets left by customers when nobody could take the chat.

CREATE TABLE agents (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    email              TEXT NOT NULL UNIQUE,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL DEFAULT 'agent',
    teams              TEXT NOT NULL DEFAULT '[]',
    max_chats          BIGINT NOT NULL DEFAULT 3,
    created_at         BIGINT NOT NULL
);

-- Login tokens, stored hashed (sha256), with an expiry.
CREATE TABLE agent_tokens (
    token_hash         TEXT PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agents(id),
    expires_at         BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);

-- One row per escalation of a conversation: why, to which team, who took it, and the times that
-- make the first-response and resolution reports.
CREATE TABLE handoffs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    reasons            TEXT NOT NULL DEFAULT '[]',
    team               TEXT,
    priority           BIGINT NOT NULL DEFAULT 0,
    agent_id           TEXT REFERENCES agents(id),
    escalated_at       BIGINT NOT NULL,
    claimed_at         BIGINT,
    first_response_at  BIGINT,
    resolved_at        BIGINT,
    csat_score         BIGINT,
    csat_comment       TEXT
);
CREATE INDEX handoffs_conversation ON handoffs (conversation_id, id);

-- Private notes by agents: never part of the customer's event log.
CREATE TABLE notes (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    agent_id           TEXT NOT NULL,
    agent_name         TEXT NOT NULL,
    text               TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX notes_conversation ON notes (conversation_id, id);

-- What was understood of each customer message (intent, upset), as the escalation policy saw it.
CREATE TABLE turn_signals (
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    seq                BIGINT NOT NULL,
    understanding      TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- A customer left an email because nobody could take the chat: open until followed up.
CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    email              TEXT NOT NULL,
    message            TEXT NOT NULL DEFAULT '',
    team               TEXT,
    status             TEXT NOT NULL DEFAULT 'open',
    created_at         BIGINT NOT NULL
);
